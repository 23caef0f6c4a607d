"""Contract schemas: golden violation cases (both engines), the compact form's conversion to JSON
Schema, form detection, and schemas refused with the path of the problem.

Golden cases live in tests/golden/contracts/<case>.json ({schema_definition, event, expected});
adding a case means adding a file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.domain.contracts import TARGETS, CompiledContract, EventContract
from shared.domain.schema_forms import InvalidSchema, detect_form, to_json_schema
from shared.domain.schema_validator import VIOLATION_TYPES, CompiledSchema, Violation

GOLDEN_DIR = Path(__file__).resolve().parents[2] / "tests" / "golden" / "contracts"
GOLDEN_FILES = sorted(GOLDEN_DIR.glob("*.json"))
SEED_SCHEMA = {
    "properties": {
        "order_id": {"type": "string", "required": True},
        "total": {"type": "number", "required": True},
        "currency": {"type": "string", "required": True},
    }
}


def contract(schema_definition: dict[str, Any], event_type: str = "track") -> EventContract:
    return EventContract(
        id="c-1",
        workspace_id="ws-1",
        name="golden",
        event_type=event_type,  # type: ignore[arg-type]
        event_name="*",
        schema_definition=schema_definition,
        enforcement_mode="warn",
        undeclared_fields="warn",
        status="active",
        version=1,
        created_at="2024-01-01T00:00:00.000Z",
        updated_at="2024-01-01T00:00:00.000Z",
    )


def deep_schema(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        schema = {"properties": {"x": schema}}
    return schema


def shape(violations: list[Violation]) -> list[dict[str, Any]]:
    found = [
        {"type": v.type, "field": v.field, "expected": v.expected, "actual": v.actual}
        for v in violations
    ]
    return sorted(found, key=lambda v: (v["field"], v["type"], str(v["expected"])))


def test_golden_cases_cover_every_violation_type() -> None:
    assert len(GOLDEN_FILES) >= 10
    seen = {v["type"] for path in GOLDEN_FILES for v in json.loads(path.read_text())["expected"]}
    assert seen == set(VIOLATION_TYPES)


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=[p.stem for p in GOLDEN_FILES])
def test_golden(path: Path) -> None:
    case = json.loads(path.read_text())
    event = case["event"]
    compiled = CompiledContract(contract(case["schema_definition"], event["type"]))
    finding = compiled.check(event)

    found = finding.violations if finding else []
    assert shape(found) == shape_expected(case["expected"]), case["description"]
    assert all(v.message for v in found)


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=[p.stem for p in GOLDEN_FILES])
def test_golden_agrees_with_the_jsonschema_engine(path: Path) -> None:
    """The fast engine is an optimisation: jsonschema finds the very same violations."""
    case = json.loads(path.read_text())
    event = case["event"]
    json_schema, _ = to_json_schema(case["schema_definition"])
    target = TARGETS[event["type"]]
    value = event.get(target) or {}

    by_library = CompiledSchema(json_schema, engine="jsonschema").validate(value, target)

    assert shape(by_library) == shape_expected(case["expected"])


def shape_expected(expected: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(expected, key=lambda v: (v["field"], v["type"], str(v["expected"])))


def test_the_engine_is_chosen_by_keywords() -> None:
    compact, _ = to_json_schema(SEED_SCHEMA)
    assert CompiledSchema(compact).engine == "fast"
    referenced, _ = to_json_schema({"$defs": {"x": {"type": "string"}}, "$ref": "#/$defs/x"})
    assert CompiledSchema(referenced).engine == "jsonschema"


def test_compact_form_becomes_json_schema() -> None:
    definition = {
        "properties": {
            "order_id": {"type": "string", "required": True, "pattern": "^o-"},
            "total": {"type": "number", "required": False, "minimum": 0},
            "currency": {"type": "string", "enum": ["USD", "EUR"]},
            "email": {"type": "string", "format": "email"},
            "address": {"properties": {"city": {"type": "string", "required": True}}},
            "items": {"items": {"properties": {"sku": {"type": "string", "required": True}}}},
        }
    }

    schema, form = to_json_schema(definition)

    assert form == "compact"
    assert schema == {
        "type": "object",
        "required": ["order_id"],
        "properties": {
            "order_id": {"type": "string", "pattern": "^o-"},
            "total": {"type": "number", "minimum": 0},
            "currency": {"type": "string", "enum": ["USD", "EUR"]},
            "email": {"type": "string", "format": "email"},
            "address": {
                "type": "object",
                "required": ["city"],
                "properties": {"city": {"type": "string"}},
            },
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["sku"],
                    "properties": {"sku": {"type": "string"}},
                },
            },
        },
    }
    assert definition["properties"]["order_id"]["required"] is True  # the input is not changed


@pytest.mark.parametrize(
    ("definition", "form"),
    [
        (SEED_SCHEMA, "compact"),
        ({"properties": {"x": {"type": "string"}}}, "compact"),
        ({}, "compact"),
        ({"$schema": "https://json-schema.org/draft/2020-12/schema"}, "json_schema"),
        ({"properties": {"x": {"type": "string"}}, "required": ["x"]}, "json_schema"),
        ({"properties": {"x": {"anyOf": [{"type": "string"}]}}}, "json_schema"),
        ({"properties": {"x": {"items": {"uniqueItems": True}}}}, "json_schema"),
        ({"type": "object", "additionalProperties": False}, "json_schema"),
    ],
)
def test_form_detection(definition: dict[str, Any], form: str) -> None:
    assert detect_form(definition) == form


@pytest.mark.parametrize(
    ("definition", "path", "words"),
    [
        ([], "", "JSON object"),
        ({"properties": {"total": {"type": "numbr"}}}, "properties.total.type", "unknown type"),
        (
            {"properties": {"t": {"type": "string", "requird": True}}},
            "properties.t.requird",
            "unknown keyword",
        ),
        ({"properties": {"t": {"required": "yes"}}}, "properties.t.required", "true or false"),
        ({"properties": {"t": {"format": "phone"}}}, "properties.t.format", "unknown format"),
        ({"properties": {"t": {"pattern": "("}}}, "properties.t.pattern", "regular expression"),
        ({"properties": {"t": {"minLength": -1}}}, "properties.t.minLength", "minimum"),
        ({"properties": {"t": {"enum": "USD"}}}, "properties.t.enum", "array"),
        ({"properties": []}, "properties", "object"),
        ({"required": True, "properties": {}}, "required", "belongs on a field"),
        (
            {"$schema": "http://json-schema.org/draft-07/schema#"},
            "$schema",
            "draft 2020-12",
        ),
        (
            {"additionalProperties": False, "properties": {"t": {"required": True}}},
            "properties.t.required",
            "compact form",
        ),
        (
            {"$defs": {"x": {"pattern": "[a-"}}, "$ref": "#/$defs/x"},
            "$defs.x.pattern",
            "regular expression",
        ),
        (deep_schema(40), "", "deeper"),
    ],
)
def test_invalid_schemas_name_the_problem(definition: Any, path: str, words: str) -> None:
    with pytest.raises(InvalidSchema) as raised:
        to_json_schema(definition)
    assert raised.value.path == path
    assert words in raised.value.message


def test_actual_values_are_truncated() -> None:
    schema, _ = to_json_schema({"properties": {"note": {"type": "number"}}})
    [violation] = CompiledSchema(schema).validate({"note": "x" * 10_000}, "properties")
    assert violation.actual is not None and len(violation.actual) <= 120
    assert violation.actual.endswith("…")
