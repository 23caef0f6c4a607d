"""The contracts endpoints the console's editor uses: checking a schema without saving it (the
same 400 as create), a schema proposed from stored events, and every contract's violation
counts in one answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.domain.storage import event_row
from shared.services.contract_validator import ContractValidator
from shared.services.contracts import EventContracts
from tests.fakes import FakeServices
from tests.functions import function_client
from tests.tenants import Tenant, tenant_of
from tests.unit.pipeline_fixtures import Clock, identify, make_events, track

SCHEMA = {"properties": {"total": {"type": "number", "required": True}}}


@pytest.fixture
def client() -> Any:
    return function_client("event_contracts")


@pytest.fixture
def clock(services: FakeServices) -> Clock:
    the_clock = Clock()
    services.__dict__.update(
        contracts=EventContracts(services.store, clock=the_clock),
        contract_validator=ContractValidator(services.store, 0, clock=the_clock),
    )
    return the_clock


@pytest.fixture
def tenant(services: FakeServices, clock: Clock) -> Tenant:
    return tenant_of(services)


def url(workspace_id: str, path: str) -> str:
    return f"/api/v1/workspaces/{workspace_id}/event-contracts/{path}"


@pytest.mark.parametrize(
    ("schema", "form"),
    [
        (SCHEMA, "compact"),
        ({"type": "object", "required": ["total"], "properties": {"total": {}}}, "json_schema"),
    ],
)
def test_a_valid_schema_is_answered_with_its_json_schema(
    client: Any, tenant: Tenant, schema: dict[str, Any], form: str
) -> None:
    workspace_id, auth = tenant

    response = client.post(
        url(workspace_id, "validate-schema"), json={"schema_definition": schema}, headers=auth
    )

    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    assert (answer["valid"], answer["form"]) == (True, form)
    assert answer["json_schema"]["required"] == ["total"]
    assert client.get(url(workspace_id, "")[:-1], headers=auth).get_json() == []


@pytest.mark.parametrize(
    ("schema", "field"),
    [
        ({"properties": {"total": {"type": "numbr"}}}, "schema_definition.properties.total.type"),
        ({"properties": {"x": {"pattern": "("}}}, "schema_definition.properties.x.pattern"),
        ({"properties": {"x": {"colour": "red"}}}, "schema_definition.properties.x.colour"),
        (["x"], "schema_definition"),
    ],
)
def test_an_invalid_schema_gets_the_error_create_gives(
    client: Any, tenant: Tenant, schema: Any, field: str
) -> None:
    workspace_id, auth = tenant
    body = {"name": "n", "event_type": "track", "event_name": "e", "schema_definition": schema}

    checked = client.post(
        url(workspace_id, "validate-schema"), json={"schema_definition": schema}, headers=auth
    )
    created = client.post(url(workspace_id, "")[:-1], json=body, headers=auth)

    assert checked.status_code == created.status_code == 400
    assert checked.get_json()["field"] == field
    assert checked.get_json() == created.get_json()


def test_a_missing_schema_is_named(client: Any, tenant: Tenant) -> None:
    workspace_id, auth = tenant

    response = client.post(url(workspace_id, "validate-schema"), json={}, headers=auth)

    assert response.status_code == 400
    assert response.get_json()["field"] == "schema_definition"


def store_events(services: FakeServices, workspace_id: str, *items: dict[str, Any]) -> None:
    # Received now: proposals read the last days by the real clock, as the handler builds them.
    events = make_events(*items, workspace_id=workspace_id, received_at=datetime.now(UTC))
    services.event_store.insert([event_row(e) for e in events], [e["messageId"] for e in events])


def test_a_proposal_describes_the_newest_events_of_the_name(
    client: Any, services: FakeServices, tenant: Tenant
) -> None:
    workspace_id, auth = tenant
    store_events(
        services,
        workspace_id,
        track("Order Completed", properties={"order_id": "o1", "total": 10.5, "coupon": "X"}),
        track("Order Completed", properties={"order_id": "o2", "total": 3}),
        track("Signed Up", properties={"plan": "pro"}),
        {"type": "page", "userId": "u", "name": "Home", "properties": {"path": "/"}},
        {
            "type": "page",
            "userId": "u",
            "name": "Pricing",
            "properties": {"path": "/p", "plan": "pro"},
        },
        identify(traits={"email": "a@example.com"}),
    )

    answer = client.get(
        url(workspace_id, "proposal"),
        query_string={"event_type": "track", "event_name": "Order Completed"},
        headers=auth,
    ).get_json()

    assert (answer["sampled"], answer["target"], answer["event_name"]) == (
        2,
        "properties",
        "Order Completed",
    )
    assert answer["schema_definition"] == {
        "properties": {
            "coupon": {"type": "string"},
            "order_id": {"type": "string", "required": True},
            "total": {"type": "number", "required": True},
        }
    }
    assert {f["field"]: f["seen"] for f in answer["fields"]} == {
        "coupon": 1,
        "order_id": 2,
        "total": 2,
    }

    pricing = client.get(
        url(workspace_id, "proposal"),
        query_string={"event_type": "page", "event_name": "Pricing"},
        headers=auth,
    ).get_json()
    assert sorted(pricing["schema_definition"]["properties"]) == ["path", "plan"]
    traits = client.get(
        url(workspace_id, "proposal"), query_string={"event_type": "identify"}, headers=auth
    ).get_json()
    assert (traits["target"], list(traits["schema_definition"]["properties"])) == (
        "traits",
        ["email"],
    )


def test_a_proposal_without_events_is_empty(client: Any, tenant: Tenant) -> None:
    workspace_id, auth = tenant

    answer = client.get(
        url(workspace_id, "proposal"),
        query_string={"event_type": "track", "event_name": "Nobody Sends This"},
        headers=auth,
    ).get_json()

    assert (answer["sampled"], answer["schema_definition"]) == (0, {"properties": {}})


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"event_type": "track"}, "event_name"),
        ({"event_type": "identify", "event_name": "x"}, "event_name"),
        ({"event_type": "alias"}, "event_type"),
        ({"event_type": "track", "event_name": "x", "limit": 0}, "limit"),
        ({"event_type": "track", "event_name": "x", "days": 31}, "days"),
    ],
)
def test_bad_proposal_queries_name_the_field(
    client: Any, tenant: Tenant, query: dict[str, Any], field: str
) -> None:
    workspace_id, auth = tenant

    response = client.get(url(workspace_id, "proposal"), query_string=query, headers=auth)

    assert response.status_code == 400
    assert response.get_json()["field"] == field


def test_violation_counts_cover_every_contract_in_one_answer(
    client: Any, services: FakeServices, tenant: Tenant, clock: Clock
) -> None:
    workspace_id, auth = tenant
    other_workspace, _ = tenant_of(services, "Other")
    contracts = services.contracts
    warned = contracts.create(
        workspace_id,
        name="warned",
        event_type="track",
        event_name="Order Completed",
        schema_definition=SCHEMA,
    )
    blocked = contracts.create(
        workspace_id,
        name="blocked",
        event_type="track",
        event_name="Signed Up",
        schema_definition={"properties": {"plan": {"type": "string", "required": True}}},
        enforcement_mode="block",
    )
    quiet = contracts.create(workspace_id, name="quiet", event_type="page", schema_definition={})
    elsewhere = contracts.create(
        other_workspace,
        name="elsewhere",
        event_type="track",
        event_name="Order Completed",
        schema_definition=SCHEMA,
    )
    old = make_events(track("Order Completed", properties={}), workspace_id=workspace_id)
    services.contract_validator.validate(workspace_id, old)
    clock.advance(timedelta(hours=25))
    fresh = make_events(
        track("Order Completed", properties={"total": "ten", "extra": 1}, messageId="m1"),
        track("Order Completed", properties={"total": 1}, messageId="m2"),
        track("Order Completed", properties={}, messageId="m3"),
        track("Signed Up", properties={}, messageId="m4"),
        workspace_id=workspace_id,
    )
    services.contract_validator.validate(workspace_id, fresh)
    services.contract_validator.validate(
        other_workspace,
        make_events(track("Order Completed", properties={}), workspace_id=other_workspace),
    )

    answer = client.get(url(workspace_id, "violation-counts"), headers=auth).get_json()

    assert answer["counts"] == {
        # m1: a mismatch and an undeclared field; m3: total missing.
        warned.id: {"events": 2, "violations": 3, "blocked_events": 0},
        blocked.id: {"events": 1, "violations": 1, "blocked_events": 1},
    }
    assert quiet.id not in answer["counts"] and elsewhere.id not in answer["counts"]
    assert (answer["truncated"], answer["scanned"]) == (False, 3)
    assert answer["complete_since"] == answer["since"]
    week = client.get(
        url(workspace_id, "violation-counts"), query_string={"hours": 48}, headers=auth
    ).get_json()
    assert week["counts"][warned.id]["events"] == 3


def test_violation_counts_say_from_when_they_are_complete_past_the_scan(
    client: Any, services: FakeServices, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace_id, auth = tenant
    monkeypatch.setattr("shared.services.contracts.COUNTS_SCAN", 2)
    contract = services.contracts.create(
        workspace_id, name="c", event_type="track", event_name="E", schema_definition=SCHEMA
    )
    for number in range(3):
        events = make_events(
            track("E", properties={}, messageId=f"m{number}"), workspace_id=workspace_id
        )
        services.contract_validator.validate(workspace_id, events)

    answer = client.get(url(workspace_id, "violation-counts"), headers=auth).get_json()

    assert answer["truncated"] is True
    assert answer["counts"][contract.id]["events"] == 2
    assert answer["since"] < answer["complete_since"] <= answer["until"]


@pytest.mark.parametrize("hours", ["0", "721", "day"])
def test_bad_hours_are_named(client: Any, tenant: Tenant, hours: str) -> None:
    workspace_id, auth = tenant

    response = client.get(
        url(workspace_id, "violation-counts"), query_string={"hours": hours}, headers=auth
    )

    assert response.status_code == 400
    assert response.get_json()["field"] == "hours"
