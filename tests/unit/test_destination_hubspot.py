"""HubSpot against a local fake of its API: batch sizes, error classes, deletion, config rules.

The fake checks what HubSpot checks: the private app token, at most 100 contact inputs (500 event
occurrences) a request, no duplicate ids in a contacts batch, only existing properties, a fully
qualified event name and an identifier per occurrence; it answers HubSpot's documented errors.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, cast

import pytest

from shared.destinations import public_config, stored_config, validate_config
from shared.destinations.base import DeletionSubject, OutboundRequest
from shared.destinations.deletion import deletion_request
from shared.destinations.outbound import HttpSender, UrlGuard
from shared.domain.errors import InvalidRequest
from shared.domain.event import CanonicalEvent
from tests.vendor_fakes import Answer, FakeVendor, Received, fake_vendor, send_all

TOKEN = "pat-na1-test-token-0123456789"
EVENT_NAME = "pe1234567_order_completed"
CONTACT_PROPERTIES = {"email", "firstname", "lastname", "phone", "company", "city", "plan_tier"}


def error(status: int, category: str, message: str, **extra: Any) -> Answer:
    body = {"status": "error", "message": message, "category": category, **extra}
    body["correlationId"] = "aeb5f871-7f07-4993-9211-075dc63e7cbf"
    return Answer(status, body)


def validation(message: str) -> Answer:
    return error(400, "VALIDATION_ERROR", message, errors=[{"message": message}])


def hubspot(request: Received) -> Answer:
    """HubSpot's checks, in the order its API applies them."""
    if request.headers.get("authorization") != f"Bearer {TOKEN}":
        return error(
            401,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found. This API supports OAuth 2.0 authentication",
        )
    body = request.json()
    if request.path == "/crm/v3/objects/contacts/batch/upsert":
        inputs = body["inputs"]
        if len(inputs) > 100:
            return validation("Batch input must contain at most 100 inputs")
        ids = [item["id"] for item in inputs]
        if len(set(ids)) != len(ids):
            return validation("Duplicate IDs found in batch input")
        for item in inputs:
            unknown = set(item["properties"]) - CONTACT_PROPERTIES - {item["idProperty"]}
            if unknown:
                return validation(f'Property "{sorted(unknown)[0]}" does not exist')
        results = [
            {"id": str(n), "properties": item["properties"]} for n, item in enumerate(inputs)
        ]
        return Answer(200, {"status": "COMPLETE", "results": results})
    if request.path == "/events/v3/send/batch":
        inputs = body["inputs"]
        if len(inputs) > 500:
            return validation("Batch input must contain at most 500 inputs")
        for item in inputs:
            if not re.match(r"^pe\d+_", item.get("eventName", "")):
                return validation("eventName must be a fully qualified event name")
            if not (item.get("email") or item.get("objectId") or item.get("utk")):
                return validation("An identifier (email, objectId or utk) is required")
        return Answer(204)
    if request.path == "/crm/v3/objects/contacts/gdpr-delete":
        if body.get("idProperty") != "email" or "@" not in body.get("objectId", ""):
            return validation("objectId must be an email when idProperty is email")
        return Answer(204)
    return error(404, "OBJECT_NOT_FOUND", "Not found")


@pytest.fixture(scope="module")
def server() -> Iterator[FakeVendor]:
    # One server for the module: stopping one waits out its 0.5 s poll.
    with fake_vendor(hubspot) as fake:
        yield fake


@pytest.fixture
def vendor(server: FakeVendor) -> FakeVendor:
    server.handler = hubspot
    server.received.clear()
    return server


def config(vendor: FakeVendor, **changes: Any) -> Any:
    raw = {
        "access_token": TOKEN,
        "events": {"Order Completed": EVENT_NAME},
        "properties": {"plan": "plan_tier"},
        "endpoint": vendor.url,
        **changes,
    }
    return validate_config("hubspot", raw)


def identify(n: int, **traits: Any) -> CanonicalEvent:
    return cast(
        CanonicalEvent,
        {
            "messageId": f"msg-identify-{n}",
            "type": "identify",
            "userId": f"user-{n}",
            "traits": {"email": f"user{n}@example.com", "firstName": f"User {n}", **traits},
            "context": {},
            "timestamp": "2024-01-15T14:59:55.250Z",
        },
    )


def track(n: int, name: str = "Order Completed") -> CanonicalEvent:
    return cast(
        CanonicalEvent,
        {
            "messageId": f"msg-track-{n}",
            "type": "track",
            "event": name,
            "userId": f"user-{n}",
            "properties": {"order_id": f"ord-{n}", "revenue": 49.9},
            "context": {"traits": {"email": f"user{n}@example.com"}},
            "timestamp": "2024-01-15T14:59:55.250Z",
        },
    )


def test_batches_follow_hubspot_limits(vendor: FakeVendor) -> None:
    events = [identify(n) for n in range(250)] + [track(n) for n in range(120)]
    events.append(track(999, name="Unmapped Event"))  # skipped: no request carries it
    sent = send_all("hubspot", config(vendor), events)
    assert [s.status for s in sent] == ["delivered"] * 5
    sizes = [(r.path, len(r.json()["inputs"])) for r in vendor.received]
    contacts, occurrences = "/crm/v3/objects/contacts/batch/upsert", "/events/v3/send/batch"
    assert sorted(sizes) == sorted(
        [(contacts, 100), (contacts, 100), (contacts, 50), (occurrences, 100), (occurrences, 20)]
    )
    carried = sorted(owner for s in sent for owner in s.owners)
    assert carried == list(range(370))
    first = vendor.received[0].json()["inputs"][0]
    assert first == {
        "id": "user0@example.com",
        "idProperty": "email",
        "properties": {"email": "user0@example.com", "firstname": "User 0"},
    }


