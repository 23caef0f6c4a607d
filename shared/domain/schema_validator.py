"""Schema validation: a JSON Schema (draft 2020-12) becomes a function from a value to typed
violations (rudder-transformer's vocabulary, extended). Pure: no I/O, no policy.

The schema is validated by jsonschema-rs (a Rust library that passes the official test suite);
its errors are mapped to the violation types. Most events are valid, so each is first put to the
library's `is_valid`, and only one it refuses is taken through `iter_errors`. Undeclared fields
(a notion JSON Schema does not have) are found by a small walker of our own. What the library is
given is the contract's schema with three safety rewrites (`_for_library`): patterns checked and
put in the syntax its linear-time engine reads, a cap on the strings a pattern is matched
against, and `format` left as an annotation except for the formats contracts check.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from itertools import pairwise
from operator import attrgetter
from typing import Any, NoReturn

import jsonschema_rs

from shared.domain.schema_formats import FORMATS
from shared.domain.schema_patterns import (
    MAX_PATTERN_VALUE_CHARS,
    PatternError,
    checked_pattern,
    too_long_message,
    too_long_to_match,
)
from shared.domain.schema_references import (
    SchemaCompileError,
    check_references,
    join_path,
    subschemas,
)

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
# A library message kept in a Schema-Mismatch (the keywords without a type of their own).
MESSAGE_CHARS = 200

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


# A walker appends the violations it finds in a value (at a path) to a list.
Walker = Callable[[Any, str, list[Violation]], None]
# How an error at one schema location becomes a violation: its type, the expected value as
# shown ("": the library's message says it), and beside a `pattern`, the pattern as written
# and the subschema's own `maxLength`.
_Expectation = tuple[str, str, str, float | None]
# The error of the `maxLength` put beside a pattern (`_for_library`): a string over the cap, or
# over the subschema's own limit, or both.
_PATTERN_CAP = "pattern-cap"
_NOTHING = "no value is allowed here"
# The keywords that bound a number, as violations word them.
RANGES = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}
# The keywords that bound a length (of a string, array or object), as violations word them.
LENGTHS = {
    "minLength": ">=",
    "maxLength": "<=",
    "minItems": ">=",
    "maxItems": "<=",
    "minProperties": ">=",
    "maxProperties": "<=",
}
# Patterns match on the Rust `regex` crate (linear time, no backtracking), never on the default
# `fancy-regex`, which backtracks.
_LINEAR_PATTERNS = jsonschema_rs.RegexOptions()
# Keywords beside which undeclared fields are the schema's own business.
_CLOSING = frozenset({"additionalProperties", "patternProperties", "unevaluatedProperties"})
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _never_fetch(uri: str) -> NoReturn:
    """The library's retriever: no schema is ever fetched (references are checked to point
    inside the schema before it is compiled; this refuses anything that got past)."""
    raise LookupError(f"{uri}: schemas are never fetched")


class CompiledSchema:
    """A schema compiled once (per contract version); `validate` is called per event."""

    def __init__(self, schema: dict[str, Any] | bool):
        check_references(schema)
        library_schema, self._patterns = _for_library(schema)
        self._schema = library_schema
        # Per schema location an error names: how its violation is worded (computed once).
        self._expectations: dict[tuple[str | int, ...], _Expectation] = {}
        self._validator = _library_validator(library_schema)
        self._is_valid = self._validator.is_valid
        self._by_property = _by_property(library_schema)
        # The library numbers a key like "00" or "+1" as the index 0 or 1 in an error's schema
        # path: where the schema has such a key, errors take their paths from its evaluation.
        self._numbered_keys = _has_numbered_key(library_schema)
        self._undeclared = _undeclared_walker(schema)
        # Most events have no violation at all: one call answers that when the library is given
        # the undeclared fields as `additionalProperties: false` (where the walker looks for
        # them). Without `$ref` that only ever refuses more, so its yes is exact; through a
        # `$ref` (into a `not`, say) it could accept more, so such schemas go without.
        self._is_clean: Callable[[Any], bool] | None = None
        if self._undeclared is not None and not _uses_references(library_schema):
            closed = copy.deepcopy(library_schema)
            _close_declared(closed)
            self._is_clean = _library_validator(closed).is_valid
        # True when the value has no violation at all; False when it may have some.
        self.accepts: Callable[[Any], bool] = self._is_clean or (
            self._is_valid if self._undeclared is None else _refuse_all
        )

    def validate(self, value: Any, path: str) -> list[Violation]:
        """The value's violations, sorted by field then type; `path` prefixes every field."""
        try:
            if self.accepts(value):
                return []
        except UnicodeEncodeError:
            # A lone surrogate (JSON can escape one; ingest refuses them, but a stored event may
            # hold one) has no UTF-8 form for the library: it is judged as U+FFFD.
            value = without_lone_surrogates(value)
            if self.accepts(value):
                return []
        return self.refusal(value, path)

    def refusal(self, value: Any, path: str) -> list[Violation]:
        """The violations of a value `accepts` refused (sorted, as `validate`'s)."""
        found: list[Violation] = []
        walk = self._undeclared
        if self.accepts is self._is_clean and walk is not None:
            # Refused with its undeclared fields closed: without any, the value is invalid
            # as it stands (the closed schema refuses only those more), no second call.
            walk(value, path, found)
            walk = None
            valid = bool(found) and self._is_valid(value)
        else:
            valid = self.accepts is not self._is_valid and self._is_valid(value)
        if not valid:
            found[:0] = self._schema_violations(value, path)
        if walk is not None:
            walk(value, path, found)
        return ordered(found) if len(found) > 1 else found

    def _schema_violations(self, value: Any, root: str) -> list[Violation]:
        """The library's errors in the violations' vocabulary (the events it refused only)."""
        found: list[Violation] = []
        by_property = self._by_property
        if by_property is None or type(value) is not dict:
            self._add_errors(self._validator, value, root, (), found)
            return found
        # An object schema of `properties` and `required` alone: each keyword is judged apart,
        # and the library's errors (costly to build) are asked for only where a property's own
        # schema refuses its value.
        required, properties = by_property
        for key in required:
            if key not in value:
                found.append(
                    Violation(REQUIRED_MISSING, f"{root}.{key}", f"{key} is required", "present")
                )
        for key, (is_valid, validator, sole) in properties.items():
            if key not in value or is_valid(item := value[key]):
                continue
            if sole is None:
                self._add_errors(validator, item, f"{root}.{key}", ("properties", key), found)
            else:
                # The property's schema is one keyword, worded from the schema alone: the
                # library refused the value, so that keyword did.
                location = ("properties", key, sole)
                expectation = self._expectations.get(location)
                if expectation is None:
                    expectation = self._expectations[location] = self._expectation(location, sole)
                violation_type, expected, _, _ = expectation
                found.append(worded_violation(violation_type, f"{root}.{key}", expected, item))
        return found

    def _add_errors(
        self,
        validator: jsonschema_rs.Validator,
        value: Any,
        root: str,
        schema_root: tuple[str, ...],
        found: list[Violation],
    ) -> None:
        """Errors of `validator` (the subschema at `schema_root`) on `value` (at `root`)
        appended to `found` as violations."""
        append = found.append
        evaluated: list[_EvaluatedError] | None = None
        for error in validator.iter_errors(value):
            where = error.instance_path
            schema_path = error.schema_path
            if self._numbered_keys or _numbered_key_on(value, where):
                # The error's paths may name "00" as 0: the evaluation's pointers say which.
                if evaluated is None:
                    evaluated = _evaluated_errors(validator, value)
                where, schema_path = _claim(evaluated, error)
            field, instance = _locate(value, root, where) if where else (root, value)
            kind = error.kind
            keyword = kind.name
            if keyword == "required":
                key = kind.property  # type: ignore[attr-defined]
                append(
                    Violation(REQUIRED_MISSING, f"{field}.{key}", f"{key} is required", "present")
                )
                continue
            if keyword in ("additionalProperties", "unevaluatedProperties"):
                for key in kind.unexpected:  # type: ignore[attr-defined]
                    append(
                        extra_violation(ADDITIONAL_PROPERTIES, f"{field}.{key}", key, instance[key])
                    )
                continue
            if keyword == "format":
                name = kind.format  # type: ignore[attr-defined]
                append(Violation.of(FORMAT_MISMATCH, field, f"not a valid {name}", name, instance))
                continue
            if keyword == "falseSchema":
                append(Violation.of(SCHEMA_MISMATCH, field, _NOTHING, "nothing", instance))
                continue
            location = (*schema_root, *schema_path)
            expectation = self._expectations.get(location)
            if expectation is None:
                expectation = self._expectations[location] = self._expectation(location, keyword)
            violation_type, expected, pattern, own_limit = expectation
            if violation_type == LENGTH_MISMATCH:
                append(length_violation(field, expected, len(instance)))
            elif violation_type == PATTERN_MISMATCH:
                # A string over the cap is reported by the cap (`maxLength`), not matched.
                if not too_long_to_match(instance):
                    append(pattern_violation(field, pattern, instance))
            elif violation_type == _PATTERN_CAP:
                if own_limit is not None and len(instance) > own_limit:
                    append(length_violation(field, expected, len(instance)))
                if too_long_to_match(instance):
                    append(pattern_violation(field, pattern, instance))
            elif expected:
                append(worded_violation(violation_type, field, expected, instance))
            else:
                message = error.message
                if len(message) > MESSAGE_CHARS:
                    message = message[: MESSAGE_CHARS - 1] + "…"
                append(Violation.of(SCHEMA_MISMATCH, field, message, keyword, instance))

    def _expectation(self, location: tuple[str | int, ...], keyword: str) -> _Expectation:
        """For an error of `keyword` at a schema location (absolute, `$ref`s resolved): its
        violation type, what was expected (read from the schema as written: the library's
        copies of values may differ, 1.0 for 1) and, beside a pattern, the pattern as written."""
        node = _keyword_node(self._schema, location, keyword)
        if node is None:
            return (SCHEMA_MISMATCH, "", "", None)
        value = node[keyword]
        if keyword == "type":
            names = " or ".join([value] if isinstance(value, str) else value)
            return (DATATYPE_MISMATCH, names, "", None)
        if keyword == "enum":
            return (ENUM_MISMATCH, "one of " + show(value), "", None)
        if keyword == "const":
            return (ENUM_MISMATCH, show(value), "", None)
        if keyword in RANGES:
            return (RANGE_MISMATCH, f"{RANGES[keyword]} {value}", "", None)
        if keyword == "multipleOf":
            return (RANGE_MISMATCH, f"multiple of {value}", "", None)
        beside_pattern = self._patterns.get(id(node))
        if beside_pattern is not None and keyword in ("pattern", "maxLength"):
            pattern, own_limit = beside_pattern
            if keyword == "pattern":
                return (PATTERN_MISMATCH, "", pattern, None)
            shown = "" if own_limit is None else f"length <= {own_limit}"
            return (_PATTERN_CAP, shown, pattern, own_limit)
        if keyword in LENGTHS:
            return (LENGTH_MISMATCH, f"length {LENGTHS[keyword]} {value}", "", None)
        return (SCHEMA_MISMATCH, "", "", None)


