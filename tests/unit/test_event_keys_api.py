from __future__ import annotations

import json
from typing import Any

import pytest

from shared.bootstrap import Services
from tests.functions import function_client
from tests.tenants import Tenant

SOURCE_FIELDS = {
    "id",
    "workspace_id",
    "name",
    "key",
    "status",
    "pubsub_topic",
    "last_used_at",
    "created_by",
    "created_at",
    "updated_at",
}


@pytest.fixture
def client() -> Any:
    return function_client("event_keys")


def test_create_list_revoke(client: Any, tenant: Tenant) -> None:
    workspace_id, auth = tenant
    base = f"/api/v1/workspaces/{workspace_id}/event-keys"

    created = client.post(base, json={"name": "Web App"}, headers=auth)
    assert created.status_code == 201
    source = created.get_json()
    assert set(source) == SOURCE_FIELDS
    assert source["status"] == "active" and source["workspace_id"] == workspace_id
    assert source["last_used_at"] is None

    listed = client.get(base, headers=auth)
    assert listed.status_code == 200
    assert listed.get_json() == [source]

    revoked = client.delete(f"{base}/{source['id']}", headers=auth)
    assert revoked.status_code == 200
    assert revoked.get_json()["status"] == "revoked"
    assert client.get(base, headers=auth).get_json()[0]["status"] == "revoked"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": 42}, "name"),
        ({"name": "ok", "colour": "blue"}, "colour"),
    ],
)
def test_invalid_bodies_name_the_field(
    client: Any, tenant: Tenant, body: dict[str, Any], field: str
) -> None:
    workspace_id, auth = tenant
    response = client.post(f"/api/v1/workspaces/{workspace_id}/event-keys", json=body, headers=auth)
    assert response.status_code == 400
    error = response.get_json()
    assert error["code"] == 400 and error["field"] == field and field in error["message"]


@pytest.mark.parametrize("data", [b"", b"{not json", b"[1, 2]", b"\xff\xfe"])
def test_malformed_bodies_are_400(client: Any, tenant: Tenant, data: bytes) -> None:
    workspace_id, auth = tenant
    response = client.post(
        f"/api/v1/workspaces/{workspace_id}/event-keys",
        data=data,
        headers={**auth, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer stk_x"},
    ],
)
def test_missing_or_bad_token_is_401(client: Any, tenant: Tenant, headers: dict[str, str]) -> None:
    workspace_id, _ = tenant
    response = client.get(f"/api/v1/workspaces/{workspace_id}/event-keys", headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"] == "unauthorized"


def test_other_workspace_is_404(client: Any, services: Services, tenant: Tenant) -> None:
    workspace_id, auth = tenant
    other = services.workspaces.create("Other")
    other_source = services.sources.create(other.id, "Theirs", "t")

    assert client.get(f"/api/v1/workspaces/{other.id}/event-keys", headers=auth).status_code == 404
    assert (
        client.post(
            f"/api/v1/workspaces/{other.id}/event-keys", json={"name": "x"}, headers=auth
        ).status_code
        == 404
    )
    # Even through one's own workspace path, another workspace's source does not exist.
    response = client.delete(
        f"/api/v1/workspaces/{workspace_id}/event-keys/{other_source.id}", headers=auth
    )
    assert response.status_code == 404
    assert services.sources.get(other.id, other_source.id).status == "active"


def test_unknown_path_and_method(client: Any, tenant: Tenant) -> None:
    workspace_id, auth = tenant
    assert client.get("/nope", headers=auth).status_code == 404
    response = client.put(f"/api/v1/workspaces/{workspace_id}/event-keys", json={}, headers=auth)
    assert response.status_code == 405
    assert response.get_json()["error"] == "method_not_allowed"


def test_test_event_is_published_through_the_source(
    client: Any, services: Services, tenant: Tenant
) -> None:
    workspace_id, auth = tenant
    source = services.sources.create(workspace_id, "Web", "t")
    url = f"/api/v1/workspaces/{workspace_id}/event-keys/{source.id}/test-event"

    response = client.post(url, headers=auth)

    assert response.status_code == 202
    message_id = response.get_json()["messageId"]
    [(data, attributes)] = services.publisher.published[source.pubsub_topic]  # type: ignore[attr-defined]
    [event] = json.loads(data)
    assert event["messageId"] == message_id and event["type"] == "track"
    assert event["sourceId"] == source.id and attributes["workspace_id"] == workspace_id

    services.sources.revoke(workspace_id, source.id)
    assert client.post(url, headers=auth).status_code == 409
    missing = f"/api/v1/workspaces/{workspace_id}/event-keys/nope/test-event"
    assert client.post(missing, headers=auth).status_code == 404
