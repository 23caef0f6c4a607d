"""A mypy plugin: `.get` on a TypedDict takes only the TypedDict's own keys, as `[]` does.

mypy reports `event["usrId"]` on a TypedDict without that key, but lets `event.get("usrId")`
through (PEP 589 allows any key there, and mypy follows it), and most reads of the canonical
event (`shared/domain/event.py`) are `.get`, since a transformed event may lack any key. With
this plugin both spellings are checked the same way: a key the TypedDict does not declare is a
`typeddict-item` error, and a key that is not a string literal (or a `Literal` type) is a
`literal-required` one. Everything else, including the inferred type, is mypy's own.
Enabled by `plugins` in pyproject.toml's `[tool.mypy]`.
"""

from __future__ import annotations

from collections.abc import Callable

from mypy.plugin import MethodContext, Plugin
from mypy.plugins.default import typed_dict_get_callback
from mypy.typeops import try_getting_str_literals
from mypy.types import Type, TypedDictType

# The method mypy resolves `.get` of a TypedDict to (its default plugin hooks the same name).
TYPEDDICT_GET = "typing.Mapping.get"


def _checked_get(ctx: MethodContext) -> Type:
    typed_dict = ctx.type
    if isinstance(typed_dict, TypedDictType) and ctx.args and ctx.args[0]:
        key = ctx.args[0][0]
        names = try_getting_str_literals(key, ctx.arg_types[0][0])
        if names is None:
            ctx.api.msg.typeddict_key_must_be_string_literal(typed_dict, key)
        else:
            for name in names:
                if name not in typed_dict.items:
                    ctx.api.msg.typeddict_key_not_found(typed_dict, name, key)
    # The first plugin with a hook for a method is the only one called: mypy's own inference of
    # the result type runs from here.
    return typed_dict_get_callback(ctx)


class TypedDictKeysPlugin(Plugin):
    def get_method_hook(self, fullname: str) -> Callable[[MethodContext], Type] | None:
        return _checked_get if fullname == TYPEDDICT_GET else None


def plugin(version: str) -> type[Plugin]:
    return TypedDictKeysPlugin
