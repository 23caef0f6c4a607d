"""Pub/Sub adapters for the `TopicAdmin` and `Publisher` ports."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import suppress
from datetime import timedelta
from typing import Any

import google.auth
import grpc
from google.api_core import exceptions as gexc
from google.api_core.gapic_v1.routing_header import to_grpc_metadata
from google.auth import impersonated_credentials
from google.cloud import pubsub_v1
from google.pubsub_v1 import types as gapic_types

from shared.adapters import operation_counts
from shared.adapters.errors import CALL_TIMEOUT_SECONDS, RETRY, transient_as_unavailable
from shared.adapters.group_commit import GroupCommit, QueueFull
from shared.domain.errors import Unavailable
from shared.ports import PushPolicy, SubscriptionState

# Pub/Sub's limits on one Publish RPC are 1,000 messages and 10 MB (10^7 bytes) of request;
# the byte budget leaves room for the request's framing and per-message overhead.
MAX_RPC_MESSAGES = 1000
# A deleted source's subscription expires this long after its last push: Pub/Sub's minimum.
RETIRED_SUBSCRIPTION_TTL = timedelta(days=1)
MAX_RPC_BYTES = 9_000_000
MESSAGE_OVERHEAD_BYTES = 8
# Past these, publishing fails at once and ingest answers 503: overload is pushed back to
# clients instead of growing memory without bound.
MAX_PENDING_MESSAGES = 20_000
MAX_PENDING_BYTES = 64 * 1024 * 1024
# The errors Google's own publisher retries; a retried publish may duplicate a message, which
# the pipeline tolerates (process deduplicates by messageId), while losing one it must not.
RETRYABLE = (
    gexc.Aborted,
    gexc.Cancelled,
    gexc.DeadlineExceeded,
    gexc.InternalServerError,
    gexc.ResourceExhausted,
    gexc.ServiceUnavailable,
    gexc.Unknown,
)
RETRY_INITIAL_SECONDS = 0.05
RETRY_MAX_SECONDS = 1.0
# Per attempt: a hung connection is abandoned and retried within the caller's deadline.
ATTEMPT_TIMEOUT_SECONDS = 5.0

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"

_PubsubMessage = gapic_types.PubsubMessage.pb()
_PublishRequest = gapic_types.PublishRequest.pb()
_PublishResponse = gapic_types.PublishResponse.pb()
# The size of the Publish request the calling thread serialised last (gRPC serialises in the
# caller's thread): what Pub/Sub bills, known without a second pass over the messages
# (`ByteSize()` walks them again and costs more than serialising them).
_serialised = threading.local()


def _serialise(request: Any) -> bytes:
    data: bytes = request.SerializeToString()
    _serialised.size = len(data)
    return data


def new_publisher_client() -> pubsub_v1.PublisherClient:
    """The Pub/Sub client (topics, and the channel publishing uses); one per process, reused."""
    return pubsub_v1.PublisherClient()


def new_impersonating_publisher_client(service_account: str) -> pubsub_v1.PublisherClient:
    """A Pub/Sub client that acts as `service_account` (the function's own identity needs
    roles/iam.serviceAccountTokenCreator on it): deliver publishes to customers' topics as an
    identity that holds no role on Streams' own topics."""
    source, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    credentials = impersonated_credentials.Credentials(
        source_credentials=source,
        target_principal=service_account,
        target_scopes=[CLOUD_PLATFORM_SCOPE],
    )
    return pubsub_v1.PublisherClient(credentials=credentials)


def new_subscriber_client() -> pubsub_v1.SubscriberClient:
    """The Pub/Sub client for subscriptions (`PubSubTopicAdmin` creates and retires them)."""
    return pubsub_v1.SubscriberClient()


# The most delivery attempts a dead-letter policy allows.
MAX_DELIVERY_ATTEMPTS = 100
PUBLISHER_ROLE = "roles/pubsub.publisher"
# A topic's policy changed by someone else between our read and write is read again (etag).
POLICY_ATTEMPTS = 3


def add_members(policy: Any, role: str, members: Sequence[str]) -> bool:
    """Add `members` to `policy`'s unconditional binding of `role` (creating it); True when the
    policy changed. Other bindings, and members already there, are left as they are."""
    binding = next(
        (b for b in policy.bindings if b.role == role and not b.condition.expression), None
    )
    if binding is None:
        binding = policy.bindings.add(role=role)
    missing = [member for member in members if member not in binding.members]
    binding.members.extend(missing)
    return bool(missing)


