"""Webhook sources through the real function entry points: the ingest endpoint, the settings
API and the test request (in-memory services)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import pytest

from shared.domain.sources import EventSource, source_path, write_key_path
from shared.domain.webhooks import WEBHOOK_REQUEST_TYPE
from shared.ports import Write
from tests.fakes import FakeServices
from tests.functions import function_client
from tests.unit.conftest import published
from tests.unit.test_webhook_signatures import (
    GITHUB_PAYLOAD,
    GITHUB_SECRET,
    GITHUB_SIGNATURE,
    STRIPE_EVENT,
    STRIPE_SECRET,
    stripe_header,
)

GITHUB_DELIVERY = "72d3162e-cc78-11e3-81ab-4c9367dc0958"


@pytest.fixture
def ingest() -> Any:
    return function_client("ingest")


@pytest.fixture
def event_keys() -> Any:
    return function_client("event_keys")


@pytest.fixture
def admin(services: FakeServices) -> tuple[str, dict[str, str]]:
    workspace = services.workspaces.create("Hooks")
    token, _ = services.workspaces.create_token(workspace.id, "admin")
    return f"/api/v1/workspaces/{workspace.id}/event-keys", {"Authorization": f"Bearer {token}"}


@pytest.fixture
def hook(event_keys: Any, admin: tuple[str, dict[str, str]], services: FakeServices) -> Any:
    base, auth = admin
    created = event_keys.post(base, json={"name": "Payments", "type": "webhook"}, headers=auth)
    assert created.status_code == 201 and created.get_json()["type"] == "webhook"
    return services.sources.get(created.get_json()["workspace_id"], created.get_json()["id"])


def configure(event_keys: Any, admin: tuple[str, dict[str, str]], source: Any, **body: Any) -> Any:
    base, auth = admin
    return event_keys.put(f"{base}/{source.id}/webhook", json=body, headers=auth)


def configured(
    event_keys: Any,
    admin: tuple[str, dict[str, str]],
    source: Any,
    services: FakeServices,
    **body: Any,
) -> None:
    """Set the settings, and start a fresh ingest instance (none has the old record cached)."""
    response = configure(event_keys, admin, source, **body)
    assert response.status_code == 200, response.get_json()
    services.__dict__.pop("ingest", None)


def requests_of(services: FakeServices, source: EventSource) -> list[dict[str, Any]]:
    items = published(services, source)
    assert all(item["type"] == WEBHOOK_REQUEST_TYPE for item in items)
    return items


@pytest.mark.parametrize("where", ["path", "query"])
def test_any_json_body_is_published_as_one_request(
    ingest: Any, services: FakeServices, hook: EventSource, where: str
) -> None:
    url = f"/v1/webhook/{hook.key}" if where == "path" else f"/v1/webhook?writeKey={hook.key}"
    response = ingest.post(
        url + ("&" if where == "query" else "?") + "shop=acme",
        json={"type": "order.created", "order": {"id": 7}},
        headers={"Authorization": "Bearer x", "Cookie": "session=1", "X-Forwarded-For": "1.2.3.4"},
    )
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    assert answer["success"] is True
    [item] = requests_of(services, hook)
    assert item["messageId"] == answer["messageId"]
    assert item["sourceId"] == hook.id and item["workspaceId"] == hook.workspace_id
    request = item["request"]
    assert request["body"] == {"type": "order.created", "order": {"id": 7}}
    assert request["query"] == {"shop": "acme"}
    assert request["content_type"] == "application/json" and request["delivery_id"] is None
    # Credentials and the sender's address are not published with the request.
    assert not {"authorization", "cookie", "x-forwarded-for"} & set(request["headers"])


def test_a_form_body_becomes_its_fields(
    ingest: Any, services: FakeServices, hook: EventSource
) -> None:
    response = ingest.post(
        f"/v1/webhook/{hook.key}",
        data="name=Ada+Lovelace&email=ada%40example.com&empty=",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    [item] = requests_of(services, hook)
    assert item["request"]["body"] == {
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "empty": "",
    }


def test_an_unparseable_body_is_400_naming_it(
    ingest: Any, services: FakeServices, hook: EventSource
) -> None:
    response = ingest.post(f"/v1/webhook/{hook.key}", data="{not json", content_type="text/plain")
    assert response.status_code == 400
    assert response.get_json()["field"] == "body"
    assert "not JSON" in response.get_json()["message"]
    assert published(services, hook) == []


def test_github_signed_delivery_is_verified_and_deduplicable(
    ingest: Any,
    event_keys: Any,
    admin: tuple[str, dict[str, str]],
    services: FakeServices,
    hook: EventSource,
) -> None:
    configured(event_keys, admin, hook, services, signature="github", secret=GITHUB_SECRET)
    # GitHub's documented scheme (its test vector is checked in test_webhook_signatures.py)
    # over a JSON body, as GitHub sends.
    body = b'{"zen":"Design for failure."}'
    signature = hmac.new(GITHUB_SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "X-Hub-Signature-256": f"sha256={signature}",
        "X-GitHub-Delivery": GITHUB_DELIVERY,
        "X-GitHub-Event": "ping",
        "Content-Type": "application/json",
    }
    first = ingest.post(f"/v1/webhook/{hook.key}", data=body, headers=headers)
    again = ingest.post(f"/v1/webhook/{hook.key}", data=body, headers=headers)
    assert first.status_code == again.status_code == 200
    # A provider's retry carries the same delivery id: the same messageId, for process to drop.
    assert first.get_json()["messageId"] == again.get_json()["messageId"]
    assert first.get_json()["messageId"] == f"github:{GITHUB_DELIVERY}"
    item = requests_of(services, hook)[0]
    assert item["request"]["delivery_id"] == GITHUB_DELIVERY
    assert item["request"]["headers"]["x-github-event"] == "ping"
    assert "x-hub-signature-256" not in item["request"]["headers"]


def test_bad_signatures_are_401_counted_and_shown(
    ingest: Any,
    event_keys: Any,
    admin: tuple[str, dict[str, str]],
    services: FakeServices,
    hook: EventSource,
) -> None:
    configured(event_keys, admin, hook, services, signature="github", secret=GITHUB_SECRET)
    tampered = ingest.post(
        f"/v1/webhook/{hook.key}",
        data=GITHUB_PAYLOAD + b"!",
        headers={"X-Hub-Signature-256": GITHUB_SIGNATURE},
    )
    missing = ingest.post(f"/v1/webhook/{hook.key}", json={"a": 1})
    for response in (tampered, missing):
        assert response.status_code == 401
        assert response.get_json()["field"] == "X-Hub-Signature-256"
    assert published(services, hook) == []
    # The first failure is written at once, the next within the interval waits for a later one.
    stored = services.store.get(source_path(hook.workspace_id, hook.id))
    assert stored is not None and stored["webhook_signature_failures"] == 1
    base, auth = admin
    shown = event_keys.get(f"{base}/{hook.id}/webhook", headers=auth).get_json()
    assert shown["signature_failures"] == 1


def test_stripe_event_id_is_the_delivery_and_stale_timestamps_are_refused(
    ingest: Any,
    event_keys: Any,
    admin: tuple[str, dict[str, str]],
    services: FakeServices,
    hook: EventSource,
) -> None:
    configured(event_keys, admin, hook, services, signature="stripe", secret=STRIPE_SECRET)
    now = int(time.time())
    fresh = {"Stripe-Signature": stripe_header(STRIPE_EVENT, STRIPE_SECRET, now)}
    stale = {"Stripe-Signature": stripe_header(STRIPE_EVENT, STRIPE_SECRET, now - 600)}
    response = ingest.post(f"/v1/webhook/{hook.key}", data=STRIPE_EVENT, headers=fresh)
    assert response.status_code == 200
    assert response.get_json()["messageId"] == "stripe:evt_1NG8Du2eZvKYlo2CUI79vXWy"
    refused = ingest.post(f"/v1/webhook/{hook.key}", data=STRIPE_EVENT, headers=stale)
    assert refused.status_code == 401 and refused.get_json()["field"] == "Stripe-Signature"
    assert len(published(services, hook)) == 1


def test_ip_policy_applies_to_the_request(
    ingest: Any, services: FakeServices, hook: EventSource
) -> None:
    services.sources.set_ip_policy(hook.workspace_id, hook.id, "remove")
    services.__dict__.pop("ingest", None)
    assert ingest.post(f"/v1/webhook/{hook.key}", json={}).status_code == 200
    [item] = requests_of(services, hook)
    assert "ip" not in item["context"]


def test_a_non_webhook_key_is_404_and_unknown_keys_401(
    ingest: Any, services: FakeServices, source: EventSource
) -> None:
    response = ingest.post(f"/v1/webhook/{source.key}", json={"a": 1})
    assert response.status_code == 404 and response.get_json()["field"] == "writeKey"
    assert ingest.post("/v1/webhook/wk_unknown", json={}).status_code == 401
    assert ingest.post("/v1/webhook", json={}).status_code == 401
    assert published(services, source) == []


@pytest.mark.parametrize("path", ["/v1/track", "/v1/batch"])
def test_sdk_paths_refuse_a_webhook_key(
    ingest: Any, services: FakeServices, hook: EventSource, path: str
) -> None:
    body: dict[str, Any] = {"event": "x", "userId": "u"} if path == "/v1/track" else {"batch": []}
    response = ingest.post(path, json=body, headers={"X-Write-Key": hook.key})
    assert response.status_code == 403
    assert "/v1/webhook" in response.get_json()["message"]
    assert published(services, hook) == []


def test_settings_api_never_answers_the_secret(
    event_keys: Any, admin: tuple[str, dict[str, str]], hook: EventSource
) -> None:
    base, auth = admin
    secret = "whsec_never_shown_anywhere"
    put = configure(
        event_keys,
        admin,
        hook,
        signature="stripe",
        secret=secret,
        event_name_from="path",
        event_name="type",
    )
    assert put.status_code == 200, put.get_json()
    got = event_keys.get(f"{base}/{hook.id}/webhook", headers=auth)
    for answer in (put, got):
        assert secret not in answer.get_data(as_text=True)
        body = answer.get_json()
        assert body["secret_set"] is True and "secret" not in body["settings"]
        assert body["url_path"] == f"/v1/webhook/{hook.key}"
        assert body["settings"]["signature"] == "stripe"
    # An omitted secret keeps the stored one; null clears it (refused while a scheme needs it).
    kept = configure(event_keys, admin, hook, signature="stripe")
    assert kept.status_code == 200 and kept.get_json()["secret_set"] is True
    cleared = configure(event_keys, admin, hook, signature="stripe", secret=None)
    assert cleared.status_code == 400 and cleared.get_json()["field"] == "secret"
    assert configure(event_keys, admin, hook, secret=None).get_json()["secret_set"] is False
    listed = event_keys.get(base, headers=auth)
    assert secret not in listed.get_data(as_text=True)


def test_settings_api_refusals(
    event_keys: Any, admin: tuple[str, dict[str, str]], hook: EventSource, services: FakeServices
) -> None:
    base, auth = admin
    no_secret = configure(event_keys, admin, hook, signature="github")
    assert no_secret.status_code == 400 and no_secret.get_json()["field"] == "secret"
    no_header = configure(event_keys, admin, hook, signature="hmac", secret="s")
    assert no_header.status_code == 400 and no_header.get_json()["field"] == "signature_header"
    unknown = configure(event_keys, admin, hook, signature="paypal")
    assert unknown.status_code == 400 and unknown.get_json()["field"] == "signature"
    missing = configure(event_keys, admin, hook, transformation_id="nope")
    assert missing.status_code == 400 and missing.get_json()["field"] == "transformation_id"
    server = event_keys.post(base, json={"name": "Backend"}, headers=auth).get_json()
    other = event_keys.get(f"{base}/{server['id']}/webhook", headers=auth)
    assert other.status_code == 409 and other.get_json()["field"] == "type"
    gone = event_keys.get(f"{base}/00000000-0000-0000-0000-000000000000/webhook", headers=auth)
    assert gone.status_code == 404


def test_test_webhook_goes_through_verification(
    event_keys: Any,
    admin: tuple[str, dict[str, str]],
    services: FakeServices,
    hook: EventSource,
) -> None:
    base, auth = admin
    configured(event_keys, admin, hook, services, signature="shopify", secret="shpss_x")
    sample = event_keys.post(f"{base}/{hook.id}/test-webhook", headers=auth)
    assert sample.status_code == 200, sample.get_json()
    own = event_keys.post(
        f"{base}/{hook.id}/test-webhook",
        json={"body": {"id": 1}, "headers": {"X-Shopify-Webhook-Id": "delivery-1"}},
        headers=auth,
    )
    assert own.get_json() == {"status": 200, "message_id": "shopify:delivery-1"}
    sample_item, own_item = requests_of(services, hook)
    assert sample_item["messageId"] == sample.get_json()["message_id"]
    assert sample_item["request"]["body"]["type"] == "streams.test"
    assert own_item["request"]["body"] == {"id": 1}
    # Signed by the server with the stored secret, and the signature withheld as a provider's.
    assert "x-shopify-hmac-sha256" not in own_item["request"]["headers"]


def test_a_webhook_source_takes_no_sdk_test_event(
    event_keys: Any, admin: tuple[str, dict[str, str]], hook: EventSource
) -> None:
    base, auth = admin
    response = event_keys.post(f"{base}/{hook.id}/test-event", headers=auth)
    assert response.status_code == 409 and "test-webhook" in response.get_json()["message"]


def test_json_body_field_round_trip(ingest: Any, services: FakeServices, hook: EventSource) -> None:
    """Any JSON value is a body: an array as much as an object."""
    assert ingest.post(f"/v1/webhook/{hook.key}", data=json.dumps([1, 2])).status_code == 200
    [item] = requests_of(services, hook)
    assert item["request"]["body"] == [1, 2]


def test_each_sample_test_request_is_a_new_delivery(
    event_keys: Any,
    admin: tuple[str, dict[str, str]],
    services: FakeServices,
    hook: EventSource,
) -> None:
    base, auth = admin
    configured(event_keys, admin, hook, services, signature="stripe", secret=STRIPE_SECRET)
    sent = [
        event_keys.post(f"{base}/{hook.id}/test-webhook", headers=auth).get_json()["message_id"]
        for _ in range(2)
    ]
    # The sample's id is a Stripe source's delivery id: a repeated one would be a duplicate.
    assert sent[0] != sent[1] and all(m.startswith("stripe:evt_streams_test_") for m in sent)


def test_a_key_record_written_before_it_carried_a_type_takes_its_source_s(
    ingest: Any, services: FakeServices, hook: EventSource
) -> None:
    # As an upgrade finds it: the source says webhook, its key record says nothing of a type.
    path = write_key_path(hook.key)
    legacy = {k: v for k, v in (services.store.get(path) or {}).items() if k != "type"}
    services.store.commit([Write("set", path, legacy)])
    response = ingest.post(f"/v1/webhook/{hook.key}", json={"type": "order.created"})
    assert response.status_code == 200, response.get_json()
    assert [item["type"] for item in requests_of(services, hook)] == [WEBHOOK_REQUEST_TYPE]
    assert (
        ingest.post("/v1/track", json={"event": "x"}, headers={"X-Write-Key": hook.key}).status_code
        == 403
    )
