"""Hypothesis properties of the pure domain: event normalisation (shared/domain/events.py) and
contract validation (shared/domain/contracts.py, schema_forms.py, schema_validator.py).

Normalisation: never raises for any JSON item (only the documented request-level errors for a
body), every event validates against shared/schemas/event.schema.json, the input is never
mutated, the output is deterministic and a fixed point (re-sending a canonical event as a client
would gives it back), and the clock-skew identities of docs/EVENTS.md hold exactly.

Contracts: validation never raises for any value or event, values built to satisfy a schema have
no violations, the shortcuts find exactly what the library finds on the whole value (the
one-call answer for values without violations, `is_clean`, never calls a violating value clean;
errors asked property by property, or worded from a property's one keyword, are the same), and
a contract's finding is capped and acted on by its policy.
"""

from __future__ import annotations

import itertools
import json
import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from shared.domain import limits
from shared.domain.contracts import (
    MAX_KEPT_PER_KIND,
    TARGETS,
    CompiledContract,
    ContractSet,
    EventContract,
    judge,
    summarise,
)
from shared.domain.errors import InvalidRequest, PayloadTooLarge
from shared.domain.event import CanonicalEvent
from shared.domain.events import (
    CALL_TYPES,
    CANONICAL_FIELDS,
    IngestContext,
    format_timestamp,
    normalise_request,
    normalise_stream_event,
    parse_timestamp,
)
from shared.domain.schema_forms import InvalidSchema, to_json_schema
from shared.domain.schema_validator import UNDECLARED_FIELD, CompiledSchema, Violation
from shared.domain.storable import find_unstorable

# More examples under `make reliability` (STREAMS_PROPERTY_EXAMPLES), few in `make test`.
EXAMPLES = int(os.environ.get("STREAMS_PROPERTY_EXAMPLES", "100"))
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
EVENT_SCHEMA = Draft202012Validator(
    json.loads(
        (Path(__file__).resolve().parents[2] / "shared/schemas/event.schema.json").read_text()
    )
)
RECEIVED_AT = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
CTX = IngestContext("ws-1", "src-1", RECEIVED_AT, "198.51.100.7")


def ids() -> Any:
    counter = itertools.count(1)
    return lambda: f"generated-{next(counter)}"


# --- strategies -----------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()  # json.loads reads NaN and Infinity too
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=4)
# What every store holds (docs/EVENTS.md): keys neither empty nor `__name__`, 64-bit integers,
# no array directly inside an array.
storable_keys = st.text(min_size=1, max_size=8).filter(
    lambda key: not (len(key) >= 4 and key[:2] == "__" == key[-2:])
)
storable_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats()
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner.filter(lambda value: not isinstance(value, list)), max_size=4)
        | st.dictionaries(storable_keys, inner, max_size=4)
    ),
    max_leaves=12,
)
storable_objects = st.dictionaries(storable_keys, storable_values, max_size=4)
offsets = st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23))
moments = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.one_of(st.none(), offsets.map(timezone)),
)


@st.composite
def iso_texts(draw: st.DrawFn) -> str:
    """ISO-8601 as clients write it: T or space, any fraction, Z, z, an offset or none."""
    moment = draw(moments)
    text = moment.isoformat(sep=draw(st.sampled_from(["T", " "])))
    if moment.tzinfo is not None and moment.utcoffset() == timedelta(0):
        text = text.replace("+00:00", draw(st.sampled_from(["Z", "z", "+00:00"])))
    return text


