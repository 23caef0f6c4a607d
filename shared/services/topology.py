"""The pipeline's Pub/Sub topology: what Terraform creates in production, created here for the
local stack and the tests from the same settings."""

from __future__ import annotations

from dataclasses import dataclass

from shared.config import Settings
from shared.ports import PushPolicy, TopicAdmin
from shared.services.sources import EventSources

DELIVER_SUBSCRIPTION = "streams-deliver"
DEAD_LETTERS_SUBSCRIPTION = "streams-dead-letters-record"
# Pub/Sub's own dead-lettering catches only deliveries that crash `deliver` itself: deliver
# dead-letters a delivery after `delivery_max_attempts`, so Pub/Sub's limit sits above it.
PUBSUB_ATTEMPTS_MARGIN = 2


@dataclass(frozen=True)
class Endpoints:
    """Where Pub/Sub pushes to the event-triggered functions."""

    deliver: str
    dead_letters: str


@dataclass(frozen=True)
class Backoff:
    """Redelivery backoff of the deliveries subscription (the retry schedule of deliveries)."""

    min_seconds: float = 10.0
    max_seconds: float = 600.0


def ensure_pipeline(
    settings: Settings,
    topics: TopicAdmin,
    sources: EventSources,
    endpoints: Endpoints,
    backoff: Backoff,
) -> None:
    """Create the deliveries and dead-letter topics, their push subscriptions, and subscribe
    `process` to every existing source topic. Idempotent."""
    deliveries = topics.ensure_topic(settings.deliveries_topic)
    dead_letters = topics.ensure_topic(settings.dead_letters_topic)
    topics.ensure_push_subscription(
        deliveries,
        DELIVER_SUBSCRIPTION,
        PushPolicy(
            endpoint=endpoints.deliver,
            min_backoff_seconds=backoff.min_seconds,
            max_backoff_seconds=backoff.max_seconds,
            dead_letter_topic=dead_letters,
            max_delivery_attempts=min(
                100, max(5, settings.delivery_max_attempts + PUBSUB_ATTEMPTS_MARGIN)
            ),
            service_account=settings.push_service_account,
        ),
    )
    topics.ensure_push_subscription(
        dead_letters,
        DEAD_LETTERS_SUBSCRIPTION,
        PushPolicy(endpoint=endpoints.dead_letters, service_account=settings.push_service_account),
    )
    sources.wire_all()
