from __future__ import annotations

from typing import Any

import pytest

from shared.domain import ids
from shared.domain.routing import Destination, destination_path, transformation_path
from tests.fakes import FakeServices
from tests.functions import function_client
from tests.tenants import Tenant

RULE_FIELDS = {
    "id",
    "workspace_id",
    "name",
    "destination_id",
    "event_types",
    "event_names",
    "transformation_id",
    "enabled",
    "created_at",
    "updated_at",
}


@pytest.fixture
def client() -> Any:
    return function_client("event_forwarding_rules")


def stored_destination(services: FakeServices, workspace_id: str) -> str:
    """A destination document, written straight to the store: these tests are about rules."""
    now = ids.isoformat(ids.utcnow())
    destination = Destination(
        id=ids.new_id(),
        workspace_id=workspace_id,
        name="Topic",
        type="pubsub",
        config={"topic": "projects/p/topics/t"},
        created_at=now,
        updated_at=now,
    )
    services.store.create(destination_path(workspace_id, destination.id), destination.model_dump())
    return destination.id


def stored_transformation(services: FakeServices, workspace_id: str) -> str:
    transformation_id = ids.new_id()
    services.store.create(
        transformation_path(workspace_id, transformation_id),
        {"id": transformation_id, "name": "Enrich"},
    )
    return transformation_id


def test_crud(client: Any, services: FakeServices, tenant: Tenant) -> None:
    workspace_id, auth = tenant
    base = f"/api/v1/workspaces/{workspace_id}/event-forwarding-rules"
    destination_id = stored_destination(services, workspace_id)
    body = {
        "name": "All Track Events to Amplitude",
        "destination_id": destination_id,
        "event_types": ["track"],
        "event_names": [],
        "transformation_id": None,
        "enabled": True,
    }

    created = client.post(base, json=body, headers=auth)
    assert created.status_code == 201
    rule = created.get_json()
    assert set(rule) == RULE_FIELDS
    assert {k: rule[k] for k in body} == body
    assert rule["workspace_id"] == workspace_id and rule["created_at"] == rule["updated_at"]

    second = client.post(
        base, json={"name": "Everything", "destination_id": destination_id}, headers=auth
    )
    assert second.status_code == 201
    defaults = second.get_json()
    assert (defaults["event_types"], defaults["event_names"], defaults["enabled"]) == ([], [], True)
    assert defaults["transformation_id"] is None

    listed = client.get(base, headers=auth)
    assert listed.status_code == 200
    # Creation order; two creations within one millisecond are ordered by id.
    assert listed.get_json() == sorted([rule, defaults], key=lambda r: (r["created_at"], r["id"]))
    assert client.get(f"{base}/{rule['id']}", headers=auth).get_json() == rule

    transformation_id = stored_transformation(services, workspace_id)
    updated = client.put(
        f"{base}/{rule['id']}",
        json={
            "enabled": False,
            "event_names": ["purchase_completed"],
            "transformation_id": transformation_id,
        },
        headers=auth,
    )
    assert updated.status_code == 200
    changed = updated.get_json()
    assert changed["enabled"] is False and changed["event_names"] == ["purchase_completed"]
    assert changed["transformation_id"] == transformation_id
    assert (changed["name"], changed["event_types"]) == (rule["name"], ["track"])
    assert changed["created_at"] == rule["created_at"]
    assert client.get(f"{base}/{rule['id']}", headers=auth).get_json() == changed

    # An explicit null removes the transformation.
    cleared = client.put(f"{base}/{rule['id']}", json={"transformation_id": None}, headers=auth)
    assert cleared.get_json()["transformation_id"] is None

    deleted = client.delete(f"{base}/{rule['id']}", headers=auth)
    assert deleted.status_code == 204 and deleted.data == b""
    assert client.get(f"{base}/{rule['id']}", headers=auth).status_code == 404
    assert client.delete(f"{base}/{rule['id']}", headers=auth).status_code == 404
    assert client.get(base, headers=auth).get_json() == [defaults]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": "", "destination_id": "DEST"}, "name"),
        ({"name": "r"}, "destination_id"),
        ({"name": "r", "destination_id": ""}, "destination_id"),
        ({"name": "r", "destination_id": 7}, "destination_id"),
        ({"name": "r", "destination_id": "DEST", "event_types": ["click"]}, "event_types.0"),
        ({"name": "r", "destination_id": "DEST", "event_types": "track"}, "event_types"),
        ({"name": "r", "destination_id": "DEST", "event_names": [""]}, "event_names.0"),
        ({"name": "r", "destination_id": "DEST", "event_names": ["  "]}, "event_names.0"),
        ({"name": "r", "destination_id": "DEST", "event_names": [3]}, "event_names.0"),
        ({"name": "r", "destination_id": "DEST", "enabled": "yes"}, "enabled"),
        ({"name": "r", "destination_id": "DEST", "enabled": 1}, "enabled"),
        ({"name": "r", "destination_id": "DEST", "transformation_id": 5}, "transformation_id"),
        ({"name": "r", "destination_id": "DEST", "priority": 1}, "priority"),
        ({"name": "r", "destination_id": "missing"}, "destination_id"),
        ({"name": "r", "destination_id": ".."}, "destination_id"),
        (
            {"name": "r", "destination_id": "DEST", "transformation_id": "missing"},
            "transformation_id",
        ),
    ],
)
def test_invalid_bodies_name_the_field(
    client: Any,
    services: FakeServices,
    tenant: Tenant,
    body: dict[str, Any],
    field: str,
) -> None:
    workspace_id, auth = tenant
    destination_id = stored_destination(services, workspace_id)
    body = {k: destination_id if v == "DEST" else v for k, v in body.items()}
    base = f"/api/v1/workspaces/{workspace_id}/event-forwarding-rules"

    response = client.post(base, json=body, headers=auth)

    assert response.status_code == 400
    error = response.get_json()
    assert error["field"] == field and field.split(".")[0] in error["message"]
    assert client.get(base, headers=auth).get_json() == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": None}, "name"),
        ({"name": " "}, "name"),
        ({"destination_id": None}, "destination_id"),
        ({"destination_id": "missing"}, "destination_id"),
        ({"event_types": ["Track"]}, "event_types.0"),
        ({"event_types": None}, "event_types"),
        ({"event_names": None}, "event_names"),
        ({"enabled": None}, "enabled"),
        ({"transformation_id": "missing"}, "transformation_id"),
        ({"id": "x"}, "id"),
        ({"created_at": "2020-01-01T00:00:00.000Z"}, "created_at"),
    ],
)
def test_invalid_updates_name_the_field_and_change_nothing(
    client: Any,
    services: FakeServices,
    tenant: Tenant,
    change: dict[str, Any],
    field: str,
) -> None:
    workspace_id, auth = tenant
    destination_id = stored_destination(services, workspace_id)
    rule = services.forwarding_rules.create(
        workspace_id, name="r", destination_id=destination_id, event_types=[], event_names=[]
    )
    url = f"/api/v1/workspaces/{workspace_id}/event-forwarding-rules/{rule.id}"

    response = client.put(url, json=change, headers=auth)

    assert response.status_code == 400
    assert response.get_json()["field"] == field
    assert services.forwarding_rules.get(workspace_id, rule.id) == rule


