"""Contracts API through the event_contracts function: CRUD field-exact, schema errors naming the
field, tenant isolation, violations paging with summary and shadow counts, and the quarantine."""

from __future__ import annotations

from typing import Any

import pytest

from shared.domain.event import CanonicalEvent
from shared.domain.sources import source_path
from shared.services.contract_validator import ContractValidator
from shared.services.contracts import EventContracts
from shared.services.quarantine import Quarantine
from tests.fakes import FakeServices
from tests.functions import function_client
from tests.tenants import Tenant, tenant_of
from tests.unit.pipeline_fixtures import SOURCE_ID, Clock, make_events, track

CONTRACT_FIELDS = {
    "id",
    "name",
    "event_type",
    "event_name",
    "description",
    "schema_definition",
    "enforcement_mode",
    "undeclared_fields",
    "status",
    "workspace_id",
    "created_at",
    "updated_at",
    "version",
}
SEED_BODY = {
    "name": "Purchase Completed Schema",
    "event_type": "track",
    "event_name": "purchase_completed",
    "description": "Schema for purchase completion events",
    "schema_definition": {
        "properties": {
            "order_id": {"type": "string", "required": True},
            "total": {"type": "number", "required": True},
            "currency": {"type": "string", "required": True},
        }
    },
    "enforcement_mode": "warn",
    "undeclared_fields": "allow",
}
SOURCE_TOPIC = "projects/test-project/topics/streams-source-src-1"


@pytest.fixture
def client() -> Any:
    return function_client("event_contracts")


@pytest.fixture
def clock(services: FakeServices) -> Clock:
    """One moving clock for contracts, validation and quarantine, so records are in order."""
    the_clock = Clock()
    services.__dict__.update(
        contracts=EventContracts(services.store, clock=the_clock),
        contract_validator=ContractValidator(services.store, 0, clock=the_clock),
    )
    services.__dict__["quarantine"] = Quarantine(
        services.store,
        services.publisher,
        services.contract_validator,
        services.event_log,
        clock=the_clock,
    )
    return the_clock


@pytest.fixture
def tenant(services: FakeServices, clock: Clock) -> Tenant:
    return tenant_of(services)


def base(workspace_id: str) -> str:
    return f"/api/v1/workspaces/{workspace_id}/event-contracts"


def create(client: Any, tenant: Tenant, **fields: Any) -> dict[str, Any]:
    workspace_id, auth = tenant
    response = client.post(base(workspace_id), json={**SEED_BODY, **fields}, headers=auth)
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


def purchase(workspace_id: str, properties: dict[str, Any], message_id: str) -> CanonicalEvent:
    [event] = make_events(
        track("purchase_completed", properties=properties, messageId=message_id),
        workspace_id=workspace_id,
    )
    return event


def test_crud(client: Any, tenant: Tenant) -> None:
    workspace_id, auth = tenant

    contract = create(client, tenant)
    assert set(contract) == CONTRACT_FIELDS
    assert {k: contract[k] for k in SEED_BODY} == SEED_BODY
    assert (contract["status"], contract["version"]) == ("active", 1)
    assert contract["workspace_id"] == workspace_id
    assert contract["created_at"] == contract["updated_at"]

    minimal = create(
        client,
        tenant,
        name="Traits",
        event_type="identify",
        event_name=None,
        description=None,
        enforcement_mode="block",
        schema_definition={"type": "object"},
    )
    assert (minimal["event_name"], minimal["description"]) == ("*", None)
    defaults = client.post(
        base(workspace_id),
        json={"name": "d", "event_type": "page", "schema_definition": {}},
        headers=auth,
    ).get_json()
    assert (defaults["enforcement_mode"], defaults["undeclared_fields"]) == ("warn", "allow")
    assert defaults["event_name"] == "*"

    assert client.get(base(workspace_id), headers=auth).get_json() == [contract, minimal, defaults]
    url = f"{base(workspace_id)}/{contract['id']}"
    assert client.get(url, headers=auth).get_json() == contract

    updated = client.put(url, json={"status": "archived", "description": None}, headers=auth)
    assert updated.status_code == 200
    changed = updated.get_json()
    assert (changed["status"], changed["description"], changed["version"]) == ("archived", None, 2)
    assert changed["created_at"] == contract["created_at"]
    assert changed["updated_at"] > contract["updated_at"]
    assert changed["schema_definition"] == SEED_BODY["schema_definition"]
    assert client.get(url, headers=auth).get_json() == changed

    deleted = client.delete(url, headers=auth)
    assert deleted.status_code == 204 and deleted.data == b""
    assert client.get(url, headers=auth).status_code == 404
    assert client.delete(url, headers=auth).status_code == 404
    assert client.get(f"{url}/violations", headers=auth).status_code == 404


