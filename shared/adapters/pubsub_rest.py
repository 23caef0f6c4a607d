"""Pub/Sub's Publish over its REST API, for ingest: the `Publisher` port without the gRPC client.

As `PubSubPublisher` (shared/adapters/pubsub.py): concurrent callers share Publish calls through
`GroupCommit`, the same errors are retried within the same deadline, and a request counts the
bytes Pub/Sub bills (the Publish request's protobuf size, computed here without protobuf), so
the operation counts do not depend on the transport.

gcloud-rest-pubsub, the maintained synchronous REST client, was measured first: it imports
requests, cryptography and PyJWT (~380 modules, 0.16-0.4 s), as much as the gRPC client it
would replace; this module adds nothing to what `shared.adapters.rest` loads.

REST is for the cold start only: under load each publish costs the Pub/Sub emulator ~5x the CPU
of a gRPC one (bench/ingest.py: 434 against 1,029 single-event requests/s on 2 cores), and JSON
and base64 cost ingest more too. `HandOverPublisher` moves to the gRPC publisher, built in the
background, once the first publish has been answered.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from shared.adapters import operation_counts
from shared.adapters.group_commit import AsyncGroupCommit, GroupCommit, QueueFull
from shared.adapters.rest import Http, RestApi, RestError, RetryPolicy, google_api
from shared.config import Settings
from shared.domain.errors import Unavailable
from shared.ports import Publisher

log = logging.getLogger("streams.ingest")

PRODUCTION_ROOT = "https://pubsub.googleapis.com/v1/"
# Pub/Sub's limits on one Publish call: 1,000 messages and 10 MB; a REST request carries the
# data in base64, so the byte budget is of the JSON sent.
MAX_RPC_MESSAGES = 1000
MAX_RPC_BYTES = 9_000_000
# A message's JSON beyond its data and attributes: `{"data":"","attributes":{}}` and commas;
# each attribute adds its quotes, colon and comma.
MESSAGE_JSON_BYTES = 32
ATTRIBUTE_JSON_BYTES = 6
# Past these, publishing fails at once and ingest answers 503 (as PubSubPublisher).
MAX_PENDING_MESSAGES = 20_000
MAX_PENDING_BYTES = 64 * 1024 * 1024
# The codes Google's own publisher retries (and PubSubPublisher); a retried publish may
# duplicate a message, which the pipeline tolerates (process deduplicates by messageId).
RETRY = RetryPolicy(
    codes=frozenset(
        {
            "ABORTED",
            "CANCELLED",
            "DEADLINE_EXCEEDED",
            "INTERNAL",
            "RESOURCE_EXHAUSTED",
            "UNAVAILABLE",
            "UNKNOWN",
        }
    ),
    # Per attempt: a hung connection is abandoned and retried within the call's deadline.
    attempt_seconds=5.0,
    initial_seconds=0.05,
)


def new_api(settings: Settings, credentials: Callable[[], Http]) -> RestApi:
    """Pub/Sub's REST API; on the emulator when PUBSUB_EMULATOR_HOST is set."""
    operation_counts.export_to(settings.operation_counts_dir)
    return google_api("Pub/Sub", "PUBSUB_EMULATOR_HOST", PRODUCTION_ROOT, credentials)


@dataclass(frozen=True, slots=True)
class _Message:
    """One message as the REST API takes it, with its sizes."""

    json: dict[str, Any]
    json_bytes: int  # its share of the request's JSON (the call's byte budget)
    billed_bytes: int  # its share of the Publish request's protobuf (what Pub/Sub bills)


