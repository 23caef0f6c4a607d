"""Contract schemas: golden violation cases, how the library's errors and the undeclared-field
walker make violations, the compact form's conversion to JSON Schema, form detection, and
schemas refused with the path of the problem.

Golden cases live in tests/golden/contracts/<case>.json ({schema_definition, event, expected});
adding a case means adding a file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.domain.contracts import TARGETS, CompiledContract, EventContract
from shared.domain.schema_forms import DIALECT, InvalidSchema, detect_form, to_json_schema
from shared.domain.schema_references import SchemaCompileError
from shared.domain.schema_validator import (
    VIOLATION_TYPES,
    CompiledSchema,
    Violation,
    _never_fetch,
    json_type,
)

REPO = Path(__file__).resolve().parents[2]

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


INVALID_GOLDEN = [p for p in GOLDEN_FILES if json.loads(p.read_text())["expected"]]


@pytest.mark.parametrize("path", INVALID_GOLDEN, ids=[p.stem for p in INVALID_GOLDEN])
def test_golden_messages_are_the_documented_ones(path: Path) -> None:
    case = json.loads(path.read_text())
    event = case["event"]
    json_schema, _ = to_json_schema(case["schema_definition"])
    target = TARGETS[event["type"]]

    found = CompiledSchema(json_schema).validate(event.get(target) or {}, target)

    # docs/CONTRACTS.md words each type so (what the API and the console show).
    assert found
    for violation in found:
        assert violation.message == documented_message(violation), violation


def documented_message(violation: Violation) -> str:
    key = violation.field.rsplit(".", 1)[-1]
    expected = violation.expected
    words = {
        "Required-Missing": f"{key} is required",
        "Undeclared-Field": f"{key} is not declared",
        "Additional-Properties": f"{key} is not allowed",
        "Enum-Mismatch": f"not {expected}",
        "Format-Mismatch": f"not a valid {expected}",
        "Pattern-Mismatch": f"does not match {expected}",
        "Range-Mismatch": f"expected {expected}",
        "Length-Mismatch": f"expected {expected}, got {violation.actual}",
    }
    if violation.type == "Datatype-Mismatch":
        return f"expected {expected}, got {json_type(json.loads(str(violation.actual)))}"
    # Schema-Mismatch keeps the library's own message.
    return words.get(violation.type, violation.message)


def shape_expected(expected: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(expected, key=lambda v: (v["field"], v["type"], str(v["expected"])))


def check(definition: dict[str, Any], value: Any) -> list[tuple[str, str, str | None]]:
    schema, _ = to_json_schema(definition)
    return [(v.field, v.type, v.expected) for v in CompiledSchema(schema).validate(value, "p")]


def test_undeclared_fields_are_found_along_properties_and_items_only() -> None:
    definition = {
        "$schema": DIALECT,
        "properties": {
            "a": {"properties": {"x": {}}},
            "list": {"prefixItems": [{}], "items": {"properties": {"sku": {}}}},
            "open": {"properties": {"x": {}}, "additionalProperties": True},
        },
        "allOf": [{"properties": {"hidden": {"properties": {"y": {}}}}}],
    }
    value = {
        "a": {"x": 1, "b": 2},
        "list": [{"first": 1}, {"sku": "s", "extra": 1}],
        "open": {"z": 1},
        "hidden": {"q": 1},
    }

    assert check(definition, value) == [
        ("p.a.b", "Undeclared-Field", "declared fields only"),
        ("p.hidden", "Undeclared-Field", "declared fields only"),
        ("p.list[1].extra", "Undeclared-Field", "declared fields only"),
    ]


def test_a_reference_into_a_negation_is_judged_exactly() -> None:
    # The one-call answer (`accepts`) closes declared objects, which inside a `not` (reached
    # by `$ref`) would accept more; schemas with `$ref` go without it.
    definition = {"$schema": DIALECT, "properties": {"a": {"properties": {"x": {}}}}}
    definition["not"] = {"$ref": "#/properties/a"}

    assert check(definition, {"a": {"x": 1}}) == [("p", "Schema-Mismatch", "not")]


def test_errors_are_worded_from_the_schema_as_written() -> None:
    definition = {
        "$schema": DIALECT,
        "$defs": {"money": {"type": ["number", "null"], "minimum": 0, "multipleOf": 0.5}},
        "properties": {
            "total": {"$ref": "#/$defs/money"},
            "tax": {"$ref": "#/$defs/money"},
            "tags": {"maxProperties": 1},
            "off": False,
        },
        "unevaluatedProperties": False,
    }
    value = {"total": "1", "tax": -0.25, "tags": {"a": 1, "b": 2}, "off": 1, "x": 1, "y": 2}

    assert check(definition, value) == [
        ("p.off", "Schema-Mismatch", "nothing"),
        ("p.tags", "Length-Mismatch", "length <= 1"),
        ("p.tax", "Range-Mismatch", ">= 0"),
        ("p.tax", "Range-Mismatch", "multiple of 0.5"),
        ("p.total", "Datatype-Mismatch", "number or null"),
        ("p.x", "Additional-Properties", "no additional fields"),
        ("p.y", "Additional-Properties", "no additional fields"),
    ]


def test_a_numeric_key_is_a_field_not_an_index() -> None:
    # The library's instance path says 0 for the key "0" as for the first item.
    definition = {"properties": {"0": {"type": "string"}, "l": {"items": {"type": "string"}}}}

    assert check(definition, {"0": 1, "l": ["a", 2]}) == [
        ("p.0", "Datatype-Mismatch", "string"),
        ("p.l[1]", "Datatype-Mismatch", "string"),
    ]


@pytest.mark.parametrize("whole", [False, True], ids=["by-property", "whole-value"])
def test_keys_the_library_numbers_alike_are_told_apart(whole: bool) -> None:
    # The library's paths say 0 for "0", "00" and "+0" alike (and 1 for "01"): the fields,
    # and the schemas their errors are worded from, are the ones written.
    definition = {
        "$schema": DIALECT,
        "$defs": {"01": {"type": "string"}},
        "properties": {
            "0": {"type": "boolean"},
            "00": {"type": "object"},
            "n": {"properties": {"+0": {"$ref": "#/$defs/01"}}},
        },
    }
    schema, _ = to_json_schema(definition)
    compiled = CompiledSchema(schema)
    if whole:
        compiled._by_property = None
    value = {"0": None, "00": None, "n": {"+0": 1, "0": 2}}

    assert [(v.field, v.type, v.expected) for v in compiled.validate(value, "p")] == [
        ("p.0", "Datatype-Mismatch", "boolean"),
        ("p.00", "Datatype-Mismatch", "object"),
        ("p.n.+0", "Datatype-Mismatch", "string"),
        ("p.n.0", "Undeclared-Field", "declared fields only"),
    ]


def test_formats_contracts_do_not_check_are_annotations() -> None:
    definition: dict[str, Any] = {"$schema": DIALECT, "properties": {"r": {"format": "regex"}}}
    definition["properties"]["d"] = {"format": "duration"}

    # The library would compile the value as a pattern, and check durations.
    assert check(definition, {"r": "(", "d": "soon"}) == []
    assert check({"properties": {"e": {"format": "email"}}}, {"e": "x"}) == [
        ("p.e", "Format-Mismatch", "email")
    ]


def test_no_schema_is_ever_fetched() -> None:
    # `to_json_schema` refuses it first (test_contract_safety); the library is told to refuse
    # any retrieval too.
    with pytest.raises(SchemaCompileError) as raised:
        CompiledSchema({"properties": {"a": {"$ref": "https://example.com/a.json"}}})
    assert raised.value.path == "properties.a.$ref"
    with pytest.raises(LookupError, match="never fetched"):
        _never_fetch("https://example.com/a.json")


def test_the_frozen_baseline_is_never_imported_by_the_product() -> None:
    sources = [p for p in (REPO / "shared").rglob("*.py") if "baselines" in p.read_text()]
    assert sources == []


def test_compact_form_becomes_json_schema() -> None:
    definition: dict[str, Any] = {
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
