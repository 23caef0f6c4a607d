"""Ingest normalisation: golden input/expected pairs, request-level errors, limits, the schema.

Golden cases live in tests/golden/normalise/<case>.json; adding a case means adding a file.
`UPDATE_GOLDEN=1 pytest tests/unit/test_normalise.py` rewrites every `expected` (review the diff).
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.domain import limits
from shared.domain.errors import InvalidRequest, PayloadTooLarge, StreamsError
from shared.domain.event import CanonicalEvent
from shared.domain.events import (
    CANONICAL_FIELDS,
    IngestContext,
    NormalisedBatch,
    Rejection,
    format_timestamp,
    normalise_request,
    normalise_stream_event,
    parse_timestamp,
)

ROOT = Path(__file__).resolve().parents[2]
GOLDEN_DIR = ROOT / "tests" / "golden" / "normalise"
SCHEMA = json.loads((ROOT / "shared" / "schemas" / "event.schema.json").read_text())
GOLDEN_FILES = sorted(GOLDEN_DIR.glob("*.json"))
WORKSPACE_ID = "ws-golden"
SOURCE_ID = "src-golden"
RECEIVED_AT = datetime(2024, 1, 15, 15, 0, 5, 250000, tzinfo=UTC)


def counter_ids() -> Callable[[], str]:
    """Deterministic message ids: gen-0001, gen-0002, ..."""
    numbers = itertools.count(1)
    return lambda: f"gen-{next(numbers):04d}"


def ingest_context(received_at: datetime = RECEIVED_AT, ip: str | None = None) -> IngestContext:
    return IngestContext(WORKSPACE_ID, SOURCE_ID, received_at, ip)


def run_case(case: dict[str, Any]) -> dict[str, Any]:
    """The case's outcome in the golden files' shape: events and rejections, or an error."""
    received_at = datetime.fromisoformat(case["received_at"])
    ctx = IngestContext(WORKSPACE_ID, SOURCE_ID, received_at, case["request_ip"])
    try:
        if case.get("entry") == "normalise_stream_event":
            outcome = normalise_stream_event(case["body"], ctx, counter_ids())
            result = (
                NormalisedBatch([], [outcome])
                if isinstance(outcome, Rejection)
                else NormalisedBatch([outcome], [])
            )
        else:
            result = normalise_request(case["body"], case["call_type"], ctx, counter_ids())
    except StreamsError as error:
        return {
            "error": {
                "class": type(error).__name__,
                "status": error.status,
                "message": error.message,
                "field": error.field,
            }
        }
    return {"events": result.events, "rejections": [asdict(r) for r in result.rejections]}


def all_golden_events() -> list[CanonicalEvent]:
    cases = [json.loads(path.read_text()) for path in GOLDEN_FILES]
    return [event for case in cases for event in run_case(case).get("events", [])]


def test_golden_cases_exist() -> None:
    assert len(GOLDEN_FILES) >= 18


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=[p.stem for p in GOLDEN_FILES])
def test_golden(path: Path) -> None:
    case = json.loads(path.read_text())
    body_before = copy.deepcopy(case["body"])
    actual = json.loads(json.dumps(run_case(case)))  # the published form: JSON, not Python
    assert case["body"] == body_before, "normalisation must not mutate its input"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        case["expected"] = actual
        try:
            path.write_text(json.dumps(case, indent=2, ensure_ascii=False) + "\n")
        except UnicodeEncodeError:  # a lone surrogate echoed back: kept as its escape
            path.write_text(json.dumps(case, indent=2) + "\n")
        return
    assert actual == case["expected"]


# ---- request-level errors: raised, never per event


@pytest.mark.parametrize("body", [[], "text", None, 3])
def test_body_must_be_an_object(body: Any) -> None:
    with pytest.raises(InvalidRequest, match="JSON object"):
        normalise_request(body, None, ingest_context())


def test_unknown_call_type_is_a_request_error() -> None:
    with pytest.raises(InvalidRequest):
        normalise_request({"userId": "u1"}, "purchase", ingest_context())


@pytest.mark.parametrize("batch", [{}, "x", None])
def test_batch_must_be_a_list(batch: Any) -> None:
    with pytest.raises(InvalidRequest) as caught:
        normalise_request({"batch": batch}, None, ingest_context())
    assert caught.value.field == "batch"


@pytest.mark.parametrize("key", ["context", "integrations"])
def test_envelope_objects_must_be_objects(key: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        normalise_request({"batch": [], key: "x"}, None, ingest_context())
    assert caught.value.field == key


def test_envelope_sent_at_must_parse() -> None:
    with pytest.raises(InvalidRequest) as caught:
        normalise_request({"batch": [], "sent_at": 5}, None, ingest_context())
    assert caught.value.field == "sentAt"


def track(index: int, **fields: Any) -> dict[str, Any]:
    return {"type": "track", "event": "E", "userId": "u1", "messageId": f"m-{index}", **fields}


def test_batch_event_count_limit() -> None:
    full = {"batch": [track(i) for i in range(limits.MAX_BATCH_EVENTS)]}
    assert len(normalise_request(full, None, ingest_context()).events) == 2_500
    with pytest.raises(PayloadTooLarge) as caught:
        normalise_request({"batch": [*full["batch"], track(-1)]}, None, ingest_context())
    assert caught.value.status == 413


def test_empty_batch_is_accepted() -> None:
    assert normalise_request({"batch": []}, None, ingest_context()) == NormalisedBatch([], [])


# ---- per-event limits


def test_limit_constants() -> None:
    assert limits.MAX_EVENT_BYTES == 32_768
    assert limits.MAX_REQUEST_BYTES == 512_000
    assert limits.MAX_BATCH_EVENTS == 2_500
    assert limits.MAX_MESSAGE_ID_CHARS == 99


def padded_to(size: int) -> dict[str, Any]:
    """A track item whose compact JSON is exactly `size` bytes."""
    item = track(0, properties={"pad": ""})
    base = len(json.dumps(item, separators=(",", ":")))
    item["properties"]["pad"] = "x" * (size - base)
    return item


@pytest.mark.parametrize("filler", ["é", "😀"])
def test_event_size_limit_counts_utf8_bytes(filler: str) -> None:
    """Half the limit in characters, but over it in UTF-8 bytes."""
    item = track(0, properties={"pad": filler * (limits.MAX_EVENT_BYTES // 2)})
    [rejection] = normalise_request(item, "track", ingest_context()).rejections
    assert rejection.reason == limits.TOO_LARGE


def test_event_of_exactly_the_limit_is_accepted_and_one_byte_more_is_not() -> None:
    exact = padded_to(limits.MAX_EVENT_BYTES)
    assert normalise_request(exact, "track", ingest_context()).rejections == []
    over = padded_to(limits.MAX_EVENT_BYTES + 1)
    [rejection] = normalise_request(over, "track", ingest_context()).rejections
    assert rejection == Rejection("m-0", limits.TOO_LARGE, 0, None)


def test_lone_surrogate_in_an_oversize_event_is_refused_without_crashing() -> None:
    item = track(0, properties={"pad": "\ud800" * 11_000})
    [rejection] = normalise_request(item, "track", ingest_context()).rejections
    assert (rejection.reason, rejection.field) == (limits.NOT_UNICODE, "properties.pad")


def test_message_id_length_limit() -> None:
    body = {"batch": [track(0, messageId="m" * 99), track(1, messageId="m" * 100)]}
    result = normalise_request(body, None, ingest_context())
    assert [e["messageId"] for e in result.events] == ["m" * 99]
    assert result.rejections == [
        Rejection("m" * 100, limits.MESSAGE_ID_TOO_LONG, 1, "messageId"),
    ]


def test_default_message_id_is_a_uuid4() -> None:
    [event] = normalise_request({"userId": "u1"}, "identify", ingest_context()).events
    assert uuid.UUID(event["messageId"]).version == 4


def test_rejected_events_do_not_consume_generated_ids() -> None:
    body = {"batch": [{"type": "track", "userId": "u1"}, {"type": "identify", "userId": "u1"}]}
    result = normalise_request(body, None, ingest_context(), counter_ids())
    assert [e["messageId"] for e in result.events] == ["gen-0001"]


# ---- timestamps


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-15T15:00:00Z", "2024-01-15T15:00:00.000Z"),
        ("2024-01-15T15:00:00.123456789Z", "2024-01-15T15:00:00.123Z"),
        ("2024-01-15T16:30:00.5+01:30", "2024-01-15T15:00:00.500Z"),
        ("2024-01-15T15:00:00", "2024-01-15T15:00:00.000Z"),
        ("2024-01-15 15:00:00.1z", "2024-01-15T15:00:00.100Z"),
        ("2024-01-15", "2024-01-15T00:00:00.000Z"),
    ],
)
def test_parse_and_format_timestamps(text: str, expected: str) -> None:
    moment = parse_timestamp(text)
    assert moment is not None
    assert format_timestamp(moment) == expected


@pytest.mark.parametrize("text", ["", "soon", "2024-02-30T00:00:00Z", "0001-01-01T00:00:00+01:00"])
def test_unparseable_timestamps(text: str) -> None:
    assert parse_timestamp(text) is None


@pytest.mark.parametrize("skew_s", [-86_400, -3.5, 0, 0.001, 42, 3 * 86_400])
@pytest.mark.parametrize("latency_ms", [0, 180])
def test_skew_identity(skew_s: float, latency_ms: int) -> None:
    """timestamp = originalTimestamp - clockSkewMs, and it lands where the event really was."""
    happened = datetime(2024, 1, 15, 14, 59, 0, 125000, tzinfo=UTC)  # server-clock truth
    sent = happened + timedelta(seconds=2)
    received = sent + timedelta(milliseconds=latency_ms)
    client = timedelta(seconds=skew_s)  # client clock = server clock + skew
    body = {
        "batch": [track(0, timestamp=format_timestamp((happened + client).replace(tzinfo=None)))],
        "sentAt": format_timestamp((sent + client).replace(tzinfo=None)),
    }
    [event] = normalise_request(body, None, ingest_context(received)).events
    assert event["clockSkewMs"] == round(skew_s * 1000) - latency_ms
    assert event["originalTimestamp"] is not None
    original = datetime.fromisoformat(event["originalTimestamp"])
    corrected = datetime.fromisoformat(event["timestamp"])
    assert corrected == original - timedelta(milliseconds=event["clockSkewMs"])
    assert corrected == happened + timedelta(milliseconds=latency_ms)


def test_naive_received_at_is_utc() -> None:
    naive = RECEIVED_AT.replace(tzinfo=None)
    [event] = normalise_request({"userId": "u1"}, "identify", ingest_context(naive)).events
    assert event["receivedAt"] == event["timestamp"] == "2024-01-15T15:00:05.250Z"


def test_correction_out_of_range_is_a_rejection() -> None:
    body = track(0, timestamp="0001-01-01T00:00:01Z", sentAt="9999-12-31T00:00:00Z")
    [rejection] = normalise_request(body, "track", ingest_context()).rejections
    assert (rejection.reason, rejection.field) == (limits.CORRECTION_OUT_OF_RANGE, "timestamp")


# ---- /v1/streams/events


def test_stream_event_requires_a_type_and_source() -> None:
    ctx = ingest_context()
    assert normalise_stream_event({"sourceId": SOURCE_ID, "userId": "u1"}, ctx) == Rejection(
        None, limits.TYPE_REQUIRED, 0, "type"
    )
    assert normalise_stream_event({"type": "x", "userId": "u1"}, ctx) == Rejection(
        None, limits.SOURCE_ID_REQUIRED, 0, "sourceId"
    )
    assert normalise_stream_event([], ctx) == Rejection(None, limits.NOT_AN_OBJECT, 0)


# ---- every output event matches the canonical schema


def test_golden_events_have_exactly_the_canonical_keys() -> None:
    events = all_golden_events()
    assert events
    assert tuple(SCHEMA["required"]) == CANONICAL_FIELDS
    assert list(SCHEMA["properties"]) == list(CANONICAL_FIELDS)
    for event in events:
        assert tuple(event) == CANONICAL_FIELDS


JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "object": dict,
    "null": type(None),
}


def field_rules(name: str) -> dict[str, Any]:
    """A top-level field's schema with `$ref`s (and `anyOf` of one type plus null) flattened."""
    rule = dict(SCHEMA["properties"][name])
    if "$ref" in rule:
        rule |= SCHEMA["$defs"][rule.pop("$ref").rsplit("/", 1)[1]]
    return rule


