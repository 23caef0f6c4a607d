"""Group commit: concurrent callers' messages to one topic share one publish RPC.

Why (docs/INGEST.md): google-cloud-pubsub's batching client costs ~0.6-1 ms of Python CPU per
message (futures, batch objects, locks, a thread per commit) and ingest publishes one message
per request, so the client, not ingest, capped single-event throughput. Here a caller appends
its messages to its topic's queue; if no RPC for that topic is in flight it sends at once
itself (an idle topic never waits for a timer), otherwise it sleeps until the RPC in flight
returns. Then the first waiter wakes as the next leader and sends everything queued meanwhile in
one RPC. Each caller wakes once, no extra thread exists, and the RPC's cost is shared by every
request that arrived while the previous one was on the wire.

Guarantees: a caller returns only once the RPC carrying all of its messages has succeeded, with
their ids in order; a failed RPC fails exactly the callers whose messages it carried (the next
group is sent by the next leader); a message rejected as invalid fails only its own caller (the
group is re-sent caller by caller); a caller gives up after its deadline, leaving the queue if
its messages were not sent yet.
"""

from __future__ import annotations

import asyncio
import copy
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Message = TypeVar("Message")
# Sends one RPC's messages to a topic and returns their ids in order, or raises.
SendRpc = Callable[[str, list[Message]], Sequence[str]]

QUEUED, LEADING, SENDING, DONE = range(4)


class QueueFull(Exception):
    """More messages or bytes are waiting or in flight than the publisher admits."""


class _Pending:
    """What callers have handed over and not yet had answered, held to its limits. An idle
    publisher admits any one caller, however large: it can always be sent. Locked for the
    threads of `GroupCommit`; on `AsyncGroupCommit`'s one loop thread the lock is never
    contended."""

    def __init__(self, max_messages: int, max_bytes: int):
        self._lock = threading.Lock()
        self._max_messages = max_messages
        self._max_bytes = max_bytes
        self.messages = 0
        self.bytes = 0

    def admit(self, messages: int, size: int) -> None:
        """Count a caller's messages in, or raise `QueueFull` over the limits."""
        with self._lock:
            total, total_size = self.messages + messages, self.bytes + size
            if self.messages and (total > self._max_messages or total_size > self._max_bytes):
                raise QueueFull(f"{self.messages} messages already pending")
            self.messages, self.bytes = total, total_size

    def release(self, messages: int, size: int) -> None:
        with self._lock:
            self.messages -= messages
            self.bytes -= size


class _Entry(Generic[Message]):
    """One caller's messages and, once its RPC returned, their ids or the error."""

    __slots__ = ("error", "ids", "messages", "size", "state", "wake")

    def __init__(self, messages: list[Message], size: int):
        self.messages = messages
        self.size = size
        self.state = QUEUED
        self.ids: Sequence[str] | None = None
        self.error: BaseException | None = None
        # A lock held from birth and released to wake the caller: much cheaper than an Event
        # (a Condition and two locks), and a request creates one.
        self.wake = threading.Lock()
        self.wake.acquire()


class _Topic(Generic[Message]):
    """A topic's waiting callers, and whether a leader is sending for it right now."""

    __slots__ = ("busy", "lock", "waiting")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.waiting: deque[_Entry[Message]] = deque()
        self.busy = False


