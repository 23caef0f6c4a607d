"""FROZEN BASELINE, bench only: the contract validator as it was before issue 21 moved
validation onto jsonschema-rs (shared/domain/schema_validator.py at commit 44ec581), kept so that
`bench.contracts` can measure the new validator against it on the same events in one run.

Only its fast engine is kept (closures plus a generated predicate, patterns on RE2): the bench's
schemas all compiled to it. A schema that needed the old `jsonschema` fallback is refused here.
Never imported by `shared`; do not edit except to keep it importable.
"""

from __future__ import annotations

import json
from _json import encode_basestring, make_encoder
from collections.abc import Callable
from itertools import pairwise
from operator import attrgetter
from typing import Any, Literal

from bench.baselines.schema_patterns_v1 import (
    PatternError,
    PatternTest,
    too_long_message,
    too_long_to_match,
)
from bench.baselines.schema_patterns_v1 import compile_pattern as compile_re2
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


_UNSHOWN: Any = object()


class Violation:
    """One way a value breaks its schema: what kind, where, and what was expected instead.

    Immutable, compared and hashed by its five fields. `actual` is the offending value as JSON
    text cut to ACTUAL_CHARS; a violation made by `Violation.of` keeps the value and shows it
    only when `actual` is first read (most violations are never written, e.g. those beyond
    MAX_KEPT_PER_KIND, and events that are only checked), so read it before changing the value.
    """

    __slots__ = ("_actual", "_expected", "_field", "_message", "_type", "_value")
    __match_args__ = ("type", "field", "message", "expected", "actual")
    _type: str
    _field: str
    _message: str
    _expected: str | None
    _actual: str | None  # or _UNSHOWN until `actual` is read
    _value: Any

    def __init__(
        self,
        type: str,
        field: str,
        message: str,
        expected: str | None = None,
        actual: str | None = None,
    ):
        self._type = type
        self._field = field
        self._message = message
        self._expected = expected
        self._actual = actual
        self._value = None

    @classmethod
    def of(cls, type: str, field: str, message: str, expected: str | None, value: Any) -> Violation:
        """A violation whose `actual` is `show(value)`, computed when first read."""
        violation = cls.__new__(cls)
        violation._type = type
        violation._field = field
        violation._message = message
        violation._expected = expected
        violation._actual = _UNSHOWN
        violation._value = value
        return violation

    @property
    def type(self) -> str:
        return self._type

    @property
    def field(self) -> str:
        return self._field

    @property
    def message(self) -> str:
        return self._message

    @property
    def expected(self) -> str | None:
        return self._expected

    @property
    def actual(self) -> str | None:
        actual = self._actual
        if actual is _UNSHOWN:
            actual = self._actual = show(self._value)
            self._value = None
        return actual

    def _fields(self) -> tuple[str, str, str, str | None, str | None]:
        return (self._type, self._field, self._message, self._expected, self.actual)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return (
            f"Violation(type={self._type!r}, field={self._field!r}, message={self._message!r}, "
            f"expected={self._expected!r}, actual={self.actual!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (Violation, self._fields())


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
    one (tests run the fast engine's schemas through both).

    The fast engine has two forms of the schema: `valid`, a predicate generated as Python
    source (`schema_predicate`) that only answers whether the value has no violation, and the
    closures that collect the violations, run only for values the predicate refuses.
    """

    _check: Check | None
    # True when the value has no violation (never True when it has one); None: not available.
    valid: Callable[[Any], object] | None

    def __init__(self, schema: dict[str, Any] | bool, engine: Engine | None = None):
        self.engine: Engine = engine or ("fast" if fast_supported(schema) else "jsonschema")
        if self.engine != "fast":
            raise ValueError("the frozen baseline keeps only the fast engine")
        self._check = _compile(schema, "")
        self.valid = schema_predicate(schema)

    def validate(self, value: Any, path: str) -> list[Violation]:
        """The value's violations, sorted by field then type; `path` prefixes every field."""
        if self.valid is not None and self.valid(value):
            return []
        return self.violations(value, path)

    def violations(self, value: Any, path: str) -> list[Violation]:
        """`validate` without the predicate (for a value it refused)."""
        if self._check is None:
            return []
        found: list[Violation] = []
        self._check(value, path, found)
        return ordered(found) if len(found) > 1 else found


# (field, type, message), read from the slots.
_ORDER = attrgetter("_field", "_type", "_message")


def ordered(found: list[Violation]) -> list[Violation]:
    """Violations sorted by field, type and message, each distinct one once."""
    if all(a < b for a, b in pairwise(map(_ORDER, found))):
        return found  # in order already, and no two could be equal
    found.sort(key=_ORDER)
    unique: list[Violation] = []
    run: list[Violation] = []  # the violations seen with the current sort key
    key = None
    for violation in found:
        this = _ORDER(violation)
        if this != key:
            key, run = this, [violation]
            unique.append(violation)
        elif violation not in run:
            run.append(violation)
            unique.append(violation)
    return unique


# `json.dumps(value, ensure_ascii=False, default=str)` without building an encoder per call.
# Values come from parsed JSON, so they have no cycles to detect.
_ENCODE = make_encoder(None, str, encode_basestring, None, ": ", ", ", False, False, True)
# Containers with more items than this are serialised piecewise, only as far as shown.
_WHOLE_ITEMS = 64


def show(value: Any) -> str:
    """A value as JSON text (as `json.dumps(value, ensure_ascii=False, default=str)`), cut to
    ACTUAL_CHARS. Only the part shown is serialised: a long string is cut first, a large array
    or object serialised piece by piece until the text is long enough."""
    kind = type(value)
    if kind is str:
        # The JSON text of a string is at least its length + 2, and the text of a prefix is a
        # prefix of the text.
        text = encode_basestring(value if len(value) <= ACTUAL_CHARS else value[:ACTUAL_CHARS])
    elif (kind is dict or kind is list) and len(value) > _WHOLE_ITEMS:
        text = _prefix_text(value)
    else:
        text = "".join(_ENCODE(value, 0))
    return text if len(text) <= ACTUAL_CHARS else text[: ACTUAL_CHARS - 1] + "…"


_PIECEWISE = json.JSONEncoder(ensure_ascii=False, default=str)


def _prefix_text(value: Any) -> str:
    """At least the first ACTUAL_CHARS characters of the value's JSON text (all of it if less)."""
    pieces: list[str] = []
    size = 0
    for piece in _PIECEWISE.iterencode(value):
        pieces.append(piece)
        size += len(piece)
        if size > ACTUAL_CHARS:
            break
    return "".join(pieces)


_JSON_TYPES: dict[type, str] = {
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    type(None): "null",
    dict: "object",
    list: "array",
}


def json_type(value: Any) -> str:
    """The JSON type name of a parsed JSON value."""
    kind = type(value)
    return _JSON_TYPES.get(kind) or kind.__name__


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
    out.append(Violation.of(SCHEMA_MISMATCH, path, "no value is allowed here", "nothing", value))


def _type_test(types: str | list[str]) -> tuple[frozenset[type], bool, str]:
    """The Python types a `type` keyword allows, whether integral floats pass, its wording."""
    names = [types] if isinstance(types, str) else list(types)
    allowed = frozenset(t for name in names for t in PY_TYPES[name])
    return allowed, "integer" in names and "number" not in names, " or ".join(names)


def _type_violation(expected: str, value: Any, path: str) -> Violation:
    message = f"expected {expected}, got {json_type(value)}"
    return Violation.of(DATATYPE_MISMATCH, path, message, expected, value)


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


def _enum_strings(values: list[Any]) -> frozenset[str] | None:
    """The allowed values when they are all distinct strings (a set lookup decides), else None."""
    strings = frozenset(v for v in values if type(v) is str)
    return strings if len(strings) == len(values) else None


def _enum_passes(values: list[Any]) -> Callable[[Any], bool]:
    """Whether a value is one of `values` (JSON equality)."""
    allowed = tuple(values)
    strings = frozenset(v for v in values if type(v) is str)
    only_strings = _enum_strings(values) is not None

    def passes(value: Any) -> bool:
        if type(value) is str and value in strings:
            return True
        return not only_strings and any(json_equal(value, v) for v in allowed)

    return passes


def _enum_check(values: list[Any], keyword: str) -> Check:
    expected = show(values[0]) if keyword == "const" else "one of " + show(values)
    passes = _enum_passes(values)

    def check(value: Any, path: str, out: list[Violation]) -> None:
        if not passes(value):
            out.append(Violation.of(ENUM_MISMATCH, path, f"not {expected}", expected, value))

    return check


def _string_check(schema: dict[str, Any], where: str) -> Check | None:
    min_length = schema.get("minLength")
    max_length = schema.get("maxLength")
    pattern: str = schema.get("pattern", "")
    matches = compile_pattern(pattern, join_path(where, "pattern")) if "pattern" in schema else None
    format_name = schema.get("format")
    format_test = FORMATS.get(format_name) if format_name is not None else None
    if min_length is None and max_length is None and matches is None and format_test is None:
        return None

    def check(value: Any, path: str, out: list[Violation]) -> None:
        if type(value) is not str:
            return
        if min_length is not None and len(value) < min_length:
            out.append(length_violation(path, f"length >= {min_length}", len(value)))
        if max_length is not None and len(value) > max_length:
            out.append(length_violation(path, f"length <= {max_length}", len(value)))
        if matches is not None and not matches(value):
            out.append(pattern_violation(path, pattern, value))
        if format_test is not None and not format_test(value):
            out.append(
                Violation.of(
                    FORMAT_MISMATCH, path, f"not a valid {format_name}", format_name, value
                )
            )

    return check


def compile_pattern(pattern: Any, where: str) -> PatternTest:
    """The pattern's test (RE2, cached per pattern text); `where` locates an error."""
    if not isinstance(pattern, str):
        raise SchemaCompileError(where, "must be a string (a regular expression)")
    try:
        return compile_re2(pattern)
    except PatternError as error:
        raise SchemaCompileError(where, str(error)) from None


def pattern_violation(path: str, pattern: str, value: str) -> Violation:
    """A string the pattern refused: it does not match, or it is too long to be matched."""
    message = too_long_message(value) if too_long_to_match(value) else f"does not match {pattern}"
    return Violation.of(PATTERN_MISMATCH, path, message, pattern, value)


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
                    Violation.of(RANGE_MISMATCH, path, f"expected {expected}", expected, value)
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
        return Violation.of(kind, field, f"{key} is not declared", "declared fields only", value)
    return Violation.of(kind, field, f"{key} is not allowed", "no additional fields", value)


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


# --- the predicate -----------------------------------------------------------------------------

# Bounds the generated source (schemas are at most 64 KB, so this is never reached in practice).
MAX_PREDICATE_SOURCE = 256 * 1024
_MISSING: Any = object()


class _Unsupported(Exception):
    """The schema has a shape the predicate generator does not handle: no predicate."""


def schema_predicate(schema: Any) -> Callable[[Any], object] | None:
    """A function answering whether a value has no violation of `schema`, or None.

    It is generated as one Python expression mirroring the fast engine's checks condition by
    condition (so a value it accepts is one the closures find nothing wrong with), evaluated
    without building paths or violations. Only constants from the schema's own code (field
    names as string literals, by `repr`) reach the source; every other value of the schema
    (bounds, sets, patterns, format tests) is passed in as a closure variable.
    """
    source = _PredicateSource()
    try:
        expression = source.valid(schema, "_v0")
    except _Unsupported:
        return None
    names = ", ".join(["_missing", *(f"_c{i}" for i in range(len(source.constants)))])
    text = f"def _make({names}):\n def _valid(_v0):\n  return {expression}\n return _valid\n"
    if len(text) > MAX_PREDICATE_SOURCE:
        return None
    namespace: dict[str, Any] = {}
    try:
        exec(compile(text, "<schema predicate>", "exec"), namespace)
    except (SyntaxError, RecursionError, MemoryError, ValueError, OverflowError):
        return None
    valid: Callable[[Any], object] = namespace["_make"](_MISSING, *source.constants)
    return valid


class _PredicateSource:
    """Builds the predicate's expression; `valid(schema, var)` is true when the value named
    `var` (a plain local name) passes every check the fast engine compiles for `schema`."""

    def __init__(self) -> None:
        self.constants: list[Any] = []
        self._named: dict[int, str] = {}  # id of a constant -> its name (kept alive by the list)
        self.names = 0

    def constant(self, value: Any) -> str:
        name = self._named.get(id(value))
        if name is None:
            name = self._named[id(value)] = f"_c{len(self.constants)}"
            self.constants.append(value)
        return name

    def local(self) -> str:
        self.names += 1
        return f"_v{self.names}"

    def valid(self, schema: Any, var: str) -> str:
        if schema is True:
            return "True"
        if schema is False:
            return "False"
        if not isinstance(schema, dict):
            raise _Unsupported
        # The type that the other keywords' guards may take for granted after the type test.
        known = schema.get("type") if isinstance(schema.get("type"), str) else None
        parts = []
        if "type" in schema:
            parts.append(self.type_test(schema["type"], var))
        for keyword, values in (("enum", schema.get("enum")), ("const", [schema.get("const")])):
            if keyword in schema:
                parts.append(self.enum_test(values, var))
        parts += self.string_tests(schema, var, known == "string")
        parts += self.number_tests(schema, var, known in ("number", "integer"))
        parts += self.object_tests(schema, var, known == "object")
        parts += self.array_tests(schema, var, known == "array")
        if not parts:
            return "True"
        return parts[0] if len(parts) == 1 else "(" + " and ".join(parts) + ")"

    def type_test(self, types: Any, var: str) -> str:
        if not isinstance(types, str) and not (
            isinstance(types, list) and all(isinstance(t, str) for t in types)
        ):
            raise _Unsupported
        try:
            allowed, integral_floats, _ = _type_test(types)
        except KeyError:
            raise _Unsupported from None
        if len(allowed) == 1:
            test = f"type({var}) is {self.constant(next(iter(allowed)))}"
        else:
            test = f"type({var}) in {self.constant(allowed)}"
        if integral_floats:
            test = f"({test} or (type({var}) is {self.constant(float)} and {var}.is_integer()))"
        return test

    def enum_test(self, values: Any, var: str) -> str:
        if not isinstance(values, list):
            raise _Unsupported
        try:
            strings = _enum_strings(values)
        except TypeError:
            raise _Unsupported from None
        if strings is not None:
            return f"(type({var}) is {self.constant(str)} and {var} in {self.constant(strings)})"
        return f"{self.constant(_enum_passes(values))}({var})"

    def guarded(self, tests: list[str], guard: str, known: bool) -> list[str]:
        """The tests, applying only when `guard` (the value is of their type) holds."""
        if not tests:
            return []
        joined = " and ".join(tests)
        return [f"({joined})" if known else f"({guard} or ({joined}))"]

    def string_tests(self, schema: dict[str, Any], var: str, known: bool) -> list[str]:
        tests = []
        for keyword, op in (("minLength", "<"), ("maxLength", ">")):
            bound = schema.get(keyword)
            if bound is not None:
                tests.append(f"not len({var}) {op} {self.constant(bound)}")
        pattern = schema.get("pattern")
        if pattern is not None:
            tests.append(f"{self.constant(compile_pattern(pattern, 'pattern'))}({var})")
        format_name = schema.get("format")
        format_test = FORMATS.get(format_name) if format_name is not None else None
        if format_test is not None:
            tests.append(f"{self.constant(format_test)}({var})")
        return self.guarded(tests, f"type({var}) is not {self.constant(str)}", known)

    def number_tests(self, schema: dict[str, Any], var: str, known: bool) -> list[str]:
        operators = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">"}
        operators["exclusiveMaximum"] = "<"
        tests = [
            f"{var} {op} {self.constant(schema[keyword])}"
            for keyword, op in operators.items()
            if keyword in schema
        ]
        numbers = self.constant(frozenset({int, float}))
        return self.guarded(tests, f"type({var}) not in {numbers}", known)

    def object_tests(self, schema: dict[str, Any], var: str, known: bool) -> list[str]:
        properties = schema.get("properties", {})
        required = schema.get("required", [])
        if not isinstance(properties, dict) or not isinstance(required, list):
            raise _Unsupported
        if not all(isinstance(key, str) for key in [*properties, *required]):
            raise _Unsupported
        additional = schema.get("additionalProperties")
        declared = frozenset(properties)
        tests = []
        if additional is False or ("properties" in schema and additional is None):
            tests.append(f"{var}.keys() <= {self.constant(declared)}")
        elif isinstance(additional, dict):
            key, item = self.local(), self.local()
            test = self.valid(additional, item)
            if test != "True":
                names = self.constant(declared)
                tests.append(
                    f"({var}.keys() <= {names} or all({test} for {key}, {item} in {var}.items() "
                    f"if {key} not in {names}))"
                )
        needed = set(required)
        for key, sub in properties.items():
            tests += self.property_tests(key, sub, var, key in needed)
            needed.discard(key)
        tests += [f"{key!r} in {var}" for key in dict.fromkeys(required) if key in needed]
        return self.guarded(tests, f"type({var}) is not {self.constant(dict)}", known)

    def property_tests(self, key: str, sub: Any, var: str, required: bool) -> list[str]:
        if (
            required
            and isinstance(sub, dict)
            and sub.keys() - ANNOTATIONS == {"type"}
            and isinstance(sub["type"], str)
            and sub["type"] in PY_TYPES
            and sub["type"] not in ("null", "integer")
        ):
            # Present and of a type that is not null: `get`'s None for a missing key fails it.
            return [self.type_test(sub["type"], f"{var}.get({key!r})")]
        item = self.local()
        test = self.valid(sub, item)
        if test == "True":
            return [f"{key!r} in {var}"] if required else []
        found = f"({item} := {var}.get({key!r}, _missing))"
        if required:
            return [f"({found} is not _missing and {test})"]
        return [f"({found} is _missing or {test})"]

    def array_tests(self, schema: dict[str, Any], var: str, known: bool) -> list[str]:
        tests = []
        for keyword, op in (("minItems", "<"), ("maxItems", ">")):
            bound = schema.get(keyword)
            if bound is not None:
                tests.append(f"not len({var}) {op} {self.constant(bound)}")
        if "items" in schema:
            item = self.local()
            test = self.valid(schema["items"], item)
            if test != "True":
                tests.append(f"all({test} for {item} in {var})")
        return self.guarded(tests, f"type({var}) is not {self.constant(list)}", known)
