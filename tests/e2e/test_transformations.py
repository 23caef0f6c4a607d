"""Transformations on the local stack: saved through the API, tested, applied by a rule on the way
to a real webhook; a dropping transformation shows `dropped` in the event's trace."""

from __future__ import annotations

import pytest

from tests.e2e.helpers import Tenant
from tests.webhook_receiver import webhook_receiver

pytestmark = pytest.mark.e2e

# The seed's Create Transformation example.
SEED = {
    "name": "Enrich Purchase Events",
    "description": "Add computed fields to purchase events",
    "source_code": "function transform(event) {\n if (event.properties.total > 100) {\n "
    "event.properties.tier = 'high_value';\n }\n return event;\n}",
    "test_input": {"event": "purchase_completed", "properties": {"total": 150}},
    "test_output": {
        "event": "purchase_completed",
        "properties": {"total": 150, "tier": "high_value"},
    },
}


def purchase(message_id: str, total: int) -> dict[str, object]:
    return {
        "event": "purchase_completed",
        "userId": "user-123",
        "messageId": message_id,
        "properties": {"order_id": message_id, "total": total},
    }


def test_the_seed_transformation_tags_high_value_purchases(tenant: Tenant) -> None:
    created = tenant.api("POST", "/event-transformations", json=SEED)
    assert created.status_code == 201, created.text
    transformation = created.json()
    tested = tenant.api("POST", f"/event-transformations/{transformation['id']}/test", json={})
    assert tested.status_code == 200 and tested.json()["passed"] is True, tested.text

    with webhook_receiver() as receiver:
        tenant.rule(tenant.webhook(receiver.url), transformation_id=transformation["id"])
        assert tenant.send("track", purchase("tx-high", 150)).status_code == 200
        assert tenant.send("track", purchase("tx-low", 20)).status_code == 200
        received = {r.event["messageId"]: r.event for r in receiver.wait_for(2)}

    assert received["tx-high"]["properties"] == {
        "order_id": "tx-high",
        "total": 150,
        "tier": "high_value",
    }
    assert received["tx-low"]["properties"] == {"order_id": "tx-low", "total": 20}


def test_a_dropping_transformation_shows_dropped_in_the_trace(tenant: Tenant) -> None:
    created = tenant.api(
        "POST",
        "/event-transformations",
        json={
            "name": "Drop test traffic",
            "source_code": "function transform(event) {\n"
            "  if (event.properties.test) return null;\n"
            "  return event;\n"
            "}",
        },
    )
    assert created.status_code == 201, created.text

    with webhook_receiver() as receiver:
        tenant.rule(tenant.webhook(receiver.url), transformation_id=created.json()["id"])
        dropped = {**purchase("tx-test", 10), "properties": {"test": True}}
        assert tenant.send("track", dropped).status_code == 200
        assert tenant.send("track", purchase("tx-real", 10)).status_code == 200
        receiver.wait_for(1)
        trace = tenant.trace("tx-test", until="dropped")
        assert [r.event["messageId"] for r in receiver.delivered()] == ["tx-real"]

    assert "dropped" in [stage["stage"] for stage in trace["stages"]]