def test_json_schema_is_kept_as_sent(client: Any, tenant: Tenant) -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"tags": {"type": "array", "items": {"enum": [[1, 2], "x"]}}},
        "required": ["tags"],
    }
    contract = create(client, tenant, schema_definition=schema)
    workspace_id, auth = tenant
    fetched = client.get(f"{base(workspace_id)}/{contract['id']}", headers=auth).get_json()
    assert fetched["schema_definition"] == schema


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"event_type": "alias"}, "event_type"),
        ({"event_type": "click"}, "event_type"),
        ({"event_type": "identify"}, "event_name"),
        ({"event_type": "group", "event_name": "x"}, "event_name"),
        ({"event_name": ""}, "event_name"),
        ({"enforcement_mode": "deny"}, "enforcement_mode"),
        ({"undeclared_fields": "drop"}, "undeclared_fields"),
        ({"status": "deleted"}, "status"),
        ({"schema_definition": ["x"]}, "schema_definition"),
        ({"schema_definition": {"properties": {"total": {"type": "numbr"}}}}, None),
        ({"priority": 1}, "priority"),
        ({"id": "mine"}, "id"),
    ],
)
def test_invalid_bodies_name_the_field(
    client: Any, tenant: Tenant, change: dict[str, Any], field: str | None
) -> None:
    workspace_id, auth = tenant
    field = field or "schema_definition.properties.total.type"

    response = client.post(base(workspace_id), json={**SEED_BODY, **change}, headers=auth)

    assert response.status_code == 400
    error = response.get_json()
    assert error["field"] == field and field in error["message"]
    assert client.get(base(workspace_id), headers=auth).get_json() == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": None}, "name"),
        ({"schema_definition": None}, "schema_definition"),
        ({"enforcement_mode": None}, "enforcement_mode"),
        ({"event_type": "identify"}, "event_name"),
        ({"schema_definition": {"properties": {"x": {"pattern": "("}}}}, None),
        ({"version": 7}, "version"),
        ({"created_at": "2020-01-01T00:00:00.000Z"}, "created_at"),
    ],
)
def test_invalid_updates_name_the_field_and_change_nothing(
    client: Any, tenant: Tenant, change: dict[str, Any], field: str | None
) -> None:
    workspace_id, auth = tenant
    contract = create(client, tenant)
    url = f"{base(workspace_id)}/{contract['id']}"
    field = field or "schema_definition.properties.x.pattern"

    response = client.put(url, json=change, headers=auth)

    assert response.status_code == 400
    assert response.get_json()["field"] == field
    assert client.get(url, headers=auth).get_json() == contract


def test_other_workspaces_contracts_answer_404(
    client: Any, services: FakeServices, tenant: Tenant
) -> None:
    workspace_id, auth = tenant
    contract = create(client, tenant)
    other_id, other_auth = tenant_of(services, "Other")
    mine = f"{base(workspace_id)}/{contract['id']}"
    through_other = f"{base(other_id)}/{contract['id']}"

    assert client.get(mine, headers=other_auth).status_code == 404  # wrong workspace in path
    for method in ("get", "delete"):
        assert getattr(client, method)(through_other, headers=other_auth).status_code == 404
    assert client.put(through_other, json={"name": "x"}, headers=other_auth).status_code == 404
    assert client.get(f"{through_other}/violations", headers=other_auth).status_code == 404
    assert client.get(base(other_id), headers=other_auth).get_json() == []
    assert client.get(f"{base(workspace_id)}/..", headers=auth).status_code in (404, 405)
    assert client.get(mine, headers=auth).get_json() == contract


def test_violations_pages_and_summary_with_shadow_counts(
    client: Any, services: FakeServices, tenant: Tenant
) -> None:
    workspace_id, auth = tenant
    contract = create(client, tenant, enforcement_mode="warn", undeclared_fields="allow")
    bad = [
        purchase(workspace_id, {"order_id": n, "currency": "USD", "coupon": "X"}, f"m-{n}")
        for n in range(5)
    ]
    good = purchase(workspace_id, {"order_id": "o", "total": 1, "currency": "USD"}, "ok")
    for event in [*bad, good]:
        services.contract_validator.validate(workspace_id, [event])
    url = f"{base(workspace_id)}/{contract['id']}/violations"

    first = client.get(url, query_string={"limit": 4}, headers=auth).get_json()
    seen = list(first["data"])
    cursor = first["next_cursor"]
    while cursor:
        page = client.get(url, query_string={"limit": 4, "cursor": cursor}, headers=auth)
        assert page.status_code == 200 and page.get_json()["summary"] is None
        seen.extend(page.get_json()["data"])
        cursor = page.get_json()["next_cursor"]

    assert len(seen) == 15 == len({v["id"] for v in seen})  # 3 per bad event, none for good
    assert [v["message_id"] for v in seen[:3]] == ["m-4"] * 3  # newest first
    assert seen[0].keys() >= {"field", "type", "expected", "actual", "action", "created_at"}
    assert {v["action"] for v in seen} == {"warned", "allowed"}
    summary = first["summary"]
    assert (summary["violations"], summary["events"], summary["blocked_events"]) == (15, 5, 0)
    assert summary["by_type"] == {
        "Datatype-Mismatch": 5,
        "Required-Missing": 5,
        "Undeclared-Field": 5,
    }
    assert summary["by_field"]["properties.total"] == 5
    assert {"field": "properties.coupon", "type": "Undeclared-Field", "count": 5} in summary[
        "by_field_and_type"
    ]
    assert summary["shadow"] == {"would_block": 5, "would_block_undeclared": 5}
    assert (summary["scanned"], summary["truncated"]) == (5, False)

    newest_two = seen[0]["created_at"]
    recent = client.get(url, query_string={"from": seen[3]["created_at"]}, headers=auth)
    assert {v["message_id"] for v in recent.get_json()["data"]} == {"m-4", "m-3"}
    older = client.get(url, query_string={"to": seen[3]["created_at"]}, headers=auth).get_json()
    assert {v["message_id"] for v in older["data"]} == {"m-0", "m-1", "m-2", "m-3"}
    assert older["summary"]["events"] == 4 and newest_two > seen[3]["created_at"]


