"""pydantic's validation errors in plain words, for the people who read API answers.

Every error becomes a field path (`pii_rules.0.action`) and what is wrong with it, without the
value sent (it may be a secret): `must be a string`, `must be at least 16 characters`, `is not
a field of PiiRuleInput; known fields: path, action`. The path is walked through the model, so
that extra fields name the model they do not belong to and a union's errors (one per
alternative, pydantic's noisiest) become one message about the alternative that was meant.
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

DATE_TIME = "must be a date-time with a time zone, such as 2024-01-15T15:00:00Z"
URL = "must be a URL such as https://example.com/path"


def _listed(text: Any, separator: str = ", ") -> str:
    """pydantic's `'a', 'b' or 'c'` as `a, b, c`."""
    quoted = re.findall(r"'((?:[^'\\]|\\.)*)'", str(text))
    return separator.join(quoted) if quoted else str(text)


def _length(bound: str, limit: Any, unit: str) -> str:
    if bound == "least" and limit == 1 and unit == "characters":
        return "must not be empty"
    if limit == 1:
        unit = unit.removesuffix("s")
    return f"must be at {bound} {limit} {unit}"


def _unit(value: Any) -> str:
    """What a sized value's length counts. By the value itself: pydantic's `field_type` says
    "Value" for a secret (SecretStr) and for a list behind a validator alike."""
    if isinstance(value, str | bytes):
        return "characters"
    return "entries" if isinstance(value, dict) else "items"


def _custom(prefix: str) -> Callable[[dict[str, Any], str], str]:
    """A validator's own message (already plain words), without pydantic's prefix."""
    return lambda ctx, msg: msg.removeprefix(prefix)


# pydantic's error types (ErrorDetails["type"]), in plain words: each entry takes the error's
# ctx and pydantic's own message. A type missing here falls back to pydantic's message with
# "Input should be" made "must be". extra_forbidden is written by `_text`: it needs the model.
MESSAGES: dict[str, Callable[[dict[str, Any], str], str]] = {
    "missing": lambda ctx, msg: "is required",
    "string_type": lambda ctx, msg: "must be a string",
    "int_type": lambda ctx, msg: "must be a whole number",
    "int_parsing": lambda ctx, msg: "must be a whole number",
    "int_from_float": lambda ctx, msg: "must be a whole number",
    "float_type": lambda ctx, msg: "must be a number",
    "float_parsing": lambda ctx, msg: "must be a number",
    "bool_type": lambda ctx, msg: "must be true or false",
    "bool_parsing": lambda ctx, msg: "must be true or false",
    "dict_type": lambda ctx, msg: "must be a JSON object",
    "model_type": lambda ctx, msg: "must be a JSON object",
    "list_type": lambda ctx, msg: "must be a list (a JSON array)",
    "tuple_type": lambda ctx, msg: "must be a list (a JSON array)",
    "set_type": lambda ctx, msg: "must be a list (a JSON array)",
    "string_too_short": lambda ctx, msg: _length("least", ctx["min_length"], "characters"),
    "string_too_long": lambda ctx, msg: _length("most", ctx["max_length"], "characters"),
    "too_short": lambda ctx, msg: _length("least", ctx["min_length"], ctx["unit"]),
    "too_long": lambda ctx, msg: _length("most", ctx["max_length"], ctx["unit"]),
    "literal_error": lambda ctx, msg: f"must be one of: {_listed(ctx['expected'])}",
    "enum": lambda ctx, msg: f"must be one of: {_listed(ctx['expected'])}",
    "string_pattern_mismatch": lambda ctx, msg: f"must match the pattern {ctx['pattern']}",
    "greater_than": lambda ctx, msg: f"must be greater than {ctx['gt']}",
    "greater_than_equal": lambda ctx, msg: f"must be at least {ctx['ge']}",
    "less_than": lambda ctx, msg: f"must be less than {ctx['lt']}",
    "less_than_equal": lambda ctx, msg: f"must be at most {ctx['le']}",
    "multiple_of": lambda ctx, msg: f"must be a multiple of {ctx['multiple_of']}",
    "datetime_type": lambda ctx, msg: DATE_TIME,
    "datetime_parsing": lambda ctx, msg: DATE_TIME,
    "datetime_from_date_parsing": lambda ctx, msg: DATE_TIME,
    "timezone_aware": lambda ctx, msg: "must include a time zone, such as Z or +01:00",
    "datetime_future": lambda ctx, msg: "must be in the future",
    "url_type": lambda ctx, msg: URL,
    "url_parsing": lambda ctx, msg: URL,
    "url_scheme": lambda ctx, msg: (
        f"must be a URL with the scheme {_listed(ctx['expected_schemes'], ' or ')}"
    ),
    "url_too_long": lambda ctx, msg: _length("most", ctx["max_length"], "characters"),
    "union_tag_invalid": lambda ctx, msg: (
        f"must have a {_listed(ctx['discriminator'])} of: {_listed(ctx['expected_tags'])}"
    ),
    "union_tag_not_found": lambda ctx, msg: f"must have a {_listed(ctx['discriminator'])}",
    "value_error": _custom("Value error, "),
}


