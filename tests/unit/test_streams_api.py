from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fakes import FakeServices
from tests.functions import function_client
from tests.tenants import Tenant


@pytest.fixture
def client() -> Any:
    return function_client("streams")


def test_send_event_is_accepted_and_published(
    client: Any, services: FakeServices, tenant: Tenant
) -> None:
    workspace_id, auth = tenant
    source = services.sources.create(workspace_id, "Web", "t")
    body = {"sourceId": source.id, "type": "purchase", "userId": "u1", "properties": {"total": 5}}

    response = client.post("/v1/streams/events", json=body, headers=auth)

    assert response.status_code == 202
    accepted = response.get_json()
    assert accepted["status"] == "accepted"
    [(data, _)] = services.publisher.published[source.pubsub_topic]
    [event] = json.loads(data)
    assert event["messageId"] == accepted["eventId"]
    assert (event["type"], event["event"], event["properties"]) == (
        "track",
        "purchase",
        {"total": 5},
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"type": "signup"}, ("track", "signup", None, None)),
        ({"type": "group"}, ("track", "group", None, None)),
        ({"type": "alias", "anonymousId": "a1"}, ("track", "alias", None, "a1")),
        ({"type": "identify", "properties": {"plan": "pro"}}, ("identify", None, None, None)),
    ],
)
def test_the_seed_requires_only_source_id_and_type(
    client: Any, services: FakeServices, tenant: Tenant, body: dict[str, Any], expected: tuple
) -> None:
    """EventInput requires sourceId and type: no identity, and group or alias are custom names
    there (they need a groupId or previousId, which EventInput lacks)."""
    workspace_id, auth = tenant
    source = services.sources.create(workspace_id, "Web", "t")

    response = client.post("/v1/streams/events", json={"sourceId": source.id, **body}, headers=auth)

    assert response.status_code == 202, response.get_json()
    [(data, _)] = services.publisher.published[source.pubsub_topic]
    [event] = json.loads(data)
    assert (event["type"], event["event"], event["userId"], event["anonymousId"]) == expected
    if body["type"] == "identify":
        assert (event["properties"], event["traits"]) == ({}, {"plan": "pro"})


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"type": "purchase", "userId": "u"}, 400, "sourceId"),
        ({"sourceId": "SOURCE", "userId": "u"}, 400, "type"),
        (
            {"sourceId": "SOURCE", "type": "purchase", "userId": "u", "properties": []},
            400,
            "properties",
        ),
        ({"sourceId": "missing", "type": "purchase", "userId": "u"}, 404, "sourceId"),
    ],
)
def test_bad_events(
    client: Any,
    services: FakeServices,
    tenant: Tenant,
    body: dict[str, Any],
    status: int,
    field: str,
) -> None:
    workspace_id, auth = tenant
    source = services.sources.create(workspace_id, "Web", "t")
    if body.get("sourceId") == "SOURCE":
        body = {**body, "sourceId": source.id}
    response = client.post("/v1/streams/events", json=body, headers=auth)
    assert response.status_code == status
    assert response.get_json()["field"] == field


def test_other_workspace_source_is_404_and_revoked_is_409(
    client: Any, services: FakeServices, tenant: Tenant
) -> None:
    workspace_id, auth = tenant
    other = services.workspaces.create("Other")
    theirs = services.sources.create(other.id, "Theirs", "t")
    body = {"sourceId": theirs.id, "type": "purchase", "userId": "u"}
    assert client.post("/v1/streams/events", json=body, headers=auth).status_code == 404
    assert client.post("/v1/streams/events", json=body).status_code == 401

    mine = services.sources.create(workspace_id, "Mine", "t")
    services.sources.revoke(workspace_id, mine.id)
    body["sourceId"] = mine.id
    assert client.post("/v1/streams/events", json=body, headers=auth).status_code == 409


def test_a_stream_source_created_with_allowed_origins(
    services: FakeServices, tenant: Tenant
) -> None:
    workspace_id, auth = tenant
    streams = function_client("streams")
    created = streams.post(
        "/v1/streams/sources",
        json={"name": "Web", "type": "javascript", "allowed_origins": ["HTTPS://Shop.Example.com"]},
        headers=auth,
    )
    assert created.status_code == 201
    assert "allowed_origins" not in created.get_json()  # the seed's StreamSource stays exact
    source = services.sources.get(workspace_id, created.get_json()["id"])
    assert source.allowed_origins == ["https://shop.example.com"]
    refused = streams.post(
        "/v1/streams/sources",
        json={
            "name": "Web",
            "type": "javascript",
            "allowed_origins": ["https://shop.example.com/"],
        },
        headers=auth,
    )
    assert refused.status_code == 400
    assert refused.get_json()["field"] == "allowed_origins.0"
