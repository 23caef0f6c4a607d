"""The audit log: one entry per successful management change, recorded by the HTTP layer with
before/after snapshots, listed with filters, and never holding a secret."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.destinations.outbound import UrlGuard
from shared.domain.regulations import privacy_settings_path
from shared.services.audit import AuditLog, AuditQuery, Change, mask_secrets
from tests.fakes import FakeServices, InMemoryConfigStore
from tests.functions import function_client
from tests.unit.pipeline_fixtures import Clock, FakeSender

WEBHOOK_SECRET = "whsec-0123456789abcdef"
HEADER_TOKEN = "Bearer header-credential-42"


class Tenant:
    def __init__(self, services: FakeServices) -> None:
        workspace = services.workspaces.create("Acme")
        self.workspace_id = workspace.id
        self.token, self.record = services.workspaces.create_token(workspace.id, "ci-bot")
        self.auth = {"Authorization": f"Bearer {self.token}"}
        self.base = f"/api/v1/workspaces/{workspace.id}"

    def call(self, function: str, method: str, path: str, **kwargs: Any) -> Any:
        client = function_client(function)
        url = path if path.startswith("/v1/") else self.base + path
        response = client.open(url, method=method, headers=self.auth, **kwargs)
        return response

    def audit(self, query: str = "") -> list[dict[str, Any]]:
        response = self.call("governance", "GET", f"/audit-log{query}")
        assert response.status_code == 200, response.get_json()
        return list(response.get_json()["data"])


@pytest.fixture
def tenant(services: FakeServices) -> Tenant:
    services.__dict__["http_sender"] = FakeSender()
    # Unit tests never touch real DNS: every host resolves to one public address.
    services.__dict__["url_guard"] = UrlGuard(False, resolve=lambda host, port: ["93.184.216.34"])
    return Tenant(services)


def make_changes(tenant: Tenant) -> dict[str, Any]:
    """One change of every kind, through the functions that serve them."""
    source = tenant.call("event_keys", "POST", "/event-keys", json={"name": "Web"}).get_json()
    tenant.call(
        "event_keys", "PUT", f"/event-keys/{source['id']}/privacy", json={"ip_policy": "remove"}
    )
    destination = tenant.call(
        "destinations",
        "POST",
        "/destinations",
        json={
            "name": "Hook",
            "type": "webhook",
            "config": {
                "url": "https://hooks.example.com/in",
                "secret": WEBHOOK_SECRET,
                "headers": {"Authorization": HEADER_TOKEN},
            },
        },
    ).get_json()
    tenant.call(
        "destinations", "PUT", f"/destinations/{destination['id']}", json={"name": "Hook 2"}
    )
    rule = tenant.call(
        "event_forwarding_rules",
        "POST",
        "/event-forwarding-rules",
        json={
            "name": "All",
            "destination_id": destination["id"],
            "event_types": [],
            "event_names": [],
        },
    ).get_json()
    tenant.call("event_forwarding_rules", "DELETE", f"/event-forwarding-rules/{rule['id']}")
    tenant.call("events", "POST", "/dead-letters/replay", json={})
    tenant.call(
        "governance",
        "PUT",
        "/privacy",
        json={"pii_rules": [{"path": "traits.email", "action": "hash"}]},
    )
    tenant.call("governance", "POST", "/regulations", json={"type": "suppress", "user_id": "u-1"})
    tenant.call("event_keys", "DELETE", f"/event-keys/{source['id']}")
    return {"source": source, "destination": destination, "rule": rule}


def test_every_kind_of_change_is_recorded_with_who_what_and_when(tenant: Tenant) -> None:
    made = make_changes(tenant)
    entries = tenant.audit()
    kinds = [(e["action"], e["resource_type"]) for e in reversed(entries)]
    assert kinds == [
        ("create", "event_source"),
        ("update", "event_source"),
        ("create", "destination"),
        ("update", "destination"),
        ("create", "forwarding_rule"),
        ("delete", "forwarding_rule"),
        ("replay", "dead_letter"),
        ("update", "privacy_settings"),
        ("create", "regulation"),
        ("revoke", "event_source"),
    ]
    for entry in entries:
        assert entry["actor"] == {"token_id": tenant.record.id, "token_name": "ci-bot"}
        assert entry["at"].endswith("Z") and entry["status"] in (200, 201, 204)
    by_kind = {(e["action"], e["resource_type"]): e for e in entries}

    created = by_kind[("create", "destination")]
    assert created["resource_id"] == made["destination"]["id"]
    assert created["method"] == "POST" and created["before"] is None
    assert created["after"]["name"] == "Hook"

    updated = by_kind[("update", "destination")]
    assert updated["path"] == f"{tenant.base}/destinations/{made['destination']['id']}"
    assert (updated["before"]["name"], updated["after"]["name"]) == ("Hook", "Hook 2")

    deleted = by_kind[("delete", "forwarding_rule")]
    assert deleted["before"]["id"] == made["rule"]["id"] and deleted["after"] is None

    revoked = by_kind[("revoke", "event_source")]
    assert (revoked["before"]["status"], revoked["after"]["status"]) == ("active", "revoked")

    policy = by_kind[("update", "event_source")]
    assert (policy["before"]["ip_policy"], policy["after"]["ip_policy"]) == ("keep", "remove")
    assert by_kind[("create", "regulation")]["after"]["status"] == "completed"
    assert by_kind[("replay", "dead_letter")]["after"]["dry_run"] is False


def test_no_secret_ever_reaches_the_audit_log(services: FakeServices, tenant: Tenant) -> None:
    made = make_changes(tenant)
    stored = services.store.get(privacy_settings_path(tenant.workspace_id))
    assert stored is not None
    text = json.dumps(tenant.audit())
    secrets = [
        made["source"]["key"],  # the write key
        tenant.token,  # the API token
        WEBHOOK_SECRET,
        HEADER_TOKEN,
        stored["hashing_secret"],
    ]
    for secret in secrets:
        assert secret not in text
    raw = json.dumps(
        [d for p, d in services.store.documents.items() if "/audit_log/" in p],
        default=str,
    )
    for secret in secrets:
        assert secret not in raw
    source_entry = next(
        e for e in tenant.audit("?resource_type=event_source") if e["action"] == "create"
    )
    assert source_entry["after"]["key"] == "***"


def test_reads_failures_dry_runs_and_event_sends_are_not_changes(tenant: Tenant) -> None:
    tenant.call("destinations", "GET", "/destinations")
    tenant.call("destinations", "POST", "/destinations", json={"name": "bad", "type": "nope"})
    tenant.call("destinations", "DELETE", "/destinations/missing")
    tenant.call("events", "POST", "/dead-letters/replay", json={"dry_run": True})
    source = tenant.call("event_keys", "POST", "/event-keys", json={"name": "Web"}).get_json()
    tenant.call("event_keys", "POST", f"/event-keys/{source['id']}/test-event")
    entries = tenant.audit()
    assert [(e["action"], e["resource_type"]) for e in entries] == [("create", "event_source")]


def test_filters_by_resource_type_token_and_time(services: FakeServices, tenant: Tenant) -> None:
    make_changes(tenant)
    other_token, other = services.workspaces.create_token(tenant.workspace_id, "other")
    client = function_client("governance")
    client.put(
        f"{tenant.base}/privacy",
        json={"pii_rules": []},
        headers={"Authorization": f"Bearer {other_token}"},
    )
    everything = tenant.audit()
    assert {e["resource_type"] for e in tenant.audit("?resource_type=destination")} == {
        "destination"
    }
    by_other = tenant.audit(f"?token_id={other.id}")
    assert [e["actor"]["token_name"] for e in by_other] == ["other"]
    assert len(tenant.audit("?limit=3")) == 3
    newest, oldest = everything[0]["at"], everything[-1]["at"]
    assert len(tenant.audit(f"?from={newest.replace('Z', '%2B00:00')}")) >= 1
    assert tenant.audit(f"?to={oldest.replace('Z', '%2B00:00')}")[-1]["id"] == everything[-1]["id"]
    bad = tenant.call("governance", "GET", "/audit-log?limit=0")
    assert bad.status_code == 400


def test_a_failing_audit_write_never_fails_the_change(
    services: FakeServices, tenant: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        def record(self, change: Change) -> None:
            raise RuntimeError("down")

    services.__dict__["audit"] = Broken()
    response = tenant.call("event_keys", "POST", "/event-keys", json={"name": "Web"})
    assert response.status_code == 201
    assert "could not record the audit entry" in caplog.text


def test_masking_covers_nested_and_named_secrets() -> None:
    masked = mask_secrets(
        {
            "name": "x",
            "key": "wk_123",
            "config": {"api_key": "a", "project_token": "b", "gdpr_token": "c", "region": "eu"},
            "list": [{"writeKey": "wk_1", "secret": "", "password": None}],
        }
    )
    assert masked == {
        "name": "x",
        "key": "***",
        "config": {"api_key": "***", "project_token": "***", "gdpr_token": "***", "region": "eu"},
        "list": [{"writeKey": "***", "secret": "", "password": None}],
    }


def test_entries_are_listed_newest_first_and_large_snapshots_are_cut() -> None:
    log = AuditLog(InMemoryConfigStore(), clock=Clock())
    for index in range(3):
        log.record(
            Change("ws", "t", "n", "update", "op", "PUT", "/p", 200, "thing", str(index), None, {})
        )
    log.record(
        Change(
            "ws", "t", "n", "update", "op", "PUT", "/p", 200, "big", "x", None, {"a": "x" * 300_000}
        )
    )
    listed = log.list("ws", AuditQuery())
    assert [e["resource_id"] for e in listed] == ["x", "2", "1", "0"]
    assert listed[0]["after"] == {"truncated": True, "chars": 300_008}
    assert [
        e["resource_id"] for e in log.list("ws", AuditQuery(resource_type="thing", limit=2))
    ] == [
        "2",
        "1",
    ]
