from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fakes import FakeServices
from tests.functions import function_client
from tests.tenants import Tenant

SOURCE_FIELDS = {
    "id",
    "workspace_id",
    "name",
    # Not in the seed's object: the source's type (server by default).
    "type",
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
    assert source["last_used_at"] is None and source["type"] == "server"

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


def test_other_workspace_is_404(client: Any, services: FakeServices, tenant: Tenant) -> None:
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
    client: Any, services: FakeServices, tenant: Tenant
) -> None:
    workspace_id, auth = tenant
    source = services.sources.create(workspace_id, "Web", "t")
    url = f"/api/v1/workspaces/{workspace_id}/event-keys/{source.id}/test-event"

    response = client.post(url, headers=auth)

    assert response.status_code == 202
    message_id = response.get_json()["messageId"]
    [(data, attributes)] = services.publisher.published[source.pubsub_topic]
    [event] = json.loads(data)
    assert event["messageId"] == message_id and event["type"] == "track"
    assert event["sourceId"] == source.id and attributes["workspace_id"] == workspace_id

    services.sources.revoke(workspace_id, source.id)
    assert client.post(url, headers=auth).status_code == 409
    missing = f"/api/v1/workspaces/{workspace_id}/event-keys/nope/test-event"
    assert client.post(missing, headers=auth).status_code == 404


# --- allowed origins --------------------------------------------------------------------------


def test_allowed_origins_on_create_and_through_their_own_resource(
    client: Any, services: FakeServices, tenant: Tenant
) -> None:
    workspace_id, auth = tenant
    base = f"/api/v1/workspaces/{workspace_id}/event-keys"
    created = client.post(
        base,
        json={
            "name": "Shop",
            "allowed_origins": ["https://Shop.Example.com:443", "http://localhost:3000"],
        },
        headers=auth,
    )
    assert created.status_code == 201
    source = created.get_json()
    assert set(source) == SOURCE_FIELDS  # the seed's object stays exact
    origins = client.get(f"{base}/{source['id']}/origins", headers=auth)
    assert origins.status_code == 200
    # Stored as browsers send Origin: lowercase, the scheme's default port left out.
    assert origins.get_json()["allowed_origins"] == [
        "https://shop.example.com",
        "http://localhost:3000",
    ]
    assert services.sources.resolve_write_key(source["key"]).allowed_origins == [  # type: ignore[union-attr]
        "https://shop.example.com",
        "http://localhost:3000",
    ]

    updated = client.put(
        f"{base}/{source['id']}/origins",
        json={"allowed_origins": ["https://m.shop.example.com", "https://m.shop.example.com"]},
        headers=auth,
    )
    assert updated.status_code == 200
    assert updated.get_json()["allowed_origins"] == ["https://m.shop.example.com"]
    assert updated.get_json()["source_id"] == source["id"]
    key = services.sources.resolve_write_key(source["key"])
    assert key is not None and key.allowed_origins == ["https://m.shop.example.com"]

    cleared = client.put(
        f"{base}/{source['id']}/origins", json={"allowed_origins": []}, headers=auth
    )
    assert cleared.get_json()["allowed_origins"] == []
    assert (
        client.get(f"{base}/{source['id']}/origins", headers=auth).get_json()["allowed_origins"]
        == []
    )


@pytest.mark.parametrize(
    "origin",
    [
        "https://shop.example.com/",
        "https://shop.example.com/checkout",
        "shop.example.com",
        "https://shop.example.com?x=1",
        "https://user@shop.example.com",
        "https://shop.example.com:99999",
        "https://",
        "https://[::zz]",
        "https://shop example.com",
        "null",
        "",
    ],
)
def test_a_malformed_origin_is_400_naming_it(client: Any, tenant: Tenant, origin: str) -> None:
    workspace_id, auth = tenant
    base = f"/api/v1/workspaces/{workspace_id}/event-keys"
    response = client.post(
        base, json={"name": "Shop", "allowed_origins": ["https://ok.example", origin]}, headers=auth
    )
    assert response.status_code == 400
    assert response.get_json()["field"] == "allowed_origins.1"
    assert client.get(base, headers=auth).get_json() == []  # nothing was created


def test_origins_of_every_kind_browsers_send(client: Any, tenant: Tenant) -> None:
    workspace_id, auth = tenant
    response = client.post(
        f"/api/v1/workspaces/{workspace_id}/event-keys",
        json={
            "name": "Apps",
            "allowed_origins": [
                "capacitor://localhost",
                "http://127.0.0.1:8080",
                "https://[2001:DB8::1]:8443",
                "https://bücher.example",
            ],
        },
        headers=auth,
    )
    assert response.status_code == 201
    origins = client.get(
        f"/api/v1/workspaces/{workspace_id}/event-keys/{response.get_json()['id']}/origins",
        headers=auth,
    ).get_json()["allowed_origins"]
    assert origins == [
        "capacitor://localhost",
        "http://127.0.0.1:8080",
        "https://[2001:db8::1]:8443",
        "https://xn--bcher-kva.example",
    ]


def test_too_many_origins_is_400(client: Any, tenant: Tenant) -> None:
    workspace_id, auth = tenant
    many = [f"https://s{i}.example.com" for i in range(101)]
    response = client.post(
        f"/api/v1/workspaces/{workspace_id}/event-keys",
        json={"name": "Many", "allowed_origins": many},
        headers=auth,
    )
    assert response.status_code == 400
    assert response.get_json()["field"] == "allowed_origins"


def test_origins_of_another_workspaces_source_are_404(
    client: Any, services: FakeServices, tenant: Tenant
) -> None:
    workspace_id, auth = tenant
    other = services.workspaces.create("Other")
    theirs = services.sources.create(other.id, "Theirs", "t")
    path = f"/api/v1/workspaces/{workspace_id}/event-keys/{theirs.id}/origins"
    assert client.get(path, headers=auth).status_code == 404
    response = client.put(path, json={"allowed_origins": ["https://x.example"]}, headers=auth)
    assert response.status_code == 404
    assert services.sources.get(other.id, theirs.id).allowed_origins == []
