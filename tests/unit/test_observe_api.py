"""Volume, the second seed's sources, source debugger and event query, over fakes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.domain import ids
from shared.domain.event import CanonicalEvent
from shared.domain.sources import process_subscription_id
from shared.domain.storage import event_row
from tests.fakes import FakeServices
from tests.functions import function_client
from tests.tenants import Tenant

STREAM_SOURCE_FIELDS = {"id", "name", "type", "writeKey", "status", "eventsToday", "createdAt"}
EVENT_FIELDS = {
    "id",
    "sourceId",
    "type",
    "properties",
    "context",
    "userId",
    "anonymousId",
    "timestamp",
    "receivedAt",
}


@pytest.fixture
def events_client() -> Any:
    return function_client("events")


@pytest.fixture
def streams_client() -> Any:
    return function_client("streams")


def store(
    services: FakeServices,
    workspace_id: str,
    source_id: str,
    type_: str = "track",
    name: str | None = "purchase",
    ago: timedelta = timedelta(0),
    message_id: str | None = None,
    anonymous_id: str | None = None,
    properties: dict[str, Any] | None = None,
    traits: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
) -> str:
    """Put one event in the fake BigQuery table, received `ago` before now."""
    received = ids.isoformat(datetime.now(UTC) - ago)
    message_id = message_id or ids.new_id()
    canonical: CanonicalEvent = {
        "messageId": message_id,
        "workspaceId": workspace_id,
        "sourceId": source_id,
        "type": type_,
        "event": name if type_ == "track" else None,
        "name": name if type_ in ("page", "screen") else None,
        "userId": "u1",
        "anonymousId": anonymous_id,
        "timestamp": received,
        "receivedAt": received,
        "properties": properties or {},
        "traits": traits or {},
        "context": context or {},
    }
    services.event_store.insert([event_row(canonical)], [message_id])
    return message_id


# --- volume -----------------------------------------------------------------------------


def test_volume_counts_per_type_name_and_hour(
    events_client: Any, services: FakeServices, tenant: Tenant
) -> None:
    workspace_id, auth = tenant
    for _ in range(3):
        store(services, workspace_id, "s1")
    store(services, workspace_id, "s1", "identify", None)
    store(services, workspace_id, "s1", ago=timedelta(hours=2))
    store(services, workspace_id, "s1", ago=timedelta(hours=30))  # outside the default 24 h
    store(services, "other-workspace", "s9")

    response = events_client.get(f"/api/v1/workspaces/{workspace_id}/events/volume", headers=auth)

    assert response.status_code == 200
    rows = response.get_json()
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    earlier = hour - timedelta(hours=2)
    assert rows == [
        {
            "event_type": "track",
            "event_name": "purchase",
            "hour_bucket": earlier.strftime("%Y-%m-%dT%H:00:00Z"),
            "event_count": 1,
        },
        {
            "event_type": "identify",
            "event_name": None,
            "hour_bucket": hour.strftime("%Y-%m-%dT%H:00:00Z"),
            "event_count": 1,
        },
        {
            "event_type": "track",
            "event_name": "purchase",
            "hour_bucket": hour.strftime("%Y-%m-%dT%H:00:00Z"),
            "event_count": 3,
        },
    ]
    one_hour = events_client.get(
        f"/api/v1/workspaces/{workspace_id}/events/volume?hours=1", headers=auth
    ).get_json()
    assert sum(r["event_count"] for r in one_hour) == 4
    assert (
        len(
            events_client.get(
                f"/api/v1/workspaces/{workspace_id}/events/volume?hours=720", headers=auth
            ).get_json()
        )
        == 4
    )


@pytest.mark.parametrize("hours", ["0", "721", "-1", "1.5", "24.0", "abc", ""])
def test_volume_refuses_hours_outside_1_to_720(
    events_client: Any, tenant: Tenant, hours: str
) -> None:
    workspace_id, auth = tenant
    response = events_client.get(
        f"/api/v1/workspaces/{workspace_id}/events/volume?hours={hours}", headers=auth
    )
    assert response.status_code == 400
    assert response.get_json()["field"] == "hours"


# --- the second seed's sources -----------------------------------------------------------


def test_sources_are_one_model_across_both_apis(
    streams_client: Any, services: FakeServices, tenant: Tenant
) -> None:
    workspace_id, auth = tenant
    keys_client = function_client("event_keys")
    via_seed_one = keys_client.post(
        f"/api/v1/workspaces/{workspace_id}/event-keys", json={"name": "Backend"}, headers=auth
    ).get_json()
    created = streams_client.post(
        "/v1/streams/sources", json={"name": "Web", "type": "javascript"}, headers=auth
    )
    assert created.status_code == 201
    web = created.get_json()
    assert set(web) == STREAM_SOURCE_FIELDS
    assert (web["name"], web["type"], web["status"], web["eventsToday"]) == (
        "Web",
        "javascript",
        "active",
        0,
    )
    assert web["writeKey"].startswith("wk_")

    listed = streams_client.get("/v1/streams/sources", headers=auth).get_json()["data"]
    assert {s["id"]: s["type"] for s in listed} == {
        via_seed_one["id"]: "server",
        web["id"]: "javascript",
    }
    keys = keys_client.get(f"/api/v1/workspaces/{workspace_id}/event-keys", headers=auth)
    assert {k["id"]: k["key"] for k in keys.get_json()}[web["id"]] == web["writeKey"]


def test_events_today_counts_since_utc_midnight_per_source(
    streams_client: Any, services: FakeServices, tenant: Tenant
) -> None:
    workspace_id, auth = tenant
    a = services.sources.create(workspace_id, "A", "t")
    b = services.sources.create(workspace_id, "B", "t")
    services.sources.create(workspace_id, "C", "t")
    since_midnight = datetime.now(UTC) - datetime.now(UTC).replace(hour=0, minute=0, second=0)
    for _ in range(3):
        store(services, workspace_id, a.id)
    store(services, workspace_id, b.id)
    store(services, workspace_id, b.id, ago=since_midnight + timedelta(minutes=1))  # yesterday

    listed = streams_client.get("/v1/streams/sources", headers=auth).get_json()["data"]
    assert {s["name"]: s["eventsToday"] for s in listed} == {"A": 3, "B": 1, "C": 0}
    one = streams_client.get(f"/v1/streams/sources/{a.id}", headers=auth).get_json()
    assert set(one) == STREAM_SOURCE_FIELDS and one["eventsToday"] == 3


def test_delete_deletes_the_source_and_keeps_its_events(
    streams_client: Any, services: FakeServices, tenant: Tenant
) -> None:
    workspace_id, auth = tenant
    source = services.sources.create(workspace_id, "Web", "t")
    kept = services.sources.create(workspace_id, "Kept", "t")
    message_id = store(services, workspace_id, source.id)
    topics = services.topics
    subscription = f"projects/test-project/subscriptions/{process_subscription_id(source.id)}"

    response = streams_client.delete(f"/v1/streams/sources/{source.id}", headers=auth)

    assert response.status_code == 204 and response.data == b""
    gone = streams_client.get(f"/v1/streams/sources/{source.id}", headers=auth)
    assert (gone.status_code, gone.get_json()["field"]) == (404, "sourceId")
    listed = streams_client.get("/v1/streams/sources", headers=auth).get_json()["data"]
    assert [s["id"] for s in listed] == [kept.id]
    keys = function_client("event_keys").get(
        f"/api/v1/workspaces/{workspace_id}/event-keys", headers=auth
    )
    assert [k["id"] for k in keys.get_json()] == [kept.id]
    assert services.sources.resolve_write_key(source.key) is None  # ingest: unknown key, 401
    assert source.pubsub_topic not in topics.topics
    assert subscription in topics.retired
    assert kept.pubsub_topic in topics.topics
    # Its stored events stay queryable, by source too.
    query = {"sourceId": source.id}
    found = streams_client.get("/v1/streams/events", query_string=query, headers=auth)
    assert [e["id"] for e in found.get_json()["data"]] == [message_id]
    again = streams_client.delete(f"/v1/streams/sources/{source.id}", headers=auth)
    assert (again.status_code, again.get_json()["field"]) == (404, "sourceId")


def test_the_first_seeds_delete_still_revokes(
    streams_client: Any, services: FakeServices, tenant: Tenant
) -> None:
    workspace_id, auth = tenant
    source = services.sources.create(workspace_id, "Web", "t")
    url = f"/api/v1/workspaces/{workspace_id}/event-keys/{source.id}"
    response = function_client("event_keys").delete(url, headers=auth)
    assert response.get_json()["status"] == "revoked"
    got = streams_client.get(f"/v1/streams/sources/{source.id}", headers=auth).get_json()
    assert got["status"] == "inactive"
    assert source.pubsub_topic in services.topics.topics


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    [
        ("post", "/v1/streams/sources", {"name": "x"}, 400, "type"),
        ("post", "/v1/streams/sources", {"name": "x", "type": "desktop"}, 400, "type"),
        ("post", "/v1/streams/sources", {"type": "server"}, 400, "name"),
        ("post", "/v1/streams/sources", {"name": "x", "type": "server", "k": 1}, 400, "k"),
        ("get", "/v1/streams/sources/missing", None, 404, "sourceId"),
        ("delete", "/v1/streams/sources/missing", None, 404, "sourceId"),
        ("get", "/v1/streams/sources/missing/debug", None, 404, "sourceId"),
    ],
)
def test_sources_refuse_bad_requests(
    streams_client: Any,
    tenant: Tenant,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    status: int,
    field: str,
) -> None:
    _, auth = tenant
    response = getattr(streams_client, method)(path, json=body, headers=auth)
    assert response.status_code == status
    assert response.get_json()["field"] == field


def test_another_workspaces_source_is_not_found(
    streams_client: Any, services: FakeServices, tenant: Tenant
) -> None:
    _, auth = tenant
    theirs = services.sources.create(services.workspaces.create("Other").id, "Theirs", "t")
    for method in ("get", "delete"):
        response = getattr(streams_client, method)(f"/v1/streams/sources/{theirs.id}", headers=auth)
        assert response.status_code == 404
    assert streams_client.get("/v1/streams/sources").status_code == 401


# --- the source debugger ------------------------------------------------------------------


def test_debug_shows_recent_events_newest_first(
    streams_client: Any, services: FakeServices, tenant: Tenant
) -> None:
    workspace_id, auth = tenant
    source = services.sources.create(workspace_id, "Web", "t")
    store(services, workspace_id, source.id, ago=timedelta(minutes=3), message_id="old")
    store(
        services,
        workspace_id,
        source.id,
        "page",
        "Pricing",
        ago=timedelta(minutes=1),
        message_id="new",
        anonymous_id="a1",
        properties={"url": "https://example.com/pricing", "title": "Pricing"},
        context={"ip": "203.0.113.1", "userAgent": "Mozilla/5.0", "locale": "en-US"},
    )
    store(services, workspace_id, "another-source", message_id="elsewhere")
    store(services, workspace_id, source.id, ago=timedelta(hours=25), message_id="ancient")

    response = streams_client.get(f"/v1/streams/sources/{source.id}/debug", headers=auth)

    assert response.status_code == 200
    body = response.get_json()
    assert [e["id"] for e in body["data"]] == ["new", "old"]
    newest = body["data"][0]
    assert set(newest) == EVENT_FIELDS
    assert newest["type"] == "page" and body["data"][1]["type"] == "purchase"
    assert newest["context"] == {
        "ip": "203.0.113.1",
        "userAgent": "Mozilla/5.0",
        "locale": "en-US",
        # A value the event lacks (no referrer) is left out, never null: the seed's `Event`
        # declares no field nullable (tests/unit/test_seed_openapi.py).
        "page": {"url": "https://example.com/pricing", "title": "Pricing"},
    }
    assert (newest["userId"], newest["anonymousId"], newest["sourceId"]) == ("u1", "a1", source.id)
    assert body["connected"] is True
    assert body["lastEventAt"] == newest["receivedAt"]
    limited = streams_client.get(
        f"/v1/streams/sources/{source.id}/debug?limit=1", headers=auth
    ).get_json()
    assert [e["id"] for e in limited["data"]] == ["new"]


def test_debug_of_a_quiet_source(
    streams_client: Any, services: FakeServices, tenant: Tenant
) -> None:
    workspace_id, auth = tenant
    source = services.sources.create(workspace_id, "Web", "t")
    body = streams_client.get(f"/v1/streams/sources/{source.id}/debug", headers=auth).get_json()
    assert body == {"data": [], "connected": False}  # lastEventAt left out until an event
    store(services, workspace_id, source.id, ago=timedelta(minutes=6))
    body = streams_client.get(f"/v1/streams/sources/{source.id}/debug", headers=auth).get_json()
    assert body["connected"] is False and body["lastEventAt"] is not None


@pytest.mark.parametrize("limit", ["0", "501", "abc", "2.5"])
def test_debug_refuses_bad_limits(
    streams_client: Any, services: FakeServices, tenant: Tenant, limit: str
) -> None:
    workspace_id, auth = tenant
    source = services.sources.create(workspace_id, "Web", "t")
    response = streams_client.get(
        f"/v1/streams/sources/{source.id}/debug?limit={limit}", headers=auth
    )
    assert response.status_code == 400
    assert response.get_json()["field"] == "limit"


# --- the event query -----------------------------------------------------------------------


def test_query_events_with_summary(
    streams_client: Any, services: FakeServices, tenant: Tenant
) -> None:
    workspace_id, auth = tenant
    web = services.sources.create(workspace_id, "Web", "t")
    app = services.sources.create(workspace_id, "App", "t")
    for minutes in (5, 4, 3):
        store(services, workspace_id, web.id, ago=timedelta(minutes=minutes))
    store(services, workspace_id, web.id, "identify", None, traits={"plan": "pro"})
    store(services, workspace_id, app.id, "page", "Home", ago=timedelta(minutes=1))
    store(services, workspace_id, web.id, ago=timedelta(days=2))  # before the default window

    body = streams_client.get("/v1/streams/events?limit=2", headers=auth).get_json()
    assert [e["type"] for e in body["data"]] == ["identify", "page"]
    assert body["data"][0]["properties"] == {"plan": "pro"}
    assert set(body["data"][0]) == EVENT_FIELDS - {"anonymousId"}  # it has none: left out
    assert body["summary"]["totalEvents"] == 5
    assert body["summary"]["uniqueEventTypes"] == 3
    window = body["summary"]["timeRange"]
    assert set(window) == {"from", "to"}
    span = datetime.fromisoformat(window["to"]) - datetime.fromisoformat(window["from"])
    assert span == timedelta(hours=24)

    purchases = streams_client.get(
        "/v1/streams/events", query_string={"eventType": "purchase"}, headers=auth
    ).get_json()
    assert [e["type"] for e in purchases["data"]] == ["purchase"] * 3
    assert purchases["summary"]["uniqueEventTypes"] == 1
    from_app = streams_client.get(
        "/v1/streams/events", query_string={"sourceId": app.id}, headers=auth
    ).get_json()
    assert [e["sourceId"] for e in from_app["data"]] == [app.id]

    start = ids.isoformat(datetime.now(UTC) - timedelta(days=3))
    until = ids.isoformat(datetime.now(UTC) - timedelta(days=1))
    old = streams_client.get(
        "/v1/streams/events", query_string={"from": start, "to": until}, headers=auth
    ).get_json()
    assert old["summary"]["totalEvents"] == 1
    assert old["summary"]["timeRange"] == {"from": start, "to": until}


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ({"limit": "0"}, 400, "limit"),
        ({"limit": "1001"}, 400, "limit"),
        ({"limit": "ten"}, 400, "limit"),
        ({"from": "yesterday"}, 400, "from"),
        ({"to": "2024-13-01T00:00:00Z"}, 400, "to"),
        ({"from": "2024-01-01T00:00:00"}, 400, "from"),  # no offset: ambiguous
        ({"from": "2024-01-02T00:00:00Z", "to": "2024-01-01T00:00:00Z"}, 400, "from"),
        ({"source": "x"}, 400, "source"),
    ],
)
def test_query_refuses_bad_parameters(
    streams_client: Any, tenant: Tenant, query: dict[str, str], status: int, field: str
) -> None:
    _, auth = tenant
    response = streams_client.get("/v1/streams/events", query_string=query, headers=auth)
    assert response.status_code == status
    assert response.get_json()["field"] == field