class GroupCommit(Generic[Message]):
    """Publishes callers' messages through `send`, one RPC in flight per topic at a time."""

    def __init__(
        self,
        send: SendRpc[Message],
        size_of: Callable[[Message], int],
        is_poison: Callable[[BaseException], bool],
        max_rpc_messages: int,
        max_rpc_bytes: int,
        max_pending_messages: int,
        max_pending_bytes: int,
    ):
        self._send = send
        self._size_of = size_of
        # True for an error that one bad message causes (it must not fail its co-travellers).
        self._is_poison = is_poison
        self._max_rpc_messages = max_rpc_messages
        self._max_rpc_bytes = max_rpc_bytes
        self._pending = _Pending(max_pending_messages, max_pending_bytes)
        self._topics: dict[str, _Topic[Message]] = {}
        self._lock = threading.Lock()

    def publish(self, topic: str, messages: list[Message], timeout: float) -> list[str]:
        """Send `messages` to `topic`; their ids once the RPC carrying them succeeded.

        Raises `QueueFull` at once when over the pending limits, `TimeoutError` after `timeout`
        seconds without an answer, and whatever `send` raised for this caller's RPC.
        """
        if not messages:
            return []
        deadline = time.monotonic() + timeout
        entry = _Entry(messages, sum(map(self._size_of, messages)))
        self._pending.admit(len(entry.messages), entry.size)
        try:
            state = self._topic(topic)
            with state.lock:
                if state.busy:
                    state.waiting.append(entry)
                else:
                    state.busy = True
                    entry.state = LEADING
            if entry.state != LEADING:
                self._wait(state, entry, deadline)
            if entry.state == LEADING:
                self._lead(topic, state, entry)
            if entry.error is not None:
                raise _own(entry.error)
            assert entry.ids is not None
            return list(entry.ids)
        finally:
            self._pending.release(len(entry.messages), entry.size)

    def _topic(self, topic: str) -> _Topic[Message]:
        state = self._topics.get(topic)
        if state is None:
            with self._lock:
                state = self._topics.setdefault(topic, _Topic())
        return state

    def _wait(self, state: _Topic[Message], entry: _Entry[Message], deadline: float) -> None:
        """Sleep until this caller's RPC returned or it became the leader, or time ran out."""
        if entry.wake.acquire(timeout=max(0.0, deadline - time.monotonic())):
            return
        with state.lock:
            if entry.state == QUEUED:
                state.waiting.remove(entry)  # never sent: nothing of it will be published
            elif entry.state == LEADING:
                return  # promoted just now: it must lead, or the queue would stall
        if entry.state != DONE:
            # Its RPC is in flight and may still succeed: an unanswered 503 is retried by the
            # client, at worst publishing the events twice (process deduplicates by messageId).
            raise TimeoutError(f"publish not acknowledged within the deadline ({entry.state})")

    def _lead(self, topic: str, state: _Topic[Message], own: _Entry[Message]) -> None:
        """Send own messages and everything queued behind them, then hand the topic on."""
        group = [own]
        try:
            with state.lock:
                count, size = len(own.messages), own.size
                while state.waiting:
                    head = state.waiting[0]
                    count += len(head.messages)
                    size += head.size
                    if count > self._max_rpc_messages or size > self._max_rpc_bytes:
                        break
                    head.state = SENDING
                    group.append(state.waiting.popleft())
            self._send_group(topic, group)
        finally:
            for entry in group:
                if entry.ids is None and entry.error is None:  # a bug below: fail, never hang
                    entry.error = RuntimeError("publish abandoned")
                entry.state = DONE
                if entry is not own:
                    entry.wake.release()
            with state.lock:
                if state.waiting:
                    successor = state.waiting.popleft()
                    successor.state = LEADING
                    successor.wake.release()
                else:
                    state.busy = False

    def _send_group(self, topic: str, group: list[_Entry[Message]]) -> None:
        messages = [message for entry in group for message in entry.messages]
        try:
            fits = (
                len(messages) <= self._max_rpc_messages
                and sum(entry.size for entry in group) <= self._max_rpc_bytes
            )
            ids = self._send(topic, messages) if fits else self._send_chunked(topic, messages)
            if len(ids) != len(messages):
                raise RuntimeError(f"{len(ids)} ids for {len(messages)} published messages")
        except Exception as exc:
            if len(group) > 1 and self._is_poison(exc):
                # One caller's bad message: find it by sending each caller's messages alone.
                for entry in group:
                    self._send_group(topic, [entry])
                return
            for entry in group:
                entry.error = exc
            return
        offset = 0
        for entry in group:
            entry.ids = ids[offset : offset + len(entry.messages)]
            offset += len(entry.messages)

    def _send_chunked(self, topic: str, messages: list[Message]) -> Sequence[str]:
        # Groups are formed within the limits; only one caller with more than an RPC's worth
        # of messages (process or replay publishing many) needs several RPCs.
        ids: list[str] = []
        chunk: list[Message] = []
        size = 0
        for message in messages:
            message_size = self._size_of(message)
            if chunk and (
                len(chunk) == self._max_rpc_messages or size + message_size > self._max_rpc_bytes
            ):
                ids.extend(self._send(topic, chunk))
                chunk, size = [], 0
            chunk.append(message)
            size += message_size
        ids.extend(self._send(topic, chunk))
        return ids


def _own(error: BaseException) -> BaseException:
    """A caller's own copy of its group's error: raising one instance in several threads would
    splice all their tracebacks onto it."""
    try:
        return copy.copy(error)
    except Exception:  # an exception type that cannot be rebuilt from its args
        return error


# What an asynchronous caller's messages are sent with: one RPC's messages to a topic, their ids
# in order (or it raises).
AsyncSendRpc = Callable[[str, list[Message]], Awaitable[Sequence[str]]]


class _Waiter(Generic[Message]):
    """One asynchronous caller's messages, and the future its ids (or its error) arrive on."""

    __slots__ = ("future", "messages", "size", "state")

    def __init__(self, messages: list[Message], size: int, future: asyncio.Future[Sequence[str]]):
        self.messages = messages
        self.size = size
        self.state = QUEUED
        self.future = future


class _AsyncTopic(Generic[Message]):
    __slots__ = ("busy", "waiting")

    def __init__(self) -> None:
        self.waiting: deque[_Waiter[Message]] = deque()
        self.busy = False


