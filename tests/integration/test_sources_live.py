"""Event sources, auth and ingest against the real Pub/Sub and Firestore emulators."""

from __future__ import annotations

import contextlib
import time

import pytest
from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1

from shared.bootstrap import Services
from shared.domain.errors import NotFound
from shared.domain.sources import process_subscription_id
from shared.ports import PushPolicy
from tests.functions import function_client
from tests.pubsub_helpers import TopicReader

pytestmark = pytest.mark.integration


@pytest.fixture
def tenant(live_services: Services) -> tuple[str, dict[str, str]]:
    workspace = live_services.workspaces.create("Acme")
    token, _ = live_services.workspaces.create_token(workspace.id, "admin")
    return workspace.id, {"Authorization": f"Bearer {token}"}


def test_created_source_has_a_real_topic(
    live_services: Services, tenant: tuple[str, dict[str, str]]
) -> None:
    workspace_id, auth = tenant
    client = function_client("event_keys")
    created = client.post(
        f"/api/v1/workspaces/{workspace_id}/event-keys", json={"name": "Web"}, headers=auth
    )
    assert created.status_code == 201
    topic = created.get_json()["pubsub_topic"]

    publisher = pubsub_v1.PublisherClient()
    assert publisher.get_topic(request={"topic": topic}).name == topic

    listed = client.get(f"/api/v1/workspaces/{workspace_id}/event-keys", headers=auth).get_json()
    assert [s["id"] for s in listed] == [created.get_json()["id"]]


def test_tenant_isolation_and_auth(
    live_services: Services, tenant: tuple[str, dict[str, str]]
) -> None:
    workspace_id, auth = tenant
    other = live_services.workspaces.create("Other")
    theirs = live_services.sources.create(other.id, "Theirs", "t")
    client = function_client("event_keys")

    assert client.get(f"/api/v1/workspaces/{workspace_id}/event-keys").status_code == 401
    assert client.get(f"/api/v1/workspaces/{other.id}/event-keys", headers=auth).status_code == 404
    assert (
        client.delete(
            f"/api/v1/workspaces/{workspace_id}/event-keys/{theirs.id}", headers=auth
        ).status_code
        == 404
    )
    assert (
        client.delete(
            f"/api/v1/workspaces/{other.id}/event-keys/{theirs.id}", headers=auth
        ).status_code
        == 404
    )
    assert live_services.sources.get(other.id, theirs.id).status == "active"


def test_ingest_publishes_to_the_source_topic(
    live_services: Services, tenant: tuple[str, dict[str, str]]
) -> None:
    workspace_id, _ = tenant
    source = live_services.sources.create(workspace_id, "Web", "t")
    reader = TopicReader(source.pubsub_topic)
    client = function_client("ingest")

    batch = {
        "batch": [
            {"type": "track", "event": f"e{i}", "userId": "u", "messageId": f"m{i}"}
            for i in range(5)
        ]
    }
    assert (
        client.post("/v1/batch", json=batch, headers={"X-Write-Key": source.key}).status_code == 200
    )
    single = client.post(
        "/v1/identify",
        json={"user_id": "u", "traits": {"plan": "pro"}},
        headers={"X-Write-Key": source.key},
    )
    assert single.status_code == 200

    events = reader.events(6)
    assert sorted(e["messageId"] for e in events if e["type"] == "track") == [
        f"m{i}" for i in range(5)
    ]
    assert [e["traits"] for e in events if e["type"] == "identify"] == [{"plan": "pro"}]
    assert all(e["workspaceId"] == workspace_id and e["sourceId"] == source.id for e in events)


def test_revoked_key_stops_working_within_10_seconds(
    live_services: Services, tenant: tuple[str, dict[str, str]]
) -> None:
    workspace_id, auth = tenant
    source = live_services.sources.create(workspace_id, "Web", "t")
    ingest = function_client("ingest")
    track = {"event": "e", "userId": "u"}
    assert (
        ingest.post("/v1/track", json=track, headers={"X-Write-Key": source.key}).status_code == 200
    )

    revoked_at = time.monotonic()
    response = function_client("event_keys").delete(
        f"/api/v1/workspaces/{workspace_id}/event-keys/{source.id}", headers=auth
    )
    assert response.get_json()["status"] == "revoked"
    while (
        ingest.post("/v1/track", json=track, headers={"X-Write-Key": source.key}).status_code == 200
    ):
        assert time.monotonic() - revoked_at < 10, "revoked key still accepted after 10 s"
        time.sleep(0.25)
    assert (
        ingest.post("/v1/track", json=track, headers={"X-Write-Key": source.key}).status_code == 401
    )


def test_publish_to_missing_topic_is_503_not_500(
    live_services: Services, tenant: tuple[str, dict[str, str]]
) -> None:
    workspace_id, _ = tenant
    source = live_services.sources.create(workspace_id, "Web", "t")
    publisher = pubsub_v1.PublisherClient()
    with contextlib.suppress(gexc.NotFound):
        publisher.delete_topic(request={"topic": source.pubsub_topic})
    try:
        response = function_client("ingest").post(
            "/v1/track", json={"event": "e", "userId": "u"}, headers={"X-Write-Key": source.key}
        )
    finally:
        # A source without its topic cannot be wired: later stacks on these emulators wire
        # every source there is.
        publisher.create_topic(request={"name": source.pubsub_topic})
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0


def test_deleting_a_stream_source_removes_its_topic_and_retires_its_subscription(
    live_services: Services, tenant: tuple[str, dict[str, str]]
) -> None:
    workspace_id, _ = tenant
    source = live_services.sources.create(workspace_id, "Web", "t")
    subscription_id = process_subscription_id(source.id)
    live_services.topics.ensure_push_subscription(
        source.pubsub_topic, subscription_id, PushPolicy(endpoint="http://127.0.0.1:9/process")
    )
    ingest = function_client("ingest")
    track = {"event": "e", "userId": "u"}
    assert (
        ingest.post("/v1/track", json=track, headers={"X-Write-Key": source.key}).status_code == 200
    )

    deleted_at = time.monotonic()
    # The service behind DELETE /v1/streams/sources/{id} (the route, which also reads BigQuery
    # for its audit record, is tested in tests/unit/test_observe_api.py).
    live_services.sources.delete(workspace_id, source.id)

    with pytest.raises(NotFound):
        live_services.sources.get(workspace_id, source.id)
    with pytest.raises(gexc.NotFound):
        pubsub_v1.PublisherClient().get_topic(request={"topic": source.pubsub_topic})
    path = f"projects/{live_services.settings.project_id}/subscriptions/{subscription_id}"
    # On the emulator the subscription is deleted at once (it cannot expire one when idle, as
    # production's retirement has Pub/Sub do).
    with pytest.raises(gexc.NotFound):
        pubsub_v1.SubscriberClient().get_subscription(request={"subscription": path})
    while (
        status := ingest.post("/v1/track", json=track, headers={"X-Write-Key": source.key})
    ).status_code != 401:
        # A cached key meets the deleted topic: 503 (retry), never accepted, until the cache ends.
        assert status.status_code == 503
        assert time.monotonic() - deleted_at < 10, "deleted key still not refused after 10 s"
        time.sleep(0.25)
