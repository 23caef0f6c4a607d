"""Ingest to a real webhook through every function of the local stack, on the emulators."""

from __future__ import annotations

import time

import pytest
import requests
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from emulators.dev import LocalStack
from shared.destinations.webhook import verify_signature
from tests.e2e.helpers import SECRET, Tenant, wait_until
from tests.webhook_receiver import webhook_receiver

pytestmark = pytest.mark.e2e


def track(i: int, prefix: str) -> dict[str, object]:
    return {
        "event": "Order Completed",
        "userId": f"u{i}",
        "messageId": f"{prefix}-{i}",
        "properties": {"order": i},
    }


def test_every_event_is_delivered_once_and_signed(tenant: Tenant, local_stack: LocalStack) -> None:
    with webhook_receiver() as receiver:
        tenant.rule(tenant.webhook(receiver.url))
        for i in range(5):
            assert tenant.send("track", track(i, "once")).status_code == 200
        batch = {"batch": [{"type": "track", **track(i, "once")} for i in range(5, 20)]}
        response = tenant.send("batch", batch)
        assert response.status_code == 200 and response.json()["accepted"] == 15

        received = receiver.wait_for(20)
        time.sleep(2)  # anything extra would arrive by now
        received = receiver.delivered()

    ids = sorted(r.event["messageId"] for r in received)
    assert ids == sorted(f"once-{i}" for i in range(20)), "each event exactly once"
    for request in received:
        assert verify_signature(
            SECRET,
            request.headers["X-Streams-Timestamp"],
            request.body,
            request.headers["X-Streams-Signature"],
        )
        assert request.headers["Idempotency-Key"] == request.event["messageId"]
    stages = [s["stage"] for s in tenant.trace("once-3", until="delivered")["stages"]]
    assert stages[:3] == ["received", "stored", "routed"] and stages[-1] == "delivered"


def test_events_are_stored_in_bigquery(tenant: Tenant, local_stack: LocalStack) -> None:
    assert (
        tenant.send(
            "page",
            {
                "userId": "u1",
                "name": "Pricing",
                "messageId": "bq-1",
                "properties": {"url": "https://example.com"},
            },
        ).status_code
        == 200
    )
    tenant.trace("bq-1")
    assert local_stack.emulators is not None
    client = bigquery.Client(
        project=local_stack.emulators.project_id,
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=local_stack.emulators.bigquery_url),
    )
    rows = list(
        client.query(
            "SELECT event_type, event_name, JSON_VALUE(properties, '$.url') AS url "
            "FROM streams.events WHERE workspace_id = @w AND message_id = 'bq-1'",
            job_config=bigquery.QueryJobConfig(
                query_parameters=[bigquery.ScalarQueryParameter("w", "STRING", tenant.workspace_id)]
            ),
        ).result()
    )
    assert [dict(r) for r in rows] == [
        {"event_type": "page", "event_name": "Pricing", "url": "https://example.com"}
    ]


def test_a_duplicate_message_id_is_delivered_once(tenant: Tenant) -> None:
    with webhook_receiver() as receiver:
        tenant.rule(tenant.webhook(receiver.url))
        for _ in range(3):
            assert tenant.send("track", track(1, "dup")).status_code == 200
        receiver.wait_for(1)
        wait_until(lambda: "duplicate" in {s["stage"] for s in tenant.trace("dup-1")["stages"]})
        time.sleep(2)
        assert [r.event["messageId"] for r in receiver.delivered()] == ["dup-1"]
    trace = tenant.trace("dup-1")
    [duplicate] = [s for s in trace["stages"] if s["stage"] == "duplicate"]
    assert duplicate["reason"].startswith("2 duplicate")


def test_a_recovering_destination_gets_everything_once(tenant: Tenant) -> None:
    with webhook_receiver(failures_left=4, fail_status=503) as receiver:
        tenant.rule(tenant.webhook(receiver.url))
        for i in range(3):
            assert tenant.send("track", track(i, "recover")).status_code == 200
        received = receiver.wait_for(3, timeout=30)
        time.sleep(2)
        received = receiver.delivered()
    assert sorted(r.event["messageId"] for r in received) == [f"recover-{i}" for i in range(3)]
    retried = [tenant.trace(f"recover-{i}", until="delivered") for i in range(3)]
    assert any(s["stage"] == "retried" for t in retried for s in t["stages"])


