"""Pub/Sub: the canonical event as a message on a customer's topic (the caller publishes it)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel, field_validator

from shared.destinations.base import (
    About,
    DestinationConfig,
    OutboundMessage,
    PerEventConnector,
    expect_config,
    json_bytes,
)
from shared.domain.errors import InvalidRequest
from shared.domain.event import CanonicalEvent, EventKey

# projects/<project>/topics/<topic>, per the Pub/Sub resource-name rules: a project id is
# 6-30 lowercase letters, digits and hyphens (optionally "domain.com:" scoped); a topic name is
# 3-255 characters from [A-Za-z0-9-_.~+%], starts with a letter, and does not start with "goog".
TOPIC_NAME = re.compile(
    r"^projects/(?:[a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]"
    r"/topics/[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}$"
)
MAX_ATTRIBUTE_BYTES = 1024  # Pub/Sub's limit on one attribute value
# The event's keys copied to attributes (when text), for subscribers to filter on.
ATTRIBUTE_KEYS: tuple[EventKey, ...] = ("messageId", "type", "event", "workspaceId", "sourceId")
# Every topic Streams creates for itself starts with this (streams-source-<id>,
# streams-deliveries-<id>, streams-dead-letters).
INTERNAL_TOPIC_PREFIX = "streams-"


class InternalTopic(InvalidRequest):
    """A `pubsub` destination names one of Streams' own topics."""


@dataclass(frozen=True)
class TopicGuard:
    """Keeps tenants off Streams' own topics: a message published there would be read as the
    pipeline's own (another workspace's events, deliveries or dead letters)."""

    project_id: str
    # The dead-letter topic's name is a setting; it may not start with the prefix.
    internal_topics: frozenset[str] = frozenset()

    def check(self, topic: str, *, field: str = "config.topic") -> None:
        """Raise InternalTopic when `topic` is, or may become, one of Streams' own."""
        parts = topic.split("/")
        if len(parts) != 4:
            return  # not a topic name at all: the config's own validation says so
        project, name = parts[1], parts[3]
        if project.split(":")[-1] != self.project_id.split(":")[-1]:
            return
        if name.startswith(INTERNAL_TOPIC_PREFIX) or name in self.internal_topics:
            raise InternalTopic(
                f"{topic} is one of Streams' own topics: a pubsub destination must publish to "
                "a topic of yours",
                field=field,
            )


class PubSubConfig(DestinationConfig):
    """The customer's topic, as a full resource name."""

    topic: str
    TOPIC_FIELDS: ClassVar[tuple[str, ...]] = ("topic",)

    @field_validator("topic")
    @classmethod
    def _topic(cls, value: str) -> str:
        if not TOPIC_NAME.match(value):
            raise ValueError("must be a full topic name: projects/<project-id>/topics/<topic>")
        if value.split("/")[3].lower().startswith("goog"):
            raise ValueError("topic names must not start with 'goog'")
        return value


def _attribute(value: str) -> str:
    """The value cut to Pub/Sub's attribute limit on a character boundary."""
    encoded = value.encode("utf-8")
    if len(encoded) <= MAX_ATTRIBUTE_BYTES:
        return value
    return encoded[:MAX_ATTRIBUTE_BYTES].decode("utf-8", errors="ignore")


class PubSubConnector(PerEventConnector):
    """Publishes every event type; attributes let subscribers filter without parsing data."""

    type = "pubsub"
    config_model = PubSubConfig
    about = About(
        description="The canonical event as a message on a Pub/Sub topic of yours",
        docs_url="docs/DESTINATIONS.md#pubsub",
        event_types=("track", "identify", "page", "screen", "group", "alias"),
    )

    def build(self, event: CanonicalEvent, config: BaseModel, *, now: datetime) -> OutboundMessage:
        cfg = expect_config(config, PubSubConfig)
        attributes: dict[str, str] = {
            name: _attribute(value)
            for name in ATTRIBUTE_KEYS
            if isinstance(value := event.get(name), str) and value
        }
        return OutboundMessage(topic=cfg.topic, data=json_bytes(event), attributes=attributes)
