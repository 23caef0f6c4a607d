"""A contract's `schema_definition`, in either accepted form, to one checked JSON Schema.

Forms: the seed's compact form (`{"properties": {"total": {"type": "number", "required": true}}}`)
and JSON Schema draft 2020-12. A definition is JSON Schema when it names `$schema`, uses a keyword
the compact form lacks, or lists `required` as an array; otherwise it is compact. Either way the
result is checked against the draft 2020-12 meta-schema and compiled, so a contract that is
accepted can always run. Errors name the path inside the definition.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError

from shared.domain.nesting import nests_deeper_than
from shared.domain.schema_formats import FORMATS
from shared.domain.schema_references import SchemaCompileError
from shared.domain.schema_validator import CompiledSchema

SchemaForm = Literal["compact", "json_schema"]
DIALECT = "https://json-schema.org/draft/2020-12/schema"
# Bounds a definition well inside a Firestore document and a sane compile time.
MAX_SCHEMA_BYTES = 64 * 1024
MAX_DEPTH = 32
# What a field may say in the compact form (anything else is a typo or needs JSON Schema).
COMPACT_KEYWORDS = frozenset(
    {"type", "required", "enum", "const", "pattern", "format", "properties", "items"}
    | {"description", "title", "default", "examples"}
    | {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}
    | {"minLength", "maxLength", "minItems", "maxItems"}
)
# Keywords of draft 2020-12 the compact form does not have: seeing one means JSON Schema.
JSON_SCHEMA_ONLY = frozenset(
    {"$schema", "$id", "$ref", "$defs", "$anchor", "$dynamicRef", "$dynamicAnchor", "$comment"}
    | {"$vocabulary", "definitions", "additionalProperties", "patternProperties"}
    | {"propertyNames", "unevaluatedProperties", "unevaluatedItems", "prefixItems", "contains"}
    | {"minContains", "maxContains", "uniqueItems", "minProperties", "maxProperties"}
    | {"dependentRequired", "dependentSchemas", "allOf", "anyOf", "oneOf", "not", "if", "then"}
    | {"else", "multipleOf", "contentEncoding", "contentMediaType", "contentSchema"}
    | {"deprecated", "readOnly", "writeOnly"}
)
JSON_TYPES = ("string", "number", "integer", "boolean", "object", "array", "null")
# The meta-schema's format checks, less `regex`: that one compiles with Python's `re`, whose
# syntax is not the one patterns run on; every pattern is checked instead (`schema_patterns`,
# then the validator's own engine), and refused with the reason.
META_FORMATS = FormatChecker(
    formats=[name for name in Draft202012Validator.FORMAT_CHECKER.checkers if name != "regex"]
)


class InvalidSchema(ValueError):
    """A definition that cannot be a contract's schema; `path` is where, inside it."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


def to_json_schema(definition: Any, meta_check: bool = True) -> tuple[dict[str, Any], SchemaForm]:
    """The definition as a checked, compilable JSON Schema, and the form it was written in.

    `meta_check=False` skips the meta-schema check, for a definition checked when it was saved:
    that check costs ~0.5 ms per schema node (seconds for a large schema), time `process` would
    spend holding the GIL at every new contract version. Patterns and references are compiled
    and checked either way; what the meta-schema alone would have caught fails per event.
    """
    if not isinstance(definition, dict):
        raise InvalidSchema("", "must be a JSON object (compact form or JSON Schema)")
    size = len(json.dumps(definition, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_SCHEMA_BYTES:
        raise InvalidSchema("", f"is {size} bytes; at most {MAX_SCHEMA_BYTES} are allowed")
    if nests_deeper_than(definition, MAX_DEPTH):
        raise InvalidSchema("", f"is nested deeper than {MAX_DEPTH} levels")
    form = detect_form(definition)
    if form == "json_schema":
        dialect = definition.get("$schema", DIALECT)
        if str(dialect).rstrip("#") != DIALECT:
            raise InvalidSchema(
                "$schema", f"only JSON Schema draft 2020-12 ({DIALECT}) is supported"
            )
        schema = definition
    else:
        if "required" in definition:
            raise InvalidSchema("required", "belongs on a field: {'type': ..., 'required': true}")
        schema = _from_compact(definition, "")
    if meta_check:
        _check_meta(schema)
    try:
        CompiledSchema(schema)
    except SchemaCompileError as error:
        raise InvalidSchema(error.path, error.message) from None
    return schema, form


def detect_form(definition: dict[str, Any]) -> SchemaForm:
    """JSON Schema when any schema node uses its own keywords or a `required` array."""
    return "json_schema" if _json_schema_only(definition) else "compact"


def _json_schema_only(node: Any) -> bool:
    if not isinstance(node, dict):
        return False
    if JSON_SCHEMA_ONLY & node.keys() or isinstance(node.get("required"), list):
        return True
    children = list(node["properties"].values()) if isinstance(node.get("properties"), dict) else []
    if "items" in node:
        children.append(node["items"])
    return any(_json_schema_only(child) for child in children)


def _from_compact(spec: Any, path: str) -> dict[str, Any]:
    """A compact field definition as JSON Schema: `required: true` moves to its parent's list."""
    if not isinstance(spec, dict):
        raise InvalidSchema(path, "must be an object describing the field, e.g. {'type': 'string'}")
    unknown = sorted(set(spec) - COMPACT_KEYWORDS)
    if unknown:
        raise InvalidSchema(
            _join(path, unknown[0]),
            f"unknown keyword {unknown[0]!r}: the compact form allows "
            f"{', '.join(sorted(COMPACT_KEYWORDS))}; use JSON Schema ($schema) for more",
        )
    if "format" in spec and spec["format"] not in FORMATS:
        raise InvalidSchema(
            _join(path, "format"),
            f"unknown format {spec['format']!r}: one of {', '.join(sorted(FORMATS))}",
        )
    schema = {k: v for k, v in spec.items() if k not in ("required", "properties", "items")}
    if "properties" in spec:
        fields = spec["properties"]
        if not isinstance(fields, dict):
            raise InvalidSchema(_join(path, "properties"), "must be an object of field definitions")
        schema["properties"] = {}
        required: list[str] = []
        for name, field in fields.items():
            field_path = _join(path, "properties", name)
            if isinstance(field, dict) and "required" in field:
                if not isinstance(field["required"], bool):
                    raise InvalidSchema(_join(field_path, "required"), "must be true or false")
                if field["required"]:
                    required.append(name)
            schema["properties"][name] = _from_compact(field, field_path)
        if required:
            schema["required"] = required
        schema.setdefault("type", "object")
    if "items" in spec:
        schema["items"] = _from_compact(spec["items"], _join(path, "items"))
        schema.setdefault("type", "array")
    return schema


def _check_meta(schema: dict[str, Any]) -> None:
    try:
        Draft202012Validator.check_schema(schema, format_checker=META_FORMATS)
    except SchemaError as error:
        path = _join(*(str(part) for part in error.path))
        message = error.message
        keyword_path = list(error.path)[-2:]
        if keyword_path[-1:] == ["required"] and isinstance(error.instance, bool):
            message = (
                "`required: true` is the compact form; JSON Schema lists required fields in "
                "the parent's `required` array"
            )
        elif keyword_path[-1:] == ["type"] and keyword_path[:1] != ["properties"]:
            message = f"unknown type {error.instance!r}: one of {', '.join(JSON_TYPES)}"
        raise InvalidSchema(path, message) from None


def _join(*parts: str) -> str:
    return ".".join(part for part in parts if part)
