"""What the console's destination pages need of the API: each type's config schema, secrets as
set or not, a test event sent now through the real sender and guard, and recent deliveries."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import jsonschema
import pytest

from shared.destinations import CONNECTORS
from shared.destinations.outbound import HttpSender, UrlGuard
from shared.destinations.webhook import SIGNATURE_HEADER, verify_signature
from shared.domain.pipeline import DeliveryMessage, delivery_batch_path, delivery_batches_collection
from shared.ports import Write
from shared.services.deliver import batch_record
from shared.services.destination_test import TEST_MESSAGE_PREFIX
from shared.services.destinations import Destinations
from tests.fakes import FakePublisher, FakeServices
from tests.functions import function_client
from tests.tenants import Tenant
from tests.webhook_receiver import webhook_receiver

SECRET = "whsec-console-0123456789-TOPSECRET"
HEADER_SECRET = "Bearer hdr-console-TOPSECRET"


@pytest.fixture
def client() -> Any:
    return function_client("destinations")


def use_sender(services: FakeServices, *, allow_private: bool) -> None:
    """The production sender and guard, with local addresses allowed or not (as the setting)."""
    guard = UrlGuard(allow_private)
    services.url_guard = guard
    services.http_sender = HttpSender(guard, 5.0)
    services.destinations = Destinations(
        services.store, guard, services.forwarding_rules, services.topic_guard
    )


def create(client: Any, tenant: Tenant, body: dict[str, Any]) -> dict[str, Any]:
    workspace_id, auth = tenant
    response = client.post(
        f"/api/v1/workspaces/{workspace_id}/destinations", json=body, headers=auth
    )
    assert response.status_code == 201, response.get_json()
    created: dict[str, Any] = response.get_json()
    return created


def hook(url: str, **config: Any) -> dict[str, Any]:
    return {
        "name": "Console hook",
        "type": "webhook",
        "config": {"url": url, "secret": SECRET, **config},
    }


def test_each_type_answers_the_schema_its_config_is_validated_with(
    client: Any, tenant: Tenant
) -> None:
    workspace_id, auth = tenant
    response = client.get(f"/api/v1/workspaces/{workspace_id}/destination-types", headers=auth)
    assert response.status_code == 200
    types = {item["type"]: item for item in response.get_json()}
    assert list(types) == list(CONNECTORS)
    webhook = types["webhook"]
    assert webhook["secret_fields"] == ["headers", "secret"]
    schema = webhook["config_schema"]
    assert schema["required"] == ["url", "secret"] and schema["additionalProperties"] is False
    assert schema["properties"]["secret"]["writeOnly"] is True
    assert schema["properties"]["secret"]["minLength"] == 16
    assert types["mixpanel"]["secret_fields"] == ["api_secret", "gdpr_token", "project_token"]
    assert types["pubsub"]["secret_fields"] == []
    # What the schema refuses, the API refuses, naming the same field.
    too_short = {"url": "https://hooks.example.com/x", "secret": "short"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(too_short, schema)
    refused = client.post(
        f"/api/v1/workspaces/{workspace_id}/destinations",
        json={"name": "x", "type": "webhook", "config": too_short},
        headers=auth,
    )
    assert (refused.status_code, refused.get_json()["field"]) == (400, "config.secret")
    jsonschema.validate({"url": "https://hooks.example.com/x", "secret": SECRET}, schema)
    assert client.get(f"/api/v1/workspaces/{workspace_id}/destination-types").status_code == 401


def test_the_catalogue_says_how_each_type_is_sent_to(client: Any, tenant: Tenant) -> None:
    workspace_id, auth = tenant
    base = f"/api/v1/workspaces/{workspace_id}/destination-types"
    types = {item["type"]: item for item in client.get(base, headers=auth).get_json()}
    amplitude = client.get(f"{base}/amplitude", headers=auth).get_json()
    assert amplitude == types["amplitude"]
    assert amplitude["event_types"] == ["track", "identify", "page", "screen", "group"]
    assert amplitude["batching"] == {"max_parts": 2000, "max_bytes": 999_000}
    assert amplitude["rate_limit"] == {"requests": 10, "per_seconds": 1.0}
    assert amplitude["supports_deletion"] is True
    assert amplitude["docs_url"].startswith("https://")
    assert types["webhook"]["batching"]["max_parts"] == 1
    assert types["webhook"]["supports_deletion"] is False
    for item in types.values():
        assert item["description"] and item["docs_url"] and item["event_types"]
        connector = CONNECTORS[item["type"]]
        assert item["event_types"] == list(connector.about.event_types)
    missing = client.get(f"{base}/segment-v2", headers=auth)
    assert (missing.status_code, missing.get_json()["field"]) == (404, "type")


def test_secrets_are_answered_as_set_or_not_never_by_value(
    client: Any, services: FakeServices, tenant: Tenant
) -> None:
    use_sender(services, allow_private=True)
    workspace_id, auth = tenant
    amplitude = create(
        client, tenant, {"name": "Amp", "type": "amplitude", "config": {"api_key": "amp-TOPSECRET"}}
    )
    assert amplitude["secrets_set"] == ["api_key"]
    url = f"/api/v1/workspaces/{workspace_id}/destinations/{amplitude['id']}"
    # An update that omits the key keeps it, and adding the optional secret shows it as set.
    updated = client.put(url, json={"config": {"secret_key": "sk-TOPSECRET"}}, headers=auth)
    assert updated.status_code == 200
    assert updated.get_json()["secrets_set"] == ["api_key", "secret_key"]
    listed = client.get(f"/api/v1/workspaces/{workspace_id}/destinations", headers=auth)
    assert [d["secrets_set"] for d in listed.get_json()] == [["api_key", "secret_key"]]
    assert "TOPSECRET" not in listed.get_data(as_text=True)


def test_a_test_event_goes_through_the_connector_and_answers_the_destination(
    client: Any, services: FakeServices, tenant: Tenant
) -> None:
    use_sender(services, allow_private=True)
    workspace_id, auth = tenant
    with webhook_receiver() as receiver:
        destination = create(
            client, tenant, hook(receiver.url, headers={"Authorization": HEADER_SECRET})
        )
        # Disabled: a test still reaches it (it is how one checks a destination before enabling).
        url = f"/api/v1/workspaces/{workspace_id}/destinations/{destination['id']}"
        assert client.put(url, json={"status": "inactive"}, headers=auth).status_code == 200
        response = client.post(f"{url}/test", headers=auth)
        [received] = receiver.wait_for(1)
    assert response.status_code == 200
    answer = response.get_json()
    assert (answer["outcome"], answer["http_status"]) == ("delivered", 200)
    assert answer["detail"] == "HTTP 200: {}"
    assert answer["message_id"].startswith(TEST_MESSAGE_PREFIX)
    sent = received.event
    assert (sent["type"], sent["event"], sent["messageId"]) == (
        "track",
        "Streams Test Event",
        answer["message_id"],
    )
    assert answer["event"]["messageId"] == sent["messageId"]
    # Signed with the stored secret, and the stored headers sent, as a delivery is.
    headers = {name.lower(): value for name, value in received.headers.items()}
    assert headers["authorization"] == HEADER_SECRET
    assert SIGNATURE_HEADER.lower() in headers
    assert verify_signature(
        SECRET, headers["x-streams-timestamp"], received.body, headers[SIGNATURE_HEADER.lower()]
    )
    assert "TOPSECRET" not in response.get_data(as_text=True)
    # A test is no delivery: nothing is recorded.
    assert services.store.list_documents(delivery_batches_collection(workspace_id)) == []


def test_a_test_event_answers_failures_in_words(
    client: Any, services: FakeServices, tenant: Tenant
) -> None:
    use_sender(services, allow_private=True)
    workspace_id, auth = tenant
    with webhook_receiver(status=503) as receiver:
        destination = create(client, tenant, hook(receiver.url))
        url = f"/api/v1/workspaces/{workspace_id}/destinations/{destination['id']}/test"
        custom = {"event": {"type": "identify", "userId": "u1", "traits": {"plan": "pro"}}}
        failing = client.post(url, json=custom, headers=auth).get_json()
        assert (failing["outcome"], failing["http_status"]) == ("retry", 503)
        assert failing["event"]["type"] == "identify"
        # A custom event is checked as ingest checks it, its error naming the field.
        bad = client.post(url, json={"event": {"type": "track", "event": "x"}}, headers=auth)
        assert (bad.status_code, bad.get_json()["field"]) == (400, "event.userId")
        unknown = client.post(url, json={"event": {"type": "shout"}}, headers=auth)
        assert (unknown.status_code, unknown.get_json()["field"]) == (400, "event.type")
        extra = client.post(url, json={"events": []}, headers=auth)
        assert (extra.status_code, extra.get_json()["field"]) == (400, "events")
    missing = client.post(f"/api/v1/workspaces/{workspace_id}/destinations/nope/test", headers=auth)
    assert missing.status_code == 404


def test_a_test_event_is_refused_where_deliveries_are(
    client: Any, services: FakeServices, tenant: Tenant
) -> None:
    # Stored while local addresses were allowed; the guard at send time refuses them now.
    with webhook_receiver() as receiver:
        use_sender(services, allow_private=True)
        destination = create(client, tenant, hook(receiver.url))
        use_sender(services, allow_private=False)
        services.__dict__.pop("destination_tester", None)
        workspace_id, auth = tenant
        response = client.post(
            f"/api/v1/workspaces/{workspace_id}/destinations/{destination['id']}/test",
            headers=auth,
        )
        assert receiver.delivered() == []
    answer = response.get_json()
    assert (answer["outcome"], answer["http_status"]) == ("failed", None)
    assert answer["detail"] == "127.0.0.1 resolves to a loopback address 127.0.0.1"


def test_a_pubsub_test_event_is_published_to_the_customer_topic(
    client: Any, services: FakeServices, tenant: Tenant
) -> None:
    customer = FakePublisher()
    services.customer_publisher = customer
    topic = "projects/acme-prod/topics/events"
    destination = create(
        client, tenant, {"name": "Topic", "type": "pubsub", "config": {"topic": topic}}
    )
    workspace_id, auth = tenant
    response = client.post(
        f"/api/v1/workspaces/{workspace_id}/destinations/{destination['id']}/test", headers=auth
    )
    answer = response.get_json()
    assert answer["outcome"] == "delivered" and answer["detail"].startswith("published as ")
    [(data, _)] = customer.published[topic]
    assert topic not in services.publisher.published
    assert json.loads(data)["messageId"] == answer["message_id"]


def delivery(
    destination_id: str, number: int, status: str, second: int | None = None
) -> dict[str, Any]:
    """A delivery as deliver's record holds it (shared/services/deliver.py `delivery_entry`),
    last attempted at `second`."""
    at = f"2026-12-01T10:00:{second or number:02d}.000Z"
    return {
        "delivery_id": f"d{number}",
        "message_id": f"m{number}",
        "rule_id": "r1",
        "destination_id": destination_id,
        "destination_type": "webhook",
        "status": status,
        "attempts": number,
        "last_detail": f"HTTP {200 if status == 'delivered' else 503}",
        "last_http_status": 200 if status == "delivered" else 503,
        "history": [],
        "created_at": at,
        "updated_at": at,
        "delivered_at": at if status == "delivered" else None,
    }


def batch_write(workspace_id: str, batch_id: str, entries: list[dict[str, Any]]) -> Write:
    """The record of one deliveries-topic message, as deliver writes it after its last push."""
    first = entries[0]
    message = DeliveryMessage(
        first["delivery_id"],
        workspace_id,
        first["message_id"],
        "r1",
        first["destination_id"],
        None,
        {},
    )
    last = datetime.fromisoformat(max(entry["updated_at"] for entry in entries))
    by_id = {entry["delivery_id"]: entry for entry in entries}
    record = batch_record(batch_id, message, None, by_id, last)
    return Write("set", delivery_batch_path(workspace_id, batch_id), record)


def test_recent_deliveries_of_one_destination_newest_first(
    client: Any, services: FakeServices, tenant: Tenant
) -> None:
    use_sender(services, allow_private=True)
    workspace_id, auth = tenant
    mine = create(client, tenant, hook("http://127.0.0.1:9/a"))
    other = create(client, tenant, hook("http://127.0.0.1:9/b"))
    # One record per deliveries-topic message; m2 was retried, then replayed (a message and
    # a record of its own) and delivered.
    messages = [
        [delivery(mine["id"], 1, "delivered"), delivery(mine["id"], 2, "dead_lettered")],
        [delivery(other["id"], 3, "delivered")],
        [delivery(mine["id"], 4, "retrying")],
        [delivery(mine["id"], 2, "delivered", second=5)],
    ]
    services.store.commit(
        [batch_write(workspace_id, f"{n:040d}", entries) for n, entries in enumerate(messages)]
    )
    url = f"/api/v1/workspaces/{workspace_id}/destinations/{mine['id']}/deliveries"
    listed = client.get(url, headers=auth)
    assert listed.status_code == 200
    answer = listed.get_json()
    assert [(d["message_id"], d["status"]) for d in answer] == [
        ("m2", "delivered"),
        ("m4", "retrying"),
        ("m1", "delivered"),
    ]
    assert set(answer[0]) == {
        "delivery_id",
        "message_id",
        "rule_id",
        "status",
        "attempts",
        "last_detail",
        "last_http_status",
        "created_at",
        "updated_at",
        "delivered_at",
    }
    limited = client.get(url, query_string={"limit": "2"}, headers=auth).get_json()
    assert [d["message_id"] for d in limited] == ["m2", "m4"]
    too_many = client.get(url, query_string={"limit": "201"}, headers=auth)
    assert (too_many.status_code, too_many.get_json()["field"]) == (400, "limit")
    gone = f"/api/v1/workspaces/{workspace_id}/destinations/nope/deliveries"
    assert client.get(gone, headers=auth).status_code == 404
