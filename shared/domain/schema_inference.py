"""A contract schema proposed from sample events (a tracking plan's starter): each field's JSON
types as seen, required when every sample has it, nested objects and arrays described the same
way. The result is in the compact form (`schema_forms`), so it reads like a hand-written one.

Inference only describes what was seen: a field that happened to hold whole numbers in every
sample is proposed as `integer`, one that was always present as required. It is a starting point
to edit, not a verdict.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# JSON Schema's types, in the order a proposal lists them.
TYPE_ORDER = ("string", "number", "integer", "boolean", "object", "array", "null")
# Nested objects are described this deep; deeper ones are proposed as plain `object`.
MAX_DEPTH = 6
# Fields described per object (the most often seen, then by name): bounds the proposal well
# inside a contract schema's 64 KiB even for events with generated keys.
MAX_FIELDS_PER_OBJECT = 200


def json_type(value: Any) -> str:
    """The JSON Schema type of a decoded JSON value (a boolean is not an integer)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        # JSON has one number type; 3.0 arrives as a float from some encoders and as 3 from
        # others, so a whole float counts as an integer, like the validator judges it.
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, Sequence):
        return "array"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


@dataclass
class _Shape:
    """What was seen at one place of the samples: how often, of which types, and inside."""

    seen: int = 0
    types: Counter[str] = field(default_factory=Counter)
    # Objects seen here: how many, and their fields' shapes.
    objects: int = 0
    fields: dict[str, _Shape] = field(default_factory=dict)
    # Array elements seen here, all merged into one shape.
    items: _Shape | None = None

    def add(self, value: Any, depth: int) -> None:
        self.seen += 1
        kind = json_type(value)
        self.types[kind] += 1
        if depth >= MAX_DEPTH:
            return
        if kind == "object":
            self.objects += 1
            for name, child in value.items():
                self.fields.setdefault(str(name), _Shape()).add(child, depth + 1)
        elif kind == "array":
            for element in value:
                if self.items is None:
                    self.items = _Shape()
                self.items.add(element, depth + 1)


@dataclass(frozen=True)
class FieldSummary:
    """One field as seen in the samples: its dotted path (`items[]` for array elements)."""

    field: str
    types: list[str]
    seen: int
    required: bool


@dataclass(frozen=True)
class Proposal:
    """The proposed schema (compact form) and, per field, what it was inferred from."""

    schema_definition: dict[str, Any]
    fields: list[FieldSummary]
    sampled: int


def propose_schema(samples: Iterable[Mapping[str, Any] | None]) -> Proposal:
    """A compact-form schema describing every sample (each one an event's properties or
    traits; None or a missing payload counts as an empty object)."""
    root = _Shape()
    for sample in samples:
        root.add(dict(sample or {}), 0)
    summaries: list[FieldSummary] = []
    schema = _object_schema(root, "", summaries)
    return Proposal(schema, summaries, root.seen)


def _types(shape: _Shape) -> list[str]:
    kinds = set(shape.types)
    if {"integer", "number"} <= kinds:
        kinds.discard("integer")  # 3 and 3.5 in one field: a number
    return [kind for kind in TYPE_ORDER if kind in kinds]


def _object_schema(shape: _Shape, path: str, summaries: list[FieldSummary]) -> dict[str, Any]:
    ranked = sorted(shape.fields.items(), key=lambda item: (-item[1].seen, item[0]))
    properties: dict[str, Any] = {}
    for name, child in sorted(ranked[:MAX_FIELDS_PER_OBJECT]):
        child_path = f"{path}.{name}" if path else name
        # Required when the field is in every object seen at this place, and never null.
        required = child.seen == shape.objects and "null" not in child.types
        summaries.append(FieldSummary(child_path, _types(child), child.seen, required))
        spec = _field_schema(child, child_path, summaries)
        if required:
            spec["required"] = True
        properties[name] = spec
    return {"properties": properties}


def _field_schema(shape: _Shape, path: str, summaries: list[FieldSummary]) -> dict[str, Any]:
    types = _types(shape)
    spec: dict[str, Any] = {"type": types[0] if len(types) == 1 else types}
    if shape.fields:
        spec.update(_object_schema(shape, path, summaries))
        # `properties` alone would make the compact form's field an object; keep every type.
        spec["type"] = types[0] if len(types) == 1 else types
    if shape.items is not None and shape.items.seen:
        items_path = f"{path}[]"
        summaries.append(FieldSummary(items_path, _types(shape.items), shape.items.seen, False))
        spec["items"] = _field_schema(shape.items, items_path, summaries)
    return spec
