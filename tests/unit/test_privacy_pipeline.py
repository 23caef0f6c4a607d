"""IP policies at ingest (per source, set on create and update, cached like revocation) and PII
rules in process (before contracts, storage, routing and the live buffer), over the fakes."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from shared.domain.pipeline import parse_source_message
from shared.domain.privacy import PiiRule, hash_value
from shared.domain.regulations import privacy_settings_path
from shared.domain.sources import EventSource
from shared.services.contract_validator import ContractValidator
from shared.services.contracts import EventContracts
from shared.services.ingest import Ingest
from shared.services.privacy import PrivacyFilter, PrivacySettings
from shared.services.process import Processor
from shared.services.workspace_config import WorkspaceConfig
from tests.fakes import FakeServices, InMemoryConfigStore
from tests.functions import function_client
from tests.tenants import Tenant
from tests.unit.pipeline_fixtures import (
    WORKSPACE_ID,
    Pipeline,
    add_destination,
    add_rule,
    identify,
    make_events,
    make_pipeline,
    one_topic,
    source_message,
    track,
)


def published(services: FakeServices, source: EventSource) -> list[dict[str, Any]]:
    messages = services.publisher.published.get(source.pubsub_topic, [])
    return [event for data, _ in messages for event in json.loads(data)]


# --- IP policy at ingest ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "client_ip", "expected"),
    [
        ("keep", "203.0.113.77", "203.0.113.77"),
        ("truncate", "203.0.113.77", "203.0.113.0"),
        ("truncate", "2001:db8:85a3:8d3:1319:8a2e:370:7348", "2001:db8:85a3::"),
        ("remove", "203.0.113.77", None),
    ],
)
def test_ingest_applies_the_source_policy_before_publishing(
    services: FakeServices, tenant: Tenant, policy: str, client_ip: str, expected: str | None
) -> None:
    # Behind Google's load balancer, which appends `client, load balancer`.
    services.settings = dataclasses.replace(services.settings, trusted_proxy_hops=2)
    workspace_id, auth = tenant
    keys = function_client("event_keys")
    created = keys.post(
        f"/api/v1/workspaces/{workspace_id}/event-keys",
        json={"name": "Web", "ip_policy": policy},
        headers=auth,
    )
    assert created.status_code == 201, created.get_json()
    source = services.sources.get(workspace_id, created.get_json()["id"])
    ingest = function_client("ingest")
    for body in (
        {"event": "a", "userId": "u"},  # ip from X-Forwarded-For
        {"event": "b", "userId": "u", "context": {"ip": client_ip}},  # sent by the client
    ):
        response = ingest.post(
            "/v1/track",
            json=body,
            headers={"X-Write-Key": source.key, "X-Forwarded-For": f"{client_ip}, 10.0.0.1"},
        )
        assert response.status_code == 200, response.get_json()
    events = published(services, source)
    assert [e["context"].get("ip") for e in events] == [expected, expected]
    if expected is None:
        assert all("ip" not in e["context"] for e in events)


def test_the_seed_object_stays_exact_and_the_policy_has_its_own_resource(
    services: FakeServices, tenant: Tenant
) -> None:
    workspace_id, auth = tenant
    keys = function_client("event_keys")
    base = f"/api/v1/workspaces/{workspace_id}/event-keys"
    created = keys.post(base, json={"name": "Web", "ip_policy": "truncate"}, headers=auth)
    source = created.get_json()
    assert "ip_policy" not in source
    assert keys.get(f"{base}/{source['id']}", headers=auth).get_json() == source

    privacy = keys.get(f"{base}/{source['id']}/privacy", headers=auth)
    assert privacy.get_json()["ip_policy"] == "truncate"
    assert privacy.get_json()["source_id"] == source["id"]
    changed = keys.put(f"{base}/{source['id']}/privacy", json={"ip_policy": "remove"}, headers=auth)
    assert changed.status_code == 200 and changed.get_json()["ip_policy"] == "remove"
    # The write-key record ingest reads carries it (one read per key and cache interval).
    assert services.sources.resolve_write_key(source["key"]).ip_policy == "remove"  # type: ignore[union-attr]

    bad = keys.put(f"{base}/{source['id']}/privacy", json={"ip_policy": "hide"}, headers=auth)
    assert bad.status_code == 400 and bad.get_json()["field"] == "ip_policy"
    missing = keys.put(f"{base}/nope/privacy", json={"ip_policy": "keep"}, headers=auth)
    assert missing.status_code == 404
    refused = keys.post(base, json={"name": "x", "ip_policy": "mask"}, headers=auth)
    assert refused.status_code == 400 and refused.get_json()["field"] == "ip_policy"


def test_the_second_seed_sources_take_a_policy_too(services: FakeServices, tenant: Tenant) -> None:
    workspace_id, auth = tenant
    created = function_client("streams").post(
        "/v1/streams/sources",
        json={"name": "App", "type": "mobile", "ip_policy": "remove"},
        headers=auth,
    )
    assert created.status_code == 201, created.get_json()
    assert "ip_policy" not in created.get_json()
    assert services.sources.get(workspace_id, created.get_json()["id"]).ip_policy == "remove"


def test_a_policy_change_reaches_ingest_within_the_key_cache(services: FakeServices) -> None:
    workspace = services.workspaces.create("Acme")
    source = services.sources.create(workspace.id, "Web", "t")
    now = [100.0]
    ingest = Ingest(services.sources, services.publisher, services.store, key_cache_seconds=5)
    ingest._keys._monotonic = lambda: now[0]
    body = {"event": "a", "userId": "u"}

    ingest.accept(ingest.authorize(source.key), body, "track", "203.0.113.77")
    services.sources.set_ip_policy(workspace.id, source.id, "truncate")
    now[0] += 4.9  # still cached: the old policy
    ingest.accept(ingest.authorize(source.key), body, "track", "203.0.113.77")
    now[0] += 0.2  # past the interval
    ingest.accept(ingest.authorize(source.key), body, "track", "203.0.113.77")

    ips = [e["context"].get("ip") for e in published(services, source)]
    assert ips == ["203.0.113.77", "203.0.113.77", "203.0.113.0"]


def test_a_test_event_follows_the_policy(services: FakeServices, tenant: Tenant) -> None:
    workspace_id, auth = tenant
    source = services.sources.create(workspace_id, "Web", "t", ip_policy="remove")
    response = function_client("event_keys").post(
        f"/api/v1/workspaces/{workspace_id}/event-keys/{source.id}/test-event",
        headers={**auth, "X-Forwarded-For": "203.0.113.77"},
    )
    assert response.status_code == 202
    [event] = published(services, source)
    assert "ip" not in event["context"]


# --- PII settings API ------------------------------------------------------------------------


def test_privacy_settings_round_trip_and_never_show_the_secret(
    services: FakeServices, tenant: Tenant
) -> None:
    workspace_id, auth = tenant
    client = function_client("governance")
    base = f"/api/v1/workspaces/{workspace_id}/privacy"
    empty = client.get(base, headers=auth)
    assert empty.status_code == 200
    assert empty.get_json() == {
        "pii_rules": [],
        "hashing": "hmac-sha256",
        "consent_required": False,
        "created_at": None,
        "updated_at": None,
    }
    rules = [
        {"path": "context.traits.email", "action": "hash"},
        {"path": "properties.phone", "action": "drop"},
    ]
    saved = client.put(base, json={"pii_rules": rules}, headers=auth)
    assert saved.status_code == 200, saved.get_json()
    assert saved.get_json()["pii_rules"] == rules
    stored = services.store.get(privacy_settings_path(workspace_id))
    assert stored is not None
    secret = stored["hashing_secret"]
    assert len(bytes.fromhex(secret)) == 32
    assert secret not in saved.get_data(as_text=True)
    assert secret not in client.get(base, headers=auth).get_data(as_text=True)

    # Consent is required only when set, and a whole update sets it again.
    assert saved.get_json()["consent_required"] is False
    required = client.put(base, json={"pii_rules": rules, "consent_required": True}, headers=auth)
    assert required.get_json()["consent_required"] is True
    assert client.get(base, headers=auth).get_json()["consent_required"] is True
    refused = client.put(base, json={"pii_rules": [], "consent_required": "yes"}, headers=auth)
    assert (refused.status_code, refused.get_json()["field"]) == (400, "consent_required")

    # The secret outlives rule changes: hashes stay comparable over time.
    client.put(base, json={"pii_rules": rules[:1]}, headers=auth)
    assert services.store.get(privacy_settings_path(workspace_id))["hashing_secret"] == secret  # type: ignore[index]


@pytest.mark.parametrize(
    ("rules", "field"),
    [
        ([{"path": "userId", "action": "hash"}], "pii_rules[0].path"),
        ([{"path": "traits.email", "action": "mask"}], "pii_rules.0.action"),
        ([{"path": "traits.email", "action": "hash", "salt": "x"}], "pii_rules.0.salt"),
        (
            [{"path": "traits.a", "action": "hash"}, {"path": "traits.a", "action": "drop"}],
            "pii_rules[1].path",
        ),
    ],
)
def test_bad_rules_are_400_naming_the_rule(
    tenant: Tenant, rules: list[dict[str, Any]], field: str
) -> None:
    workspace_id, auth = tenant
    response = function_client("governance").put(
        f"/api/v1/workspaces/{workspace_id}/privacy", json={"pii_rules": rules}, headers=auth
    )
    assert response.status_code == 400
    assert response.get_json()["field"] == field


def test_another_workspace_settings_are_404(services: FakeServices, tenant: Tenant) -> None:
    _, auth = tenant
    other = services.workspaces.create("Other")
    response = function_client("governance").get(
        f"/api/v1/workspaces/{other.id}/privacy", headers=auth
    )
    assert response.status_code == 404


# --- PII rules in process ------------------------------------------------------------------


def privacy_pipeline(store: Any = None, validator: Any = None) -> Pipeline:
    pipeline = make_pipeline(store=store, validator=validator)
    pipeline.processor = Processor(
        pipeline.store,
        pipeline.events,
        pipeline.publisher,
        WorkspaceConfig(pipeline.store, ttl_seconds=0),
        one_topic,
        validator,
        clock=pipeline.clock,
        privacy=PrivacyFilter(pipeline.store, ttl_seconds=0),
    )
    return pipeline


def secret_of(pipeline: Pipeline, workspace_id: str = WORKSPACE_ID) -> bytes:
    document = pipeline.store.get(privacy_settings_path(workspace_id))
    assert document is not None
    return bytes.fromhex(document["hashing_secret"])


def set_rules(
    pipeline: Pipeline, *rules: tuple[str, str], workspace_id: str = WORKSPACE_ID
) -> None:
    pii_rules = [PiiRule(path, action) for path, action in rules]  # type: ignore[arg-type]
    PrivacySettings(pipeline.store).put(workspace_id, pii_rules, "t")


def test_stored_and_routed_events_carry_only_hashes() -> None:
    pipeline = privacy_pipeline()
    add_destination(pipeline.store, "dest-1")
    add_rule(pipeline.store, "rule-1", "dest-1")
    set_rules(
        pipeline,
        ("context.traits.email", "hash"),
        ("traits.email", "hash"),
        ("properties.phone", "drop"),
    )
    email = "ada@example.com"
    events = make_events(
        track(properties={"phone": "+1 555", "total": 3}, context={"traits": {"email": email}}),
        identify(traits={"email": email, "plan": "pro"}),
    )
    pipeline.process(source_message(events))
    digest = hash_value(email, secret_of(pipeline))

    stored = pipeline.events.rows
    assert json.loads(stored[0]["context"])["traits"]["email"] == digest
    assert json.loads(stored[0]["properties"]) == {"total": 3}
    assert json.loads(stored[1]["traits"]) == {"email": digest, "plan": "pro"}
    routed = [m.event for m in pipeline.delivery_messages()]
    assert routed[0]["context"]["traits"]["email"] == digest
    assert routed[1]["traits"]["email"] == digest
    everything = json.dumps([stored, routed])
    assert email not in everything and "+1 555" not in everything


def test_hashes_are_stable_per_workspace_and_differ_across_workspaces() -> None:
    pipeline = privacy_pipeline()
    set_rules(pipeline, ("traits.email", "hash"))
    set_rules(pipeline, ("traits.email", "hash"), workspace_id="ws-2")
    item = identify(traits={"email": "ada@example.com"})
    pipeline.process(source_message(make_events(item), "ps-1"))
    pipeline.process(source_message(make_events({**item, "messageId": "again"}), "ps-2"))
    pipeline.process(
        source_message(make_events(item, workspace_id="ws-2"), "ps-3", workspace_id="ws-2")
    )
    hashes = [json.loads(row["traits"])["email"] for row in pipeline.events.rows]
    assert hashes[0] == hashes[1] != hashes[2]


def test_contracts_judge_the_redacted_event() -> None:
    """PII rules run first: a contract requiring a dropped field blocks, and the quarantine
    keeps only the redacted event."""
    store = InMemoryConfigStore()
    validator = ContractValidator(store, ttl_seconds=0)
    pipeline = privacy_pipeline(store=store, validator=validator)
    EventContracts(store).create(
        WORKSPACE_ID,
        name="needs phone",
        event_type="track",
        event_name="Order Completed",
        schema_definition={"properties": {"phone": {"type": "string", "required": True}}},
        enforcement_mode="block",
    )
    set_rules(pipeline, ("properties.phone", "drop"), ("properties.email", "hash"))
    outcome = pipeline.process(
        source_message(make_events(track(properties={"phone": "+1 555", "email": "a@b.c"})))
    )
    assert outcome.blocked == 1 and pipeline.events.rows == []
    quarantined = [d for p, d in store.documents.items() if "/quarantine/" in p]
    assert len(quarantined) == 1
    assert (
        "+1 555" not in quarantined[0]["event_json"] and "a@b.c" not in quarantined[0]["event_json"]
    )


def test_rule_changes_apply_after_the_cache_interval() -> None:
    pipeline = make_pipeline()
    now = [0.0]
    privacy = PrivacyFilter(pipeline.store, ttl_seconds=5)
    privacy._cache._monotonic = lambda: now[0]
    events = make_events(identify(traits={"email": "ada@example.com"}))
    assert privacy.apply(WORKSPACE_ID, events).passed == events  # no rules yet (now cached)
    set_rules(pipeline, ("traits.email", "drop"))
    now[0] = 4.9
    assert privacy.apply(WORKSPACE_ID, events).passed == events
    now[0] = 5.1
    assert privacy.apply(WORKSPACE_ID, events).passed[0]["traits"] == {}


def test_a_quarantine_replay_is_not_hashed_twice() -> None:
    pipeline = privacy_pipeline()
    set_rules(pipeline, ("traits.email", "hash"))
    pipeline.process(source_message(make_events(identify(traits={"email": "ada@example.com"}))))
    first = json.loads(pipeline.events.rows[0]["traits"])["email"]
    redacted = make_events(identify(traits={"email": first}, messageId="replayed"))
    data = json.dumps(redacted).encode()
    attributes = {"workspace_id": WORKSPACE_ID, "source_id": "src-1", "replay": "quarantine"}
    message = parse_source_message(data, attributes, "ps-2")
    assert message.replay == "quarantine"
    pipeline.process(message)
    assert json.loads(pipeline.events.rows[1]["traits"])["email"] == first