def test_update_can_move_a_rule_to_another_destination(
    client: Any, services: FakeServices, tenant: Tenant
) -> None:
    workspace_id, auth = tenant
    first, second = (
        stored_destination(services, workspace_id),
        stored_destination(services, workspace_id),
    )
    rule = services.forwarding_rules.create(
        workspace_id, name="r", destination_id=first, event_types=["track"], event_names=["a"]
    )
    url = f"/api/v1/workspaces/{workspace_id}/event-forwarding-rules/{rule.id}"

    response = client.put(url, json={"destination_id": second, "event_types": []}, headers=auth)

    assert response.status_code == 200
    moved = response.get_json()
    assert (moved["destination_id"], moved["event_types"], moved["event_names"]) == (
        second,
        [],
        ["a"],
    )


def test_duplicates_in_selectors_are_dropped(
    client: Any, services: FakeServices, tenant: Tenant
) -> None:
    workspace_id, auth = tenant
    body = {
        "name": "r",
        "destination_id": stored_destination(services, workspace_id),
        "event_types": ["track", "page", "track"],
        "event_names": ["a", "b", "a"],
    }
    response = client.post(
        f"/api/v1/workspaces/{workspace_id}/event-forwarding-rules", json=body, headers=auth
    )
    assert response.status_code == 201
    rule = response.get_json()
    assert (rule["event_types"], rule["event_names"]) == (["track", "page"], ["a", "b"])


def test_other_workspace_is_404_and_its_references_do_not_exist(
    client: Any, services: FakeServices, tenant: Tenant
) -> None:
    workspace_id, auth = tenant
    other = services.workspaces.create("Other")
    their_destination = stored_destination(services, other.id)
    their_transformation = stored_transformation(services, other.id)
    theirs = services.forwarding_rules.create(
        other.id, name="theirs", destination_id=their_destination, event_types=[], event_names=[]
    )
    mine = f"/api/v1/workspaces/{workspace_id}/event-forwarding-rules"
    other_base = f"/api/v1/workspaces/{other.id}/event-forwarding-rules"

    assert client.get(other_base, headers=auth).status_code == 404
    assert client.get(f"{other_base}/{theirs.id}", headers=auth).status_code == 404
    for method in (client.get, client.delete):
        assert method(f"{mine}/{theirs.id}", headers=auth).status_code == 404
    assert client.put(f"{mine}/{theirs.id}", json={"name": "x"}, headers=auth).status_code == 404
    assert client.get(mine, headers=auth).get_json() == []

    response = client.post(
        mine, json={"name": "r", "destination_id": their_destination}, headers=auth
    )
    assert (response.status_code, response.get_json()["field"]) == (400, "destination_id")
    body = {
        "name": "r",
        "destination_id": stored_destination(services, workspace_id),
        "transformation_id": their_transformation,
    }
    response = client.post(mine, json=body, headers=auth)
    assert (response.status_code, response.get_json()["field"]) == (400, "transformation_id")
    assert services.forwarding_rules.get(other.id, theirs.id) == theirs


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer stk_nope"}])
def test_missing_or_bad_token_is_401(client: Any, tenant: Tenant, headers: dict[str, str]) -> None:
    workspace_id, _ = tenant
    base = f"/api/v1/workspaces/{workspace_id}/event-forwarding-rules"
    assert client.get(base, headers=headers).status_code == 401
    assert client.post(base, json={"name": "r"}, headers=headers).status_code == 401
    assert client.delete(f"{base}/x", headers=headers).status_code == 401
