"""PostHog: a fake capture service that checks what PostHog's capture checks (the project API
key in the body, a non-empty batch, each event's name, distinct_id and uuid, the per-event size
and 20 MB body limits) and answers its documented errors; batching, classification, deletion."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from shared.destinations import merge_config, public_config, stored_config, validate_config
from shared.destinations.base import DeletionSubject, EventRejected, build_requests
from shared.destinations.posthog import PosthogConnector, event_uuid
from shared.domain.errors import InvalidRequest
from shared.domain.event import CanonicalEvent
from tests.vendor_fakes import Answer, FakeVendor, Received, fake_vendor, send_all

NOW = datetime(2024, 1, 15, 15, 0, 6, tzinfo=UTC)
KEY = "phc_testProjectKey0123456789"
PERSONAL = "phx_testPersonalKey0123456789"
MAX_EVENT_BYTES = 1024 * 1024  # capture's per-event limit ("maximum event size exceeded")
MAX_BODY_BYTES = 20 * 1024 * 1024


def capture(received: Received) -> Answer:
    """PostHog capture's checks, answered with capture's own status codes and messages."""
    if received.method != "POST" or received.path != "/batch/":
        return Answer(404, "Not Found")
    if len(received.body) > MAX_BODY_BYTES:
        return Answer(413, "payload too large")
    body = received.json()
    if not body.get("api_key"):
        return Answer(401, "event submitted without an api_key")
    if body["api_key"] != KEY:
        return Answer(401, "API key is not valid: unknown project")
    batch = body.get("batch")
    if not batch:
        return Answer(400, "request holds no event")
    for event in batch:
        if not event.get("event"):
            return Answer(400, "event submitted with an empty event name")
        if not event.get("distinct_id"):
            return Answer(400, "event submitted without a distinct_id")
        try:
            uuid.UUID(event.get("uuid", ""))
        except ValueError:
            return Answer(400, "failed to parse request: invalid uuid")
        if len(json.dumps(event)) > MAX_EVENT_BYTES:
            return Answer(400, "maximum event size exceeded")
    return Answer(200, {"status": 1})


def event(n: int, **changes: Any) -> CanonicalEvent:
    return cast(
        CanonicalEvent,
        {
            "messageId": f"msg-{n}",
            "type": "track",
            "event": "Order Completed",
            "userId": f"user-{n}",
            "anonymousId": f"anon-{n}",
            "properties": {"revenue": 10.5, "order_id": f"ord-{n}"},
            "context": {
                "ip": "203.0.113.9",
                "library": {"name": "analytics.js", "version": "2.11.1"},
            },
            "timestamp": "2024-01-15T14:59:55.250Z",
            **changes,
        },
    )


@pytest.fixture(scope="module")
def vendor() -> Iterator[FakeVendor]:
    # One server for the module: each stop waits out serve_forever's 0.5 s poll.
    with fake_vendor(capture) as running:
        yield running


@pytest.fixture
def send(vendor: FakeVendor) -> Callable[..., Any]:
    def _send(
        handler: Callable[[Received], Answer], events: list[CanonicalEvent], key: str = KEY
    ) -> Any:
        vendor.handler = handler
        vendor.received.clear()
        cfg = validate_config("posthog", {"api_key": key, "host": vendor.url})
        return send_all("posthog", cfg, events, now=NOW), vendor.received

    return _send


def test_a_batch_of_2500_events_becomes_three_requests(send: Callable[..., Any]) -> None:
    sent, received = send(capture, [event(n) for n in range(2500)])
    assert [s.status for s in sent] == ["delivered"] * 3
    assert [len(r.json()["batch"]) for r in received] == [1000, 1000, 500]
    first = received[0].json()["batch"][0]
    assert first["distinct_id"] == "user-0" and first["properties"]["$ip"] == "203.0.113.9"
    assert first["uuid"] == event_uuid("msg-0")


def test_bad_api_key_fails(send: Callable[..., Any]) -> None:
    [sent], _ = send(capture, [event(1)], key="phc_wrong")
    assert sent.status == "failed"
    assert "API key is not valid" in sent.result.detail


def test_an_oversized_event_fails_with_captures_message(send: Callable[..., Any]) -> None:
    big = event(1, properties={"blob": "x" * (MAX_EVENT_BYTES + 10)})
    [sent], _ = send(capture, [big])
    assert sent.status == "failed"
    assert "maximum event size exceeded" in sent.result.detail


@pytest.mark.parametrize(
    "answer",
    [
        Answer(429, "rate limited", {"Retry-After": "5"}),
        Answer(429, "billing limit reached"),
        Answer(503, "transient error, please retry"),
        Answer(502, "Bad Gateway"),
    ],
)
def test_throttling_and_transient_errors_are_retried(
    send: Callable[..., Any], answer: Answer
) -> None:
    [sent], _ = send(lambda _: answer, [event(1)])
    assert sent.status == "retry"


def test_every_call_maps_to_its_posthog_event() -> None:
    cfg = validate_config("posthog", {"api_key": KEY})
    cases = {
        "track": (event(1), "Order Completed"),
        "page": (event(1, type="page", name="Home"), "$pageview"),
        "screen": (event(1, type="screen", name="Cart"), "$screen"),
        "identify": (event(1, type="identify", traits={"plan": "pro"}), "$identify"),
        "group": (event(1, type="group", groupId="org-1", traits={"seats": 5}), "$groupidentify"),
        "alias": (event(1, type="alias", previousId="anon-1"), "$create_alias"),
    }
    for kind, (canonical, name) in cases.items():
        [part] = PosthogConnector().parts(canonical, cfg, now=NOW)
        assert part.payload["event"] == name, kind
    [identify] = PosthogConnector().parts(cases["identify"][0], cfg, now=NOW)
    assert identify.payload["properties"]["$set"] == {"plan": "pro"}
    assert identify.payload["properties"]["$anon_distinct_id"] == "anon-1"
    [group] = PosthogConnector().parts(cases["group"][0], cfg, now=NOW)
    assert group.payload["properties"]["$group_key"] == "org-1"
    assert group.payload["properties"]["$group_type"] == "company"


def test_refusals() -> None:
    cfg = validate_config("posthog", {"api_key": KEY})
    with pytest.raises(EventRejected, match="userId or an anonymousId"):
        PosthogConnector().parts(event(1, userId=None, anonymousId=None), cfg, now=NOW)
    with pytest.raises(EventRejected, match="previousId"):
        PosthogConnector().parts(event(1, type="alias"), cfg, now=NOW)


def test_uuid_is_the_message_id_or_stable() -> None:
    given = "0f8b3c52-7d1e-4c9a-9a63-2f5e0c1d4b7a"
    assert event_uuid(given) == given
    derived = event_uuid("msg-1")
    assert derived == event_uuid("msg-1") != event_uuid("msg-2")
    assert uuid.UUID(str(derived)).version == 5


def test_hosts() -> None:
    eu = validate_config("posthog", {"api_key": KEY, "region": "eu"})
    [request] = build_requests(PosthogConnector(), event(1), eu, now=NOW)
    assert request.url == "https://eu.i.posthog.com/batch/"  # type: ignore[union-attr]
    assert KEY in request.redact and KEY not in repr(request)  # type: ignore[union-attr]


def test_deletion_request_shape() -> None:
    raw = {"api_key": KEY, "region": "eu", "personal_api_key": PERSONAL, "project_id": "4321"}
    cfg = validate_config("posthog", raw)
    request = PosthogConnector().delete_user(DeletionSubject("anonymous_id", "anon-9", "dpo"), cfg)
    assert not isinstance(request, str)
    assert request.method == "POST"
    assert request.url == "https://eu.posthog.com/api/projects/4321/persons/bulk_delete/"
    assert request.headers["Authorization"] == f"Bearer {PERSONAL}"
    assert json.loads(request.body) == {"distinct_ids": ["anon-9"], "delete_events": True}
    assert PERSONAL in request.redact
    hosted = validate_config("posthog", {**raw, "host": "https://ph.example.com"})
    moved = PosthogConnector().delete_user(DeletionSubject("user_id", "u", "dpo"), hosted)
    assert not isinstance(moved, str)
    assert moved.url == "https://ph.example.com/api/projects/4321/persons/bulk_delete/"


def test_deletion_without_personal_key_says_why() -> None:
    cfg = validate_config("posthog", {"api_key": KEY, "project_id": "4321"})
    answer = PosthogConnector().delete_user(DeletionSubject("user_id", "u", "dpo"), cfg)
    assert isinstance(answer, str) and "config.personal_api_key" in answer


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"api_key": ""}, "api_key"),
        ({"region": "apac"}, "region"),
        ({"host": "posthog.example.com"}, "host"),
        ({"host": "https://user:pw@posthog.example.com"}, "host"),
        ({"project_id": "my-project"}, "project_id"),
        ({"group_type": ""}, "group_type"),
        ({"personal_api_key": ""}, "personal_api_key"),
        ({"token": KEY}, "token"),
    ],
)
def test_config_errors_name_their_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_config("posthog", {"api_key": KEY, **changes})
    assert caught.value.field == f"config.{field}"


def test_keys_never_shown_and_must_be_reentered_for_a_new_host() -> None:
    cfg = validate_config("posthog", {"api_key": KEY, "personal_api_key": PERSONAL})
    shown = json.dumps(public_config("posthog", cfg)) + repr(cfg) + str(cfg)
    assert KEY not in shown and PERSONAL not in shown
    with pytest.raises(InvalidRequest) as caught:
        merge_config("posthog", stored_config(cfg), {"host": "https://collector.example.net"})
    assert caught.value.field == "config.api_key"
