"""Customer.io: batching into Track API v2 batches, the vendor's answers classified, deletion,
config rules.

The fake checks what Customer.io's `POST /api/v2/batch` checks: HTTP Basic site_id:api_key,
a body under 500 KB, each operation at most 32 KB with a type, an action and one identifier;
it answers Customer.io's documented shapes: 200 {}, 207 {"errors": [{batch_index, reason,
field, message}]} for refused operations (the others accepted), 400 {"errors": [...]} for a
malformed request, 401, 429 and 5xx.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from shared.destinations import public_config, validate_config
from shared.destinations.base import DeletionSubject, EventRejected, OutboundRequest
from shared.destinations.customerio import CustomerioConnector
from shared.domain.errors import InvalidRequest
from shared.domain.event import CanonicalEvent
from tests.vendor_fakes import (
    Answer,
    Received,
    send_all,
    vendor_fixtures,
)

SITE_ID = "site-test-1"
API_KEY = "cio-track-key-secret-9"
NOW = datetime(2024, 1, 15, 15, 0, 6, tzinfo=UTC)
BASIC = "Basic " + base64.b64encode(f"{SITE_ID}:{API_KEY}".encode()).decode()


def event(type_: str = "track", n: int = 0, **over: Any) -> CanonicalEvent:
    base: dict[str, Any] = {
        "messageId": f"msg-{n}",
        "type": type_,
        "event": f"Clicked {n}" if type_ == "track" else None,
        "name": None,
        "userId": f"user-{n}",
        "anonymousId": f"anon-{n}",
        "groupId": None,
        "previousId": None,
        "properties": {"n": n},
        "traits": {},
        "context": {},
        "integrations": {},
        "timestamp": "2024-01-15T14:59:55.250Z",
        "originalTimestamp": None,
        "sentAt": None,
        "receivedAt": "2024-01-15T15:00:05.250Z",
        "clockSkewMs": None,
        "workspaceId": "ws-1",
        "sourceId": "src-1",
        "extras": {},
    }
    return cast(CanonicalEvent, {**base, **over})


def customerio(request: Received) -> Answer:
    """Customer.io's /api/v2/batch as documented."""
    if request.path != "/api/v2/batch" or request.method != "POST":
        return Answer(404, "404 page not found")
    if request.headers.get("authorization") != BASIC:
        return Answer(401, {"meta": {"error": "Unauthorized request"}})
    if len(request.body) >= 500_000:
        return Answer(400, {"errors": [{"reason": "too large", "message": "batch over 500kb"}]})
    try:
        batch = request.json()["batch"]
    except (ValueError, KeyError, TypeError):
        return Answer(400, {"errors": [{"reason": "malformed", "message": "invalid JSON body"}]})
    errors = []
    for index, operation in enumerate(batch):
        identified = operation.get("action") == "merge" or (
            len(operation.get("identifiers") or {}) in (1, 2)  # objects take type + id
        )
        if len(json.dumps(operation)) > 32_000 or not operation.get("type") or not identified:
            errors.append(
                {"batch_index": index, "reason": "invalid", "field": "identifiers", "message": "x"}
            )
    return Answer(207, {"errors": errors}) if errors else Answer(200, {})


server, serve = vendor_fixtures(customerio)


def config(url: str | None = None, **over: Any) -> Any:
    raw: dict[str, Any] = {"site_id": SITE_ID, "api_key": API_KEY, **over}
    if url is not None:
        raw["endpoint"] = url
    return validate_config("customerio", raw)


def test_a_batch_of_1200_events_makes_two_requests(serve: Any) -> None:
    vendor = serve(customerio)
    sent = send_all("customerio", config(vendor.url), [event(n=i) for i in range(1200)], now=NOW)
    assert [s.status for s in sent] == ["delivered", "delivered"]
    assert [len(r.json()["batch"]) for r in vendor.received] == [1000, 200]


def test_large_events_are_split_under_500_kb(serve: Any) -> None:
    vendor = serve(customerio)
    big = [event(n=i, properties={"blob": "x" * 20_000}) for i in range(60)]
    sent = send_all("customerio", config(vendor.url), big, now=NOW)
    assert [s.status for s in sent] == ["delivered"] * 3
    assert all(len(r.body) < 500_000 for r in vendor.received)
    assert sum(len(r.json()["batch"]) for r in vendor.received) == 60


