"""The validation engine for schemas beyond the compiled keywords: `jsonschema` (draft 2020-12),
its errors mapped to the same violation types, fields and expectations as the fast engine's."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Iterator
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

from shared.domain.schema_formats import FORMAT_CHECKER
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
    Violation,
    compile_pattern,
    extra_violation,
    join_path,
    json_type,
    length_violation,
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
        for where, pattern in _patterns(self._schema, ""):
            compile_pattern(pattern, where)
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
            declared = schema.get("properties", {})
            patterns = list(schema.get("patternProperties", {}))
            for key in instance:
                if key not in declared and not any(re.search(p, key) for p in patterns):
                    yield extra_violation(kind, f"{field}.{key}", key, instance[key])
        elif keyword == "type":
            names = " or ".join([expected] if isinstance(expected, str) else expected)
            text = f"expected {names}, got {json_type(instance)}"
            yield Violation.of(DATATYPE_MISMATCH, field, text, names, instance)
        elif keyword in ("enum", "const"):
            wanted = "one of " + show(expected) if keyword == "enum" else show(expected)
            yield Violation.of(ENUM_MISMATCH, field, f"not {wanted}", wanted, instance)
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


def _patterns(schema: Any, where: str) -> Iterator[tuple[str, Any]]:
    """Every `pattern` and `patternProperties` key, anywhere in the schema, with its path."""
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "pattern" and isinstance(value, str):
                yield join_path(where, key), value
            elif key == "patternProperties" and isinstance(value, dict):
                yield from ((join_path(where, key, p), p) for p in value)
            if isinstance(value, (dict, list)) and key not in ("enum", "const", "examples"):
                yield from _patterns(value, join_path(where, key))
    elif isinstance(schema, list):
        for index, item in enumerate(schema):
            yield from _patterns(item, join_path(where, str(index)))
