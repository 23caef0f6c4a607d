"""Reading what reached a topic, through a pull subscription made for the test."""

from __future__ import annotations

import json
import time
from typing import Any

from google.cloud import pubsub_v1

from shared.domain.message_encoding import inflated


class TopicReader:
    """A pull subscription on a topic, created before anything is published to it."""

    def __init__(self, topic: str, name: str = "test"):
        self.subscriber = pubsub_v1.SubscriberClient()
        self.subscription = topic.replace("/topics/", "/subscriptions/") + f"-{name}"
        self.subscriber.create_subscription(request={"name": self.subscription, "topic": topic})
        # Messages pulled so far (ingest merges requests that reach a topic together).
        self.messages = 0

    def events(self, expected: int, timeout: float = 20) -> list[dict[str, Any]]:
        """Every event of the messages pulled until `expected` arrived or time ran out."""
        events: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(events) < expected and time.monotonic() < deadline:
            response = self.subscriber.pull(
                request={"subscription": self.subscription, "max_messages": 100}, timeout=5
            )
            received = response.received_messages
            for message in received:
                data, attributes = inflated(message.message.data, message.message.attributes)
                carried = json.loads(data)
                assert attributes.get("event_count", str(len(carried))) == str(len(carried))
                events.extend(carried)
                self.messages += 1
            if received:
                self.subscriber.acknowledge(
                    request={
                        "subscription": self.subscription,
                        "ack_ids": [m.ack_id for m in received],
                    }
                )
        return events