def test_every_call_type_is_accepted_in_one_batch(serve: Any) -> None:
    vendor = serve(customerio)
    events = [
        event("identify", n=1, traits={"email": "a@example.com"}),
        event(n=2),
        event("page", n=3, name="Home", properties={"url": "https://example.com/"}),
        event("screen", n=4, name="Cart"),
        event("group", n=5, groupId="acme", traits={"name": "Acme"}),
        event("alias", n=6, previousId="old-6"),
    ]
    sent = send_all("customerio", config(vendor.url, object_type_id="1"), events, now=NOW)
    assert [s.status for s in sent] == ["delivered"]
    [batch] = [r.json()["batch"] for r in vendor.received]
    assert [op["action"] for op in batch] == [
        "identify",
        "event",
        "page",
        "screen",
        "identify",
        "merge",
    ]


def test_bad_credentials_fail(serve: Any) -> None:
    vendor = serve(customerio)
    cfg = validate_config(
        "customerio", {"site_id": SITE_ID, "api_key": "wrong", "endpoint": vendor.url}
    )
    [sent] = send_all("customerio", cfg, [event()], now=NOW)
    assert sent.status == "failed" and sent.result.http_status == 401


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_rate_limits_and_server_errors_are_retried(serve: Any, status: int) -> None:
    vendor = serve(lambda _: Answer(status, {"meta": {"error": "slow down"}}))
    [sent] = send_all("customerio", config(vendor.url), [event()], now=NOW)
    assert sent.status == "retry"


def test_a_malformed_request_fails_with_customerios_message(serve: Any) -> None:
    refusal = {"errors": [{"reason": "required", "field": "name", "message": "name is required"}]}
    vendor = serve(lambda _: Answer(400, refusal))
    [sent] = send_all("customerio", config(vendor.url), [event()], now=NOW)
    assert sent.status == "failed"
    assert "name is required" in sent.result.detail


def test_a_partly_refused_batch_is_delivered_not_retried(serve: Any) -> None:
    # 207: the valid operations were accepted; a retry would send them twice.
    def partly(request: Received) -> Answer:
        return Answer(207, {"errors": [{"batch_index": 0, "reason": "invalid", "field": "x"}]})

    vendor = serve(partly)
    [sent] = send_all("customerio", config(vendor.url), [event(n=1), event(n=2)], now=NOW)
    assert sent.status == "delivered" and sent.result.http_status == 207


def test_an_operation_over_32_kb_is_refused_before_sending() -> None:
    huge = event(properties={"blob": "x" * 33_000})
    with pytest.raises(EventRejected, match="32 KB"):
        CustomerioConnector().parts(huge, config(), now=NOW)


def test_the_api_key_never_shows_in_an_answers_detail(serve: Any) -> None:
    vendor = serve(lambda r: Answer(400, {"errors": [{"message": r.headers["authorization"]}]}))
    [sent] = send_all("customerio", config(vendor.url), [event()], now=NOW)
    assert API_KEY not in sent.result.detail and BASIC.split()[1] not in sent.result.detail


def test_deletion_is_a_v2_person_delete_by_id() -> None:
    request = CustomerioConnector().delete_user(
        DeletionSubject("user_id", "user-42", "dpo"), config(region="eu")
    )
    assert isinstance(request, OutboundRequest)
    assert request.method == "POST"
    assert request.url == "https://track-eu.customer.io/api/v2/entity"
    assert request.headers["Authorization"] == BASIC
    assert json.loads(request.body) == {
        "type": "person",
        "identifiers": {"id": "user-42"},
        "action": "delete",
    }
    anonymous = CustomerioConnector().delete_user(
        DeletionSubject("anonymous_id", "anon-1", "dpo"), config()
    )
    assert isinstance(anonymous, str) and "by id only" in anonymous


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"site_id": ""}, "site_id"),
        ({"site_id": "has space"}, "site_id"),
        ({"api_key": ""}, "api_key"),
        ({"region": "ap"}, "region"),
        ({"endpoint": "gopher://track.example.com"}, "endpoint"),
        ({"object_type_id": "companies"}, "object_type_id"),
        ({"site": "typo"}, "site"),
    ],
)
def test_config_errors_name_their_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_config("customerio", {"site_id": SITE_ID, "api_key": API_KEY, **changes})
    assert caught.value.field == f"config.{field}"


def test_the_api_key_is_write_only() -> None:
    cfg = config()
    shown = json.dumps(public_config("customerio", cfg)) + repr(cfg) + str(cfg)
    assert API_KEY not in shown
    assert public_config("customerio", cfg)["site_id"] == SITE_ID
