"""The validation engine for schemas beyond the compiled keywords: `jsonschema` (draft 2020-12),
its errors mapped to the same violation types, fields and expectations as the fast engine's.

Every keyword that matches a pattern (`pattern`, `patternProperties`, `additionalProperties`
beside them) is replaced by one matching on RE2, as the fast engine does; a schema whose
references could not run (see `schema_references`) is refused when compiled.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators
from jsonschema.protocols import Validator

from shared.domain.schema_formats import FORMAT_CHECKER
from shared.domain.schema_patterns import compile_pattern as compile_re2
from shared.domain.schema_patterns import too_long_message, too_long_to_match
from shared.domain.schema_references import check_references, subschemas
from shared.domain.schema_validator import (
    ADDITIONAL_PROPERTIES,
    DATATYPE_MISMATCH,
    ENUM_MISMATCH,
    FORMAT_MISMATCH,
    PATTERN_MISMATCH,
    RANGE_MISMATCH,
    REQUIRED_MISSING,
    SCHEMA_MISMATCH,
    UNDECLARED_FIELD,
    SchemaCompileError,
    Violation,
    compile_pattern,
    extra_violation,
    join_path,
    json_type,
    length_violation,
    pattern_violation,
    show,
)

# Bounds, as the fast engine words them: keyword -> comparison.
RANGES = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}
LENGTHS = {
    "minLength": ">=",
    "maxLength": "<=",
    "minItems": ">=",
    "maxItems": "<=",
    "minProperties": ">=",
    "maxProperties": "<=",
}


class JsonSchemaEngine:
    """Any draft 2020-12 schema; undeclared fields found as the fast engine finds them."""

    def __init__(self, schema: dict[str, Any] | bool):
        self._schema = copy.deepcopy(schema)
        # Along properties and items only: through $ref or combinators "declared" has no single
        # meaning.
        self._undeclared = {id(node) for node in _mark_undeclared(self._schema)}
        check_references(self._schema)
        _check_patterns(self._schema)
        self._validator = RE2Validator(self._schema, format_checker=FORMAT_CHECKER)

    def __call__(self, value: Any, path: str, out: list[Violation]) -> None:
        for error in self._validator.iter_errors(value):
            out.extend(self._violations(error, path))

    def _violations(self, error: ValidationError, root: str) -> Iterator[Violation]:
        field = root + "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path
        )
        keyword = str(error.validator)
        instance: Any = error.instance
        expected: Any = error.validator_value
        message = error.message if len(error.message) <= 200 else error.message[:199] + "…"
        if keyword == "required" and isinstance(instance, dict):
            for key in expected:
                if key not in instance:
                    yield Violation(
                        REQUIRED_MISSING, f"{field}.{key}", f"{key} is required", "present", None
                    )
        elif keyword == "additionalProperties" and isinstance(instance, dict):
            schema: Any = error.schema
            kind = UNDECLARED_FIELD if id(schema) in self._undeclared else ADDITIONAL_PROPERTIES
            for key in additional_keys(instance, schema):
                yield extra_violation(kind, f"{field}.{key}", key, instance[key])
        elif keyword == "type":
            names = " or ".join([expected] if isinstance(expected, str) else expected)
            text = f"expected {names}, got {json_type(instance)}"
            yield Violation.of(DATATYPE_MISMATCH, field, text, names, instance)
        elif keyword in ("enum", "const"):
            wanted = "one of " + show(expected) if keyword == "enum" else show(expected)
            yield Violation.of(ENUM_MISMATCH, field, f"not {wanted}", wanted, instance)
        elif keyword == "pattern" and isinstance(instance, str):
            yield pattern_violation(field, str(expected), instance)
        elif keyword in ("format", "pattern"):
            kind = FORMAT_MISMATCH if keyword == "format" else PATTERN_MISMATCH
            yield Violation.of(kind, field, message, str(expected), instance)
        elif keyword in RANGES:
            wanted = f"{RANGES[keyword]} {expected}"
            yield Violation.of(RANGE_MISMATCH, field, f"expected {wanted}", wanted, instance)
        elif keyword == "multipleOf":
            wanted = f"multiple of {expected}"
            yield Violation.of(RANGE_MISMATCH, field, f"expected {wanted}", wanted, instance)
        elif keyword in LENGTHS:
            yield length_violation(field, f"length {LENGTHS[keyword]} {expected}", len(instance))
        elif keyword == "unevaluatedProperties":
            yield Violation(ADDITIONAL_PROPERTIES, field, message, "no additional fields", None)
        else:
            yield Violation.of(SCHEMA_MISMATCH, field, message, keyword, instance)


def _mark_undeclared(schema: Any) -> Iterator[dict[str, Any]]:
    """Add `additionalProperties: false` where undeclared fields apply; yield those nodes."""
    if not isinstance(schema, dict):
        return
    closed = {"additionalProperties", "patternProperties", "unevaluatedProperties"} & schema.keys()
    if isinstance(schema.get("properties"), dict) and not closed:
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


def _check_patterns(schema: Any) -> None:
    """Every `pattern` and `patternProperties` key compiles on RE2 (`SchemaCompileError` at the
    first that does not); and no pattern is left to the library's own (backtracking) matching."""
    pattern_properties = unevaluated = None
    for where, node in subschemas(schema):
        if "pattern" in node:
            compile_pattern(node["pattern"], join_path(where, "pattern"))
        if isinstance(node.get("patternProperties"), dict):
            pattern_properties = pattern_properties or join_path(where, "patternProperties")
            for key in node["patternProperties"]:
                compile_pattern(key, join_path(where, "patternProperties", key))
        if "unevaluatedProperties" in node:
            unevaluated = unevaluated or join_path(where, "unevaluatedProperties")
    if pattern_properties and unevaluated:
        # jsonschema finds the properties `unevaluatedProperties` skips with Python's `re`.
        raise SchemaCompileError(
            pattern_properties,
            f"cannot be combined with unevaluatedProperties (at {unevaluated}); use "
            "additionalProperties beside patternProperties",
        )


def additional_keys(instance: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """The instance's keys neither in `properties` nor matched by a `patternProperties` key."""
    declared = schema.get("properties", {})
    patterns = [compile_re2(pattern) for pattern in schema.get("patternProperties", {})]
    return [key for key in instance if key not in declared and not any(m(key) for m in patterns)]


# The library's keywords that match patterns, matching on RE2 instead (same errors otherwise).


def _pattern(validator: Validator, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    if validator.is_type(instance, "string") and not compile_re2(pattern)(instance):
        if too_long_to_match(instance):
            yield ValidationError(f"{show(instance)} {too_long_message(instance)}")
        else:
            yield ValidationError(f"{show(instance)} does not match {pattern}")


def _pattern_properties(
    validator: Validator, patterns: dict[str, Any], instance: Any, schema: Any
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        matches = compile_re2(pattern)
        for key, value in instance.items():
            if matches(key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(
    validator: Validator, additional: Any, instance: Any, schema: dict[str, Any]
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    extras = additional_keys(instance, schema)
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        listed = ", ".join(repr(extra) for extra in sorted(extras))
        yield ValidationError(f"Additional properties are not allowed ({listed} unexpected)")


RE2Validator = validators.extend(
    Draft202012Validator,
    {
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties,
    },
)
