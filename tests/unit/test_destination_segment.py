"""The Segment-compatible destination against a local receiver that behaves like Streams' own
ingest (`/v1/batch`): it checks the Basic write key, the 500 KB body and 2,500-call limits,
and normalises each call with Streams' real normalisation (32 KB per call, identity, messageId
length, ...), answering `200 {"accepted", "rejected"}` as ingest does. The receiver can also be
told to answer the other receivers' documented errors (Segment's 400, RudderStack's 401/404/413,
429 with Retry-After, 5xx, a load balancer's 460).
"""

from __future__ import annotations

import base64
import copy
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from shared.destinations import (
    CONNECTORS,
    merge_config,
    public_config,
    stored_config,
    validate_config,
)
from shared.destinations.base import DeletionSubject, EventRejected, OutboundRequest, json_bytes
from shared.destinations.deletion import deletion_request
from shared.destinations.segment import MAX_BATCH_BYTES, SegmentConfig, call
from shared.domain.errors import StreamsError
from shared.domain.event import CanonicalEvent, EventKey
from shared.domain.events import IngestContext, normalise_request
from shared.domain.ids import isoformat
from shared.domain.limits import MAX_REQUEST_BYTES
from shared.ports import SendResult
from tests.vendor_fakes import Answer, FakeVendor, Received, fake_vendor, send_all

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "destinations" / "segment"
WRITE_KEY = "wk_SegmentFakeWriteKey-0123456789abcdefghijklmno"
NOW = datetime(2024, 1, 15, 15, 0, 6, tzinfo=UTC)
# What a client sent that arrives at the receiving Streams unchanged.
AS_SENT: tuple[EventKey, ...] = (
    "type",
    "event",
    "name",
    "userId",
    "anonymousId",
    "groupId",
    "previousId",
    "properties",
    "traits",
    "context",
    "integrations",
    "extras",
)


def golden_event(case: str, message_id: str, **changes: Any) -> CanonicalEvent:
    """A golden case's event under another messageId, with keys changed or added (as a
    transformation may: ids of other JSON types, keys the canonical event does not have)."""
    event: dict[str, Any] = copy.deepcopy(
        json.loads((GOLDEN / f"{case}.json").read_text())["event"]
    )
    event.update(messageId=message_id, **changes)
    return cast(CanonicalEvent, event)


@dataclass
class StreamsIngest:
    """The receiver: `script` answers are given first (one per request), then ingest's own."""

    write_key: str = WRITE_KEY
    script: list[Answer] = field(default_factory=list)
    max_body_bytes: int = MAX_REQUEST_BYTES
    events: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, request: Received) -> Answer:
        if request.method != "POST" or request.path != "/v1/batch":
            return Answer(404, {"code": "not_found", "message": "no such path"})
        header = request.headers.get("authorization", "")
        key = None
        if header.startswith("Basic "):
            key = base64.b64decode(header[6:]).decode().partition(":")[0]
        if key != self.write_key:
            # Streams' answer; RudderStack's is 401 {"msg": "Invalid Write Key"}.
            return Answer(401, {"code": "unauthorized", "message": "Invalid Write Key"})
        if len(request.body) > self.max_body_bytes:
            return Answer(
                413, {"code": "payload_too_large", "message": "Request size exceeds max limit"}
            )
        if self.script:
            return self.script.pop(0)
        try:
            body = request.json()
            assert request.headers["content-type"] == "application/json"
            assert body.get("writeKey") in (None, self.write_key)
            batch = normalise_request(
                body, None, IngestContext("ws-receiver", "src-receiver", NOW, "198.51.100.7")
            )
        except StreamsError as error:
            return Answer(error.status, {"code": error.code, "message": error.message})
        except ValueError:
            return Answer(400, {"code": "invalid_request", "message": "Invalid JSON"})
        self.events.extend(dict(event) for event in batch.events)
        rejected = [
            {"index": r.index, "messageId": r.message_id, "reason": r.reason, "field": r.field}
            for r in batch.rejections
        ]
        answer = {"success": True, "accepted": len(batch.events), "rejected": rejected}
        return Answer(200, {**answer, "messageId": None})