def _for_library(
    schema: dict[str, Any] | bool,
) -> tuple[dict[str, Any] | bool, dict[int, tuple[str, float | None]]]:
    """The schema as the library gets it, and per subschema holding a `pattern` (by id, in the
    copy) the pattern as written and the subschema's own `maxLength`.

    - Every `pattern` and `patternProperties` key is checked (`checked_pattern`, refused with the
      reason) and replaced by its spelling in the syntax the library's engine reads.
    - Beside a `pattern`, `maxLength` becomes at most MAX_PATTERN_VALUE_CHARS: a longer string
      is not matched; `_violations` reports it as the Pattern-Mismatch saying so.
    - A `format` contracts do not check is dropped: formats are annotations in draft 2020-12,
      and the library would otherwise check its own (`regex` would compile the event's value).
    """
    if not isinstance(schema, dict):
        return schema, {}
    copied = copy.deepcopy(schema)
    patterns: dict[int, tuple[str, float | None]] = {}
    for where, node in list(subschemas(copied)):
        if "pattern" in node:
            original = node["pattern"]
            node["pattern"] = _library_pattern(original, join_path(where, "pattern"))
            own_limit = node.get("maxLength")
            limit = own_limit if _is_number(own_limit) else None
            patterns[id(node)] = (original, limit)
            if limit is None or limit > MAX_PATTERN_VALUE_CHARS:
                node["maxLength"] = MAX_PATTERN_VALUE_CHARS
        keyed = node.get("patternProperties")
        if isinstance(keyed, dict):
            translated = {
                _library_pattern(key, join_path(where, "patternProperties", key)): sub
                for key, sub in keyed.items()
            }
            if len(translated) < len(keyed):
                raise SchemaCompileError(
                    join_path(where, "patternProperties"),
                    "two keys are the same pattern spelled differently; merge them",
                )
            node["patternProperties"] = translated
        if isinstance(node.get("format"), str) and node["format"] not in FORMATS:
            del node["format"]
    return copied, patterns


