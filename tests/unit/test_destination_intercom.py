"""Intercom against a local fake of its REST API: one request per event, error classes, config.

The fake checks what Intercom checks: the access token, a known Intercom-Version, a user contact's
external_id or email (and answers 409 "conflict" for one that already exists), custom attributes
that exist in the workspace, a data event's name, time and user, at most 10 metadata keys, and a
company's company_id; it answers with Intercom's error.list bodies.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, cast

import pytest

from shared.destinations import CONNECTORS, public_config, stored_config, validate_config
from shared.destinations.base import DeletionSubject, OutboundRequest
from shared.destinations.deletion import deletion_request
from shared.destinations.outbound import HttpSender, UrlGuard
from shared.domain.errors import InvalidRequest
from shared.domain.event import CanonicalEvent
from shared.services.outlets import send_http
from tests.vendor_fakes import Answer, FakeVendor, Received, fake_vendor, send_all

TOKEN = "dG9rOnRlc3QtMDEyMzQ1Njc4OQ=="
VERSIONS = {"2.9", "2.10", "2.11", "2.12", "2.13", "2.14"}
ATTRIBUTES = {"plan", "logins"}


def errors(status: int, code: str, message: str) -> Answer:
    body = {
        "type": "error.list",
        "request_id": "req-0001",
        "errors": [{"code": code, "message": message}],
    }
    return Answer(status, body)


class Workspace:
    """What the fake Intercom workspace holds: contacts by external_id and email."""

    def __init__(self) -> None:
        self.contacts: dict[str, str] = {}

    def __call__(self, request: Received) -> Answer:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return errors(401, "unauthorized", "Access Token Invalid")
        if request.headers.get("intercom-version") not in VERSIONS:
            return errors(400, "intercom_version_invalid", "The requested version is not valid")
        body = request.json() if request.body else {}
        if request.path == "/contacts":
            return self.create_contact(body)
        if request.path == "/contacts/search":
            value = body["query"]["value"]
            found = (
                [{"type": "contact", "id": self.contacts[value]}] if value in self.contacts else []
            )
            return Answer(200, {"type": "list", "data": found, "total_count": len(found)})
        if request.method == "DELETE" and request.path.startswith("/contacts/"):
            contact_id = request.path.rsplit("/", 1)[1]
            if contact_id not in self.contacts.values():
                return errors(404, "not_found", "User Not Found")
            self.contacts = {k: v for k, v in self.contacts.items() if v != contact_id}
            return Answer(200, {"type": "contact", "id": contact_id, "deleted": True})
        if request.method == "PUT" and request.path.startswith("/contacts/"):
            contact_id = request.path.rsplit("/", 1)[1]
            if contact_id not in self.contacts.values():
                return errors(404, "not_found", "User Not Found")
            return Answer(200, {"type": "contact", "id": contact_id, **body})
        if request.path == "/events":
            missing = [k for k in ("event_name", "created_at") if k not in body]
            if missing or not (body.get("user_id") or body.get("email") or body.get("id")):
                return errors(400, "parameter_not_found", "Missing user_id, email or id")
            if len(body.get("metadata", {})) > 10:
                return errors(400, "parameter_invalid", "Too many metadata keys (max 10)")
            return Answer(202)
        if request.path == "/companies":
            if not body.get("company_id"):
                return errors(400, "parameter_not_found", "company_id not specified")
            return Answer(200, {"type": "company", "id": "6a1", **body})
        return errors(404, "not_found", "Resource Not Found")

    def create_contact(self, body: dict[str, Any]) -> Answer:
        keys = [k for k in (body.get("external_id"), body.get("email")) if k]
        if body.get("role") == "user" and not keys:
            return errors(400, "parameter_invalid", "Email or external_id required for a user")
        unknown = set(body.get("custom_attributes", {})) - ATTRIBUTES
        if unknown:
            name = sorted(unknown)[0]
            return errors(400, "parameter_invalid", f"Custom attribute '{name}' does not exist")
        for key in keys:
            if key in self.contacts:
                existing = self.contacts[key]
                return errors(
                    409,
                    "conflict",
                    f"A contact matching those details already exists with id={existing}",
                )
        contact_id = f"65f{len(self.contacts):05d}"
        for key in keys:
            self.contacts[key] = contact_id
        return Answer(200, {"type": "contact", "id": contact_id, **body})


@pytest.fixture(scope="module")
def server() -> Iterator[FakeVendor]:
    # One server for the module: stopping one waits out its 0.5 s poll.
    with fake_vendor(Workspace()) as fake:
        yield fake


@pytest.fixture
def vendor(server: FakeVendor) -> FakeVendor:
    server.handler = Workspace()
    server.received.clear()
    return server


def config(vendor: FakeVendor, **changes: Any) -> Any:
    return validate_config("intercom", {"access_token": TOKEN, "endpoint": vendor.url, **changes})


def identify(n: int, **traits: Any) -> CanonicalEvent:
    return cast(
        CanonicalEvent,
        {
            "messageId": f"msg-identify-{n}",
            "type": "identify",
            "userId": f"user-{n}",
            "traits": {"email": f"user{n}@example.com", "name": f"User {n}", **traits},
            "timestamp": "2024-01-15T14:59:55.250Z",
        },
    )


def track(n: int, **properties: Any) -> CanonicalEvent:
    return cast(
        CanonicalEvent,
        {
            "messageId": f"msg-track-{n}",
            "type": "track",
            "event": "Order Completed",
            "userId": f"user-{n}",
            "properties": {"order_id": f"ord-{n}", **properties},
            "timestamp": "2024-01-15T14:59:55.250Z",
        },
    )


def group(n: int) -> CanonicalEvent:
    return cast(
        CanonicalEvent,
        {
            "messageId": f"msg-group-{n}",
            "type": "group",
            "userId": f"user-{n}",
            "groupId": f"co-{n}",
            "traits": {"name": f"Company {n}", "employees": 12},
            "timestamp": "2024-01-15T14:59:55.250Z",
        },
    )


def test_one_request_per_event(vendor: FakeVendor) -> None:
    page = cast(
        CanonicalEvent,
        {"type": "page", "userId": "user-1", "name": "Pricing", "messageId": "msg-page"},
    )
    events = [identify(1, plan="pro"), track(1, revenue=9.5), group(1), page, track(2)]
    sent = send_all("intercom", config(vendor), events)
    assert [(s.status, s.owners) for s in sent] == [
        ("delivered", (0,)),
        ("delivered", (1,)),
        ("delivered", (2,)),
        ("delivered", (4,)),  # the page is skipped: nothing carries it
    ]
    assert [r.path for r in vendor.received] == ["/contacts", "/events", "/companies", "/events"]
    assert vendor.received[1].json()["metadata"]["price"] == {"amount": 950, "currency": "usd"}
    assert vendor.received[0].headers["intercom-version"] == "2.11"


def test_metadata_stays_within_ten_keys(vendor: FakeVendor) -> None:
    many = {f"key_{i}": i for i in range(25)}
    [sent] = send_all("intercom", config(vendor), [track(1, **many)])
    assert sent.status == "delivered"
    assert len(vendor.received[0].json()["metadata"]) == 10


def test_bad_token_fails(vendor: FakeVendor) -> None:
    [sent] = send_all("intercom", config(vendor, access_token="revoked"), [track(1)])
    assert sent.status == "failed"
    assert "Access Token Invalid" in sent.result.detail


def test_an_existing_contact_is_updated_by_the_id_its_conflict_names(vendor: FakeVendor) -> None:
    sent = send_all("intercom", config(vendor), [identify(1), identify(1, plan="pro")])
    assert [s.status for s in sent] == ["delivered", "delivered"]
    create, conflict, update = vendor.received
    assert (create.method, conflict.method, update.method) == ("POST", "POST", "PUT")
    assert update.path == "/contacts/65f00000"
    assert update.json() == conflict.json()
    assert update.json()["custom_attributes"]["plan"] == "pro"


def test_a_conflict_naming_no_contact_is_permanent_with_the_vendor_message(
    vendor: FakeVendor,
) -> None:
    vendor.handler = lambda request: errors(409, "conflict", "A contact already exists")
    [sent] = send_all("intercom", config(vendor), [identify(1)])
    assert sent.status == "failed"
    assert "A contact already exists" in sent.result.detail


def test_unknown_custom_attribute_is_a_permanent_validation_error(vendor: FakeVendor) -> None:
    [sent] = send_all("intercom", config(vendor), [identify(1, favourite_colour="teal")])
    assert sent.status == "failed"
    assert "Custom attribute 'favourite_colour' does not exist" in sent.result.detail


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (errors(429, "rate_limit_exceeded", "Exceeded rate limit of 1666 in 10_seconds"), "retry"),
        (errors(500, "server_error", "Server Error"), "retry"),
        (errors(503, "service_unavailable", "Service unavailable; retry later"), "retry"),
        # Intercom's documented transient codes are retried whatever status carries them.
        (
            errors(400, "request_timeout", "The server timed out while processing the request"),
            "retry",
        ),
        (errors(409, "resource_conflict", "The resource already exists"), "failed"),
        (errors(403, "api_plan_restricted", "Not available on this plan"), "failed"),
    ],
)
def test_vendor_answers_are_classified(vendor: FakeVendor, answer: Answer, expected: str) -> None:
    vendor.handler = lambda request: answer
    [sent] = send_all("intercom", config(vendor), [track(1)])
    assert sent.status == expected


def test_rate_limited_answer_keeps_retry_after(vendor: FakeVendor) -> None:
    limited = errors(429, "rate_limit_exceeded", "Exceeded rate limit")
    vendor.handler = lambda request: Answer(limited.status, limited.body, {"Retry-After": "10"})
    [sent] = send_all("intercom", config(vendor), [identify(1)])
    assert (sent.status, sent.result.retry_after_seconds) == ("retry", 10.0)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"access_token": ""}, "access_token"),
        ({"region": "apac"}, "region"),
        ({"api_version": "1.4"}, "api_version"),
        ({"endpoint": "https://user:pw@intercom.example.com"}, "endpoint"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_config_errors_name_their_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_config("intercom", {"access_token": TOKEN, **changes})
    assert caught.value.field == f"config.{field}"


def test_token_is_write_only() -> None:
    cfg = validate_config("intercom", {"access_token": TOKEN, "region": "eu"})
    shown = json.dumps(public_config("intercom", cfg)) + repr(cfg) + str(cfg)
    assert TOKEN not in shown
    assert public_config("intercom", cfg) == {
        "region": "eu",
        "api_version": "2.11",
        "endpoint": None,
    }
    assert stored_config(cfg)["access_token"] == TOKEN


def test_a_deletion_searches_the_users_contact_and_deletes_it(vendor: FakeVendor) -> None:
    [created] = send_all("intercom", config(vendor), [identify(1)])
    assert created.status == "delivered"
    request = deletion_request(
        "intercom", stored_config(config(vendor)), DeletionSubject("user_id", "user-1", "dpo")
    )
    assert isinstance(request, OutboundRequest)
    sender = HttpSender(UrlGuard(allow_private=True))
    status, result = send_http(CONNECTORS["intercom"], sender, request)
    assert (status, result.http_status) == ("delivered", 200)
    search, delete = vendor.received[-2:]
    assert (search.method, search.path) == ("POST", "/contacts/search")
    assert search.json()["query"] == {"field": "external_id", "operator": "=", "value": "user-1"}
    assert (delete.method, delete.path) == ("DELETE", "/contacts/65f00000")
    # Nobody left to find: the search alone, answered 200, and nothing deleted.
    status, _ = send_http(CONNECTORS["intercom"], sender, request)
    assert status == "delivered" and vendor.received[-1].path == "/contacts/search"
    anonymous = DeletionSubject("anonymous_id", "anon-1", "dpo")
    assert isinstance(deletion_request("intercom", stored_config(config(vendor)), anonymous), str)
