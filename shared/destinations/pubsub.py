"""Pub/Sub: the canonical event as a message on a customer's topic (the caller publishes it)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, field_validator

from shared.destinations.base import DestinationConfig, OutboundMessage, expect_config, json_bytes

# projects/<project>/topics/<topic>, per the Pub/Sub resource-name rules: a project id is
# 6-30 lowercase letters, digits and hyphens (optionally "domain.com:" scoped); a topic name is
# 3-255 characters from [A-Za-z0-9-_.~+%], starts with a letter, and does not start with "goog".
TOPIC_NAME = re.compile(
    r"^projects/(?:[a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]"
    r"/topics/[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}$"
)
MAX_ATTRIBUTE_BYTES = 1024  # Pub/Sub's limit on one attribute value


class PubSubConfig(DestinationConfig):
    """The customer's topic, as a full resource name."""

    topic: str

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


class PubSubConnector:
    """Publishes every event type; attributes let subscribers filter without parsing data."""

    type = "pubsub"
    config_model = PubSubConfig

    def build(self, event: dict[str, Any], config: BaseModel, *, now: datetime) -> OutboundMessage:
        cfg = expect_config(config, PubSubConfig)
        names = ("messageId", "type", "event", "workspaceId", "sourceId")
        attributes = {
            name: _attribute(value)
            for name in names
            if isinstance(value := event.get(name), str) and value
        }
        return OutboundMessage(topic=cfg.topic, data=json_bytes(event), attributes=attributes)