def _library_validator(schema: dict[str, Any] | bool) -> jsonschema_rs.Validator:
    # Custom formats cost every call (~3x on a small schema) even where unused: given only
    # when the schema checks a format.
    formats = {
        name: FORMATS[name]
        for _, node in subschemas(schema)
        if isinstance(name := node.get("format"), str) and name in FORMATS
    }
    try:
        return jsonschema_rs.Draft202012Validator(
            schema,
            formats=formats or None,
            validate_formats=True,
            pattern_options=_LINEAR_PATTERNS,
            retriever=_never_fetch,
        )
    except jsonschema_rs.ValidationError as error:
        # The library checks the schema against the meta-schema, patterns included (in the
        # syntax its engine reads, which `checked_pattern`'s RE2 does not entirely share).
        where = join_path(*(str(part) for part in error.instance_path))
        message = error.message
        kind = error.kind
        if isinstance(kind, jsonschema_rs.ValidationErrorKind.Format) and kind.format == "regex":
            message = f"is not a regular expression contracts can run ({message})"
        raise SchemaCompileError(where, message) from None


# Keywords with no say in validation.
_ANNOTATIONS = frozenset({"$schema", "$comment", "title", "description", "default", "examples"})
# Keywords that judge a value itself, with a violation worded from the schema alone.
_WORDED = frozenset({"type", "enum", "const", "multipleOf", *RANGES})
# Per property: the library's `is_valid` and validator of its schema, and the schema's one
# keyword when it has only one of _WORDED.
_Properties = dict[str, tuple[Callable[[Any], bool], jsonschema_rs.Validator, str | None]]