@dataclass(frozen=True)
class PlainError:
    """One error: the field at fault (a dotted path; None for the whole input) and what is
    wrong with it."""

    field: str | None
    text: str

    def __str__(self) -> str:
        return f"{self.field}: {self.text}" if self.field else self.text


def plain_errors(
    error: ValidationError, model: type[BaseModel], name: str | None = None
) -> list[PlainError]:
    """The errors of validating `model`, in plain words, the first one first; `name` is what
    to call the model itself in them (default: its class name, as the OpenAPI document does)."""
    # With the input, which is measured (characters or items) but never written.
    details = error.errors(include_url=False)
    found = [_walk(model, detail, name) for detail in details]
    return list(dict.fromkeys(_settle(found)))


# --- where an error is: its location walked through the model's types --------------------------


@dataclass(frozen=True)
class _Choice:
    """A union's alternative in a location: pydantic names the one that failed there."""

    tag: str


@dataclass
class _Found:
    detail: ErrorDetails
    parts: list[str | _Choice]
    # The model holding the location's last segment (extra fields are its unknown keys), and
    # what messages call it.
    holder: type[BaseModel] | None
    called: str | None
    key: bool = False  # the last segment is a dict key that failed, not its value
    text: str = field(default="")


def _walk(model: type[BaseModel], detail: ErrorDetails, name: str | None) -> _Found:
    kind: Any = model
    parts: list[str | _Choice] = []
    loc = list(detail["loc"])
    key = bool(loc) and loc[-1] == "[key]"
    if key:
        loc.pop()
    holder: type[BaseModel] | None = None
    for index, segment in enumerate(loc):
        kind, choice = _unwrap(kind, segment)
        if choice is not None:
            parts.append(_Choice(str(segment)))
            continue
        if index == len(loc) - 1:
            holder = kind if _is_model(kind) else None
        parts.append(str(segment))
        kind = _step(kind, segment)
    called = (name if holder is model and name else holder.__name__) if holder else None
    found = _Found(detail, parts, holder, called, key)
    found.text = _text(found)
    return found


def _unwrap(kind: Any, segment: Any) -> tuple[Any, Any]:
    """`kind` without Annotated and Optional; at a union of several types, the alternative
    `segment` names (and that it named one)."""
    while True:
        origin = get_origin(kind)
        if origin is Annotated:
            kind = get_args(kind)[0]
        elif origin is Union or origin is types.UnionType:
            options = [arg for arg in get_args(kind) if arg is not type(None)]
            if len(options) == 1:
                kind = options[0]
            elif segment is None:
                return kind, None
            else:
                return _alternative(options, str(segment)), segment
        else:
            return kind, None