class PubSubRestPublisher:
    """Publishes messages and waits until Pub/Sub has acknowledged all of them."""

    def __init__(self, api: RestApi, retry: RetryPolicy = RETRY):
        self._api = api
        self._retry = retry
        self._queue: GroupCommit[_Message] = GroupCommit(
            self._send,
            lambda message: message.json_bytes,
            # One bad message must not fail the callers whose messages travelled with it.
            lambda exc: isinstance(exc, RestError) and exc.code == "INVALID_ARGUMENT",
            max_rpc_messages=MAX_RPC_MESSAGES,
            max_rpc_bytes=MAX_RPC_BYTES,
            max_pending_messages=MAX_PENDING_MESSAGES,
            max_pending_bytes=MAX_PENDING_BYTES,
        )

    def publish(self, topic: str, messages: Iterable[tuple[bytes, Mapping[str, str]]]) -> list[str]:
        outgoing = [_message(data, attributes) for data, attributes in messages]
        try:
            return self._queue.publish(topic, outgoing, self._retry.deadline_seconds)
        except QueueFull as exc:
            raise Unavailable("ingest is overloaded, retry later", retry_after=1) from exc
        except TimeoutError as exc:
            raise Unavailable("Pub/Sub is unavailable, retry later (TimeoutError)") from exc
        except RestError as exc:
            if exc.code == "NOT_FOUND":
                raise Unavailable(f"topic {topic} does not exist") from exc
            raise

    def _send(self, topic: str, messages: list[_Message]) -> Sequence[str]:
        """One Publish call, retried on transient errors within the deadline."""
        body = {"messages": [message.json for message in messages]}
        answer = self._api.call("POST", f"{topic}:publish", body, self._retry)
        # Counted once acknowledged: Pub/Sub bills a publish request's bytes.
        billed = _field_bytes(len(topic.encode())) if topic else 0
        billed += sum(_field_bytes(message.billed_bytes) for message in messages)
        operation_counts.pubsub_published(len(messages), billed)
        ids: list[str] = answer.get("messageIds", [])
        return ids


def _message(data: bytes, attributes: Mapping[str, str]) -> _Message:
    encoded = base64.b64encode(data).decode("ascii")
    sent: dict[str, Any] = {"data": encoded}
    if attributes:
        sent["attributes"] = dict(attributes)
    json_bytes = MESSAGE_JSON_BYTES + len(encoded)
    # A PubsubMessage: `data` (field 1) when not empty, and each attribute as a map entry
    # (field 2) holding its key and value (fields 1 and 2), both always written.
    billed = _field_bytes(len(data)) if data else 0
    for key, value in attributes.items():
        key_bytes, value_bytes = len(key.encode()), len(value.encode())
        json_bytes += key_bytes + value_bytes + ATTRIBUTE_JSON_BYTES
        billed += _field_bytes(_field_bytes(key_bytes) + _field_bytes(value_bytes))
    return _Message(sent, json_bytes, billed)


def _field_bytes(length: int) -> int:
    """A length-delimited protobuf field of `length` bytes: its tag, its length, the bytes."""
    return 1 + _varint_bytes(length) + length


def _varint_bytes(number: int) -> int:
    size = 1
    while number >= 0x80:
        number >>= 7
        size += 1
    return size


# The hand-over starts this long after the first publish: importing the gRPC client (~0.35 s of
# CPU, holding the interpreter lock) would otherwise slow the first answers it is meant to spare.
HAND_OVER_DELAY_SECONDS = 1.0


