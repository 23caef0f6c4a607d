"""Klaviyo: bulk batching, the vendor's JSON:API answers classified, deletion, config rules.

The fake checks what Klaviyo's bulk endpoints check: the `Klaviyo-API-Key` private key, a
`revision` header, the JSON:API content type, the job type, at most 1,000 events (Bulk Create
Events) or 10,000 profiles (Bulk Import Profiles) and 5 MB, a metric name and a profile
identifier on every event, no unique_id repeated for the same profile and metric in one
request, E.164 phone numbers. It answers as Klaviyo documents: 202 for an accepted job, and
`{"errors": [{id, status, code, title, detail, source}]}` for 400/401/403/429/5xx.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from shared.destinations import public_config, stored_config, validate_config
from shared.destinations.base import DeletionSubject, EventRejected, OutboundRequest
from shared.destinations.deletion import deletion_request
from shared.destinations.klaviyo import REVISION, KlaviyoConnector
from shared.destinations.outbound import HttpSender, UrlGuard
from shared.domain.errors import InvalidRequest
from shared.domain.event import CanonicalEvent
from tests.vendor_fakes import (
    Answer,
    Received,
    send_all,
    vendor_fixtures,
)

API_KEY = "pk_test_0123456789abcdef0123"
NOW = datetime(2024, 1, 15, 15, 0, 6, tzinfo=UTC)
E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")


def event(type_: str = "track", n: int = 0, **over: Any) -> CanonicalEvent:
    base: dict[str, Any] = {
        "messageId": f"msg-{n}",
        "type": type_,
        "event": "Order Completed" if type_ == "track" else None,
        "name": None,
        "userId": f"user-{n}",
        "anonymousId": f"anon-{n}",
        "groupId": None,
        "previousId": None,
        "properties": {"n": n, "revenue": 10.5, "currency": "EUR"},
        "traits": {},
        "context": {"traits": {"email": f"user{n}@example.com"}},
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


def error(status: int, code: str, title: str, detail: str, pointer: str = "/data") -> Answer:
    body = {
        "errors": [
            {
                "id": "7e1b6c2a-0000-4000-8000-000000000000",
                "status": status,
                "code": code,
                "title": title,
                "detail": detail,
                "source": {"pointer": pointer},
            }
        ]
    }
    return Answer(status, body)


def invalid(detail: str, pointer: str = "/data") -> Answer:
    return error(400, "invalid", "Invalid input.", detail, pointer)


def _events(body: dict[str, Any]) -> Answer | None:
    if body["data"].get("type") != "event-bulk-create-job":
        return invalid("Expected type 'event-bulk-create-job'.", "/data/type")
    entries = body["data"]["attributes"]["events-bulk-create"]["data"]
    if sum(len(e["attributes"]["events"]["data"]) for e in entries) > 1000:
        return invalid("A maximum of 1000 events may be sent per request.")
    seen = set()
    for entry in entries:
        profile = entry["attributes"]["profile"]["data"]["attributes"]
        ids = ("email", "phone_number", "external_id", "anonymous_id", "id")
        if not any(profile.get(k) for k in ids):
            return invalid("A profile identifier is required.", "/data/attributes/profile")
        if "phone_number" in profile and not E164.match(profile["phone_number"]):
            return invalid("Invalid phone number format (Example of a valid format: +13239169023)")
        for item in entry["attributes"]["events"]["data"]:
            attributes = item["attributes"]
            name = attributes["metric"]["data"]["attributes"].get("name")
            if not name or "properties" not in attributes:
                return invalid("'name' is a required field for the metric.")
            key = (json.dumps(profile, sort_keys=True), name, attributes.get("unique_id"))
            if key in seen:
                return invalid("Duplicate unique_id for the same profile and metric.")
            seen.add(key)
    return None


def _profiles(body: dict[str, Any]) -> Answer | None:
    if body["data"].get("type") != "profile-bulk-import-job":
        return invalid("Expected type 'profile-bulk-import-job'.", "/data/type")
    profiles = body["data"]["attributes"]["profiles"]["data"]
    if len(profiles) > 10_000:
        return invalid("A maximum of 10000 profiles may be imported per request.")
    for profile in profiles:
        attributes = profile["attributes"]
        if not any(attributes.get(k) for k in ("email", "phone_number", "external_id")):
            return invalid("One of email, phone_number or external_id is required.")
    return None


def klaviyo(request: Received) -> Answer:
    """Klaviyo's bulk endpoints and the deletion job, as documented."""
    if request.method != "POST":
        return error(405, "method_not_allowed", "Method not allowed.", "Method not allowed.")
    if request.headers.get("authorization") != f"Klaviyo-API-Key {API_KEY}":
        return error(
            401,
            "not_authenticated",
            "Authentication credentials were not provided.",
            "Missing or invalid private key.",
        )
    if not re.match(r"^\d{4}-\d{2}-\d{2}(\.\w+)?$", request.headers.get("revision", "")):
        return invalid("The revision header is required.", "/headers/revision")
    if request.headers.get("content-type") != "application/vnd.api+json":
        return error(415, "unsupported_media_type", "Unsupported media type.", "Use JSON:API.")
    if len(request.body) > 5 * 1024 * 1024:
        return error(413, "request_too_large", "Request too large.", "Payload exceeds 5MB.")
    body = request.json()
    if request.path == "/api/event-bulk-create-jobs":
        refusal = _events(body)
    elif request.path == "/api/profile-bulk-import-jobs":
        refusal = _profiles(body)
    elif request.path == "/api/data-privacy-deletion-jobs":
        identifier = body["data"]["attributes"]["profile"]["data"]["attributes"]
        refusal = None if len(identifier) == 1 else invalid("Provide exactly one identifier.")
    else:
        return error(404, "not_found", "Not found.", "Not found.")
    return refusal or Answer(202)


