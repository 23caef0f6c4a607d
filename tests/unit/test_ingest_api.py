from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import pytest

from shared.bootstrap import Services
from shared.domain.limits import MAX_BATCH_EVENTS, MAX_REQUEST_BYTES
from shared.domain.sources import EventSource
from tests.functions import function_client


@pytest.fixture
def client() -> Any:
    return function_client("ingest")


@pytest.fixture
def source(services: Services) -> EventSource:
    workspace = services.workspaces.create("Acme")
    return services.sources.create(workspace.id, "Web", "t")


def published(services: Services, source: EventSource) -> list[dict[str, Any]]:
    messages = services.publisher.published.get(source.pubsub_topic, [])  # type: ignore[attr-defined]
    return [event for data, _ in messages for event in json.loads(data)]


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


TRACK = {"event": "purchase_completed", "user_id": "user-123", "properties": {"total": 99.99}}


@pytest.mark.parametrize("where", ["header", "basic", "query", "body"])
def test_write_key_from_every_place(
    client: Any, services: Services, source: EventSource, where: str
) -> None:
    headers, url, body = {}, "/v1/track", dict(TRACK)
    if where == "header":
        headers = {"X-Write-Key": source.key}
    elif where == "basic":
        headers = basic(source.key)
    elif where == "query":
        url += f"?writeKey={source.key}"
    else:
        body["writeKey"] = source.key
    response = client.post(url, json=body, headers=headers)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["accepted"] == 1
    [event] = published(services, source)
    assert event["event"] == "purchase_completed" and event["userId"] == "user-123"
    assert "writeKey" not in event and event["sourceId"] == source.id


@pytest.mark.parametrize("headers", [{}, {"X-Write-Key": "wk_unknown"}, {"X-Write-Key": "garbage"}])
def test_missing_or_unknown_key_is_401(client: Any, headers: dict[str, str]) -> None:
    response = client.post("/v1/track", json=TRACK, headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"] == "unauthorized"


def test_revoked_key_is_401(client: Any, services: Services, source: EventSource) -> None:
    services.sources.revoke(source.workspace_id, source.id)
    services.__dict__.pop("ingest", None)  # a fresh instance: no cached lookup
    response = client.post("/v1/track", json=TRACK, headers={"X-Write-Key": source.key})
    assert response.status_code == 401
    assert "revoked" in response.get_json()["message"]


@pytest.mark.parametrize(
    "content_type", ["application/json", "text/plain", "application/x-www-form-urlencoded", ""]
)
def test_any_content_type_is_read_as_json(
    client: Any, services: Services, source: EventSource, content_type: str
) -> None:
    response = client.post(
        "/v1/track",
        data=json.dumps(TRACK),
        headers={"X-Write-Key": source.key, "Content-Type": content_type},
    )
    assert response.status_code == 200
    assert len(published(services, source)) == 1


def test_gzip_batch_with_partial_rejections(
    client: Any, services: Services, source: EventSource
) -> None:
    batch = {
        "batch": [
            {"type": "track", "event": "ok", "userId": "u1", "messageId": "m1"},
            {"type": "track", "userId": "u1", "messageId": "m2"},
            {"type": "identify", "anonymousId": "a1", "traits": {"plan": "pro"}, "messageId": "m3"},
        ],
        "sentAt": "2024-01-15T15:00:00Z",
    }
    response = client.post(
        "/v1/batch",
        data=gzip.compress(json.dumps(batch).encode()),
        headers={
            **basic(source.key),
            "Content-Encoding": "gzip",
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["accepted"] == 2
    assert [(r["index"], r["messageId"]) for r in body["rejected"]] == [(1, "m2")]
    assert [e["messageId"] for e in published(services, source)] == ["m1", "m3"]


def test_single_refused_event_is_400_naming_the_field(
    client: Any, services: Services, source: EventSource
) -> None:
    response = client.post("/v1/group", json={"user_id": "u"}, headers={"X-Write-Key": source.key})
    assert response.status_code == 400
    assert response.get_json()["field"] == "groupId"
    assert published(services, source) == []


def test_context_ip_from_forwarded_header(
    client: Any, services: Services, source: EventSource
) -> None:
    client.post(
        "/v1/track",
        json=TRACK,
        headers={"X-Write-Key": source.key, "X-Forwarded-For": "203.0.113.9, 10.0.0.1"},
    )
    assert published(services, source)[0]["context"]["ip"] == "203.0.113.9"


@pytest.mark.parametrize("data", [b"{nope", b"", b"[1]", b"\x1f\x8bnot gzip"])
def test_malformed_bodies_are_400(client: Any, source: EventSource, data: bytes) -> None:
    response = client.post("/v1/batch", data=data, headers={"X-Write-Key": source.key})
    assert response.status_code == 400
    assert response.get_json()["code"] == 400


def test_oversize_request_is_413(client: Any, source: EventSource) -> None:
    big = {
        "batch": [{"type": "track", "event": "e", "userId": "u", "properties": {"x": "y" * 1000}}]
        * 600
    }
    response = client.post("/v1/batch", json=big, headers={"X-Write-Key": source.key})
    assert response.status_code == 413


def test_gzip_bomb_is_413(client: Any, source: EventSource) -> None:
    bomb = gzip.compress(b'{"batch": [' + b" " * (MAX_REQUEST_BYTES * 4) + b"]}")
    response = client.post(
        "/v1/batch", data=bomb, headers={"X-Write-Key": source.key, "Content-Encoding": "gzip"}
    )
    assert response.status_code == 413


def test_too_many_events_is_413(client: Any, source: EventSource) -> None:
    batch = {"batch": [{"type": "track", "event": "e", "userId": "u"}] * (MAX_BATCH_EVENTS + 1)}
    response = client.post("/v1/batch", json=batch, headers={"X-Write-Key": source.key})
    assert response.status_code == 413


def test_one_message_per_request(client: Any, services: Services, source: EventSource) -> None:
    batch = {"batch": [{"type": "track", "event": f"e{i}", "userId": "u"} for i in range(100)]}
    client.post("/v1/batch", json=batch, headers={"X-Write-Key": source.key})
    messages = services.publisher.published[source.pubsub_topic]  # type: ignore[attr-defined]
    assert len(messages) == 1
    data, attributes = messages[0]
    assert attributes["event_count"] == "100" and attributes["source_id"] == source.id
    assert len(json.loads(data)) == 100


def test_last_used_at_is_recorded(client: Any, services: Services, source: EventSource) -> None:
    client.post("/v1/track", json=TRACK, headers={"X-Write-Key": source.key})
    assert services.sources.get(source.workspace_id, source.id).last_used_at is not None