@pytest.fixture(scope="module")
def server() -> Iterator[FakeVendor]:
    # One server for the module: stopping one takes half a second (serve_forever's poll).
    with fake_vendor(StreamsIngest()) as vendor:
        yield vendor


@pytest.fixture
def ingest(server: FakeVendor) -> tuple[StreamsIngest, FakeVendor]:
    """A fresh receiver on the module's server, with nothing received yet."""
    receiver = StreamsIngest()
    server.handler = receiver
    server.received.clear()
    return receiver, server


def config_for(vendor: FakeVendor, write_key: str = WRITE_KEY) -> SegmentConfig:
    config = validate_config("segment", {"endpoint": vendor.url, "write_key": write_key})
    assert isinstance(config, SegmentConfig)
    return config


def test_a_batch_of_250_events_is_three_requests_and_each_event_arrives_as_it_was(
    ingest: tuple[StreamsIngest, FakeVendor],
) -> None:
    receiver, vendor = ingest
    cases = ["track", "identify", "page", "screen", "group", "alias", "track_extras_kept"]
    events = [golden_event(cases[i % len(cases)], f"fwd-{i:04d}") for i in range(250)]
    sent = send_all("segment", config_for(vendor), events, now=NOW)
    assert [s.status for s in sent] == ["delivered"] * 3
    assert [len(s.owners) for s in sent] == [100, 100, 50]  # analytics-python's upload size
    assert [len(r.json()["batch"]) for r in vendor.received] == [100, 100, 50]
    assert [e["messageId"] for e in receiver.events] == [e["messageId"] for e in events]
    for original, received in zip(events, receiver.events, strict=True):
        # The receiver's own skew correction lands on the event's corrected time exactly
        # (sent and received at NOW here), and everything a client sent is as it was.
        assert received["timestamp"] == original["timestamp"]
        assert received["clockSkewMs"] == 0
        for key in AS_SENT:
            assert received[key] == original[key], key
        assert (received["sourceId"], received["workspaceId"]) == ("src-receiver", "ws-receiver")
    # Segment and RudderStack correct from originalTimestamp (Streams reads timestamp first):
    # receivedAt - (sentAt - originalTimestamp) must land on the event's time too.
    calls = [(r.json()["sentAt"], c) for r in vendor.received for c in r.json()["batch"]]
    for original, (sent_at, forwarded) in zip(events, calls, strict=True):
        skew = datetime.fromisoformat(sent_at) - datetime.fromisoformat(
            forwarded["originalTimestamp"]
        )
        assert isoformat(NOW - skew) == original["timestamp"]


def test_large_calls_are_split_by_bytes_within_500_kb(
    ingest: tuple[StreamsIngest, FakeVendor],
) -> None:
    _, vendor = ingest
    events = []
    for i in range(40):
        event = golden_event("track", f"big-{i:03d}")
        event["properties"] = {"payload": "y" * 30_000}
        events.append(event)
    size = len(json_bytes(call(events[0], NOW)))  # every call is this size
    sent = send_all("segment", config_for(vendor), events, now=NOW)
    assert {s.status for s in sent} == {"delivered"}
    assert len(vendor.received) == math.ceil(40 / (MAX_BATCH_BYTES // size))
    assert all(len(r.body) <= 500_000 for r in vendor.received)  # Segment's 500 KB, strictly


def test_bad_write_key_fails(ingest: tuple[StreamsIngest, FakeVendor]) -> None:
    _, vendor = ingest
    [sent] = send_all("segment", config_for(vendor, "wk_wrong"), [golden_event("track", "a")])
    assert (sent.status, sent.result.http_status) == ("failed", 401)
    assert "Invalid Write Key" in sent.result.detail


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        (Answer(429, {"code": "too_many_requests"}, {"Retry-After": "3"}), "retry"),
        (Answer(503, {"code": "unavailable"}, {"Retry-After": "5"}), "retry"),
        (Answer(500, {"code": "internal_error"}), "retry"),
        (Answer(502, "Bad Gateway"), "retry"),
        # A load balancer's "client closed the connection", which analytics-python retries.
        (Answer(460, ""), "retry"),
        # Neither changes on a retry (analytics-python gives up on both).
        (Answer(501, "Not Implemented"), "failed"),
        (Answer(505, "HTTP Version Not Supported"), "failed"),
        # Segment: a malformed or oversized request; RudderStack: a disabled source.
        (Answer(400, {"code": "invalid_request", "message": "Invalid JSON"}), "failed"),
        (Answer(404, {"msg": "Source is disabled"}), "failed"),
        (Answer(403, {"code": "forbidden"}), "failed"),
        # Segment and RudderStack accept with a plain 200.
        (Answer(200, {"success": True}), "delivered"),
        (Answer(200, "OK"), "delivered"),
    ],
)
def test_answers_are_classified(
    ingest: tuple[StreamsIngest, FakeVendor], answer: Answer, status: str
) -> None:
    receiver, vendor = ingest
    receiver.script.append(answer)
    [sent] = send_all("segment", config_for(vendor), [golden_event("track", "cls-1")])
    assert sent.status == status
    assert sent.result.http_status == answer.status
    if answer.status == 429:
        assert sent.result.retry_after_seconds == 3.0


