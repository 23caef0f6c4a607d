"""Pub/Sub adapters for the `TopicAdmin` and `Publisher` ports."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent import futures
from contextlib import suppress
from datetime import timedelta
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1  # type: ignore[attr-defined]
from google.cloud.pubsub_v1.types import (
    BatchSettings,
    LimitExceededBehavior,
    PublisherOptions,
    PublishFlowControl,
)

from shared.adapters.errors import CALL_TIMEOUT_SECONDS, RETRY, transient_as_unavailable
from shared.domain.errors import Unavailable
from shared.ports import PushPolicy

# Batching is what makes publishing fast (~10k msg/s against ~60/s one at a time); a short
# latency keeps the wait for the acknowledgement, which the HTTP answer depends on, small.
BATCH_SETTINGS = BatchSettings(max_messages=1000, max_bytes=8 * 1024 * 1024, max_latency=0.001)
# Past these, publishing fails at once and ingest answers 503: overload is pushed back to
# clients instead of growing memory without bound.
FLOW_CONTROL = PublishFlowControl(
    message_limit=20_000,
    byte_limit=64 * 1024 * 1024,
    limit_exceeded_behavior=LimitExceededBehavior.ERROR,
)


def new_publisher_client() -> pubsub_v1.PublisherClient:
    """A batching publisher client; build one per process and reuse it."""
    return pubsub_v1.PublisherClient(
        batch_settings=BATCH_SETTINGS,
        publisher_options=PublisherOptions(flow_control=FLOW_CONTROL),
    )


class PubSubTopicAdmin:
    """Creates topics and push subscriptions in one project."""

    def __init__(
        self,
        client: pubsub_v1.PublisherClient,
        subscriber: pubsub_v1.SubscriberClient,
        project_id: str,
    ):
        self._client = client
        self._subscriber = subscriber
        self._project_id = project_id

    def topic_path(self, topic_id: str) -> str:
        return self._client.topic_path(self._project_id, topic_id)

    def ensure_topic(self, topic_id: str) -> str:
        path = self.topic_path(topic_id)
        with transient_as_unavailable("Pub/Sub"), suppress(gexc.AlreadyExists):
            self._client.create_topic(
                request={"name": path}, retry=RETRY, timeout=CALL_TIMEOUT_SECONDS
            )
        return path

    def ensure_push_subscription(self, topic: str, subscription_id: str, policy: PushPolicy) -> str:
        path = f"projects/{self._project_id}/subscriptions/{subscription_id}"
        push_config: dict[str, Any] = {"push_endpoint": policy.endpoint}
        if policy.service_account:
            push_config["oidc_token"] = {"service_account_email": policy.service_account}
        request: dict[str, Any] = {
            "name": path,
            "topic": topic,
            "push_config": push_config,
            "ack_deadline_seconds": policy.ack_deadline_seconds,
            # An empty policy never expires: Pub/Sub's default deletes a subscription idle for
            # 31 days, which would silently unwire a quiet source or destination.
            "expiration_policy": {},
            "retry_policy": {
                "minimum_backoff": timedelta(seconds=policy.min_backoff_seconds),
                "maximum_backoff": timedelta(seconds=policy.max_backoff_seconds),
            },
        }
        if policy.dead_letter_topic:
            request["dead_letter_policy"] = {
                "dead_letter_topic": policy.dead_letter_topic,
                "max_delivery_attempts": policy.max_delivery_attempts or 5,
            }
        with transient_as_unavailable("Pub/Sub"):
            try:
                self._subscriber.create_subscription(
                    request=request, retry=RETRY, timeout=CALL_TIMEOUT_SECONDS
                )
            except gexc.AlreadyExists:
                # The endpoint may have moved (a new local port, a redeployed function).
                self._subscriber.modify_push_config(
                    request={"subscription": path, "push_config": push_config},
                    retry=RETRY,
                    timeout=CALL_TIMEOUT_SECONDS,
                )
        return path


class PubSubPublisher:
    """Publishes batches of messages and waits until Pub/Sub has acknowledged all of them."""

    def __init__(self, client: pubsub_v1.PublisherClient):
        self._client = client

    def publish(self, topic: str, messages: Iterable[tuple[bytes, Mapping[str, str]]]) -> list[str]:
        try:
            pending = [self._client.publish(topic, data, **attrs) for data, attrs in messages]
        except pubsub_v1.publisher.exceptions.FlowControlLimitError as exc:
            raise Unavailable("ingest is overloaded, retry later", retry_after=1) from exc
        with transient_as_unavailable("Pub/Sub"):
            _, not_done = futures.wait(pending, timeout=CALL_TIMEOUT_SECONDS)
            if not_done:
                raise TimeoutError(f"{len(not_done)} publishes unacknowledged")
            try:
                return [future.result() for future in pending]
            except gexc.NotFound as exc:
                raise Unavailable(f"topic {topic} does not exist") from exc