def _alternative(options: Iterable[Any], tag: str) -> Any:
    """The alternative pydantic names `tag`: a model by its name or its discriminator's value."""
    for option in options:
        inner, _ = _unwrap(option, None)
        if _is_model(inner) and (inner.__name__ == tag or tag in _literals(inner)):
            return inner
    return Any


def _literals(model: type[BaseModel]) -> set[str]:
    found: set[str] = set()
    for info in model.model_fields.values():
        if get_origin(info.annotation) is Literal:
            found.update(str(value) for value in get_args(info.annotation))
    return found


def _step(kind: Any, segment: Any) -> Any:
    """The type one location segment further in."""
    if _is_model(kind):
        for name, info in kind.model_fields.items():
            if segment in (name, info.alias):
                return info.annotation
        return Any
    args = get_args(kind)
    origin = get_origin(kind)
    if origin in (list, set, frozenset, tuple) and args:
        return args[0]
    if origin is dict and len(args) == 2:
        return args[1]
    return Any


def _is_model(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, BaseModel)


# --- what is wrong --------------------------------------------------------------------------


def _text(found: _Found) -> str:
    detail = found.detail
    kind = detail["type"]
    ctx: dict[str, Any] = {**(detail.get("ctx") or {}), "unit": _unit(detail.get("input"))}
    if kind == "extra_forbidden":
        holder = found.holder
        if holder is None:
            return "is not a known field"
        known = ", ".join(info.alias or name for name, info in holder.model_fields.items())
        return f"is not a field of {found.called}; known fields: {known}"
    translate = MESSAGES.get(kind)
    if translate is not None:
        text = translate(ctx, detail["msg"])
    else:
        text = detail["msg"].replace("Input should be", "must be").replace("Input should", "must")
    if found.key:
        name = str(found.parts[-1])[:100] if found.parts else ""
        return f"the key {name!r} {text}"
    return text


def _path(parts: Iterable[str | _Choice]) -> str | None:
    return ".".join(part for part in parts if isinstance(part, str)) or None


def _settle(found: list[_Found]) -> list[PlainError]:
    """Plain errors; at a union, one message for the alternative the input was meant as: the
    one with the fewest errors among those it got inside of, or else, when it fits none of
    them at all, "must be X or Y"."""
    settled: list[PlainError] = []
    done: set[tuple[Any, ...]] = set()
    for item in found:
        at = next((i for i, part in enumerate(item.parts) if isinstance(part, _Choice)), None)
        if at is None:
            field_parts = item.parts[:-1] if item.key else item.parts
            settled.append(PlainError(_path(field_parts), item.text))
            continue
        prefix = tuple(item.parts[:at])
        if prefix in done:
            continue
        done.add(prefix)
        arms: dict[str, list[_Found]] = {}
        for other in found:
            if tuple(other.parts[:at]) == prefix and len(other.parts) > at:
                choice = other.parts[at]
                if isinstance(choice, _Choice):
                    arms.setdefault(choice.tag, []).append(other)
        inside = [errors for errors in arms.values() if any(len(e.parts) > at + 1 for e in errors)]
        if inside:
            best = min(inside, key=len)
            for error in best:
                error.parts = error.parts[:at] + error.parts[at + 1 :]
            settled.extend(_settle(best))
        else:
            texts = list(dict.fromkeys(e.text for e in found if tuple(e.parts[:at]) == prefix))
            settled.append(PlainError(_path(prefix), _either(texts)))
    return settled


def _either(texts: list[str]) -> str:
    """`must be a string` and `must be a list` as `must be a string or a list`."""
    if all(text.startswith("must be ") for text in texts):
        return "must be " + " or ".join(text.removeprefix("must be ") for text in texts)
    return " or ".join(texts)


def json_kind(value: Any) -> str:
    """What a JSON value is, in words ("an array", "null"), for a message saying what was sent."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
