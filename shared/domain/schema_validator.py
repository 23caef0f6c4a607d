"""Compiled schema validation: a JSON Schema (draft 2020-12) becomes a function from a value to
typed violations (rudder-transformer's vocabulary, extended). Pure: no I/O, no policy.

Two engines, one result: the keywords contracts use in practice compile to plain closures (fast);
a schema using any other keyword is validated by the `jsonschema` library, whose errors are mapped
to the same violation types. docs/CONTRACTS.md lists both keyword sets.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker, ValidationError

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


class CompiledSchema:
    """A schema compiled once; `validate` is called per event on the hot path."""

    def __init__(self, schema: dict[str, Any] | bool):
        self.engine = "fast" if _fast_supported(schema) else "jsonschema"
        self._check: Check | None = (
            _compile(schema, "") if self.engine == "fast" else _JsonSchemaEngine(schema)
        )

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


# --- formats (shared by both engines, so they agree) -------------------------------------------

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:\S+$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_TIME = re.compile(r"^\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _is_date_time(text: str) -> bool:
    if not _DATE_TIME.match(text):
        return False
    try:
        datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _is_date(text: str) -> bool:
    try:
        return len(text) == 10 and date.fromisoformat(text) is not None
    except ValueError:
        return False


def _is_ip(kind: type[ipaddress.IPv4Address] | type[ipaddress.IPv6Address]) -> Callable[[str], bool]:
    def check(text: str) -> bool:
        try:
            kind(text)
        except ValueError:
            return False
        return True

    return check


# Format name -> its test; other format names are annotations (JSON Schema's default).
FORMATS: dict[str, Callable[[str], bool]] = {
    "email": lambda text: bool(_EMAIL.match(text)),
    "uri": lambda text: bool(_URI.match(text)),
    "uuid": lambda text: bool(_UUID.match(text)),
    "hostname": lambda text: bool(_HOSTNAME.match(text)),
    "date-time": _is_date_time,
    "date": _is_date,
    "time": lambda text: bool(_TIME.match(text)),
    "ipv4": _is_ip(ipaddress.IPv4Address),
    "ipv6": _is_ip(ipaddress.IPv6Address),
}
FORMAT_CHECKER = FormatChecker(formats=())
for _name, _test in FORMATS.items():
    FORMAT_CHECKER.checks(_name)(
        lambda value, test=_test: not isinstance(value, str) or test(value)
    )


# --- the fast engine ---------------------------------------------------------------------------


def _fast_supported(schema: Any) -> bool:
    if isinstance(schema, bool):
        return True
    if not schema.keys() <= FAST_KEYWORDS:
        return False
    if isinstance(schema.get("additionalProperties"), dict) and not _fast_supported(
        schema["additionalProperties"]
    ):
        return False
    children = [*schema.get("properties", {}).values()]
    if "items" in schema:
        children.append(schema["items"])
    return all(_fast_supported(child) for child in children)


def _compile(schema: Any, where: str) -> Check | None:
    """A check for `schema` (None when it accepts every value); `where` locates compile errors."""
    if schema is True:
        return None
    if schema is False:
        return _reject_all
    checks = [
        check
        for check in (
            _type_check(schema["type"]) if "type" in schema else None,
            _enum_check(schema["enum"], "enum") if "enum" in schema else None,
            _enum_check([schema["const"]], "const") if "const" in schema else None,
            _string_check(schema, where),
            _number_check(schema),
            _object_check(schema, where),
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


def _type_check(types: str | list[str]) -> Check:
    names = [types] if isinstance(types, str) else list(types)
    allowed = frozenset(t for name in names for t in PY_TYPES[name])
    integral_floats = "integer" in names and "number" not in names
    expected = " or ".join(names)

    def check(value: Any, path: str, out: list[Violation]) -> None:
        kind = type(value)
        if kind in allowed or (integral_floats and kind is float and value.is_integer()):
            return
        out.append(
            Violation(
                DATATYPE_MISMATCH,
                path,
                f"expected {expected}, got {json_type(value)}",
                expected,
                show(value),
            )
        )

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
    regex = compile_pattern(pattern, _join(where, "pattern")) if pattern is not None else None
    format_name = schema.get("format")
    format_test = FORMATS.get(format_name) if format_name is not None else None
    if min_length is None and max_length is None and regex is None and format_test is None:
        return None

    def check(value: Any, path: str, out: list[Violation]) -> None:
        if type(value) is not str:
            return
        if min_length is not None and len(value) < min_length:
            out.append(_length(path, f"length >= {min_length}", len(value)))
        if max_length is not None and len(value) > max_length:
            out.append(_length(path, f"length <= {max_length}", len(value)))
        if regex is not None and not regex.search(value):
            out.append(
                Violation(
                    PATTERN_MISMATCH, path, f"does not match {pattern}", pattern, show(value)
                )
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


def _length(path: str, expected: str, actual: int) -> Violation:
    return Violation(LENGTH_MISMATCH, path, f"expected {expected}, got {actual}", expected, str(actual))


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


def _object_check(schema: dict[str, Any], where: str) -> Check | None:
    properties: dict[str, Any] = schema.get("properties", {})
    declared = frozenset(properties)
    children = [
        (key, "." + key, check)
        for key, sub in properties.items()
        if (check := _compile(sub, _join(where, "properties", key))) is not None
    ]
    required = [(key, "." + key) for key in schema.get("required", [])]
    additional = schema.get("additionalProperties")
    extra_check = (
        _compile(additional, _join(where, "additionalProperties"))
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
    if not children and not required and extra_check is None and extras_type is None:
        return None

    def check(value: Any, path: str, out: list[Violation]) -> None:
        if type(value) is not dict:
            return
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
                out.append(_extra(extras_type, f"{path}.{key}", key, value[key]))

    return check


def _extra(kind: str, field: str, key: str, value: Any) -> Violation:
    if kind == UNDECLARED_FIELD:
        return Violation(kind, field, f"{key} is not declared", "declared fields only", show(value))
    return Violation(kind, field, f"{key} is not allowed", "no additional fields", show(value))


def _array_check(schema: dict[str, Any], where: str) -> Check | None:
    min_items = schema.get("minItems")
    max_items = schema.get("maxItems")
    items = _compile(schema["items"], _join(where, "items")) if "items" in schema else None
    if min_items is None and max_items is None and items is None:
        return None

    def check(value: Any, path: str, out: list[Violation]) -> None:
        if type(value) is not list:
            return
        if min_items is not None and len(value) < min_items:
            out.append(_length(path, f"length >= {min_items}", len(value)))
        if max_items is not None and len(value) > max_items:
            out.append(_length(path, f"length <= {max_items}", len(value)))
        if items is not None:
            for index, item in enumerate(value):
                items(item, f"{path}[{index}]", out)

    return check


def _join(*parts: str) -> str:
    return ".".join(part for part in parts if part)


# --- the jsonschema engine ---------------------------------------------------------------------

KEYWORD_TYPES = {
    "type": DATATYPE_MISMATCH,
    "enum": ENUM_MISMATCH,
    "const": ENUM_MISMATCH,
    "format": FORMAT_MISMATCH,
    "pattern": PATTERN_MISMATCH,
    "minimum": RANGE_MISMATCH,
    "maximum": RANGE_MISMATCH,
    "exclusiveMinimum": RANGE_MISMATCH,
    "exclusiveMaximum": RANGE_MISMATCH,
    "multipleOf": RANGE_MISMATCH,
    "minLength": LENGTH_MISMATCH,
    "maxLength": LENGTH_MISMATCH,
    "minItems": LENGTH_MISMATCH,
    "maxItems": LENGTH_MISMATCH,
    "minProperties": LENGTH_MISMATCH,
    "maxProperties": LENGTH_MISMATCH,
    "unevaluatedProperties": ADDITIONAL_PROPERTIES,
}


class _JsonSchemaEngine:
    """Any draft 2020-12 schema, by `jsonschema`, with its errors mapped to violation types."""

    def __init__(self, schema: dict[str, Any] | bool):
        self._schema = copy.deepcopy(schema)
        # Undeclared fields, as the fast engine finds them: along properties and items only
        # (not through $ref or combinators, where "declared" has no single meaning).
        self._undeclared = {id(node) for node in _mark_undeclared(self._schema)}
        for pattern_path, pattern in _patterns(self._schema, ""):
            compile_pattern(pattern, pattern_path)
        self._validator = Draft202012Validator(self._schema, format_checker=FORMAT_CHECKER)

    def __call__(self, value: Any, path: str, out: list[Violation]) -> None:
        for error in self._validator.iter_errors(value):
            out.extend(self._violations(error, path))

    def _violations(self, error: ValidationError, root: str) -> Iterator[Violation]:
        field = root + "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path
        )
        keyword = str(error.validator)
        instance: Any = error.instance
        expected = error.validator_value
        if keyword == "required" and isinstance(instance, dict):
            for key in expected:
                if key not in instance:
                    yield Violation(
                        REQUIRED_MISSING, f"{field}.{key}", f"{key} is required", "present", None
                    )
        elif keyword == "additionalProperties" and isinstance(instance, dict):
            schema: Any = error.schema
            kind = UNDECLARED_FIELD if id(schema) in self._undeclared else ADDITIONAL_PROPERTIES
            declared = schema.get("properties", {})
            patterns = list(schema.get("patternProperties", {}))
            for key in instance:
                if key not in declared and not any(re.search(p, key) for p in patterns):
                    yield _extra(kind, f"{field}.{key}", key, instance[key])
        elif keyword == "type":
            names = " or ".join([expected] if isinstance(expected, str) else expected)
            message = f"expected {names}, got {json_type(instance)}"
            yield Violation(DATATYPE_MISMATCH, field, message, names, show(instance))
        elif keyword in KEYWORD_TYPES:
            shown = str(expected) if keyword in ("format", "pattern") else show(expected)
            yield Violation(
                KEYWORD_TYPES[keyword], field, _short(error.message), shown, show(instance)
            )
        else:
            yield Violation(
                SCHEMA_MISMATCH, field, _short(error.message), keyword, show(instance)
            )


def _mark_undeclared(schema: Any) -> Iterator[dict[str, Any]]:
    """Add `additionalProperties: false` where undeclared fields apply; yield those nodes."""
    if not isinstance(schema, dict):
        return
    open_object = not {"additionalProperties", "patternProperties", "unevaluatedProperties"} & (
        schema.keys()
    )
    if "properties" in schema and open_object and isinstance(schema["properties"], dict):
        schema["additionalProperties"] = False
        yield schema
    for child in _children(schema):
        yield from _mark_undeclared(child)


def _children(schema: dict[str, Any]) -> Iterable[Any]:
    properties = schema.get("properties")
    if isinstance(properties, dict):
        yield from properties.values()
    if "items" in schema:
        yield schema["items"]


def _patterns(schema: Any, where: str) -> Iterator[tuple[str, Any]]:
    """Every `pattern` and `patternProperties` key, anywhere in the schema, with its path."""
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "pattern" and isinstance(value, str):
                yield _join(where, key), value
            elif key == "patternProperties" and isinstance(value, dict):
                yield from ((_join(where, key, p), p) for p in value)
            if isinstance(value, (dict, list)) and key not in ("enum", "const", "examples"):
                yield from _patterns(value, _join(where, key))
    elif isinstance(schema, list):
        for index, item in enumerate(schema):
            yield from _patterns(item, _join(where, str(index)))


def _short(message: str) -> str:
    return message if len(message) <= 200 else message[:199] + "…"