timestamps = iso_texts() | st.text(max_size=12) | json_values
identifiers = (
    st.text(min_size=1, max_size=12)
    | st.integers(min_value=-(10**12), max_value=10**12)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["", None])
    | json_values
)
segment_items = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from([*CALL_TYPES, "", "purchase"]) | json_values,
        "event": st.text(max_size=12) | json_values,
        "name": st.text(max_size=12) | json_values,
        "userId": identifiers,
        "user_id": identifiers,
        "anonymousId": identifiers,
        "groupId": identifiers,
        "previousId": identifiers,
        "messageId": identifiers | st.text(min_size=90, max_size=110),
        "timestamp": timestamps,
        "originalTimestamp": timestamps,
        "sentAt": timestamps,
        "sent_at": timestamps,
        "properties": json_objects | json_values,
        "traits": json_objects | json_values,
        "context": st.fixed_dictionaries(
            {}, optional={"ip": json_values, "user_agent": json_values}
        )
        | json_objects
        | json_values,
        "integrations": json_objects | json_values,
        "receivedAt": json_values,
        "workspaceId": json_values,
        "writeKey": json_values,
        "channel": json_values,
    },
)
# Items that pass every rule: what SDKs send.
valid_items = st.builds(
    lambda kind, user, fields: {"type": kind, **user, **fields},
    st.sampled_from(sorted(CALL_TYPES)),
    st.fixed_dictionaries({"userId": st.text(min_size=1, max_size=10)})
    | st.fixed_dictionaries({"anonymousId": st.text(min_size=1, max_size=10)}),
    st.fixed_dictionaries(
        {
            "event": st.text(min_size=1, max_size=10),
            "groupId": st.text(min_size=1, max_size=10),
            "previousId": st.text(min_size=1, max_size=10),
            "userId": st.text(min_size=1, max_size=10),
        },
        optional={
            "messageId": st.text(min_size=1, max_size=40),
            "properties": storable_objects,
            "traits": storable_objects,
            "context": storable_objects,
            "timestamp": iso_texts(),
            "sentAt": iso_texts(),
            "channel": storable_values,
        },
    ),
)


# --- normalisation --------------------------------------------------------------------------


def _normalise(body: Any, call_type: str | None) -> Any:
    try:
        return normalise_request(body, call_type, CTX, ids())
    except (InvalidRequest, PayloadTooLarge) as error:
        return error


@PROPERTY
@given(items=st.lists(segment_items | json_values, max_size=5), envelope=json_objects)
def test_a_batch_never_raises_and_accounts_for_every_item(
    items: list[Any], envelope: dict[str, Any]
) -> None:
    body = {**envelope, "batch": items}
    before = json.dumps(body, sort_keys=True, default=repr)
    outcome = _normalise(body, None)
    assert json.dumps(body, sort_keys=True, default=repr) == before, "the input was mutated"
    if isinstance(outcome, InvalidRequest):
        # Only the envelope can fail a whole batch (docs/EVENTS.md, "Request-level").
        assert (outcome.field or "").split(".")[0] in ("context", "integrations", "sentAt"), (
            outcome.message
        )
        return
    assert len(outcome.events) + len(outcome.rejections) == len(items)
    assert [r.index for r in outcome.rejections] == sorted(r.index for r in outcome.rejections)
    for event in outcome.events:
        assert not list(EVENT_SCHEMA.iter_errors(event)), event
        assert tuple(event) == CANONICAL_FIELDS
        assert (event["workspaceId"], event["sourceId"]) == ("ws-1", "src-1")
    for rejection in outcome.rejections:
        assert rejection.reason, rejection


@PROPERTY
@given(item=segment_items | json_values, call_type=st.sampled_from([*sorted(CALL_TYPES), None]))
def test_a_single_call_never_raises_beyond_the_request_errors(
    item: Any, call_type: str | None
) -> None:
    outcome = _normalise(item, call_type)
    if isinstance(outcome, InvalidRequest):
        assert not isinstance(item, dict) or (call_type is None and "batch" in item)
        return
    assert isinstance(item, dict)
    if call_type is None and "batch" in item:
        return
    assert len(outcome.events) + len(outcome.rejections) == 1
    for event in outcome.events:
        assert not list(EVENT_SCHEMA.iter_errors(event)), event
        if call_type is not None:
            assert event["type"] == call_type