class PubSubTopicAdmin:
    """Creates topics and push subscriptions in one project.

    `publishers` maps a topic id prefix to the IAM members that publish to such topics: each is
    granted roles/pubsub.publisher on the topic itself when the topic is ensured, so no function
    needs publishing rights on the whole project. The emulator has no IAM (it answers 501), so
    nothing is granted there.
    """

    def __init__(
        self,
        client: pubsub_v1.PublisherClient,
        subscriber: pubsub_v1.SubscriberClient,
        project_id: str,
        emulator: bool = False,
        publishers: Mapping[str, Sequence[str]] | None = None,
    ):
        self._client = client
        self._subscriber = subscriber
        self._project_id = project_id
        self._emulator = emulator
        self._publishers = dict(publishers or {})

    def topic_path(self, topic_id: str) -> str:
        return self._client.topic_path(self._project_id, topic_id)

    def ensure_topic(self, topic_id: str) -> str:
        path = self.topic_path(topic_id)
        with transient_as_unavailable("Pub/Sub"), suppress(gexc.AlreadyExists):
            self._client.create_topic(
                request={"name": path}, retry=RETRY, timeout=CALL_TIMEOUT_SECONDS
            )
        members = [
            member
            for prefix, granted in self._publishers.items()
            if topic_id.startswith(prefix)
            for member in granted
        ]
        if members and not self._emulator:
            self._grant(path, PUBLISHER_ROLE, members)
        return path

    def _grant(self, topic: str, role: str, members: Sequence[str]) -> None:
        """Read-modify-write of the topic's policy; the etag makes a concurrent change fail, and
        the policy is read again (a source created twice at once grants the same members)."""
        for attempt in range(POLICY_ATTEMPTS):
            with transient_as_unavailable("Pub/Sub"):
                policy = self._client.get_iam_policy(
                    request={"resource": topic}, retry=RETRY, timeout=CALL_TIMEOUT_SECONDS
                )
                if not add_members(policy, role, members):
                    return
                try:
                    self._client.set_iam_policy(
                        request={"resource": topic, "policy": policy},
                        timeout=CALL_TIMEOUT_SECONDS,
                    )
                    return
                except (gexc.Aborted, gexc.FailedPrecondition):
                    if attempt == POLICY_ATTEMPTS - 1:
                        raise

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
        }
        if not self._emulator:
            # The emulator stops pushing a message for good once it has failed for a while
            # under a retry policy (measured, docs/RELIABILITY.md): there, failed pushes are retried
            # about once a second instead, and Streams' own attempt limits still apply.
            request["retry_policy"] = {
                "minimum_backoff": timedelta(seconds=policy.min_backoff_seconds),
                "maximum_backoff": timedelta(seconds=policy.max_backoff_seconds),
            }
        if policy.dead_letter_topic:
            attempts = policy.max_delivery_attempts or 5
            request["dead_letter_policy"] = {
                "dead_letter_topic": policy.dead_letter_topic,
                # Retried every second there, the attempts would span seconds, not minutes.
                "max_delivery_attempts": MAX_DELIVERY_ATTEMPTS if self._emulator else attempts,
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
                if "dead_letter_policy" in request:
                    # Subscriptions made before they had one (source subscriptions did not)
                    # get the dead-letter policy too: no message is retried forever.
                    self._subscriber.update_subscription(
                        request={
                            "subscription": {
                                "name": path,
                                "dead_letter_policy": request["dead_letter_policy"],
                            },
                            "update_mask": {"paths": ["dead_letter_policy"]},
                        },
                        retry=RETRY,
                        timeout=CALL_TIMEOUT_SECONDS,
                    )
        return path

    def delete_topic(self, topic: str) -> None:
        with transient_as_unavailable("Pub/Sub"), suppress(gexc.NotFound):
            self._client.delete_topic(
                request={"topic": topic}, retry=RETRY, timeout=CALL_TIMEOUT_SECONDS
            )

    def retire_subscription(self, subscription_id: str) -> None:
        # Deleting it now would drop the events ingest accepted that `process` has not yet
        # taken; Pub/Sub's own expiry deletes it a day after its last push instead.
        path = f"projects/{self._project_id}/subscriptions/{subscription_id}"
        subscription = {"name": path, "expiration_policy": {"ttl": RETIRED_SUBSCRIPTION_TTL}}
        with transient_as_unavailable("Pub/Sub"), suppress(gexc.NotFound):
            if self._emulator:
                # The emulator refuses to change an expiration policy (and never expires
                # anything): a local stack deletes the subscription at once.
                self._subscriber.delete_subscription(
                    request={"subscription": path}, retry=RETRY, timeout=CALL_TIMEOUT_SECONDS
                )
                return
            self._subscriber.update_subscription(
                request={
                    "subscription": subscription,
                    "update_mask": {"paths": ["expiration_policy"]},
                },
                retry=RETRY,
                timeout=CALL_TIMEOUT_SECONDS,
            )

    def topic_ids(self, prefix: str) -> set[str]:
        # Pub/Sub filters by nothing but project: the prefix is applied here, page by page.
        with transient_as_unavailable("Pub/Sub"):
            topics = self._client.list_topics(
                request={"project": f"projects/{self._project_id}"},
                retry=RETRY,
                timeout=CALL_TIMEOUT_SECONDS,
            )
            ids = (_resource_id(topic.name) for topic in topics)
            return {topic_id for topic_id in ids if topic_id.startswith(prefix)}

    def subscription_states(self, prefix: str) -> dict[str, SubscriptionState]:
        with transient_as_unavailable("Pub/Sub"):
            listed = self._subscriber.list_subscriptions(
                request={"project": f"projects/{self._project_id}"},
                retry=RETRY,
                timeout=CALL_TIMEOUT_SECONDS,
            )
            return {
                _resource_id(subscription.name): SubscriptionState(
                    topic=subscription.topic,
                    push_endpoint=subscription.push_config.push_endpoint or None,
                )
                for subscription in listed
                if _resource_id(subscription.name).startswith(prefix)
            }


def _resource_id(name: str) -> str:
    """The last segment of a resource name (projects/p/topics/<id>)."""
    return name.rsplit("/", 1)[-1]


class PubSubPublisher:
    """Publishes messages and waits until Pub/Sub has acknowledged all of them.

    Concurrent callers share Publish RPCs (`GroupCommit`, see docs/INGEST.md): messages are
    raw protobufs sent with the client's low-level Publish call, so no per-message future,
    batch object or commit thread exists.
    """

    def __init__(self, client: pubsub_v1.PublisherClient):
        # The raw Publish stub on the client's own channel (authenticated, pointed at the
        # emulator when PUBSUB_EMULATOR_HOST is set): GAPIC's per-call layers (proto-plus
        # wrapping, retry and timeout wrappers, a logging interceptor) cost ~75 us per RPC.
        self._rpc = client.transport.grpc_channel.unary_unary(
            "/google.pubsub.v1.Publisher/Publish",
            request_serializer=_serialise,
            response_deserializer=_PublishResponse.FromString,
        )
        self._metadata: dict[str, tuple[tuple[str, str], ...]] = {}
        self._queue: GroupCommit[Any] = GroupCommit(
            self._send,
            _message_size,
            lambda exc: isinstance(exc, gexc.InvalidArgument),
            max_rpc_messages=MAX_RPC_MESSAGES,
            max_rpc_bytes=MAX_RPC_BYTES,
            max_pending_messages=MAX_PENDING_MESSAGES,
            max_pending_bytes=MAX_PENDING_BYTES,
        )

    def publish(self, topic: str, messages: Iterable[tuple[bytes, Mapping[str, str]]]) -> list[str]:
        protos = [_PubsubMessage(data=data, attributes=attrs) for data, attrs in messages]
        with transient_as_unavailable("Pub/Sub"):
            try:
                return self._queue.publish(topic, protos, CALL_TIMEOUT_SECONDS)
            except QueueFull as exc:
                raise Unavailable("ingest is overloaded, retry later", retry_after=1) from exc
            except gexc.NotFound as exc:
                raise Unavailable(f"topic {topic} does not exist") from exc
            except RETRYABLE as exc:  # still failing when the retries ran out
                reason = type(exc).__name__
                raise Unavailable(f"Pub/Sub is unavailable, retry later ({reason})") from exc

    def _send(self, topic: str, messages: list[Any]) -> Sequence[str]:
        """One Publish RPC, retried on transient errors within CALL_TIMEOUT_SECONDS."""
        request = _PublishRequest(topic=topic, messages=messages)
        metadata = self._metadata.get(topic)
        if metadata is None:
            # Production routes a Publish by its topic (the header GAPIC adds to every call).
            metadata = self._metadata[topic] = (to_grpc_metadata((("topic", topic),)),)
        deadline = time.monotonic() + CALL_TIMEOUT_SECONDS
        delay = RETRY_INITIAL_SECONDS
        while True:
            timeout = min(ATTEMPT_TIMEOUT_SECONDS, deadline - time.monotonic())
            try:
                response = self._rpc(request, timeout=timeout, metadata=metadata)
                # Counted once acknowledged: Pub/Sub bills a publish request's bytes.
                operation_counts.pubsub_published(len(messages), getattr(_serialised, "size", 0))
                return response.message_ids
            except grpc.RpcError as exc:
                error = gexc.from_grpc_error(exc)
                if not isinstance(error, RETRYABLE) or time.monotonic() + delay >= deadline:
                    raise error from exc
            time.sleep(delay * random.uniform(0.5, 1.0))  # jitter: instances retry apart
            delay = min(delay * 2, RETRY_MAX_SECONDS)


def _message_size(message: Any) -> int:
    # The serialised size (computed in C), plus the field's framing within the request.
    return int(message.ByteSize()) + MESSAGE_OVERHEAD_BYTES