class HandOverPublisher:
    """Publishes with `first` until `build_next` (run once, in a thread of its own, a little
    after the first publish) has built the publisher that takes over; if that fails, `first`
    stays."""

    def __init__(
        self,
        first: Publisher,
        build_next: Callable[[], Publisher],
        delay_seconds: float = HAND_OVER_DELAY_SECONDS,
    ):
        self._current = first
        self._build_next = build_next
        self._delay = delay_seconds
        self._started = False
        self._lock = threading.Lock()

    def publish(self, topic: str, messages: Iterable[tuple[bytes, Mapping[str, str]]]) -> list[str]:
        ids = self._current.publish(topic, messages)
        if not self._started:
            self._hand_over()
        return ids

    def _hand_over(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        timer = threading.Timer(self._delay, self._build)
        timer.name, timer.daemon = "publisher-hand-over", True
        timer.start()

    def _build(self) -> None:
        try:
            successor = self._build_next()
        except Exception:
            log.exception("the gRPC publisher could not be built: publishing stays on REST")
            return
        self._current = successor


# Messages of one RPC as fewer messages, and the index of the one carrying each.
Merge = Callable[
    [Sequence[tuple[bytes, Mapping[str, str]]]],
    tuple[list[tuple[bytes, dict[str, str]]], list[int]],
]
# Threads that carry the asynchronous publisher's RPCs: one RPC per topic is in flight at a
# time, so this bounds how many topics (sources) publish at once in one instance.
ASYNC_PUBLISH_THREADS = 32


class AsyncGroupPublisher:
    """The `AsyncPublisher` of the ingest function's event loop, on a (synchronous) `Publisher`.

    Requests wait on the loop (`AsyncGroupCommit`): one RPC per topic in flight, carrying every
    request that arrived while the previous one was on the wire. The RPC itself is `publisher`'s
    (REST, then gRPC once handed over; signed), called with the group's messages in a thread of
    its own, so its retries, deadlines and errors are the synchronous publisher's, and a thread
    is woken once per RPC, not once per request.
    """

    def __init__(
        self,
        publisher: Publisher,
        deadline_seconds: float = RETRY.deadline_seconds,
        merge: Merge | None = None,
    ):
        """`merge` makes one RPC's messages fewer (`merge_source_messages`): each caller gets
        the id of the message that carried its own."""
        self._publisher = publisher
        self._deadline = deadline_seconds
        self._merge = merge
        self._threads = ThreadPoolExecutor(ASYNC_PUBLISH_THREADS, thread_name_prefix="publish")
        self._queue: AsyncGroupCommit[tuple[bytes, Mapping[str, str]]] = AsyncGroupCommit(
            self._send,
            _message_bytes,
            _is_invalid_argument,
            max_rpc_messages=MAX_RPC_MESSAGES,
            max_rpc_bytes=MAX_RPC_BYTES,
            max_pending_messages=MAX_PENDING_MESSAGES,
            max_pending_bytes=MAX_PENDING_BYTES,
        )

    async def publish(
        self, topic: str, messages: Iterable[tuple[bytes, Mapping[str, str]]]
    ) -> list[str]:
        try:
            # A little past the synchronous publisher's own deadline: its answer (ids, or the
            # error it maps) is the one a request should get.
            return await self._queue.publish(topic, list(messages), self._deadline + 1.0)
        except QueueFull as exc:
            raise Unavailable("ingest is overloaded, retry later", retry_after=1) from exc
        except TimeoutError as exc:
            raise Unavailable("Pub/Sub is unavailable, retry later (TimeoutError)") from exc

    async def _send(self, topic: str, messages: list[tuple[bytes, Mapping[str, str]]]) -> list[str]:
        loop = asyncio.get_running_loop()
        if self._merge is None or len(messages) < 2:
            return await loop.run_in_executor(
                self._threads, self._publisher.publish, topic, messages
            )
        merged, owners = self._merge(messages)
        ids = await loop.run_in_executor(self._threads, self._publisher.publish, topic, merged)
        if len(ids) != len(merged):
            raise RuntimeError(f"{len(ids)} ids for {len(merged)} published messages")
        return [ids[owner] for owner in owners]


def _message_bytes(message: tuple[bytes, Mapping[str, str]]) -> int:
    data, attributes = message
    json_bytes = MESSAGE_JSON_BYTES + (len(data) + 2) // 3 * 4
    return json_bytes + sum(len(k) + len(v) + ATTRIBUTE_JSON_BYTES for k, v in attributes.items())


def _is_invalid_argument(exc: BaseException) -> bool:
    """Pub/Sub refused a message as invalid, over REST or gRPC: only its own request fails."""
    if isinstance(exc, RestError):
        return exc.code == "INVALID_ARGUMENT"
    # The gRPC publisher's errors are google.api_core's; not imported here unless it is loaded.
    api_core = sys.modules.get("google.api_core.exceptions")
    return api_core is not None and isinstance(exc, api_core.InvalidArgument)