@PROPERTY
@given(item=segment_items | json_values, type_=st.text(max_size=10) | json_values)
def test_a_stream_event_never_raises(item: Any, type_: Any) -> None:
    body = {**item, "sourceId": "src-1", "type": type_} if isinstance(item, dict) else item
    outcome = normalise_stream_event(body, CTX, ids())
    if isinstance(outcome, dict):
        assert not list(EVENT_SCHEMA.iter_errors(outcome)), outcome


@PROPERTY
@given(item=valid_items)
def test_valid_items_are_accepted_deterministically(item: dict[str, Any]) -> None:
    first = normalise_request({"batch": [item]}, None, CTX, ids())
    second = normalise_request({"batch": [item]}, None, CTX, ids())
    assume(not first.rejections or first.rejections[0].reason != limits.CORRECTION_OUT_OF_RANGE)
    assert not first.rejections, first.rejections
    assert first == second


def resend(event: CanonicalEvent) -> dict[str, Any]:
    """A canonical event as a client would send it again: what it sent, not what the server
    derived (receivedAt, clockSkewMs, the corrected timestamp, the ids of the write key)."""
    client: dict[str, Any] = {
        key: event[key]
        for key in CANONICAL_FIELDS
        if key
        not in ("timestamp", "receivedAt", "clockSkewMs", "workspaceId", "sourceId", "extras")
        and event[key] is not None
    }
    return {**event["extras"], **client}


# Most of `segment_items` are refused by design (any value in any field), and `assume` drops
# those: a run may filter many inputs before it has its examples, which is expected here.
@settings(
    PROPERTY,
    suppress_health_check=[*PROPERTY.suppress_health_check, HealthCheck.filter_too_much],
)
@given(item=valid_items | segment_items)
def test_a_canonical_event_is_a_fixed_point(item: dict[str, Any]) -> None:
    once = normalise_request({"batch": [item]}, None, CTX, ids())
    assume(once.events)
    [event] = once.events
    again = normalise_request({"batch": [resend(event)]}, None, CTX, ids())
    assume(not (again.rejections and again.rejections[0].reason == limits.TOO_LARGE))
    assert again.events == [event], again.rejections


def _ms(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1)) // timedelta(milliseconds=1)