def test_blocked_events_are_counted_not_shadowed(
    client: Any, services: FakeServices, tenant: Tenant
) -> None:
    workspace_id, auth = tenant
    contract = create(client, tenant, enforcement_mode="block", undeclared_fields="warn")
    services.contract_validator.validate(
        workspace_id,
        [
            purchase(workspace_id, {"currency": "USD"}, "blocked"),
            purchase(workspace_id, {"order_id": "o", "total": 1, "currency": "$", "x": 1}, "w"),
        ],
    )
    url = f"{base(workspace_id)}/{contract['id']}/violations"

    summary = client.get(url, headers=auth).get_json()["summary"]

    assert (summary["events"], summary["blocked_events"]) == (2, 1)
    assert summary["shadow"] == {"would_block": 0, "would_block_undeclared": 1}


@pytest.mark.parametrize(
    "query",
    [{"cursor": "not-a-cursor"}, {"limit": 0}, {"limit": 1001}, {"from": "yesterday"}, {"x": 1}],
)
def test_bad_violation_queries_are_400(client: Any, tenant: Tenant, query: dict[str, Any]) -> None:
    workspace_id, auth = tenant
    contract = create(client, tenant)
    url = f"{base(workspace_id)}/{contract['id']}/violations"
    assert client.get(url, query_string=query, headers=auth).status_code == 400


def test_quarantine_list_and_replay(client: Any, services: FakeServices, tenant: Tenant) -> None:
    workspace_id, auth = tenant
    services.store.create(
        source_path(workspace_id, SOURCE_ID), {"id": SOURCE_ID, "pubsub_topic": SOURCE_TOPIC}
    )
    contract = create(client, tenant, enforcement_mode="block")
    services.contract_validator.validate(
        workspace_id, [purchase(workspace_id, {"order_id": "o", "currency": "USD"}, "held")]
    )
    quarantine = f"/api/v1/workspaces/{workspace_id}/quarantine"

    listed = client.get(quarantine, query_string={"contract_id": contract["id"]}, headers=auth)
    [held] = listed.get_json()
    assert held["message_id"] == "held" and held["status"] == "quarantined"
    assert held["reasons"][0]["field"] == "properties.total"
    assert held["event"]["properties"] == {"order_id": "o", "currency": "USD"}
    assert "event_json" not in held and "sort_key" not in held
    other = client.get(quarantine, query_string={"contract_id": "x"}, headers=auth).get_json()
    assert other == []

    replay = f"{quarantine}/replay"
    dry = client.post(replay, json={"dry_run": True}, headers=auth).get_json()
    assert (dry["dry_run"], dry["matched"], dry["replayed"]) == (True, 1, [])
    assert "still blocked" in dry["skipped"][0]["reason"]

    client.put(
        f"{base(workspace_id)}/{contract['id']}", json={"enforcement_mode": "warn"}, headers=auth
    )
    dry = client.post(replay, json={"ids": [held["id"]], "dry_run": True}, headers=auth)
    assert dry.get_json()["replayed"] == [held["id"]]
    assert SOURCE_TOPIC not in services.publisher.published

    done = client.post(replay, json={"ids": [held["id"]]}, headers=auth).get_json()
    assert (done["dry_run"], done["replayed"]) == (False, [held["id"]])
    assert len(services.publisher.published[SOURCE_TOPIC]) == 1
    [after] = client.get(quarantine, headers=auth).get_json()
    assert (after["status"], after["replay_count"]) == ("replayed", 1)
    assert (
        client.get(quarantine, query_string={"status": "quarantined"}, headers=auth).get_json()
        == []
    )

    _, other_auth = tenant_of(services, "Other")
    assert client.get(quarantine, headers=other_auth).status_code == 404
    assert client.post(replay, json={}, headers=other_auth).status_code == 404


@pytest.mark.parametrize(
    "body", [{"ids": "x"}, {"limit": 401}, {"dry_run": "maybe"}, {"status": "replayed"}]
)
def test_bad_replay_bodies_are_400(client: Any, tenant: Tenant, body: dict[str, Any]) -> None:
    workspace_id, auth = tenant
    url = f"/api/v1/workspaces/{workspace_id}/quarantine/replay"
    assert client.post(url, json=body, headers=auth).status_code == 400
