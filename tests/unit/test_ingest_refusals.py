"""Ingest refuses, per event and with the field at fault, what a store of the pipeline cannot
hold (Firestore maps, BigQuery JSON, UTF-8 JSON messages); its neighbours are accepted.

The rules are in shared/domain/storable.py; golden cases in tests/golden/normalise/
(`unstorable_values`, `request_error_envelope_unstorable`)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.domain import limits
from shared.domain.poison import firestore_storable
from shared.domain.sources import EventSource
from shared.domain.storable import INT64_MAX, INT64_MIN, OversizedInteger, find_unstorable
from tests.fakes import FakeServices
from tests.functions import function_client
from tests.tenants import Tenant
from tests.unit.conftest import published


def send_batch(source: EventSource, raw_items: list[str]) -> Any:
    """POST raw JSON items (so that escapes such as `\\ud800` reach the server as sent)."""
    body = '{"batch": [' + ",".join(raw_items) + "]}"
    return function_client("ingest").post(
        "/v1/batch", data=body.encode(), headers={"X-Write-Key": source.key}
    )


GOOD = '{"type": "track", "event": "Good", "userId": "u", "messageId": "good"}'


def bad(fields: str) -> str:
    return '{"type": "track", "event": "Bad", "userId": "u", "messageId": "bad", ' + fields + "}"


# --- the reproductions: a batch with one bad event and a good one ---------------------------


@pytest.mark.parametrize(
    ("raw", "reason", "field"),
    [
        # Was answered 200 and published; process then failed on it about once a second.
        (
            '{"type": "track", "event": "Bad", "userId": "u", "messageId": "x-\\ud800"}',
            limits.NOT_UNICODE,
            "messageId",
        ),
        # Was accepted; a dead letter holding it could never be written to Firestore.
        (bad('"properties": {"": 1}'), limits.EMPTY_KEY, "properties"),
        (bad('"properties": {"__key__": 1}'), limits.RESERVED_KEY, "properties.__key__"),
        (
            bad('"properties": {"n": 9223372036854775808}'),
            limits.INTEGER_OUT_OF_RANGE,
            "properties.n",
        ),
        (
            bad('"properties": {"n": ' + "7" * 5000 + "}"),
            limits.INTEGER_OUT_OF_RANGE,
            "properties.n",
        ),
        (bad('"traits": {"\\udfff": 1}'), limits.NOT_UNICODE, "traits.\\udfff"),
        (
            bad('"context": {"page": {"title": "\\ud83d"}}'),
            limits.NOT_UNICODE,
            "context.page.title",
        ),
        (
            bad('"properties": {"' + "k" * 1020 + '": 1}'),
            limits.FIELD_PATH_TOO_LONG,
            "properties." + "k" * 1020,
        ),
    ],
    ids=[
        "lone-surrogate-message-id",
        "empty-key",
        "reserved-key",
        "integer-beyond-64-bits",
        "integer-beyond-4300-digits",
        "lone-surrogate-key",
        "lone-surrogate-value",
        "key-path-too-long",
    ],
)
def test_a_bad_event_is_refused_with_its_field_and_its_neighbour_accepted(
    services: FakeServices, source: EventSource, raw: str, reason: str, field: str
) -> None:
    response = send_batch(source, [raw, GOOD])
    assert response.status_code == 200, response.get_data(as_text=True)
    answer = response.get_json()
    assert answer["accepted"] == 1
    [rejection] = answer["rejected"]
    assert (rejection["index"], rejection["reason"], rejection["field"]) == (0, reason, field)
    assert [event["messageId"] for event in published(services, source)] == ["good"]


def test_the_refused_message_id_is_echoed_as_the_escape_it_came_as(source: EventSource) -> None:
    raw = '{"type": "track", "event": "Bad", "userId": "u", "messageId": "x-\\ud800"}'
    response = send_batch(source, [raw])
    assert b'"messageId":"x-\\ud800"' in response.get_data()


def test_a_single_refused_event_is_400_naming_the_field(
    services: FakeServices, source: EventSource
) -> None:
    response = function_client("ingest").post(
        "/v1/track",
        data=b'{"event": "x", "userId": "u", "properties": {"a": {"": 1}}}',
        headers={"X-Write-Key": source.key},
    )
    assert response.status_code == 400
    body = response.get_json()
    assert (body["message"], body["field"]) == (limits.EMPTY_KEY, "properties.a")
    assert published(services, source) == []


def test_what_the_envelope_holds_refuses_the_whole_batch(
    services: FakeServices, source: EventSource
) -> None:
    body = '{"batch": [' + GOOD + '], "context": {"traits": {"\\ud800": 1}}}'
    response = function_client("ingest").post(
        "/v1/batch", data=body.encode(), headers={"X-Write-Key": source.key}
    )
    assert response.status_code == 400
    assert response.get_json()["field"] == "context.traits.\\ud800"
    assert published(services, source) == []


def test_a_stream_event_is_refused_the_same_way(services: FakeServices, tenant: Tenant) -> None:
    workspace_id, auth = tenant
    stream_source = services.sources.create(workspace_id, "App", "t")
    response = function_client("streams").post(
        "/v1/streams/events",
        json={"sourceId": stream_source.id, "type": "Signed Up", "properties": {"": 1}},
        headers=auth,
    )
    assert response.status_code == 400, response.get_data(as_text=True)
    body = response.get_json()
    assert (body["message"], body["field"]) == (limits.EMPTY_KEY, "properties")
    assert published(services, stream_source) == []


# --- management bodies: what no store can take is refused by field ----------------------------


@pytest.mark.parametrize(
    ("function", "path", "raw", "field"),
    [
        # Free-form JSON (a schema) holding a lone surrogate: the write to Firestore failed.
        (
            "event_contracts",
            "event-contracts",
            b'{"name": "c", "event_type": "track", "schema_definition": '
            b'{"type": "object", "properties": {"a": {"description": "\\ud800"}}}}',
            "schema_definition.properties.a.description",
        ),
        # A number longer than Python reads failed the body's parsing.
        (
            "event_keys",
            "event-keys",
            b'{"name": "web", "extra": [1, {"n": ' + b"1" * 5000 + b"}]}",
            "extra[1].n",
        ),
    ],
)
def test_a_configuration_body_that_cannot_be_stored_is_400(
    tenant: Tenant, function: str, path: str, raw: bytes, field: str
) -> None:
    workspace_id, auth = tenant
    response = function_client(function).post(
        f"/api/v1/workspaces/{workspace_id}/{path}",
        data=raw,
        headers={**auth, "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["field"] == field


# --- the rules themselves, at their boundaries -----------------------------------------------


def test_integers_at_the_64_bit_limits_are_stored_and_one_past_them_is_not() -> None:
    assert find_unstorable({"a": [INT64_MAX, INT64_MIN]}, 16) is None
    for value in (INT64_MAX + 1, INT64_MIN - 1, 2**64 - 1, OversizedInteger(5000)):
        problem = find_unstorable({"a": {"b": value}}, 16)
        assert problem is not None
        assert (problem.reason, problem.field) == (limits.INTEGER_OUT_OF_RANGE, "a.b")


def test_key_paths_are_measured_in_utf8_bytes_joined_by_dots() -> None:
    room = limits.MAX_FIELD_PATH_BYTES - len("a.")
    assert find_unstorable({"a": {"k" * room: 1}}, 16) is None
    problem = find_unstorable({"a": {"k" * (room + 1): 1}}, 16)
    assert problem is not None and problem.reason == limits.FIELD_PATH_TOO_LONG
    # é is two bytes: half as many fit.
    assert find_unstorable({"a": {"é" * (room // 2): 1}}, 16) is None
    assert find_unstorable({"a": {"é" * (room // 2 + 1): 1}}, 16) is not None
    # Array positions are not part of a field path.
    assert find_unstorable({"a": [{"k" * room: 1}]}, 16) is None


def test_the_walk_knows_where_it_starts() -> None:
    room = limits.MAX_FIELD_PATH_BYTES - len("context.")
    assert find_unstorable({"k" * room: 1}, 16, ("context",)) is None
    assert find_unstorable({"k" * (room + 1): 1}, 16, ("context",)) is not None
    assert find_unstorable({"a": {}}, 2, ("context",)) is not None  # depth counts from there


@pytest.mark.parametrize(
    "value",
    [{"__": 1}, {"_x_": 1}, {"__x": 1}, {"x__": 1}, {"a": [{"b": [1, "c", None, 1.5]}]}],
)
def test_what_firestore_takes_is_not_refused(value: Any) -> None:
    assert find_unstorable(value, 16) is None


def test_deep_hostile_nesting_is_refused_without_recursion() -> None:
    value: Any = 1
    for _ in range(100_000):
        value = {"a": value}
    problem = find_unstorable(value, limits.MAX_EVENT_DEPTH)
    assert problem is not None and problem.reason == limits.TOO_DEEP


def test_arrays_inside_arrays_are_valid_segment_data_and_accepted(
    services: FakeServices, source: EventSource
) -> None:
    """Firestore refuses them in a map, but nothing keeps an accepted event as a map: a dead
    letter of such an event holds it as JSON text (shared/domain/poison.py)."""
    path = [[52.5, 13.4], [48.1, 11.6]]
    item = json.dumps(
        {"type": "track", "event": "Route", "userId": "u", "properties": {"path": path}}
    )
    assert send_batch(source, [item]).status_code == 200
    [event] = published(services, source)
    assert event["properties"]["path"] == path
    assert not firestore_storable(event)
