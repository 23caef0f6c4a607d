"""Contracts through the local stack: block keeps a bad event from the webhook and quarantines it,
a replay after fixing the contract delivers it; warn delivers and records the violation."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.e2e.helpers import Tenant, wait_until
from tests.webhook_receiver import webhook_receiver

pytestmark = pytest.mark.e2e

SCHEMA = {
    "properties": {
        "order_id": {"type": "string", "required": True},
        "total": {"type": "number", "required": True},
        "currency": {"type": "string", "required": True},
    }
}


def purchase(message_id: str, **properties: Any) -> dict[str, Any]:
    return {
        "event": "purchase_completed",
        "userId": "u-1",
        "messageId": message_id,
        "properties": properties,
    }


def contract(tenant: Tenant, enforcement_mode: str) -> dict[str, Any]:
    response = tenant.api(
        "POST",
        "/event-contracts",
        json={
            "name": "Purchase Completed Schema",
            "event_type": "track",
            "event_name": "purchase_completed",
            "schema_definition": SCHEMA,
            "enforcement_mode": enforcement_mode,
            "undeclared_fields": "allow",
        },
    )
    assert response.status_code == 201, response.text
    time.sleep(1.2)  # past the contracts cache of the process function
    return dict(response.json())


def test_block_quarantines_and_a_replay_after_the_fix_delivers(tenant: Tenant) -> None:
    with webhook_receiver() as receiver:
        tenant.rule(tenant.webhook(receiver.url))
        held = contract(tenant, "block")
        assert tenant.send("track", purchase("c-good", order_id="o1", total=5, currency="USD"))
        assert tenant.send("track", purchase("c-bad", order_id="o2", currency="USD"))

        tenant.trace("c-good", until="delivered")
        blocked = tenant.trace("c-bad", until="blocked")
        assert blocked["stages"][-1]["violations"][0]["field"] == "properties.total"
        time.sleep(2)  # a blocked event would have reached the webhook by now
        assert [r.event["messageId"] for r in receiver.delivered()] == ["c-good"]

        [quarantined] = tenant.api("GET", "/quarantine").json()
        assert quarantined["message_id"] == "c-bad"
        assert quarantined["reasons"][0]["type"] == "Required-Missing"
        violations = tenant.api("GET", f"/event-contracts/{held['id']}/violations").json()
        assert violations["summary"]["blocked_events"] == 1

        still = tenant.api("POST", "/quarantine/replay", json={"dry_run": True}).json()
        assert still["replayed"] == [] and "still blocked" in still["skipped"][0]["reason"]
        fixed = {"properties": {**SCHEMA["properties"], "total": {"type": "number"}}}
        response = tenant.api(
            "PUT", f"/event-contracts/{held['id']}", json={"schema_definition": fixed}
        )
        assert response.status_code == 200
        dry = tenant.api("POST", "/quarantine/replay", json={"dry_run": True}).json()
        assert dry["replayed"] == [quarantined["id"]]
        done = tenant.api("POST", "/quarantine/replay", json={"ids": [quarantined["id"]]})
        assert done.json()["replayed"] == [quarantined["id"]]

        received = receiver.wait_for(2)
        assert sorted(r.event["messageId"] for r in received) == ["c-bad", "c-good"]
        tenant.trace("c-bad", until="delivered")
        after = tenant.api("GET", "/quarantine").json()
        assert after[0]["status"] == "replayed"


def test_warn_delivers_and_records_the_violation(tenant: Tenant) -> None:
    with webhook_receiver() as receiver:
        tenant.rule(tenant.webhook(receiver.url))
        warned = contract(tenant, "warn")
        assert tenant.send("track", purchase("w-bad", order_id=7, total=5, currency="USD"))

        assert [r.event["messageId"] for r in receiver.wait_for(1)] == ["w-bad"]
        stages = [s["stage"] for s in tenant.trace("w-bad", until="delivered")["stages"]]
        assert "violated" in stages
        url = f"/event-contracts/{warned['id']}/violations"
        page = wait_until(lambda: tenant.api("GET", url).json()["data"])
        assert (page[0]["type"], page[0]["field"], page[0]["action"]) == (
            "Datatype-Mismatch",
            "properties.order_id",
            "warned",
        )
        assert tenant.api("GET", "/quarantine").json() == []


def test_allow_delivers_and_reports_what_block_would_have_stopped(tenant: Tenant) -> None:
    with webhook_receiver() as receiver:
        tenant.rule(tenant.webhook(receiver.url))
        allowed = contract(tenant, "allow")
        assert tenant.send("track", purchase("a-bad", order_id="o1", currency="USD"))
        assert tenant.send("track", purchase("a-good", order_id="o2", total=1, currency="USD"))

        received = receiver.wait_for(2)
        assert sorted(r.event["messageId"] for r in received) == ["a-bad", "a-good"]
        url = f"/event-contracts/{allowed['id']}/violations"
        report = wait_until(lambda: (body := tenant.api("GET", url).json())["data"] and body)
        assert report["data"][0]["action"] == "allowed"
        assert report["summary"]["shadow"]["would_block"] == 1
        assert report["summary"]["blocked_events"] == 0
        assert tenant.api("GET", "/quarantine").json() == []
