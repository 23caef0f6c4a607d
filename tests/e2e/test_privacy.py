"""Privacy and governance through the local stack: IP policies, PII hashing, suppression,
deletion, and the audit log, checked where data ends up (webhook receipts, BigQuery rows)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests

from emulators.dev import LocalStack
from shared.bootstrap import Services
from shared.config import Settings
from shared.domain.event import CanonicalEvent
from shared.domain.regulations import privacy_settings_path
from tests.e2e.helpers import SECRET, Tenant, wait_until
from tests.webhook_receiver import webhook_receiver

pytestmark = pytest.mark.e2e

CLIENT_IP = "203.0.113.77"
CLIENT_IPV6 = "2001:db8:85a3:8d3:1319:8a2e:370:7348"
EMAIL = "ada@example.com"
# process caches privacy settings and suppressions for STREAMS_CONFIG_CACHE_SECONDS (1 s here).
SETTLE_SECONDS = 1.2


def new_tenant(local_stack: LocalStack) -> Tenant:
    services = Services(Settings.from_env())
    workspace = services.workspaces.create("e2e-privacy")
    token, record = services.workspaces.create_token(workspace.id, "e2e-admin")
    source = services.sources.create(workspace.id, "e2e", created_by=record.id)
    return Tenant(local_stack.gateway_url, workspace.id, token, source.key, source.id, services)


def send(tenant: Tenant, write_key: str, body: dict[str, Any], **headers: str) -> None:
    response = requests.post(
        f"{tenant.gateway}/v1/track",
        json=body,
        headers={"X-Write-Key": write_key, **headers},
        timeout=30,
    )
    assert response.status_code == 200, response.text


def stored(tenant: Tenant) -> dict[str, CanonicalEvent]:
    """The workspace's BigQuery rows, as canonical events by messageId."""
    return {e["messageId"]: e for e in tenant.services.event_store.recent(tenant.workspace_id, 500)}


def test_truncated_and_removed_ips_never_appear_downstream(tenant: Tenant) -> None:
    sources = {}
    for policy in ("truncate", "remove"):
        response = tenant.api("POST", "/event-keys", json={"name": policy, "ip_policy": policy})
        assert response.status_code == 201, response.text
        sources[policy] = response.json()
    with webhook_receiver() as receiver:
        tenant.rule(tenant.webhook(receiver.url))
        for policy, source in sources.items():
            send(
                tenant,
                source["key"],
                {"event": "Viewed", "userId": "u", "messageId": f"{policy}-forwarded"},
                **{"X-Forwarded-For": CLIENT_IP},
            )
            send(
                tenant,
                source["key"],
                {
                    "event": "Viewed",
                    "userId": "u",
                    "messageId": f"{policy}-sent",
                    "context": {"ip": CLIENT_IPV6},
                },
            )
        received = {r.event["messageId"]: r.event for r in receiver.wait_for(4)}
    assert set(received) == {
        "truncate-forwarded",
        "truncate-sent",
        "remove-forwarded",
        "remove-sent",
    }
    rows = wait_until(lambda: (found := stored(tenant)) and len(found) >= 4 and found)
    for where in (received, rows):
        assert where["truncate-forwarded"]["context"]["ip"] == "203.0.113.0"
        assert where["truncate-sent"]["context"]["ip"] == "2001:db8:85a3::"
        assert "ip" not in where["remove-forwarded"]["context"]
        assert "ip" not in where["remove-sent"]["context"]
    everything = json.dumps([received, rows], default=str)
    assert CLIENT_IP not in everything and CLIENT_IPV6 not in everything


