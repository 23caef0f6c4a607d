"""Compiled schema validation: a JSON Schema (draft 2020-12) becomes a function from a value to
typed violations (rudder-transformer's vocabulary, extended). Pure: no I/O, no policy.

Two engines, one result: the keywords contracts use in practice compile to plain closures (fast);
a schema using any other keyword is validated by the `jsonschema` library, whose errors are mapped
to the same violation types. docs/CONTRACTS.md lists both keyword sets.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from shared.domain.schema_formats import FORMATS

REQUIRED_MISSING = "Required-Missing"
DATATYPE_MISMATCH = "Datatype-Mismatch"
UNDECLARED_FIELD = "Undeclared-Field"
ADDITIONAL_PROPERTIES = "Additional-Properties"
ENUM_MISMATCH = "Enum-Mismatch"
FORMAT_MISMATCH = "Format-Mismatch"
PATTERN_MISMATCH = "Pattern-Mismatch"
RANGE_MISMATCH = "Range-Mismatch"
LENGTH_MISMATCH = "Length-Mismatch"
SCHEMA_MISMATCH = "Schema-Mismatch"
VIOLATION_TYPES = (
    REQUIRED_MISSING,
    DATATYPE_MISMATCH,
    UNDECLARED_FIELD,
    ADDITIONAL_PROPERTIES,
    ENUM_MISMATCH,
    FORMAT_MISMATCH,
    PATTERN_MISMATCH,
    RANGE_MISMATCH,
    LENGTH_MISMATCH,
    SCHEMA_MISMATCH,
)
# `actual` is shown, not stored whole: a violation record must stay small whatever was sent.
ACTUAL_CHARS = 120

# Keywords that only describe (they never fail a value).
ANNOTATIONS = frozenset(
    {"$schema", "$id", "$comment", "title", "description", "default", "examples"}
    | {"deprecated", "readOnly", "writeOnly"}
)
# Keywords the fast engine compiles; a schema using any other is validated by `jsonschema`.
FAST_KEYWORDS = ANNOTATIONS | frozenset(
    {"type", "enum", "const", "properties", "required", "additionalProperties", "items"}
    | {"minItems", "maxItems", "minLength", "maxLength", "pattern", "format"}
    | {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}
)
# JSON type name -> the Python types `json.loads` produces for it (bool is not a number).
PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "null": (type(None),),
    "object": (dict,),
    "array": (list,),
}


@dataclass(frozen=True, slots=True)
class Violation:
    """One way a value breaks its schema: what kind, where, and what was expected instead."""

    type: str
    field: str
    message: str
    expected: str | None = None
    actual: str | None = None


class SchemaCompileError(ValueError):
    """The schema cannot be compiled (e.g. a bad regular expression); `path` is inside it."""

    def __init__(self, path: str, message: str):
        super().__init__(message)
        self.path = path
        self.message = message


Check = Callable[[Any, str, list[Violation]], None]
Engine = Literal["fast", "jsonschema"]


class CompiledSchema:
    """A schema compiled once; `validate` is called per event on the hot path. `engine` forces
    one (tests run the fast engine's schemas through both)."""

    _check: Check | None

    def __init__(self, schema: dict[str, Any] | bool, engine: Engine | None = None):
        self.engine: Engine = engine or ("fast" if fast_supported(schema) else "jsonschema")
        if self.engine == "fast":
            self._check = _compile(schema, "")
        else:
            from shared.domain.schema_fallback import JsonSchemaEngine

            self._check = JsonSchemaEngine(schema)

    def validate(self, value: Any, path: str) -> list[Violation]:
        """The value's violations, sorted by field then type; `path` prefixes every field."""
        if self._check is None:
            return []
        found: list[Violation] = []
        self._check(value, path, found)
        if len(found) > 1:
            found = sorted(set(found), key=lambda v: (v.field, v.type, v.message))
        return found


def show(value: Any) -> str:
    """A value as JSON text, cut to ACTUAL_CHARS."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= ACTUAL_CHARS else text[: ACTUAL_CHARS - 1] + "…"


def json_type(value: Any) -> str:
    """The JSON type name of a parsed JSON value."""
    for name in ("boolean", "integer", "number", "string", "null", "object", "array"):
        if type(value) in PY_TYPES[name]:
            return name
    return type(value).__name__


# --- the fast engine ---------------------------------------------------------------------------


def fast_supported(schema: Any) -> bool:
    if isinstance(schema, bool):
        return True
    if not schema.keys() <= FAST_KEYWORDS:
        return False
    if isinstance(schema.get("additionalProperties"), dict) and not fast_supported(
        schema["additionalProperties"]
    ):
        return False
    children = [*schema.get("properties", {}).values()]
    if "items" in schema:
        children.append(schema["items"])
    return all(fast_supported(child) for child in children)


def _compile(schema: Any, where: str) -> Check | None:
    """A check for `schema` (None when it accepts every value); `where` locates compile errors."""
    if schema is True:
        return None
    if schema is False:
        return _reject_all
    # An object's own type check is folded into its object check: one call fewer per level.
    object_check = _object_check(schema, where, typed=schema.get("type") == "object")
    own_type = "type" in schema and not (object_check is not None and schema["type"] == "object")
    checks = [
        check
        for check in (
            _type_check(schema["type"]) if own_type else None,
            _enum_check(schema["enum"], "enum") if "enum" in schema else None,
            _enum_check([schema["const"]], "const") if "const" in schema else None,
            _string_check(schema, where),
            _number_check(schema),
            object_check,
            _array_check(schema, where),
        )
        if check is not None
    ]
    if not checks:
        return None
    if len(checks) == 1:
        return checks[0]

    def check_all(value: Any, path: str, out: list[Violation]) -> None:
        for check in checks:
            check(value, path, out)

    return check_all


def _reject_all(value: Any, path: str, out: list[Violation]) -> None:
    out.append(Violation(SCHEMA_MISMATCH, path, "no value is allowed here", "nothing", show(value)))


def _type_test(types: str | list[str]) -> tuple[frozenset[type], bool, str]:
    """The Python types a `type` keyword allows, whether integral floats pass, its wording."""
    names = [types] if isinstance(types, str) else list(types)
    allowed = frozenset(t for name in names for t in PY_TYPES[name])
    return allowed, "integer" in names and "number" not in names, " or ".join(names)


def _type_violation(expected: str, value: Any, path: str) -> Violation:
    message = f"expected {expected}, got {json_type(value)}"
    return Violation(DATATYPE_MISMATCH, path, message, expected, show(value))


def _type_check(types: str | list[str]) -> Check:
    allowed, integral_floats, expected = _type_test(types)

    def check(value: Any, path: str, out: list[Violation]) -> None:
        kind = type(value)
        if kind in allowed or (integral_floats and kind is float and value.is_integer()):
            return
        out.append(_type_violation(expected, value, path))

    return check


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: 1 equals 1.0, but true is not 1."""
    if type(a) is bool or type(b) is bool:
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    numbers = (int, float)
    return (type(a) is type(b) or (type(a) in numbers and type(b) in numbers)) and a == b


def _enum_check(values: list[Any], keyword: str) -> Check:
    expected = show(values[0]) if keyword == "const" else "one of " + show(values)
    allowed = tuple(values)
    strings = frozenset(v for v in values if type(v) is str)
    only_strings = len(strings) == len(values)

    def check(value: Any, path: str, out: list[Violation]) -> None:
        if type(value) is str and value in strings:
            return
        if not only_strings and any(json_equal(value, v) for v in allowed):
            return
        out.append(Violation(ENUM_MISMATCH, path, f"not {expected}", expected, show(value)))

    return check


def _string_check(schema: dict[str, Any], where: str) -> Check | None:
    min_length = schema.get("minLength")
    max_length = schema.get("maxLength")
    pattern = schema.get("pattern")
    regex = compile_pattern(pattern, join_path(where, "pattern")) if pattern is not None else None
    format_name = schema.get("format")
    format_test = FORMATS.get(format_name) if format_name is not None else None
    if min_length is None and max_length is None and regex is None and format_test is None:
        return None

    def check(value: Any, path: str, out: list[Violation]) -> None:
        if type(value) is not str:
            return
        if min_length is not None and len(value) < min_length:
            out.append(length_violation(path, f"length >= {min_length}", len(value)))
        if max_length is not None and len(value) > max_length:
            out.append(length_violation(path, f"length <= {max_length}", len(value)))
        if regex is not None and not regex.search(value):
            out.append(
                Violation(PATTERN_MISMATCH, path, f"does not match {pattern}", pattern, show(value))
            )
        if format_test is not None and not format_test(value):
            out.append(
                Violation(
                    FORMAT_MISMATCH,
                    path,
                    f"not a valid {format_name}",
                    format_name,
                    show(value),
                )
            )

    return check


def compile_pattern(pattern: Any, where: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except (re.error, TypeError) as exc:
        raise SchemaCompileError(where, f"not a valid regular expression: {exc}") from None


def length_violation(path: str, expected: str, actual: int) -> Violation:
    return Violation(
        LENGTH_MISMATCH, path, f"expected {expected}, got {actual}", expected, str(actual)
    )


NUMBER_BOUNDS: tuple[tuple[str, str, Callable[[float, float], bool]], ...] = (
    ("minimum", ">=", lambda value, bound: value >= bound),
    ("maximum", "<=", lambda value, bound: value <= bound),
    ("exclusiveMinimum", ">", lambda value, bound: value > bound),
    ("exclusiveMaximum", "<", lambda value, bound: value < bound),
)


def _number_check(schema: dict[str, Any]) -> Check | None:
    bounds = [(op, schema[key], test) for key, op, test in NUMBER_BOUNDS if key in schema]
    if not bounds:
        return None

    def check(value: Any, path: str, out: list[Violation]) -> None:
        kind = type(value)
        if kind is not int and kind is not float:
            return
        for op, bound, test in bounds:
            if not test(value, bound):
                expected = f"{op} {bound}"
                out.append(
                    Violation(RANGE_MISMATCH, path, f"expected {expected}", expected, show(value))
                )

    return check


def _object_check(schema: dict[str, Any], where: str, typed: bool) -> Check | None:
    """Properties, required, additional and undeclared fields; with `typed`, also the object
    type itself. Fields that only state a type are checked inline, without a call."""
    properties: dict[str, Any] = schema.get("properties", {})
    declared = frozenset(properties)
    typed_only = [
        (key, "." + key, *_type_test(sub["type"]))
        for key, sub in properties.items()
        if isinstance(sub, dict) and "type" in sub and sub.keys() - ANNOTATIONS == {"type"}
    ]
    inline = {key for key, *_ in typed_only}
    children = [
        (key, "." + key, compiled)
        for key, sub in properties.items()
        if key not in inline
        and (compiled := _compile(sub, join_path(where, "properties", key))) is not None
    ]
    required = [(key, "." + key) for key in schema.get("required", [])]
    additional = schema.get("additionalProperties")
    extra_check = (
        _compile(additional, join_path(where, "additionalProperties"))
        if isinstance(additional, dict)
        else None
    )
    # Where the schema says nothing about other fields, they are "undeclared": the contract's
    # `undeclared_fields` policy judges them. An explicit `false` is the schema's own rule.
    extras_type = (
        ADDITIONAL_PROPERTIES
        if additional is False
        else UNDECLARED_FIELD
        if "properties" in schema and additional is None
        else None
    )
    if not (typed_only or children or required or extra_check or extras_type):
        return None

    def check(value: Any, path: str, out: list[Violation]) -> None:
        if type(value) is not dict:
            if typed:
                out.append(_type_violation("object", value, path))
            return
        for key, suffix, allowed, integral_floats, expected in typed_only:
            if key in value:
                item = value[key]
                kind = type(item)
                if kind not in allowed and not (
                    integral_floats and kind is float and item.is_integer()
                ):
                    out.append(_type_violation(expected, item, path + suffix))
        for key, suffix, child in children:
            if key in value:
                child(value[key], path + suffix, out)
        for key, suffix in required:
            if key not in value:
                out.append(
                    Violation(
                        REQUIRED_MISSING, path + suffix, f"{key} is required", "present", None
                    )
                )
        if extras_type is None and extra_check is None:
            return
        if value.keys() <= declared:
            return
        for key in value:
            if key in declared:
                continue
            if extra_check is not None:
                extra_check(value[key], f"{path}.{key}", out)
            elif extras_type is not None:
                out.append(extra_violation(extras_type, f"{path}.{key}", key, value[key]))

    return check


def extra_violation(kind: str, field: str, key: str, value: Any) -> Violation:
    if kind == UNDECLARED_FIELD:
        return Violation(kind, field, f"{key} is not declared", "declared fields only", show(value))
    return Violation(kind, field, f"{key} is not allowed", "no additional fields", show(value))


def _array_check(schema: dict[str, Any], where: str) -> Check | None:
    min_items = schema.get("minItems")
    max_items = schema.get("maxItems")
    items = _compile(schema["items"], join_path(where, "items")) if "items" in schema else None
    if min_items is None and max_items is None and items is None:
        return None

    def check(value: Any, path: str, out: list[Violation]) -> None:
        if type(value) is not list:
            return
        if min_items is not None and len(value) < min_items:
            out.append(length_violation(path, f"length >= {min_items}", len(value)))
        if max_items is not None and len(value) > max_items:
            out.append(length_violation(path, f"length <= {max_items}", len(value)))
        if items is not None:
            for index, item in enumerate(value):
                items(item, f"{path}[{index}]", out)

    return check


def join_path(*parts: str) -> str:
    return ".".join(part for part in parts if part)
