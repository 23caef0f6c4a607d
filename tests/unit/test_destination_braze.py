"""Braze: batching into /users/track, the vendor's answers classified, deletion, config rules.

The fake checks what Braze's User Track API checks: the Bearer REST API key, at most 75 objects
per array (and in all, Braze's newer rule), each object naming its user, purchases with
product_id, currency and price; it answers Braze's documented shapes: 201 {"message":
"success"} (with `errors` for minor ones), 400/401 {"message": ...}, 429, 5xx.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from shared.destinations import public_config, validate_config
from shared.destinations.base import DeletionSubject, OutboundRequest
from shared.destinations.braze import BrazeConnector
from shared.domain.errors import InvalidRequest
from shared.domain.event import CanonicalEvent
from tests.vendor_fakes import (
    Answer,
    Received,
    send_all,
    vendor_fixtures,
)

API_KEY = "braze-rest-key-secret-9"
NOW = datetime(2024, 1, 15, 15, 0, 6, tzinfo=UTC)


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


def braze(request: Received) -> Answer:
    """Braze's /users/track as documented: auth, per-array limits, identity on every object."""
    if request.path != "/users/track" or request.method != "POST":
        return Answer(404, {"message": "Not Found"})
    if request.headers.get("authorization") != f"Bearer {API_KEY}":
        return Answer(401, {"message": "Invalid API key: [REDACTED]"})
    body = request.json()
    arrays = [body.get(name, []) for name in ("attributes", "events", "purchases")]
    if any(len(items) > 75 for items in arrays) or sum(len(items) for items in arrays) > 75:
        return Answer(400, {"message": "Max Input Length Exceeded", "errors": []})
    errors = []
    for items in arrays:
        for index, item in enumerate(items):
            if not ("external_id" in item or "user_alias" in item):
                return Answer(400, {"message": "Missing identifier for object", "errors": []})
            if "product_id" in item and not all(k in item for k in ("currency", "price")):
                errors.append({"type": "purchase missing price or currency", "index": index})
    answer: dict[str, Any] = {"message": "success"}
    if errors:
        answer["errors"] = errors
    return Answer(201, answer)


server, serve = vendor_fixtures(braze)


def config(url: str, **over: Any) -> Any:
    return validate_config("braze", {"api_key": API_KEY, "rest_endpoint": url, **over})


def test_a_batch_of_200_events_makes_three_requests_of_at_most_75_objects(serve: Any) -> None:
    vendor = serve(braze)
    sent = send_all("braze", config(vendor.url), [event(n=i) for i in range(200)], now=NOW)
    assert [s.status for s in sent] == ["delivered"] * 3
    sizes = [len(r.json()["events"]) for r in vendor.received]
    assert sizes == [75, 75, 50]
    assert sorted(o for s in sent for o in s.owners) == list(range(200))


def test_mixed_calls_share_a_request_sorted_into_their_arrays(serve: Any) -> None:
    order = event(
        n=1,
        event="Order Completed",
        properties={"currency": "USD", "products": [{"product_id": "p", "price": 1.5}] * 3},
    )
    events = [event("identify", n=0, traits={"email": "a@example.com"}), order, event(n=2)]
    vendor = serve(braze)
    sent = send_all("braze", config(vendor.url), events, now=NOW)
    assert [s.status for s in sent] == ["delivered"]
    [body] = [r.json() for r in vendor.received]
    assert [len(body[k]) for k in ("attributes", "purchases", "events")] == [1, 3, 1]
    assert body["attributes"][0]["email"] == "a@example.com"


def test_an_order_with_75_products_spills_into_a_second_request(serve: Any) -> None:
    products = [{"product_id": f"p{i}", "price": 2.0} for i in range(80)]
    order = event(event="Order Completed", properties={"products": products})
    vendor = serve(braze)
    sent = send_all("braze", config(vendor.url), [order, event(n=1)], now=NOW)
    assert [s.status for s in sent] == ["delivered", "delivered"]
    assert [len(r.json().get("purchases", [])) for r in vendor.received] == [75, 5]
    assert sent[0].owners == (0,) and sent[1].owners == (0, 1)


