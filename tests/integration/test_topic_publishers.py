"""Per-topic publisher grants (issue 17 item 5) on the real Pub/Sub emulator.

The emulator has no IAM: it answers 501 to GetIamPolicy. So the adapter grants nothing when it
knows it talks to the emulator, and these tests use that answer to see which topics the
production path would grant on: a source or deliveries topic reaches the IAM call, the
dead-letter topic and any topic of no configured prefix never do.
"""

from __future__ import annotations

import uuid

import pytest
from google.api_core import exceptions as gexc

from emulators.stack import EmulatorStack
from shared.adapters.pubsub import PubSubTopicAdmin, new_publisher_client, new_subscriber_client
from shared.domain.routing import delivery_topic_id
from shared.domain.sources import source_topic_id

pytestmark = pytest.mark.integration

SOURCE_PUBLISHERS = ("serviceAccount:streams-ingest@p.iam.gserviceaccount.com",)
DELIVERY_PUBLISHERS = ("serviceAccount:streams-process@p.iam.gserviceaccount.com",)


def admin(emulator_stack: EmulatorStack, emulator: bool) -> PubSubTopicAdmin:
    return PubSubTopicAdmin(
        new_publisher_client(),
        new_subscriber_client(),
        f"grants-{uuid.uuid4().hex[:8]}",
        emulator=emulator,
        publishers={
            source_topic_id(""): SOURCE_PUBLISHERS,
            delivery_topic_id(""): DELIVERY_PUBLISHERS,
        },
    )


def test_source_and_deliveries_topics_are_granted_on_as_they_are_ensured(
    emulator_stack: EmulatorStack,
) -> None:
    topics = admin(emulator_stack, emulator=False)
    for topic_id in (source_topic_id("s1"), delivery_topic_id("d1")):
        # The topic is created first; the grant that follows is what the emulator refuses.
        with pytest.raises(gexc.MethodNotImplemented):
            topics.ensure_topic(topic_id)
        assert topic_id in topics.topic_ids("streams-")


def test_other_topics_get_no_grant(emulator_stack: EmulatorStack) -> None:
    topics = admin(emulator_stack, emulator=False)
    path = topics.ensure_topic("streams-dead-letters")
    assert path.endswith("/topics/streams-dead-letters")


def test_nothing_is_granted_on_the_emulator(emulator_stack: EmulatorStack) -> None:
    topics = admin(emulator_stack, emulator=True)
    path = topics.ensure_topic(source_topic_id("s2"))
    assert path.endswith(source_topic_id("s2"))