server, serve = vendor_fixtures(klaviyo)


def config(url: str, **over: Any) -> Any:
    return validate_config("klaviyo", {"api_key": API_KEY, "endpoint": url, **over})


def test_2500_tracks_and_3_identifies_make_three_event_jobs_and_one_profile_job(
    serve: Any,
) -> None:
    events = [event(n=i) for i in range(2500)]
    events += [event("identify", n=i, traits={"firstName": f"U{i}"}) for i in range(3)]
    vendor = serve(klaviyo)
    sent = send_all("klaviyo", config(vendor.url), events, now=NOW)
    assert [s.status for s in sent] == ["delivered"] * 4
    sizes = [
        (r.path, len(r.json()["data"]["attributes"].get("events-bulk-create", {}).get("data", [])))
        for r in vendor.received
    ]
    assert [size for path, size in sizes if path.endswith("event-bulk-create-jobs")] == [
        1000,
        1000,
        500,
    ]
    [profiles] = [r for r in vendor.received if r.path == "/api/profile-bulk-import-jobs"]
    assert len(profiles.json()["data"]["attributes"]["profiles"]["data"]) == 3
    assert sorted(o for s in sent for o in s.owners) == list(range(2503))
    assert all(r.headers["revision"] == REVISION for r in vendor.received)


def test_a_redelivered_event_in_the_same_batch_is_sent_once(serve: Any) -> None:
    # Klaviyo refuses a whole bulk request repeating a unique_id for a profile and metric.
    vendor = serve(klaviyo)
    sent = send_all("klaviyo", config(vendor.url), [event(n=1), event(n=1), event(n=2)], now=NOW)
    assert [s.status for s in sent] == ["delivered"]
    assert sent[0].owners == (0, 1, 2)
    [request] = vendor.received
    assert len(request.json()["data"]["attributes"]["events-bulk-create"]["data"]) == 2


def test_bad_credentials_fail(serve: Any) -> None:
    vendor = serve(klaviyo)
    cfg = validate_config("klaviyo", {"api_key": "pk_wrong_key_1234", "endpoint": vendor.url})
    [sent] = send_all("klaviyo", cfg, [event()], now=NOW)
    assert sent.status == "failed"
    assert sent.result.http_status == 401 and "Missing or invalid private key" in sent.result.detail


def test_a_key_without_the_scope_fails(serve: Any) -> None:
    answer = error(
        403,
        "permission_denied",
        "You do not have permission to perform this action.",
        "This API key is missing required scopes: events:write.",
    )
    vendor = serve(lambda _: answer)
    [sent] = send_all("klaviyo", config(vendor.url), [event()], now=NOW)
    assert sent.status == "failed" and "events:write" in sent.result.detail


def test_rate_limited_is_retried_after_retry_after(serve: Any) -> None:
    answer = error(
        429, "throttled", "Request was throttled.", "Request was throttled. Expected in 7 seconds."
    )
    answer.headers["Retry-After"] = "7"
    vendor = serve(lambda _: answer)
    [sent] = send_all("klaviyo", config(vendor.url), [event()], now=NOW)
    assert sent.status == "retry" and sent.result.retry_after_seconds == 7.0


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retried(serve: Any, status: int) -> None:
    answer = error(status, "error", "A server error occurred.", "A server error occurred.")
    vendor = serve(lambda _: answer)
    [sent] = send_all("klaviyo", config(vendor.url), [event()], now=NOW)
    assert sent.status == "retry"