def test_a_policy_change_takes_effect_at_ingest_within_the_key_cache(tenant: Tenant) -> None:
    forwarded = {"X-Forwarded-For": CLIENT_IP}
    send(
        tenant, tenant.write_key, {"event": "x", "userId": "u", "messageId": "kept-ip"}, **forwarded
    )
    path = f"/event-keys/{tenant.source_id}/privacy"
    response = tenant.api("PUT", path, json={"ip_policy": "remove"})
    assert response.status_code == 200 and response.json()["ip_policy"] == "remove"
    time.sleep(5.5)  # past ingest's write-key cache (STREAMS_WRITE_KEY_CACHE_SECONDS, 5 s)
    send(tenant, tenant.write_key, {"event": "x", "userId": "u", "messageId": "no-ip"}, **forwarded)
    tenant.trace("no-ip", until="stored")
    tenant.trace("kept-ip", until="stored")
    rows = stored(tenant)
    assert rows["kept-ip"]["context"]["ip"] == CLIENT_IP
    assert "ip" not in rows["no-ip"]["context"]


def test_hashes_are_stable_per_workspace_and_differ_across_workspaces(
    tenant: Tenant, local_stack: LocalStack
) -> None:
    other = new_tenant(local_stack)
    rules = {
        "pii_rules": [
            {"path": "context.traits.email", "action": "hash"},
            {"path": "traits.email", "action": "hash"},
            {"path": "properties.phone", "action": "drop"},
        ]
    }
    with webhook_receiver() as receiver:
        for who in (tenant, other):
            assert who.api("PUT", "/privacy", json=rules).status_code == 200
            who.rule(who.webhook(receiver.url))
        time.sleep(SETTLE_SECONDS)
        for who, message_ids in ((tenant, ("a-1", "a-2")), (other, ("b-1",))):
            for message_id in message_ids:
                body = {
                    "event": "Signed Up",
                    "userId": "u-1",
                    "messageId": message_id,
                    "properties": {"phone": "+44 20 7946 0000", "plan": "pro"},
                    "context": {"traits": {"email": EMAIL}},
                }
                send(who, who.write_key, body)
        identify = {"userId": "u-1", "messageId": "a-3", "traits": {"email": EMAIL}}
        assert tenant.send("identify", identify).status_code == 200
        received = {r.event["messageId"]: r.event for r in receiver.wait_for(4)}

    hashes = {m: e["context"]["traits"]["email"] for m, e in received.items() if m != "a-3"}
    assert hashes["a-1"] == hashes["a-2"] == received["a-3"]["traits"]["email"]
    assert hashes["b-1"] != hashes["a-1"] and len(hashes["b-1"]) == 64
    for event in received.values():
        assert "phone" not in event["properties"]
    rows = wait_until(lambda: (found := stored(tenant)) and len(found) >= 3 and found)
    assert rows["a-1"]["context"]["traits"]["email"] == hashes["a-1"]
    everything = json.dumps([received, rows], default=str)
    assert EMAIL not in everything and "7946" not in everything


def test_a_suppressed_user_never_reaches_a_destination(tenant: Tenant) -> None:
    with webhook_receiver() as receiver:
        tenant.rule(tenant.webhook(receiver.url))
        response = tenant.api("POST", "/regulations", json={"type": "suppress", "user_id": "gone"})
        assert response.status_code == 201, response.text
        assert response.json()["status"] == "completed"
        time.sleep(SETTLE_SECONDS)
        assert tenant.send("track", {"event": "x", "userId": "gone", "messageId": "s-1"})
        assert tenant.send("track", {"event": "x", "userId": "kept", "messageId": "s-2"})
        assert [r.event["messageId"] for r in receiver.wait_for(1)] == ["s-2"]
        trace = tenant.trace("s-1", until="suppressed")
        assert [s["stage"] for s in trace["stages"]] == ["received", "suppressed"]
        assert trace["stages"][-1]["regulation_id"] == response.json()["id"]
        time.sleep(2)  # a suppressed event would have arrived by now
        assert [r.event["messageId"] for r in receiver.delivered()] == ["s-2"]
    assert "s-1" not in stored(tenant)


