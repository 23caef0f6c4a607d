"""No tenant reaches Streams' own topics: the attack that once let workspace B forge workspace
C's dead letters, and deliver B's event to C's webhook with C's credentials, run against the
local stack and refused at each step (docs/RELIABILITY.md, "Security findings")."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from google.cloud import pubsub_v1

from emulators.dev import LocalStack
from shared.bootstrap import Services
from shared.config import Settings
from shared.domain import ids
from shared.domain.pipeline import DeliveryMessage, encode_deliveries
from shared.domain.routing import delivery_topic_id, destination_path
from shared.ports import Write
from tests.e2e.helpers import Tenant
from tests.webhook_receiver import webhook_receiver

pytestmark = pytest.mark.e2e


def other_tenant(gateway: str, name: str) -> Tenant:
    services = Services(Settings.from_env())
    workspace = services.workspaces.create(name)
    token, record = services.workspaces.create_token(workspace.id, name)
    source = services.sources.create(workspace.id, name, created_by=record.id)
    return Tenant(gateway, workspace.id, token, source.key, source.id, services)


def forged_delivery(victim: Tenant, destination_id: str, rule_id: str) -> DeliveryMessage:
    """What workspace B wrote into its event: a delivery naming C's workspace, destination and
    rule, carrying B's payload."""
    return DeliveryMessage(
        delivery_id=f"forged-{uuid.uuid4().hex[:8]}-{rule_id}",
        workspace_id=victim.workspace_id,
        message_id="forged-1",
        rule_id=rule_id,
        destination_id=destination_id,
        transformation_id=None,
        event={"type": "track", "event": "Forged", "messageId": "forged-1", "userId": "b"},
    )


def test_a_tenant_cannot_publish_into_streams_own_topics(
    tenant: Tenant, local_stack: LocalStack
) -> None:
    attacker = tenant
    victim = other_tenant(attacker.gateway, "victim")
    project = local_stack.emulators.project_id if local_stack.emulators else "streams-local"
    settings = attacker.services.settings

    with webhook_receiver() as receiver:
        victim_destination = victim.webhook(receiver.url)
        victim_rule = victim.rule(victim_destination)["id"]
        internal = [
            f"projects/{project}/topics/{settings.dead_letters_topic}",
            f"projects/{project}/topics/{delivery_topic_id(victim_destination)}",
            f"projects/{project}/topics/streams-source-{victim.source_id}",
        ]

        # 1. The API refuses a pubsub destination on any of Streams' own topics.
        for topic in internal:
            response = attacker.api(
                "POST",
                "/destinations",
                json={"name": "exfil", "type": "pubsub", "config": {"topic": topic}},
            )
            assert response.status_code == 400, response.text
            assert response.json()["field"] == "config.topic"

        # 2. A config stored before the check existed is refused at send: B's event is
        # dead-lettered in B's own workspace, and nothing is published for it.
        destination = attacker.webhook("http://127.0.0.1:9/unused")
        path = destination_path(attacker.workspace_id, destination)
        stored = attacker.services.store.get(path)
        assert stored is not None
        stored.update(type="pubsub", config={"topic": internal[0]})
        attacker.services.store.commit([Write("set", path, stored)])
        attacker.rule(destination)
        sent = attacker.send("track", {"event": "Exfil", "userId": "b", "messageId": "x-1"})
        assert sent.status_code == 200
        trace = attacker.trace("x-1", until="dead_lettered")
        letter = [s for s in trace["stages"] if s["stage"] == "dead_lettered"][-1]
        assert "Streams' own topics" in json.dumps(letter)

        # 3. Whoever still manages to publish to an internal topic cannot be believed: a forged
        # dead letter and a forged delivery, exactly as deliver and process would write them
        # but unsigned, are dropped by dead_letters and deliver.
        delivery = forged_delivery(victim, victim_destination, victim_rule)
        envelope = {
            "delivery": json.loads(delivery.to_json()),
            "reason_code": "http_error",
            "reason": "forged",
            "attempts": 1,
            "last_http_status": 500,
            "destination_type": "webhook",
            "dead_lettered_at": ids.isoformat(ids.utcnow()),
        }
        publisher = pubsub_v1.PublisherClient()
        publisher.publish(internal[0], json.dumps(envelope).encode()).result(timeout=30)
        [(_, data, attributes)] = encode_deliveries([delivery])
        publisher.publish(internal[1], data, **attributes).result(timeout=30)
        # A genuine event of the victim's, sent after the forgeries, is delivered: by the time
        # it arrives the forged messages have been pushed too.
        sent = victim.send("track", {"event": "Real", "userId": "c", "messageId": "real-1"})
        assert sent.status_code == 200
        receiver.wait_for(1)
        time.sleep(3)  # a forged delivery, had deliver believed it, would have arrived by now
        delivered = [r.event["messageId"] for r in receiver.delivered()]

    assert delivered == ["real-1"]
    assert victim.api("GET", "/dead-letters").json() == []