def test_bad_credentials_fail_with_brazes_message(serve: Any) -> None:
    vendor = serve(braze)
    cfg = validate_config("braze", {"api_key": "wrong-key", "rest_endpoint": vendor.url})
    [sent] = send_all("braze", cfg, [event()], now=NOW)
    assert sent.status == "failed"
    assert sent.result.http_status == 401 and "Invalid API key" in sent.result.detail


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_rate_limits_and_server_errors_are_retried(serve: Any, status: int) -> None:
    answer = Answer(status, {"message": "Rate limited"}, headers={"Retry-After": "3"})
    vendor = serve(lambda _: answer)
    [sent] = send_all("braze", config(vendor.url), [event()], now=NOW)
    assert sent.status == "retry"
    if status == 429:
        assert sent.result.retry_after_seconds == 3.0


def test_a_fatal_400_fails_with_its_message(serve: Any) -> None:
    answer = Answer(400, {"message": "Invalid attributes object", "errors": ["bad key"]})
    vendor = serve(lambda _: answer)
    [sent] = send_all("braze", config(vendor.url), [event()], now=NOW)
    assert sent.status == "failed"
    assert "Invalid attributes object" in sent.result.detail


def test_a_2xx_with_a_fatal_message_fails_and_minor_errors_or_queued_deliver(serve: Any) -> None:
    answers = iter(
        [
            Answer(201, {"message": "success", "errors": [{"type": "minor", "index": 0}]}),
            Answer(202, {"message": "queued"}),
            Answer(200, {"message": "Invalid 'external_id' field", "errors": []}),
        ]
    )
    vendor = serve(lambda _: next(answers))
    cfg = config(vendor.url)
    statuses = [send_all("braze", cfg, [event()], now=NOW)[0] for _ in range(3)]
    assert [s.status for s in statuses] == ["delivered", "delivered", "failed"]
    assert "Invalid 'external_id' field" in statuses[2].result.detail


def test_the_api_key_never_shows_in_an_answers_detail(serve: Any) -> None:
    echo = Answer(400, {"message": f"Invalid API key: {API_KEY}"})
    vendor = serve(lambda _: echo)
    [sent] = send_all("braze", config(vendor.url), [event()], now=NOW)
    assert API_KEY not in sent.result.detail


def test_deletion_by_external_id_and_by_alias() -> None:
    cfg = config("https://rest.iad-01.braze.com", alias_label="segment_anonymous_id")
    by_id = BrazeConnector().delete_user(DeletionSubject("user_id", "user-42", "dpo"), cfg)
    by_alias = BrazeConnector().delete_user(DeletionSubject("anonymous_id", "anon-1", "dpo"), cfg)
    assert isinstance(by_id, OutboundRequest) and isinstance(by_alias, OutboundRequest)
    assert by_id.url == "https://rest.iad-01.braze.com/users/delete"
    assert by_id.headers["Authorization"] == f"Bearer {API_KEY}" and API_KEY in by_id.redact
    assert json.loads(by_id.body) == {"external_ids": ["user-42"]}
    assert json.loads(by_alias.body) == {
        "user_aliases": [{"alias_name": "anon-1", "alias_label": "segment_anonymous_id"}]
    }


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"rest_endpoint": "ftp://rest.iad-01.braze.com"}, "rest_endpoint"),
        ({"rest_endpoint": "https://user:pw@rest.iad-01.braze.com"}, "rest_endpoint"),
        ({"rest_endpoint": None}, "rest_endpoint"),
        ({"api_key": ""}, "api_key"),
        ({"track_pages": "sometimes"}, "track_pages"),
        ({"alias_label": ""}, "alias_label"),
        ({"app_group_id": "legacy"}, "app_group_id"),
    ],
)
def test_config_errors_name_their_field(changes: dict[str, Any], field: str) -> None:
    raw = {"api_key": API_KEY, "rest_endpoint": "https://rest.iad-01.braze.com", **changes}
    with pytest.raises(InvalidRequest) as caught:
        validate_config("braze", raw)
    assert caught.value.field == f"config.{field}"


def test_the_api_key_is_write_only() -> None:
    cfg = config("https://rest.iad-01.braze.com")
    shown = json.dumps(public_config("braze", cfg)) + repr(cfg) + str(cfg)
    assert API_KEY not in shown
    assert public_config("braze", cfg)["rest_endpoint"] == "https://rest.iad-01.braze.com"
