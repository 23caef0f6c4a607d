"""Schema proposals from sample events: types as seen, required only when always present and
never null, nested objects and arrays, and a result every contract accepts."""

from __future__ import annotations

from typing import Any

import pytest

from shared.domain.schema_forms import to_json_schema
from shared.domain.schema_inference import MAX_DEPTH, json_type, propose_schema


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("x", "string"),
        (3, "integer"),
        (3.0, "integer"),
        (3.5, "number"),
        (True, "boolean"),
        (None, "null"),
        ({"a": 1}, "object"),
        ([1], "array"),
    ],
)
def test_json_types(value: Any, kind: str) -> None:
    assert json_type(value) == kind


def test_types_and_required_follow_what_every_sample_had() -> None:
    proposal = propose_schema(
        [
            {"order_id": "o-1", "total": 10, "coupon": "SPRING", "paid": True, "note": None},
            {"order_id": "o-2", "total": 12.5, "paid": False, "note": "gift"},
            {"order_id": "o-3", "total": 7, "paid": True, "note": "x"},
        ]
    )

    assert proposal.sampled == 3
    assert proposal.schema_definition == {
        "properties": {
            "coupon": {"type": "string"},
            "note": {"type": ["string", "null"]},
            "order_id": {"type": "string", "required": True},
            "paid": {"type": "boolean", "required": True},
            "total": {"type": "number", "required": True},
        }
    }
    by_field = {f.field: f for f in proposal.fields}
    assert (by_field["coupon"].seen, by_field["coupon"].required) == (1, False)
    assert by_field["total"].types == ["number"]
    assert by_field["note"].types == ["string", "null"]


def test_nested_objects_and_arrays_are_described_inside() -> None:
    proposal = propose_schema(
        [
            {"cart": {"id": "c1", "items": [{"sku": "a", "qty": 1}, {"sku": "b"}]}, "tags": []},
            {"cart": {"id": "c2", "items": [{"sku": "c", "qty": 2}]}, "tags": ["x", "y"]},
        ]
    )

    items = proposal.schema_definition["properties"]["cart"]["properties"]["items"]
    assert items == {
        "type": "array",
        "required": True,
        "items": {
            "type": "object",
            "properties": {
                "qty": {"type": "integer"},
                "sku": {"type": "string", "required": True},
            },
        },
    }
    assert proposal.schema_definition["properties"]["tags"] == {
        "type": "array",
        "required": True,
        "items": {"type": "string"},
    }
    assert [f.field for f in proposal.fields] == [
        "cart",
        "cart.id",
        "cart.items",
        "cart.items[]",
        "cart.items[].qty",
        "cart.items[].sku",
        "tags",
        "tags[]",
    ]


def test_a_missing_payload_is_an_empty_object_so_nothing_is_required() -> None:
    proposal = propose_schema([{"plan": "pro"}, None])

    assert proposal.schema_definition == {"properties": {"plan": {"type": "string"}}}
    assert proposal.sampled == 2


def test_no_samples_propose_an_empty_schema() -> None:
    proposal = propose_schema([])

    assert (proposal.schema_definition, proposal.fields, proposal.sampled) == (
        {"properties": {}},
        [],
        0,
    )


def test_depth_is_bounded() -> None:
    deep: dict[str, Any] = {"leaf": 1}
    for _ in range(MAX_DEPTH + 3):
        deep = {"child": deep}

    schema = propose_schema([deep]).schema_definition

    node = schema
    for _ in range(MAX_DEPTH):
        node = node["properties"]["child"]
    assert node == {"type": "object", "required": True}


def test_every_proposal_is_a_schema_contracts_accept() -> None:
    proposal = propose_schema(
        [
            {"a": [1, "x", None], "b": {"c": [[1, 2], []]}, "": 1, "d.e": {"f": None}},
            {"a": 2.5, "b": None},
        ]
    )

    json_schema, form = to_json_schema(proposal.schema_definition)

    assert form == "compact"
    assert json_schema["properties"]["a"] == {
        "type": ["number", "array"],
        "items": {"type": ["string", "integer", "null"]},
    }
    assert json_schema["required"] == ["a"]  # b was null once