def _by_property(schema: Any) -> tuple[list[str], _Properties] | None:
    """For a schema that says only that an object has `properties` and which are `required`
    (the compact form's, and most contracts'), the required names and a validator per
    property; None for any other schema, or one with a `$ref` (a part compiled alone could not
    resolve it)."""
    if not isinstance(schema, dict) or schema.get("type") != "object":
        return None
    if not schema.keys() - _ANNOTATIONS <= {"type", "properties", "required"}:
        return None
    if _uses_references(schema):
        return None
    properties = schema.get("properties", {})
    validators: _Properties = {}
    for key, subschema in properties.items():
        validator = _library_validator(subschema)
        keywords = subschema.keys() - _ANNOTATIONS if isinstance(subschema, dict) else ()
        sole = next(iter(keywords)) if len(keywords) == 1 and keywords <= _WORDED else None
        validators[key] = (validator.is_valid, validator, sole)
    return list(schema.get("required", [])), validators


def _refuse_all(value: Any) -> bool:
    """`accepts` where one call cannot tell (undeclared fields through a `$ref`)."""
    return False


def _uses_references(schema: Any) -> bool:
    return any("$ref" in node for _, node in subschemas(schema))


def _library_pattern(pattern: Any, where: str) -> str:
    if not isinstance(pattern, str):
        raise SchemaCompileError(where, "must be a string (a regular expression)")
    try:
        return checked_pattern(pattern)
    except PatternError as error:
        raise SchemaCompileError(where, str(error)) from None


def _is_number(value: Any) -> bool:
    return type(value) is int or type(value) is float


def _keyword_node(schema: Any, schema_path: tuple[str | int, ...], keyword: str) -> Any:
    """The subschema holding the keyword an error names (its location is absolute, `$ref`s
    resolved), or None when the path does not end at that keyword (e.g. `dependentRequired`)."""
    if not schema_path or schema_path[-1] != keyword:
        return None
    node = schema
    try:
        for part in schema_path[:-1]:
            # As in instance paths, a property named "0" comes as 0.
            node = node[int(part)] if type(node) is list else node[str(part)]
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    return node if isinstance(node, dict) and keyword in node else None