@PROPERTY
@given(
    original=st.none() | moments,
    sent=st.none() | moments,
    received=st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1)),
    sent_in_envelope=st.booleans(),
)
def test_clock_skew_arithmetic_is_exact(
    original: datetime | None, sent: datetime | None, received: datetime, sent_in_envelope: bool
) -> None:
    item: dict[str, Any] = {"type": "track", "event": "e", "userId": "u"}
    body: dict[str, Any] = {"batch": [item]}
    if original is not None:
        item["timestamp"] = original.isoformat()
    if sent is not None:
        (body if sent_in_envelope else item)["sentAt"] = sent.isoformat()
    ctx = IngestContext("ws-1", "src-1", received.replace(tzinfo=UTC), None)
    batch = normalise_request(body, None, ctx, ids())
    if batch.rejections:
        assert batch.rejections[0].reason == limits.CORRECTION_OUT_OF_RANGE
        return
    [event] = batch.events
    parsed = {
        k: parse_timestamp(value) if (value := event[k]) else None
        for k in ("timestamp", "originalTimestamp", "sentAt", "receivedAt")
    }
    received_ms = _ms(parsed["receivedAt"])  # type: ignore[arg-type]
    # Every value is truncated to whole milliseconds before the arithmetic.
    assert received_ms == _ms(received.replace(microsecond=received.microsecond // 1000 * 1000))
    if sent is None:
        assert event["clockSkewMs"] is None and event["sentAt"] is None
        expected = parsed["originalTimestamp"] or parsed["receivedAt"]
        assert parsed["timestamp"] == expected
        return
    sent_ms = _ms(parse_timestamp(sent.isoformat()))  # type: ignore[arg-type]
    assert event["clockSkewMs"] == sent_ms - received_ms
    if original is None:
        assert parsed["timestamp"] == parsed["receivedAt"]
    else:
        original_ms = _ms(parsed["originalTimestamp"])  # type: ignore[arg-type]
        # timestamp = receivedAt - (sentAt - originalTimestamp) = originalTimestamp - clockSkewMs
        assert _ms(parsed["timestamp"]) == original_ms - event["clockSkewMs"]  # type: ignore[arg-type]
        assert _ms(parsed["timestamp"]) == received_ms - (sent_ms - original_ms)  # type: ignore[arg-type]


@PROPERTY
@given(text=st.text(max_size=40) | iso_texts())
def test_timestamps_parse_or_not_but_never_raise_and_round_trip(text: str) -> None:
    moment = parse_timestamp(text)
    if moment is not None:
        assert moment.tzinfo is None and moment.microsecond % 1000 == 0
        assert parse_timestamp(format_timestamp(moment)) == moment


# --- contracts ------------------------------------------------------------------------------

field_types = st.sampled_from(["string", "number", "integer", "boolean", "array", "object"])


@st.composite
def compact_fields(draw: st.DrawFn, depth: int = 0) -> dict[str, Any]:
    """One field of the compact form, with the constraints its type takes."""
    kind = draw(field_types if depth < 2 else st.sampled_from(["string", "number", "boolean"]))
    spec: dict[str, Any] = {"type": kind}
    if draw(st.booleans()):
        spec["required"] = draw(st.booleans())
    if kind == "string":
        low = draw(st.integers(0, 4))
        if draw(st.booleans()):
            spec["minLength"] = low
        if draw(st.booleans()):
            spec["maxLength"] = low + draw(st.integers(0, 6))
        if draw(st.booleans()):
            spec["format"] = draw(st.sampled_from(["email", "uuid", "date-time", "date", "ipv4"]))
            spec.pop("minLength", None), spec.pop("maxLength", None)
        elif draw(st.integers(0, 4)) == 0:
            spec["enum"] = draw(st.lists(st.text(max_size=5), min_size=1, max_size=3, unique=True))
            spec.pop("minLength", None), spec.pop("maxLength", None)
        elif draw(st.integers(0, 4)) == 0:
            spec["pattern"] = draw(st.sampled_from(["^[a-z]+$", "^ORD-[0-9]{3}$", "x"]))
            spec.pop("minLength", None), spec.pop("maxLength", None)
    elif kind in ("number", "integer"):
        bound = draw(st.integers(-1000, 1000))
        key = draw(
            st.sampled_from(["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", None])
        )
        if key is not None:
            spec[key] = bound
    elif kind == "array":
        spec["items"] = draw(compact_fields(depth + 1))
        spec["items"].pop("required", None)
        if draw(st.booleans()):
            spec["maxItems"] = draw(st.integers(0, 4))
    elif kind == "object":
        spec["properties"] = draw(
            st.dictionaries(st.text(min_size=1, max_size=6), compact_fields(depth + 1), max_size=3)
        )
    return spec


compact_schemas = st.builds(
    lambda fields: {"properties": fields},
    st.dictionaries(st.text(min_size=1, max_size=8), compact_fields(), max_size=5),
)
PATTERN_VALUES = {
    "^[a-z]+$": st.from_regex(r"[a-z]+", fullmatch=True),
    "^ORD-[0-9]{3}$": st.from_regex(r"ORD-[0-9]{3}", fullmatch=True),
    "x": st.text(max_size=4).map(lambda s: s + "x"),
}
FORMAT_VALUES = {
    "email": "someone@example.com",
    "uuid": "123e4567-e89b-42d3-a456-426614174000",
    "date-time": "2024-01-15T14:00:00Z",
    "date": "2024-01-15",
    "ipv4": "203.0.113.9",
}


def satisfying(spec: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values that satisfy one JSON Schema node as `to_json_schema` writes the compact form."""
    kind = spec.get("type")
    if "enum" in spec:
        return st.sampled_from(spec["enum"])
    if kind == "string":
        if "format" in spec:
            return st.just(FORMAT_VALUES[spec["format"]])
        if "pattern" in spec:
            return PATTERN_VALUES[spec["pattern"]]
        low = spec.get("minLength", 0)
        return st.text(min_size=low, max_size=spec.get("maxLength", low + 8))
    if kind in ("number", "integer"):
        low, high = (
            spec.get("minimum", spec.get("exclusiveMinimum")),
            spec.get("maximum", spec.get("exclusiveMaximum")),
        )
        low = None if low is None else low + ("exclusiveMinimum" in spec)
        high = None if high is None else high - ("exclusiveMaximum" in spec)
        whole = st.integers(min_value=low, max_value=high)
        if kind == "integer":
            return whole
        return whole | st.floats(
            min_value=low, max_value=high, allow_nan=False, allow_infinity=False
        )
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        return st.lists(satisfying(spec["items"]), max_size=spec.get("maxItems", 3))
    if kind == "object":
        required = set(spec.get("required", []))
        fields = spec.get("properties", {})
        return st.fixed_dictionaries(
            {name: satisfying(sub) for name, sub in fields.items() if name in required},
            optional={
                name: satisfying(sub) for name, sub in fields.items() if name not in required
            },
        )
    return json_values


@st.composite
def schema_and_valid_value(draw: st.DrawFn) -> tuple[dict[str, Any], Any]:
    definition = draw(compact_schemas)
    try:
        schema, _ = to_json_schema(definition)
    except InvalidSchema:
        assume(False)
        raise
    return schema, draw(satisfying(schema))


def shape(violations: list[Violation]) -> list[tuple[str, str]]:
    return sorted({(v.field, v.type) for v in violations})


@PROPERTY
@given(case=schema_and_valid_value())
def test_values_built_to_satisfy_a_schema_have_no_violations(
    case: tuple[dict[str, Any], Any],
) -> None:
    schema, value = case
    assert CompiledSchema(schema).validate(value, "properties") == []


@PROPERTY
@given(definition=compact_schemas, value=json_objects | json_values)
def test_validation_never_raises_and_the_shortcuts_are_exact(
    definition: dict[str, Any], value: Any
) -> None:
    try:
        schema, _ = to_json_schema(definition)
    except InvalidSchema:
        return
    compiled = CompiledSchema(schema)
    # The same schema with every value taken through `is_valid`, the library's errors on the
    # whole value (not property by property, nor worded from a property's one keyword) and the
    # walker.
    thorough = CompiledSchema(schema)
    thorough._is_clean = None
    thorough.accepts = lambda value: False
    thorough._by_property = None
    found = thorough.validate(value, "properties")
    assert compiled.validate(value, "properties") == found
    assert shape(found) == sorted(set(shape(found)))


@PROPERTY
@given(definition=compact_schemas, data=st.data())
def test_errors_asked_property_by_property_are_the_whole_values(
    definition: dict[str, Any], data: st.DataObject
) -> None:
    """Objects holding some of the schema's properties with any values (and perhaps others):
    where the shortcuts find their violations."""
    try:
        schema, _ = to_json_schema(definition)
    except InvalidSchema:
        return
    names = sorted(definition["properties"])
    value = data.draw(
        st.dictionaries(
            st.sampled_from(names) if names else st.text(max_size=3),
            json_values,
            max_size=len(names) + 1,
        )
        | st.fixed_dictionaries({name: json_values for name in names})
    )
    thorough = CompiledSchema(schema)
    thorough._is_clean = None
    thorough.accepts = lambda value: False
    thorough._by_property = None
    assert CompiledSchema(schema).validate(value, "properties") == thorough.validate(
        value, "properties"
    )


def contract_of(
    definition: dict[str, Any], event_type: str, mode: str, undeclared: str, name: str = "*"
) -> EventContract:
    return EventContract(
        id=f"c-{event_type}-{name}",
        workspace_id="ws-1",
        name="property",
        event_type=event_type,  # type: ignore[arg-type]
        event_name=name,
        schema_definition=definition,
        enforcement_mode=mode,  # type: ignore[arg-type]
        undeclared_fields=undeclared,  # type: ignore[arg-type]
        status="active",
        version=1,
        created_at="2024-01-01T00:00:00.000Z",
        updated_at="2024-01-01T00:00:00.000Z",
    )


modes = st.sampled_from(["allow", "warn", "block"])


@PROPERTY
@given(
    definition=compact_schemas,
    event=segment_items | json_objects,
    event_type=st.sampled_from(sorted(TARGETS)),
    mode=modes,
    undeclared=modes,
)
def test_a_contract_set_never_raises_on_any_event(
    definition: dict[str, Any], event: CanonicalEvent, event_type: str, mode: str, undeclared: str
) -> None:
    try:
        to_json_schema(definition)
    except InvalidSchema:
        return
    contracts = ContractSet(
        [CompiledContract(contract_of(definition, event_type, mode, undeclared))]
    )
    for finding in contracts.check(event):
        schema_kept = [v for v in finding.violations if v.type != UNDECLARED_FIELD]
        assert len(schema_kept) <= MAX_KEPT_PER_KIND
        assert len(finding.violations) - len(schema_kept) <= MAX_KEPT_PER_KIND
        assert len(finding.actions) == len(finding.violations)
        assert finding.blocked == ("blocked" in finding.actions)
        for violation, action in zip(finding.violations, finding.actions, strict=True):
            policy = undeclared if violation.type == UNDECLARED_FIELD else mode
            assert action == {"allow": "allowed", "warn": "warned", "block": "blocked"}[policy]
            assert violation.message and violation.field.startswith(TARGETS[event_type])
    records = [
        {
            "violations": [
                {"type": v.type, "field": v.field, "action": a}
                for v, a in zip(f.violations, f.actions, strict=True)
            ]
        }
        for f in contracts.check(event)
    ]
    summary = summarise(records)
    assert summary["events"] == len(records)


@PROPERTY
@given(case=schema_and_valid_value(), event_type=st.sampled_from(sorted(TARGETS)), mode=modes)
def test_an_event_built_to_satisfy_its_contract_passes(
    case: tuple[dict[str, Any], Any], event_type: str, mode: str
) -> None:
    schema, value = case
    assume(isinstance(value, dict))
    # Values no store can hold (an empty key, ...) are refused at ingest, whatever the schema.
    assume(find_unstorable({TARGETS[event_type]: value}, limits.MAX_EVENT_DEPTH) is None)
    definition = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
    compiled = CompiledContract(contract_of(definition, event_type, mode, "block"))
    [event] = normalise_request(
        {
            "batch": [
                {
                    "type": event_type,
                    "event": "e",
                    "name": "n",
                    "userId": "u",
                    "groupId": "g",
                    TARGETS[event_type]: value,
                }
            ]
        },
        None,
        CTX,
        ids(),
    ).events
    assert compiled.check(event) is None
    assert ContractSet([compiled]).check(event) == []


@PROPERTY
@given(
    kinds=st.lists(
        st.sampled_from([UNDECLARED_FIELD, "Datatype-Mismatch", "Required-Missing"]), max_size=40
    )
)
def test_findings_are_capped_per_kind(kinds: list[str]) -> None:
    contract = contract_of({"properties": {}}, "track", "block", "warn")
    violations = [Violation(kind, f"properties.f{i}", "m") for i, kind in enumerate(kinds)]
    finding = judge(contract, violations)
    undeclared = [v for v in finding.violations if v.type == UNDECLARED_FIELD]
    assert len(undeclared) == min(MAX_KEPT_PER_KIND, kinds.count(UNDECLARED_FIELD))
    assert len(finding.violations) - len(undeclared) == min(
        MAX_KEPT_PER_KIND, len(kinds) - kinds.count(UNDECLARED_FIELD)
    )