class AsyncGroupCommit(Generic[Message]):
    """`GroupCommit` for callers on one asyncio event loop (the ingest function's entry point).

    The same rule: one RPC per topic in flight, carrying every caller that arrived while the
    previous one was on the wire, and the same guarantees (ids only once the RPC carrying all of
    a caller's messages succeeded; a failure reaches exactly the callers it carried; a poison
    message fails only its own caller; a caller still queued at its deadline leaves the queue
    unsent; `QueueFull` over the pending limits). A waiting caller is a future on the loop, not
    a sleeping thread: waking it costs no thread switch. All calls come from the loop's thread,
    so no lock is needed.
    """

    def __init__(
        self,
        send: AsyncSendRpc[Message],
        size_of: Callable[[Message], int],
        is_poison: Callable[[BaseException], bool],
        max_rpc_messages: int,
        max_rpc_bytes: int,
        max_pending_messages: int,
        max_pending_bytes: int,
    ):
        self._send = send
        self._size_of = size_of
        self._is_poison = is_poison
        self._max_rpc_messages = max_rpc_messages
        self._max_rpc_bytes = max_rpc_bytes
        self._pending = _Pending(max_pending_messages, max_pending_bytes)
        self._topics: dict[str, _AsyncTopic[Message]] = {}
        # The topics' senders: held, or the loop (which keeps only weak references) may
        # collect a sender while it awaits.
        self._senders: set[asyncio.Task[None]] = set()

    async def publish(self, topic: str, messages: list[Message], timeout: float) -> list[str]:
        """Send `messages` to `topic`; their ids once the RPC carrying them succeeded.

        Raises `QueueFull` at once when over the pending limits, `TimeoutError` after `timeout`
        seconds without an answer, and whatever `send` raised for this caller's RPC.
        """
        if not messages:
            return []
        loop = asyncio.get_running_loop()
        waiter = _Waiter(messages, sum(map(self._size_of, messages)), loop.create_future())
        self._pending.admit(len(waiter.messages), waiter.size)
        try:
            state = self._topics.get(topic)
            if state is None:
                state = self._topics[topic] = _AsyncTopic()
            state.waiting.append(waiter)
            if not state.busy:
                state.busy = True
                sender = loop.create_task(self._drain(topic, state))
                self._senders.add(sender)
                sender.add_done_callback(self._senders.discard)
            timer = loop.call_later(timeout, self._expire, state, waiter)
            try:
                return list(await waiter.future)
            finally:
                timer.cancel()
        finally:
            self._pending.release(len(waiter.messages), waiter.size)

    @staticmethod
    def _expire(state: _AsyncTopic[Message], waiter: _Waiter[Message]) -> None:
        if waiter.future.done():
            return
        if waiter.state == QUEUED:
            state.waiting.remove(waiter)  # never sent: nothing of it will be published
        # In flight: it may still succeed; an unanswered 503 is retried by the client, at
        # worst publishing the events twice (process deduplicates by messageId).
        waiter.future.set_exception(
            TimeoutError(f"publish not acknowledged within the deadline ({waiter.state})")
        )

    async def _drain(self, topic: str, state: _AsyncTopic[Message]) -> None:
        """Send the topic's queue, one group per RPC, until it is empty."""
        group: list[_Waiter[Message]] = []
        try:
            while state.waiting:
                group = [state.waiting.popleft()]
                count, size = len(group[0].messages), group[0].size
                while state.waiting:
                    head = state.waiting[0]
                    count += len(head.messages)
                    size += head.size
                    if count > self._max_rpc_messages or size > self._max_rpc_bytes:
                        break
                    group.append(state.waiting.popleft())
                for waiter in group:
                    waiter.state = SENDING
                await self._send_group(topic, group)
                group = []
        finally:
            # Cancelled (the loop is closing) or a bug below: fail, never hang.
            for waiter in [*group, *state.waiting]:
                if not waiter.future.done():
                    waiter.future.set_exception(RuntimeError("publish abandoned"))
            state.waiting.clear()
            state.busy = False

    async def _send_group(self, topic: str, group: list[_Waiter[Message]]) -> None:
        messages = [message for waiter in group for message in waiter.messages]
        try:
            ids = await self._send(topic, messages)
            if len(ids) != len(messages):
                raise RuntimeError(f"{len(ids)} ids for {len(messages)} published messages")
        except Exception as exc:
            if len(group) > 1 and self._is_poison(exc):
                # One caller's bad message: find it by sending each caller's messages alone.
                for waiter in group:
                    await self._send_group(topic, [waiter])
                return
            for waiter in group:
                waiter.state = DONE
                if not waiter.future.done():
                    waiter.future.set_exception(_own(exc))
            return
        offset = 0
        for waiter in group:
            waiter.state = DONE
            if not waiter.future.done():
                waiter.future.set_result(ids[offset : offset + len(waiter.messages)])
            offset += len(waiter.messages)