def test_golden_events_match_the_schema_field_types() -> None:
    """A dependency-free check of each field's type, enum, pattern and length."""
    for event in all_golden_events():
        for name, value in event.items():
            rule = field_rules(name)
            options = rule.get("anyOf", [rule])
            assert any(value_matches(value, option) for option in options), (name, value)


def value_matches(value: Any, rule: dict[str, Any]) -> bool:
    if "$ref" in rule:
        rule = SCHEMA["$defs"][rule["$ref"].rsplit("/", 1)[1]]
    if "enum" in rule:
        return value in rule["enum"]
    types = rule["type"] if isinstance(rule["type"], list) else [rule["type"]]
    if not any(isinstance(value, JSON_TYPES[t]) for t in types) or isinstance(value, bool):
        return False
    if isinstance(value, str):
        if "pattern" in rule and not re.fullmatch(rule["pattern"], value):
            return False
        return rule.get("minLength", 0) <= len(value) <= rule.get("maxLength", len(value))
    return True


def test_golden_events_validate_against_the_schema() -> None:
    jsonschema = pytest.importorskip(
        "jsonschema", reason="jsonschema is not installed in .venv (not a project dependency)"
    )
    validator = jsonschema.Draft202012Validator(SCHEMA)
    validator.check_schema(SCHEMA)
    for event in all_golden_events():
        validator.validate(json.loads(json.dumps(event)))
