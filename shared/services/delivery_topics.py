"""Per-destination delivery topics: created with the destination, pushed to `deliver`."""

from __future__ import annotations

from shared.domain.routing import (
    Destination,
    deliver_subscription_id,
    delivery_topic_id,
    destinations_collection,
)
from shared.ports import ConfigStore, PushPolicy, TopicAdmin


class DeliveryTopics:
    """Where each destination's deliveries go. A topic and subscription per destination is what
    keeps one slow or failing destination from delaying any other: each subscription has its
    own push concurrency, backoff and dead-letter policy."""

    def __init__(self, topics: TopicAdmin, deliver_push: PushPolicy | None):
        self._topics = topics
        self._deliver_push = deliver_push

    def topic(self, destination_id: str) -> str:
        return self._topics.topic_path(delivery_topic_id(destination_id))

    def wire(self, destination_id: str) -> str:
        """Create the destination's topic and its push subscription to `deliver` (idempotent)."""
        topic = self._topics.ensure_topic(delivery_topic_id(destination_id))
        if self._deliver_push is not None:
            self._topics.ensure_push_subscription(
                topic, deliver_subscription_id(destination_id), self._deliver_push
            )
        return topic

    def unwire(self, destination_id: str) -> None:
        """Delete a deleted destination's topic and retire its subscription (idempotent): the
        deliveries it still holds are pushed to `deliver`, which dead-letters them."""
        self._topics.delete_topic(self.topic(destination_id))
        self._topics.retire_subscription(deliver_subscription_id(destination_id))

    def wire_all(self, store: ConfigStore) -> int:
        """Wire every destination of every workspace (local restarts, migrations)."""
        count = 0
        for workspace in store.list_documents("workspaces"):
            for document in store.list_documents(destinations_collection(workspace["id"])):
                self.wire(Destination.model_validate(document).id)
                count += 1
        return count