# An error of the library's evaluation: its instance path, schema path and message.
_EvaluatedError = tuple[list[str], list[str], str]


def _library_index(key: str) -> int | None:
    """The index the library numbers a key as in an error's paths (as Rust parses a `usize`:
    digits after an optional "+"), or None for a key it keeps as a name."""
    digits = key[1:] if key[:1] == "+" else key
    if not (digits.isascii() and digits.isdigit()):
        return None
    index = int(digits)
    return index if index < 2**64 else None


def _written_index(key: str) -> int | None:
    """The index a key is written as ("0", "12"; not "00" or "+1")."""
    return int(key) if key.isascii() and key.isdigit() and str(int(key)) == key else None


def _has_numbered_key(node: Any) -> bool:
    """Whether the schema has an object key the library numbers other than as written
    ("00", "+1"), so that an error's schema path could name two keys alike."""
    if isinstance(node, dict):
        return any(
            ((index := _library_index(key)) is not None and str(index) != key)
            or _has_numbered_key(v)
            for key, v in node.items()
        )
    return isinstance(node, list) and any(_has_numbered_key(item) for item in node)


def _numbered_key_on(value: Any, instance_path: list[str | int]) -> bool:
    """Whether an error's instance path numbers a key it could be one of several for (the
    library names "0", "00" and "+0" all 0), or one not written as numbered ("00")."""
    for part in instance_path:
        if type(value) is list:
            value = value[int(part)]
            continue
        if type(part) is int:
            key = str(part)
            if key not in value or any(
                other != key and _library_index(other) == part for other in value
            ):
                return True
            value = value[key]
        else:
            value = value[part]
    return False


def _pointer_parts(pointer: str) -> list[str]:
    """The reference tokens of a JSON pointer ("/a~1b/0" is ["a/b", "0"])."""
    if not pointer:
        return []
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/")]


def _evaluated_errors(validator: jsonschema_rs.Validator, value: Any) -> list[_EvaluatedError]:
    """The library's errors on `value` by its evaluation, whose paths are JSON pointers that
    keep every key as written."""
    return [
        (_pointer_parts(e["instanceLocation"]), _pointer_parts(e["schemaLocation"]), e["error"])
        for e in validator.evaluate(value).errors()
    ]


def _same_path(numbered: list[str | int], written: list[str]) -> bool:
    """Whether a path as an error numbers it and a path as written are the same one."""
    return len(numbered) == len(written) and all(
        part == key if type(part) is str else _library_index(key) == part
        for part, key in zip(numbered, written, strict=True)
    )


def _claim(
    evaluated: list[_EvaluatedError], error: jsonschema_rs.ValidationError
) -> tuple[list[str | int], list[str | int]]:
    """The error's instance and schema paths as written: taken (once) from the first of the
    evaluation's errors that is the same error."""
    for position, (where, schema_path, message) in enumerate(evaluated):
        if (
            message == error.message
            and _same_path(error.instance_path, where)
            and _same_path(error.schema_path, schema_path)
        ):
            del evaluated[position]
            return list(where), list(schema_path)
    return error.instance_path, error.schema_path


def _locate(value: Any, root: str, instance_path: list[str | int]) -> tuple[str, Any]:
    """The field (`root.a[1].b`) and the value an error's instance path leads to. The path says
    `0` for the key "0" as for the first item: the value tells which it is."""
    field = [root]
    for part in instance_path:
        if type(value) is list:
            field.append(f"[{part}]")
            value = value[int(part)]
        else:
            key = str(part)
            field.append(f".{key}")
            value = value[key]
    return "".join(field), value


def without_lone_surrogates(value: Any) -> Any:
    """The value with every lone surrogate (in strings and keys) replaced by U+FFFD."""
    kind = type(value)
    if kind is str:
        return _LONE_SURROGATE.sub("\ufffd", value)
    if kind is dict:
        return {without_lone_surrogates(k): without_lone_surrogates(v) for k, v in value.items()}
    if kind is list:
        return [without_lone_surrogates(item) for item in value]
    return value