def test_dead_letters_then_replay_delivers_each_once(tenant: Tenant) -> None:
    with webhook_receiver(status=500) as receiver:
        destination_id = tenant.webhook(receiver.url)
        tenant.rule(destination_id)
        for i in range(3):
            assert tenant.send("track", track(i, "dlq")).status_code == 200

        def dead_letters() -> list[dict[str, object]]:
            letters = tenant.api("GET", "/dead-letters", params={"destination_id": destination_id})
            return list(letters.json()) if len(letters.json()) == 3 else []

        letters = wait_until(dead_letters, timeout=90)
        assert len(letters) == 3
        assert {letter["reason_code"] for letter in letters} == {"retries_exhausted"}
        assert all(letter["attempts"] == 3 for letter in letters)
        assert receiver.delivered() == []

        receiver.status = 200
        dry = tenant.api(
            "POST", "/dead-letters/replay", json={"destination_id": destination_id, "dry_run": True}
        ).json()
        assert (dry["dry_run"], dry["matched"], len(dry["replayed"])) == (True, 3, 3)
        time.sleep(1)
        assert receiver.delivered() == [], "a dry run sends nothing"

        replay = tenant.api("POST", "/dead-letters/replay", json={"destination_id": destination_id})
        assert replay.status_code == 200 and len(replay.json()["replayed"]) == 3
        receiver.wait_for(3)
        again = tenant.api("POST", "/dead-letters/replay", json={"destination_id": destination_id})
        assert again.json()["replayed"] == []
        time.sleep(2)
        received = receiver.delivered()
    assert sorted(r.event["messageId"] for r in received) == [f"dlq-{i}" for i in range(3)]
    stages = [s["stage"] for s in tenant.trace("dlq-0", until="delivered")["stages"]]
    assert "dead_lettered" in stages and "replayed" in stages and stages[-1] == "delivered"


def test_unmatched_events_and_disabled_rules_deliver_nothing(tenant: Tenant) -> None:
    with webhook_receiver() as receiver:
        destination_id = tenant.webhook(receiver.url)
        tenant.rule(destination_id, event_types=["track"], event_names=["Checkout"])
        tenant.rule(destination_id, enabled=False)
        assert tenant.send("identify", {"userId": "u", "messageId": "quiet-1"}).status_code == 200
        assert tenant.send("track", track(2, "quiet")).status_code == 200
        for message_id in ("quiet-1", "quiet-2"):
            routed = [s for s in tenant.trace(message_id)["stages"] if s["stage"] == "routed"]
            assert routed[0]["reason"] == "no matching enabled rule"
        time.sleep(2)
        assert receiver.delivered() == []


@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/computeMetadata/v1/", "http://metadata.google.internal/"]
)
def test_metadata_webhooks_are_refused(tenant: Tenant, url: str) -> None:
    response = tenant.api(
        "POST",
        "/destinations",
        json={
            "name": "evil",
            "type": "webhook",
            "config": {"url": url, "secret": SECRET},
        },
    )
    assert response.status_code == 400
    assert response.json()["field"] == "config.url"


def test_gateway_routes_every_function(tenant: Tenant, local_stack: LocalStack) -> None:
    health = requests.get(f"{local_stack.gateway_url}/healthz", timeout=10).json()
    assert health["status"] == "ok" and all(health["checks"].values())
    assert tenant.api("GET", "/destinations").status_code == 200
    assert tenant.api("GET", "/event-forwarding-rules").status_code == 200
    assert tenant.api("GET", "/dead-letters").status_code == 200


def test_a_slow_destination_does_not_delay_another(tenant: Tenant) -> None:
    with webhook_receiver(delay_seconds=4) as slow, webhook_receiver() as fast:
        tenant.rule(tenant.webhook(slow.url, timeout_seconds=10))
        tenant.rule(tenant.webhook(fast.url))
        started = time.monotonic()
        for i in range(4):
            assert tenant.send("track", track(i, "iso")).status_code == 200
        fast_received = fast.wait_for(4, timeout=20)
        fast_done = time.monotonic() - started
        slow_received = slow.wait_for(4, timeout=40)
    assert len(fast_received) == 4 and len(slow_received) == 4
    assert fast_done < 4, f"the fast destination waited for the slow one ({fast_done:.1f} s)"
