"""Source subscriptions dead-letter on the real Pub/Sub emulator: made with the policy, given it
when re-wired if made before it existed, and forwarded with the attributes `dead_letters` reads."""

from __future__ import annotations

import json
import uuid

import pytest
from google.cloud import pubsub_v1

from emulators.stack import EmulatorStack
from shared.bootstrap import Services
from shared.config import Settings
from shared.ports import PushPolicy
from shared.services.dead_letters import (
    PUBSUB_DEAD_LETTER_COUNT,
    PUBSUB_DEAD_LETTER_SUBSCRIPTION,
)

pytestmark = pytest.mark.integration


def test_a_subscription_made_without_a_dead_letter_policy_gets_one_when_rewired(
    emulator_stack: EmulatorStack,
) -> None:
    services = Services(Settings.from_env())
    topic = services.topics.ensure_topic(f"dl-src-{uuid.uuid4().hex[:8]}")
    dead_letters = services.topics.ensure_topic(f"dl-dead-{uuid.uuid4().hex[:8]}")
    name = f"streams-process-{uuid.uuid4().hex[:8]}"
    services.topics.ensure_push_subscription(topic, name, PushPolicy("http://127.0.0.1:9/"))

    path = services.topics.ensure_push_subscription(
        topic, name, PushPolicy("http://127.0.0.1:9/", dead_letter_topic=dead_letters)
    )

    subscription = pubsub_v1.SubscriberClient().get_subscription(subscription=path)
    assert subscription.dead_letter_policy.dead_letter_topic == dead_letters
    assert subscription.dead_letter_policy.max_delivery_attempts == 100


def test_pubsub_forwards_a_source_message_with_the_attributes_dead_letters_reads(
    emulator_stack: EmulatorStack,
) -> None:
    services = Services(Settings.from_env())
    subscriber = pubsub_v1.SubscriberClient()
    topic = services.topics.ensure_topic(f"dl-src-{uuid.uuid4().hex[:8]}")
    dead_letters = services.topics.ensure_topic(f"dl-dead-{uuid.uuid4().hex[:8]}")
    source = f"streams-process-{uuid.uuid4().hex[:8]}"
    project = topic.split("/")[1]
    source_path = f"projects/{project}/subscriptions/{source}"
    subscriber.create_subscription(
        request={
            "name": source_path,
            "topic": topic,
            "dead_letter_policy": {"dead_letter_topic": dead_letters, "max_delivery_attempts": 5},
        }
    )
    pulled = f"projects/{project}/subscriptions/dl-pull-{uuid.uuid4().hex[:8]}"
    subscriber.create_subscription(request={"name": pulled, "topic": dead_letters})
    services.publisher.publish(topic, [(json.dumps([{"a": 1}]).encode(), {"source_id": "s"})])

    for _ in range(20):  # nack until Pub/Sub gives up after 5 attempts
        response = subscriber.pull(subscription=source_path, max_messages=1, timeout=5)
        if not response.received_messages:
            break
        ack_ids = [m.ack_id for m in response.received_messages]
        subscriber.modify_ack_deadline(
            subscription=source_path, ack_ids=ack_ids, ack_deadline_seconds=0
        )
    forwarded = subscriber.pull(subscription=pulled, max_messages=1, timeout=10)

    [message] = forwarded.received_messages
    attributes = dict(message.message.attributes)
    assert attributes[PUBSUB_DEAD_LETTER_SUBSCRIPTION] == source  # the short name
    assert attributes[PUBSUB_DEAD_LETTER_COUNT] == "5"
    assert attributes["source_id"] == "s"