def test_calls_the_receiver_refuses_fail_the_batch_with_its_reasons(
    ingest: tuple[StreamsIngest, FakeVendor],
) -> None:
    receiver, vendor = ingest
    events = [golden_event("track", f"ok-{i}") for i in range(3)]
    # A transformation may write any text as messageId; Streams' ingest refuses over 99 chars.
    events[1]["messageId"] = "m" * 120
    [sent] = send_all("segment", config_for(vendor), events)
    assert (sent.status, sent.result.http_status, sent.owners) == ("failed", 200, (0, 1, 2))
    assert "messageId is longer than 99 characters" in sent.result.detail
    assert len(receiver.events) == 2  # a replay resends these two: duplicates by messageId


def test_a_body_over_the_receivers_limit_fails_with_its_message(
    ingest: tuple[StreamsIngest, FakeVendor],
) -> None:
    # A RudderStack gateway may be set below Segment's 500 KB (Gateway.maxReqSizeInKB).
    receiver, vendor = ingest
    receiver.max_body_bytes = 100_000
    events = [golden_event("track", f"rs-{i}") for i in range(4)]
    for event in events:
        event["properties"] = {"payload": "z" * 30_000}  # 4 calls of 30 KB: one 120 KB body
    [sent] = send_all("segment", config_for(vendor), events)
    assert (sent.status, sent.result.http_status) == ("failed", 413)
    assert "Request size exceeds max limit" in sent.result.detail


def test_events_the_receivers_would_refuse_are_rejected_before_sending() -> None:
    connector, config = CONNECTORS["segment"], config_for_url("https://api.segment.io")
    anonymous = golden_event("track_without_identity_rejected", "anon-1")
    with pytest.raises(EventRejected, match="needs a userId or an anonymousId"):
        connector.parts(anonymous, config, now=NOW)
    large = golden_event("track", "large-1")
    large["properties"] = {"csv": "x" * 32_800}
    with pytest.raises(EventRejected, match="at most 32768 bytes"):
        connector.parts(large, config, now=NOW)
    # A numeric id (a transformation's) is an identity: receivers take it.
    numeric = golden_event("track", "num-1", userId=12345, anonymousId=None)
    [part] = connector.parts(numeric, config, now=NOW)
    assert part.payload["userId"] == 12345


def test_a_write_key_in_extras_or_added_keys_is_never_forwarded() -> None:
    extras = {"writeKey": "wk_other_source", "channel": "server", "sentAt": "x"}
    added = {"write_key": "wk_added_by_a_transformation", "campaign": {"name": "spring"}}
    forwarded = call(golden_event("track", "wk-1", extras=extras, **added), NOW)
    assert "writeKey" not in forwarded and "write_key" not in forwarded
    assert forwarded["channel"] == "server" and forwarded["campaign"] == {"name": "spring"}
    assert "sentAt" not in forwarded and "receivedAt" not in forwarded