def test_a_deletion_leaves_no_row_of_the_user_and_asks_destinations(tenant: Tenant) -> None:
    with webhook_receiver() as receiver:
        mixpanel = tenant.api(
            "POST",
            "/destinations",
            json={
                "name": "Mixpanel",
                "type": "mixpanel",
                "config": {
                    "project_token": "mp-project-token",
                    "gdpr_token": "mp-gdpr-oauth-token",
                    "endpoint": f"http://127.0.0.1:{receiver.port}",
                },
            },
        )
        assert mixpanel.status_code == 201, mixpanel.text
        for i in range(3):
            tenant.send("track", {"event": "x", "userId": "doomed", "messageId": f"d-{i}"})
        tenant.send("track", {"event": "x", "userId": "kept", "messageId": "d-kept"})
        for message_id in ("d-0", "d-1", "d-2", "d-kept"):
            tenant.trace(message_id, until="stored")

        response = tenant.api("POST", "/regulations", json={"type": "delete", "user_id": "doomed"})
        assert response.status_code == 201, response.text
        regulation = response.json()
        [request] = receiver.wait_for(1)

    assert regulation["status"] == "completed", regulation
    assert regulation["report"]["stores"]["bigquery"] == {"status": "completed", "deleted": 3}
    [requested] = regulation["report"]["destinations"]["requested"]
    assert requested["type"] == "mixpanel" and requested["status"] == "requested"
    assert request.event == {"distinct_ids": ["doomed"], "compliance_type": "GDPR"}
    assert request.headers["Authorization"] == "Bearer mp-gdpr-oauth-token"
    rows = stored(tenant)
    assert [e for e in rows.values() if e["userId"] == "doomed"] == []
    assert "d-kept" in rows
    again = tenant.api("GET", f"/regulations/{regulation['id']}").json()
    assert again == regulation


def test_audit_entries_exist_for_each_kind_of_change_and_hold_no_secret(tenant: Tenant) -> None:
    source = tenant.api("POST", "/event-keys", json={"name": "audited"}).json()
    tenant.api("PUT", f"/event-keys/{source['id']}/privacy", json={"ip_policy": "truncate"})
    destination = tenant.webhook("http://127.0.0.1:9/hook")
    tenant.api("PUT", f"/destinations/{destination}", json={"name": "renamed"})
    rule = tenant.rule(destination)
    tenant.api("DELETE", f"/event-forwarding-rules/{rule['id']}")
    tenant.api("POST", "/dead-letters/replay", json={"destination_id": destination})
    tenant.api("PUT", "/privacy", json={"pii_rules": [{"path": "traits.email", "action": "hash"}]})
    tenant.api("POST", "/regulations", json={"type": "suppress", "anonymous_id": "anon"})
    tenant.api("DELETE", f"/event-keys/{source['id']}")

    response = tenant.api("GET", "/audit-log", params={"limit": 100})
    assert response.status_code == 200, response.text
    entries = response.json()["data"]
    kinds = {(e["action"], e["resource_type"]) for e in entries}
    assert kinds >= {
        ("create", "event_source"),
        ("update", "event_source"),
        ("revoke", "event_source"),
        ("create", "destination"),
        ("update", "destination"),
        ("create", "forwarding_rule"),
        ("delete", "forwarding_rule"),
        ("replay", "dead_letter"),
        ("update", "privacy_settings"),
        ("create", "regulation"),
    }
    assert {e["actor"]["token_name"] for e in entries} == {"e2e"}
    settings = tenant.services.store.get(privacy_settings_path(tenant.workspace_id))
    assert settings is not None
    text = response.text
    for secret in (source["key"], tenant.token, SECRET, settings["hashing_secret"]):
        assert secret not in text
    only = tenant.api("GET", "/audit-log", params={"resource_type": "destination"}).json()["data"]
    assert {e["resource_type"] for e in only} == {"destination"} and len(only) == 2