def test_two_identifies_of_one_contact_in_a_batch_are_merged(vendor: FakeVendor) -> None:
    events = [identify(1, plan="trial", address={"city": "Paris"}), identify(1, plan="pro")]
    sent = send_all("hubspot", config(vendor), events)
    assert [(s.status, s.owners) for s in sent] == [("delivered", (0, 1))]
    [request] = vendor.received
    [contact] = request.json()["inputs"]
    assert contact["properties"]["plan_tier"] == "pro"
    assert contact["properties"]["city"] == "Paris"


def test_bad_token_fails(vendor: FakeVendor) -> None:
    sent = send_all("hubspot", config(vendor, access_token="pat-na1-revoked"), [identify(1)])
    assert [s.status for s in sent] == ["failed"]
    assert sent[0].result.http_status == 401
    assert "Authentication credentials not found" in sent[0].result.detail


def test_unknown_property_is_a_permanent_validation_error(vendor: FakeVendor) -> None:
    cfg = config(vendor, properties={"plan": "no_such_property"})
    sent = send_all("hubspot", cfg, [identify(1, plan="pro")])
    assert [s.status for s in sent] == ["failed"]
    assert "VALIDATION_ERROR" in sent[0].result.detail
    assert 'Property \\"no_such_property\\" does not exist' in sent[0].result.detail


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (error(429, "RATE_LIMITS", "You have reached your ten_secondly_rolling limit."), "retry"),
        (error(502, "", "Bad gateway"), "retry"),
        (error(503, "", "Service unavailable"), "retry"),
        (error(423, "LOCKED", "Object is locked, wait 2 seconds"), "retry"),
        (error(477, "MIGRATION_IN_PROGRESS", "Portal is being migrated"), "retry"),
        (error(409, "CONFLICT", "Contact already exists. Existing ID: 512"), "failed"),
        (
            error(403, "MISSING_SCOPES", "This app hasn't been granted all required scopes"),
            "failed",
        ),
    ],
)
def test_vendor_answers_are_classified(vendor: FakeVendor, answer: Answer, expected: str) -> None:
    vendor.handler = lambda request: answer
    sent = send_all("hubspot", config(vendor), [identify(1)])
    assert [s.status for s in sent] == [expected]


def test_rate_limited_answer_keeps_retry_after(vendor: FakeVendor) -> None:
    limited = Answer(429, {"status": "error", "category": "RATE_LIMITS"}, {"Retry-After": "7"})
    vendor.handler = lambda request: limited
    [sent] = send_all("hubspot", config(vendor), [track(1)])
    assert sent.status == "retry"
    assert sent.result.retry_after_seconds == 7.0


def test_gdpr_deletion_by_email(vendor: FakeVendor) -> None:
    stored = stored_config(config(vendor))
    subject = DeletionSubject("user_id", "ada@example.com", "privacy@example.com")
    request = deletion_request("hubspot", stored, subject)
    assert isinstance(request, OutboundRequest)
    assert request.url == f"{vendor.url}/crm/v3/objects/contacts/gdpr-delete"
    sender = HttpSender(UrlGuard(allow_private=True))
    try:
        result = sender.send(request)
    finally:
        sender.close()
    assert result.status == "delivered"
    [received] = vendor.received
    assert received.json() == {"objectId": "ada@example.com", "idProperty": "email"}
    assert received.headers["authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize(
    "subject",
    [
        DeletionSubject("user_id", "user-42", "privacy@example.com"),
        DeletionSubject("anonymous_id", "anon@example.com", "privacy@example.com"),
    ],
)
def test_deletion_without_an_email_needs_manual_action(subject: DeletionSubject) -> None:
    stored: dict[str, object] = {"access_token": TOKEN}
    reason = deletion_request("hubspot", stored, subject)
    assert isinstance(reason, str) and "email" in reason


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"access_token": ""}, "access_token"),
        ({"events": {"Order Completed": "order_completed"}}, "events"),
        ({"events": {"": EVENT_NAME}}, "events"),
        ({"properties": {"plan": "Plan Tier"}}, "properties"),
        ({"id_property": "App User Id"}, "id_property"),
        ({"endpoint": "ftp://hubspot.example.com"}, "endpoint"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_config_errors_name_their_field(changes: dict[str, Any], field: str) -> None:
    raw = {"access_token": TOKEN, **changes}
    with pytest.raises(InvalidRequest) as caught:
        validate_config("hubspot", raw)
    assert caught.value.field is not None
    assert caught.value.field.startswith(f"config.{field}")


def test_token_is_write_only() -> None:
    cfg = validate_config("hubspot", {"access_token": TOKEN, "events": {"A": EVENT_NAME}})
    shown = json.dumps(public_config("hubspot", cfg)) + repr(cfg) + str(cfg)
    assert TOKEN not in shown
    assert "access_token" not in public_config("hubspot", cfg)
    assert stored_config(cfg)["access_token"] == TOKEN