def config_for_url(url: str) -> SegmentConfig:
    config = validate_config("segment", {"endpoint": url, "write_key": WRITE_KEY})
    assert isinstance(config, SegmentConfig)
    return config


def test_deletion_is_not_possible_through_the_tracking_api() -> None:
    subject = DeletionSubject("user_id", "user-42", "privacy@example.com")
    stored = stored_config(config_for_url("https://api.segment.io"))
    reason = deletion_request("segment", stored, subject)
    assert isinstance(reason, str)
    assert "Tracking API takes no deletions" in reason and "Public API" in reason


@pytest.mark.parametrize(
    ("raw", "field_name"),
    [
        ({"write_key": WRITE_KEY}, "endpoint"),
        ({"endpoint": "https://api.segment.io"}, "write_key"),
        ({"endpoint": "https://api.segment.io", "write_key": ""}, "write_key"),
        ({"endpoint": "ftp://api.segment.io", "write_key": WRITE_KEY}, "endpoint"),
        ({"endpoint": "https://api.segment.io/v1/batch", "write_key": WRITE_KEY}, "endpoint"),
        ({"endpoint": "https://api.segment.io/?a=1", "write_key": WRITE_KEY}, "endpoint"),
        ({"endpoint": "https://k:s@api.segment.io", "write_key": WRITE_KEY}, "endpoint"),
        ({"endpoint": "https://api.segment.io", "write_key": WRITE_KEY, "region": "eu"}, "region"),
    ],
)
def test_config_errors_name_their_field(raw: dict[str, Any], field_name: str) -> None:
    with pytest.raises(StreamsError) as caught:
        validate_config("segment", raw)
    assert caught.value.field == f"config.{field_name}"
    assert WRITE_KEY not in caught.value.message


def test_the_write_key_is_write_only_and_scrubbed_from_answers(
    ingest: tuple[StreamsIngest, FakeVendor],
) -> None:
    receiver, vendor = ingest
    config = config_for(vendor)
    shown = json.dumps(public_config("segment", config)) + repr(config) + str(config)
    assert WRITE_KEY not in shown and "write_key" not in public_config("segment", config)
    request = CONNECTORS["segment"].request("batch", [{}], config, now=NOW)
    assert isinstance(request, OutboundRequest) and WRITE_KEY not in repr(request)
    basic = request.headers["Authorization"].removeprefix("Basic ")
    # A receiver that echoes what it was sent: the detail never shows the key nor its header.
    receiver.script.append(Answer(400, {"message": f"bad key {WRITE_KEY} / {basic}"}))
    [sent] = send_all("segment", config, [golden_event("track", "echo-1")])
    assert WRITE_KEY not in sent.result.detail and basic not in sent.result.detail
    assert "[redacted]" in sent.result.detail


def test_moving_the_endpoint_needs_the_write_key_again() -> None:
    stored = stored_config(config_for_url("https://api.segment.io"))
    with pytest.raises(StreamsError) as caught:
        merge_config("segment", stored, {"endpoint": "https://collector.attacker.example"})
    assert caught.value.field == "config.write_key"
    kept = merge_config("segment", stored, {"endpoint": "https://api.segment.io"})
    assert kept == config_for_url("https://api.segment.io")


def test_classify_reads_only_answers() -> None:
    classify = CONNECTORS["segment"].classify  # type: ignore[attr-defined]
    refused = SendResult("failed", None, "a private address", 1.0)
    assert classify(refused) is None
    rejected = b'{"success": true, "accepted": 0, "rejected": [{"index": 0}]}'
    assert classify(SendResult("delivered", 200, "HTTP 200", 1.0, body=rejected)) == "failed"
    assert classify(SendResult("delivered", 200, "HTTP 200", 1.0, body=b"[1]")) is None
    assert classify(SendResult("delivered", 200, "HTTP 200", 1.0, body=b"{not json")) is None