def test_a_validation_error_fails_with_klaviyos_detail(serve: Any) -> None:
    answer = invalid("'name' is a required field for the metric.", "/data/attributes/metric")
    vendor = serve(lambda _: answer)
    [sent] = send_all("klaviyo", config(vendor.url), [event()], now=NOW)
    assert sent.status == "failed" and sent.result.http_status == 400
    assert "'name' is a required field for the metric." in sent.result.detail


def test_the_api_key_never_shows_in_an_answers_detail(serve: Any) -> None:
    vendor = serve(lambda _: invalid(f"Unknown key {API_KEY}"))
    [sent] = send_all("klaviyo", config(vendor.url), [event()], now=NOW)
    assert API_KEY not in sent.result.detail


def test_what_klaviyo_would_refuse_for_a_whole_batch_is_refused_per_event() -> None:
    cfg = config("https://a.klaviyo.com")
    connector = KlaviyoConnector()
    for bad in (
        event(context={"traits": {"phone": "555-0100"}}),
        event(context={"traits": {"email": "not an email"}}),
        event(userId=None, anonymousId=None, context={}),
        event("identify", userId=None, context={}, traits={"plan": "free"}),
    ):
        with pytest.raises(EventRejected):
            connector.parts(bad, cfg, now=NOW)
    [part] = connector.parts(event(context={"traits": {"phone": "+1 503.555.0100"}}), cfg, now=NOW)
    profile = part.payload["attributes"]["profile"]["data"]["attributes"]
    assert profile["phone_number"] == "+15035550100"
    assert connector.parts(event("group", groupId="g"), cfg, now=NOW) == []
    assert connector.parts(event("alias", previousId="a"), cfg, now=NOW) == []


def test_deletion_by_email_or_phone_user_id_and_the_reason_otherwise(serve: Any) -> None:
    vendor = serve(klaviyo)
    stored = stored_config(config(vendor.url))
    by_email = deletion_request("klaviyo", stored, DeletionSubject("user_id", "ada@x.com", "dpo"))
    assert isinstance(by_email, OutboundRequest)
    assert by_email.url == f"{vendor.url}/api/data-privacy-deletion-jobs"
    assert by_email.headers["Authorization"] == f"Klaviyo-API-Key {API_KEY}"
    assert API_KEY in by_email.redact
    assert json.loads(by_email.body) == {
        "data": {
            "type": "data-privacy-deletion-job",
            "attributes": {
                "profile": {"data": {"type": "profile", "attributes": {"email": "ada@x.com"}}}
            },
        }
    }
    by_phone = deletion_request("klaviyo", stored, DeletionSubject("user_id", "+15005550006", "d"))
    assert isinstance(by_phone, OutboundRequest)
    assert b'"phone_number":"+15005550006"' in by_phone.body
    for subject in (
        DeletionSubject("user_id", "user-42", "dpo"),
        DeletionSubject("anonymous_id", "anon-1", "dpo"),
    ):
        reason = deletion_request("klaviyo", stored, subject)
        assert isinstance(reason, str) and "external_id" in reason
    # The fake accepts the job the way Klaviyo does (202).
    sender = HttpSender(UrlGuard(allow_private=True))
    try:
        assert sender.send(by_email).status == "delivered"
    finally:
        sender.close()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"api_key": "AbC123"}, "api_key"),
        ({"api_key": ""}, "api_key"),
        ({"endpoint": "ftp://a.klaviyo.com"}, "endpoint"),
        ({"endpoint": "https://user:pw@a.klaviyo.com"}, "endpoint"),
        ({"revision": "2023-01-01"}, "revision"),  # pinned by Streams, not a setting
    ],
)
def test_invalid_config_names_its_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_config("klaviyo", {"api_key": API_KEY, **changes})
    assert caught.value.field == f"config.{field}"
    assert API_KEY not in caught.value.message


def test_the_key_is_write_only() -> None:
    cfg = validate_config("klaviyo", {"api_key": API_KEY})
    shown = json.dumps(public_config("klaviyo", cfg)) + repr(cfg) + str(cfg)
    assert API_KEY not in shown
    assert public_config("klaviyo", cfg) == {"endpoint": None}
