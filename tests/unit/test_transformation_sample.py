"""A transformation's test on recent events, narrowed to one source or one event name."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from shared.domain.storage import event_row
from tests.fakes import FakeServices
from tests.functions import function_client
from tests.tenants import Tenant
from tests.unit.pipeline_fixtures import START, make_events, track

CODE = "function transform(event) { console.log('saw ' + event.messageId); return event; }"


@pytest.fixture
def client() -> Any:
    return function_client("event_transformations")


def created(client: Any, tenant: Tenant) -> str:
    workspace_id, auth = tenant
    response = client.post(
        f"/api/v1/workspaces/{workspace_id}/event-transformations",
        json={"name": "Log", "source_code": CODE},
        headers=auth,
    )
    assert response.status_code == 201, response.get_json()
    return str(response.json["id"])


def stored(services: FakeServices, workspace_id: str) -> None:
    """Four events, newest last: two sources, three names (one a page's)."""
    items = [
        ("web", track("Signed Up", messageId="web-signup")),
        ("ios", track("Signed Up", messageId="ios-signup")),
        ("web", track("Order Completed", messageId="web-order")),
        ("web", {"type": "page", "name": "Home", "userId": "u-1", "messageId": "web-home"}),
    ]
    rows = []
    for minutes, (source_id, item) in enumerate(items):
        [event] = make_events(
            item, workspace_id=workspace_id, received_at=START + timedelta(minutes=minutes)
        )
        rows.append(event_row({**event, "sourceId": source_id}))
    services.event_store.insert(rows, [row["message_id"] for row in rows])


def message_ids(result: dict[str, Any]) -> list[str]:
    return [run["message_id"] for run in result["events"]]


def test_recent_events_can_be_limited_to_a_source_or_an_event_name(
    client: Any, services: FakeServices, tenant: Tenant
) -> None:
    workspace_id, auth = tenant
    stored(services, workspace_id)
    url = f"/api/v1/workspaces/{workspace_id}/event-transformations/{created(client, tenant)}/test"

    def run(**body: Any) -> dict[str, Any]:
        response = client.post(url, json={"recent": 10, **body}, headers=auth)
        assert response.status_code == 200, response.get_json()
        return dict(response.json)

    assert message_ids(run()) == ["web-home", "web-order", "ios-signup", "web-signup"]
    assert message_ids(run(source_id="web")) == ["web-home", "web-order", "web-signup"]
    assert message_ids(run(event_name="Signed Up")) == ["ios-signup", "web-signup"]
    assert message_ids(run(event_name="Home")) == ["web-home"]
    both = run(source_id="ios", event_name="Signed Up")
    assert message_ids(both) == ["ios-signup"]
    # Each event keeps its own console output and before/after.
    [only] = both["events"]
    assert only["logs"] == ["saw ios-signup"]
    assert only["before"]["messageId"] == only["after"]["messageId"] == "ios-signup"
    assert message_ids(run(source_id="android")) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"source_id": "web", "input": {"type": "track"}}, "source_id"),
        ({"event_name": "Signed Up"}, "event_name"),
        ({"recent": 5, "event_name": ""}, "event_name"),
    ],
)
def test_narrowing_needs_recent_and_a_name(
    client: Any, tenant: Tenant, body: dict[str, Any], field: str
) -> None:
    workspace_id, auth = tenant
    url = f"/api/v1/workspaces/{workspace_id}/event-transformations/{created(client, tenant)}/test"
    response = client.post(url, json=body, headers=auth)
    assert response.status_code == 400
    assert response.get_json()["field"] == field
