"""The pipeline's Pub/Sub topology: what Terraform creates in production, created here for the
local stack and the tests from the same settings."""

from __future__ import annotations

from shared.config import Settings
from shared.ports import ConfigStore, PushPolicy, TopicAdmin
from shared.services.delivery_topics import DeliveryTopics
from shared.services.sources import EventSources

DEAD_LETTERS_SUBSCRIPTION = "streams-dead-letters-record"


def ensure_pipeline(
    settings: Settings,
    store: ConfigStore,
    topics: TopicAdmin,
    sources: EventSources,
    delivery_topics: DeliveryTopics,
    dead_letters_endpoint: str,
) -> None:
    """Create the dead-letter topic and its subscription, and (re)wire every existing source to
    `process` and every destination to `deliver`. Idempotent."""
    dead_letters = topics.ensure_topic(settings.dead_letters_topic)
    topics.ensure_push_subscription(
        dead_letters,
        DEAD_LETTERS_SUBSCRIPTION,
        PushPolicy(endpoint=dead_letters_endpoint, service_account=settings.push_service_account),
    )
    sources.wire_all()
    delivery_topics.wire_all(store)
