"""Meta Conversions API: a fake Graph API endpoint that checks what Meta checks (the access
token, the `data` array and its 1,000-event limit, each server event's required fields) and
answers Meta's documented errors; how the connector batches, classifies and hashes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from shared.destinations import public_config, stored_config, validate_config
from shared.destinations.base import DeletionSubject, EventRejected, build_requests
from shared.destinations.deletion import deletion_request
from shared.destinations.meta import (
    MetaConnector,
    normalise_birthday,
    normalise_phone,
    normalise_zip,
    sha256,
)
from shared.domain.errors import InvalidRequest
from shared.domain.event import CanonicalEvent
from tests.vendor_fakes import Answer, FakeVendor, Received, fake_vendor, send_all

NOW = datetime(2024, 1, 15, 15, 0, 6, tzinfo=UTC)
TOKEN = "EAAtest-meta-token-0123456789"
PIXEL = "123456789012345"
PATH = f"/v23.0/{PIXEL}/events"


def graph_error(code: int, message: str, *, status: int = 400, **extra: Any) -> Answer:
    """An error the way the Graph API answers it."""
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "Ab1"}
    return Answer(status, {"error": {**error, **extra}})


def meta_api(received: Received) -> Answer:
    """The checks the Conversions API makes before it accepts a request."""
    if received.method != "POST" or received.path != PATH:
        return graph_error(803, "Unknown path components", status=404)
    body = received.json()
    if body.get("access_token") != TOKEN:
        return graph_error(190, "Invalid OAuth access token - Cannot parse access token")
    data = body.get("data")
    if not isinstance(data, list) or not data:
        return graph_error(100, "(#100) The parameter data is required")
    if len(data) > 1000:
        return graph_error(100, "(#100) You can send at most 1000 events in one request")
    for event in data:
        for field in ("event_name", "event_time", "action_source", "user_data"):
            if field not in event:
                return graph_error(100, f"(#100) The parameter {field} is required")
        if NOW.timestamp() - event["event_time"] > 7 * 86400:
            return graph_error(100, "(#100) event_time is too far in the past")
    return Answer(200, {"events_received": len(data), "messages": [], "fbtrace_id": "Ab2"})


def event(n: int, name: str = "Order Completed", **changes: Any) -> CanonicalEvent:
    return cast(
        CanonicalEvent,
        {
            "messageId": f"msg-{n}",
            "type": "track",
            "event": name,
            "userId": f"user-{n}",
            "anonymousId": f"anon-{n}",
            "properties": {"revenue": 10.5, "currency": "USD", "order_id": f"ord-{n}"},
            "context": {
                "ip": "203.0.113.9",
                "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/121.0",
                "page": {"url": "https://shop.example.com/checkout"},
                "traits": {"email": f"buyer{n}@example.com"},
            },
            "timestamp": "2024-01-15T14:59:55.250Z",
            **changes,
        },
    )


def config(url: str, **extra: Any) -> Any:
    return validate_config(
        "meta", {"pixel_id": PIXEL, "access_token": TOKEN, "endpoint": url + PATH, **extra}
    )


@pytest.fixture(scope="module")
def vendor() -> Iterator[FakeVendor]:
    # One server for the module: each stop waits out serve_forever's 0.5 s poll.
    with fake_vendor(meta_api) as running:
        yield running


@pytest.fixture
def send(vendor: FakeVendor) -> Callable[..., Any]:
    def _send(handler: Callable[[Received], Answer], events: list[CanonicalEvent]) -> Any:
        vendor.handler = handler
        vendor.received.clear()
        return send_all("meta", config(vendor.url), events, now=NOW), vendor.received

    return _send


def test_a_batch_of_1500_events_becomes_two_requests(send: Callable[..., Any]) -> None:
    sent, received = send(meta_api, [event(n) for n in range(1500)])
    assert [s.status for s in sent] == ["delivered", "delivered"]
    assert [len(r.json()["data"]) for r in received] == [1000, 500]
    assert sent[0].owners == tuple(range(1000)) and sent[1].owners == tuple(range(1000, 1500))
    first = received[0].json()["data"][0]
    assert first["event_name"] == "Purchase" and first["event_id"] == "msg-0"
    assert first["user_data"]["em"] == [sha256("buyer0@example.com")]


def test_bad_token_fails_with_metas_message(vendor: FakeVendor) -> None:
    vendor.handler = meta_api
    cfg = validate_config(
        "meta", {"pixel_id": PIXEL, "access_token": "wrong", "endpoint": vendor.url + PATH}
    )
    [sent] = send_all("meta", cfg, [event(1)], now=NOW)
    assert sent.status == "failed"
    assert "Invalid OAuth access token" in sent.result.detail


def test_invalid_parameter_fails_with_metas_message(send: Callable[..., Any]) -> None:
    def refuse(received: Received) -> Answer:
        return graph_error(100, "(#100) Invalid parameter: custom_data.currency")

    [sent], _ = send(refuse, [event(1)])
    assert sent.status == "failed"
    assert "Invalid parameter: custom_data.currency" in sent.result.detail


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (Answer(429, "Too Many Requests", {"Retry-After": "30"}), "HTTP 429"),
        (Answer(503, "Service Unavailable"), "vendor 5xx"),
        (graph_error(1, "An unknown error occurred", status=500), "code 1 (unknown)"),
        (graph_error(2, "Service temporarily unavailable", status=503), "code 2 (service)"),
        (graph_error(4, "(#4) Application request limit reached"), "code 4 with a 400"),
        (graph_error(17, "(#17) User request limit reached", status=403), "code 17"),
        (graph_error(613, "Calls to this api have exceeded the rate limit"), "code 613"),
        (graph_error(9999, "Temporary issue", is_transient=True), "is_transient"),
    ],
)
def test_throttling_and_downtime_are_retried(
    send: Callable[..., Any], answer: Answer, why: str
) -> None:
    [sent], _ = send(lambda _: answer, [event(1)])
    assert sent.status == "retry", why


def test_an_unknown_code_keeps_the_http_class(send: Callable[..., Any]) -> None:
    [sent], _ = send(lambda _: graph_error(12345, "Something else"), [event(1)])
    assert sent.status == "failed"  # a 400 without a code Meta documents as transient


def test_request_shape_and_secret_redaction() -> None:
    cfg = validate_config("meta", {"pixel_id": PIXEL, "access_token": TOKEN})
    [request] = build_requests(MetaConnector(), event(1), cfg, now=NOW)
    assert request.url == f"https://graph.facebook.com/v23.0/{PIXEL}/events"  # type: ignore[union-attr]
    assert TOKEN in request.redact  # type: ignore[union-attr]
    assert TOKEN not in request.url and TOKEN not in repr(request)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("segment", "meta"),
    [
        ("Order Completed", "Purchase"),
        ("Product Viewed", "ViewContent"),
        ("Product Added", "AddToCart"),
        ("Product Added to Wishlist", "AddToWishlist"),
        ("Checkout Started", "InitiateCheckout"),
        ("Payment Info Entered", "AddPaymentInfo"),
        ("Products Searched", "Search"),
        ("Signed Up", "CompleteRegistration"),
        ("Video Played", "Video Played"),
    ],
)
def test_event_names(segment: str, meta: str) -> None:
    cfg = validate_config("meta", {"pixel_id": PIXEL, "access_token": TOKEN})
    [part] = MetaConnector().parts(event(1, segment), cfg, now=NOW)
    assert part.payload["event_name"] == meta


def test_hashing_matches_metas_documented_examples() -> None:
    # Expected outputs published in Meta's customer information parameters reference.
    email = "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"
    phone = "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"
    mary = "6915771be1c5aa0c886870b6951b03d7eafc121fea0e80a5ea83beb7c449f4ec"
    valery = "08e1996b5dd49e62a4b4c010d44e4345592a863bb9f8e3976219bac29417149c"
    traits = {
        "email": " John_Smith@gmail.com ",
        "phone": "+1 (650) 555-1212",
        "firstName": "Mary",
        "lastName": "Valéry",
    }
    context = {**event(1)["context"], "traits": traits, "fbp": "fb.1.1558571054389.1098115397"}
    cfg = validate_config("meta", {"pixel_id": PIXEL, "access_token": TOKEN})
    [part] = MetaConnector().parts(event(1, context=context), cfg, now=NOW)
    user = part.payload["user_data"]
    assert user["em"] == [email] and user["ph"] == [phone]
    assert user["fn"] == [mary] and user["ln"] == [valery]
    assert user["external_id"] == [hashlib.sha256(b"user-1").hexdigest()]
    # Sent as they are, never hashed.
    assert user["client_ip_address"] == "203.0.113.9"
    assert user["client_user_agent"].startswith("Mozilla/5.0")
    assert user["fbp"] == "fb.1.1558571054389.1098115397"


def test_normalisers() -> None:
    assert normalise_phone("0044 844 412 4653") == "448444124653"
    assert normalise_zip("94103-1234") == "94103"
    assert normalise_zip("SW1A 1AA") == "sw1a1aa"
    assert normalise_birthday("1990-05-14T00:00:00Z") == "19900514"


def test_refusals_are_per_event_not_per_batch() -> None:
    stale = event(2, timestamp=(NOW - timedelta(days=8)).isoformat())
    cfg = validate_config("meta", {"pixel_id": PIXEL, "access_token": TOKEN})
    with pytest.raises(EventRejected, match="7 days"):
        MetaConnector().parts(stale, cfg, now=NOW)
    anonymous = event(3, userId=None, anonymousId=None, context={"page": {"url": "https://x.io"}})
    with pytest.raises(EventRejected, match="customer identifier"):
        MetaConnector().parts(anonymous, cfg, now=NOW)


def test_skipped_types() -> None:
    cfg = validate_config("meta", {"pixel_id": PIXEL, "access_token": TOKEN})
    for kind in ("identify", "group", "alias", "screen"):
        assert MetaConnector().parts(event(1, type=kind), cfg, now=NOW) == []


def test_deletion_is_not_possible_and_says_why() -> None:
    cfg = validate_config("meta", {"pixel_id": PIXEL, "access_token": TOKEN})
    answer = deletion_request("meta", stored_config(cfg), DeletionSubject("user_id", "u-1", "dpo"))
    assert isinstance(answer, str) and "no per-user deletion API" in answer


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"pixel_id": "pixel-1"}, "pixel_id"),
        ({"access_token": ""}, "access_token"),
        ({"api_version": "23"}, "api_version"),
        ({"action_source": "billboard"}, "action_source"),
        ({"endpoint": "ftp://capi.example.com/"}, "endpoint"),
        ({"test_event_code": ""}, "test_event_code"),
        ({"pixel": PIXEL}, "pixel"),
    ],
)
def test_config_errors_name_their_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_config("meta", {"pixel_id": PIXEL, "access_token": TOKEN, **changes})
    assert caught.value.field == f"config.{field}"


def test_missing_token_is_named() -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_config("meta", {"pixel_id": PIXEL})
    assert caught.value.field == "config.access_token"


def test_token_never_shown() -> None:
    cfg = validate_config("meta", {"pixel_id": PIXEL, "access_token": TOKEN})
    shown = json.dumps(public_config("meta", cfg)) + repr(cfg) + str(cfg)
    assert TOKEN not in shown
    assert public_config("meta", cfg)["pixel_id"] == PIXEL