def _declared(schema: dict[str, Any]) -> frozenset[str] | None:
    """The fields a subschema declares when the others are undeclared (it lists `properties`
    and says nothing about other fields), else None."""
    properties = schema.get("properties")
    if isinstance(properties, dict) and not schema.keys() & _CLOSING:
        return frozenset(properties)
    return None


def _walked(schema: dict[str, Any]) -> Iterator[tuple[str | None, Any]]:
    """The subschemas undeclared fields are looked for in: each property's (with its name) and
    `items` (None), the only places where "declared" has a single meaning (not through `$ref`
    or combinators)."""
    properties = schema.get("properties")
    if isinstance(properties, dict):
        yield from properties.items()
    if "items" in schema:
        yield None, schema["items"]


def _close_declared(schema: Any) -> None:
    """`additionalProperties: false` wherever the walker reports undeclared fields."""
    if isinstance(schema, dict):
        if _declared(schema) is not None:
            schema["additionalProperties"] = False
        for _, sub in _walked(schema):
            _close_declared(sub)


def _undeclared_walker(schema: Any) -> Walker | None:
    """Where the schema declares `properties` and says nothing about other fields, those are
    undeclared: the contract's `undeclared_fields` policy judges them. None when the schema
    declares nothing anywhere."""
    if not isinstance(schema, dict):
        return None
    declared = _declared(schema)
    children: list[tuple[str, str, Walker]] = []
    items: Walker | None = None
    for key, sub in _walked(schema):
        walker = _undeclared_walker(sub)
        if walker is None:
            continue
        if key is None:
            items = walker
        else:
            children.append((key, "." + key, walker))
    if declared is None and not children and items is None:
        return None
    # `items` applies after the `prefixItems`.
    prefix = schema.get("prefixItems")
    first_item = len(prefix) if isinstance(prefix, list) else 0

    def walk(value: Any, path: str, out: list[Violation]) -> None:
        kind = type(value)
        if kind is dict:
            if declared is not None and not value.keys() <= declared:
                for key, item in value.items():
                    if key not in declared:
                        out.append(extra_violation(UNDECLARED_FIELD, f"{path}.{key}", key, item))
            for key, suffix, child in children:
                if key in value:
                    child(value[key], path + suffix, out)
        elif kind is list and items is not None:
            for index in range(first_item, len(value)):
                items(value[index], f"{path}[{index}]", out)

    return walk


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
_ENCODER = json.JSONEncoder(ensure_ascii=False, default=str)
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
        text = _ENCODER.encode(value if len(value) <= ACTUAL_CHARS else value[:ACTUAL_CHARS])
    elif (kind is dict or kind is list) and len(value) > _WHOLE_ITEMS:
        text = _prefix_text(value)
    else:
        text = _ENCODER.encode(value)
    return text if len(text) <= ACTUAL_CHARS else text[: ACTUAL_CHARS - 1] + "…"


def _prefix_text(value: Any) -> str:
    """At least the first ACTUAL_CHARS characters of the value's JSON text (all of it if less)."""
    pieces: list[str] = []
    size = 0
    for piece in _ENCODER.iterencode(value):
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


def extra_violation(kind: str, field: str, key: str, value: Any) -> Violation:
    if kind == UNDECLARED_FIELD:
        return Violation.of(kind, field, f"{key} is not declared", "declared fields only", value)
    return Violation.of(kind, field, f"{key} is not allowed", "no additional fields", value)


def worded_violation(violation_type: str, field: str, expected: str, value: Any) -> Violation:
    """A value that missed a type, an enum, a const or a range, worded from the schema."""
    if violation_type == DATATYPE_MISMATCH:
        message = f"expected {expected}, got {json_type(value)}"
    elif violation_type == ENUM_MISMATCH:
        message = f"not {expected}"
    else:
        message = f"expected {expected}"
    return Violation.of(violation_type, field, message, expected, value)


def pattern_violation(path: str, pattern: str, value: str) -> Violation:
    """A string the pattern refused: it does not match, or it is too long to be matched."""
    message = too_long_message(value) if too_long_to_match(value) else f"does not match {pattern}"
    return Violation.of(PATTERN_MISMATCH, path, message, pattern, value)


def length_violation(path: str, expected: str, actual: int) -> Violation:
    return Violation(
        LENGTH_MISMATCH, path, f"expected {expected}, got {actual}", expected, str(actual)
    )
