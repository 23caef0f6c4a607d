"""The asynchronous group commit (ingest's event loop) and the publisher built on it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Mapping, Sequence

import pytest

from shared.adapters.group_commit import AsyncGroupCommit, QueueFull
from shared.adapters.pubsub_rest import MAX_PENDING_MESSAGES, AsyncGroupPublisher
from shared.adapters.rest import RestError
from shared.domain.errors import Unavailable

Messages = Iterable[tuple[bytes, Mapping[str, str]]]


class Poison(Exception):
    """What the fake RPC raises for a message named "poison"."""


class FakeRpc:
    """Records each RPC's messages; an RPC waits for `release` while `hold` is set."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.hold = False
        self.release = asyncio.Event()
        self.fail_next: Exception | None = None

    async def send(self, topic: str, messages: list[str]) -> Sequence[str]:
        self.calls.append(list(messages))
        if self.hold:
            await self.release.wait()
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        if "poison" in messages:
            raise Poison("invalid message")
        return [f"id-{message}" for message in messages]


def commit(rpc: FakeRpc, **limits: int) -> AsyncGroupCommit[str]:
    settings = {
        "max_rpc_messages": 1000,
        "max_rpc_bytes": 10_000,
        "max_pending_messages": 100,
        "max_pending_bytes": 100_000,
        **limits,
    }
    return AsyncGroupCommit(rpc.send, len, lambda exc: isinstance(exc, Poison), **settings)


async def _started(tasks: list[asyncio.Task[list[str]]]) -> None:
    """Let every task reach its wait (queued behind the RPC in flight)."""
    for _ in range(5):
        await asyncio.sleep(0)


def test_callers_that_arrive_during_an_rpc_share_the_next_one() -> None:
    async def scenario() -> None:
        rpc = FakeRpc()
        rpc.hold = True
        queue = commit(rpc)
        first = asyncio.create_task(queue.publish("t", ["a"], 5))
        await _started([first])
        rest = [asyncio.create_task(queue.publish("t", [f"m{i}", f"n{i}"], 5)) for i in range(10)]
        await _started(rest)
        assert rpc.calls == [["a"]]  # one RPC in flight; the others wait on the loop
        rpc.release.set()
        assert await first == ["id-a"]
        assert [await task for task in rest] == [[f"id-m{i}", f"id-n{i}"] for i in range(10)]
        assert len(rpc.calls) == 2 and len(rpc.calls[1]) == 20

    asyncio.run(scenario())


def test_an_rpc_failure_reaches_exactly_the_callers_it_carried() -> None:
    async def scenario() -> None:
        rpc = FakeRpc()
        rpc.hold = True
        queue = commit(rpc, max_rpc_messages=2)
        first = asyncio.create_task(queue.publish("t", ["a"], 5))
        await _started([first])
        group = [asyncio.create_task(queue.publish("t", [m], 5)) for m in ("b", "c", "d")]
        await _started(group)
        rpc.fail_next = RuntimeError("first RPC lost")
        rpc.release.set()
        with pytest.raises(RuntimeError, match="first RPC lost"):
            await first
        # b and c went together (two messages an RPC), d alone: both succeeded.
        assert [await task for task in group] == [["id-b"], ["id-c"], ["id-d"]]
        assert rpc.calls == [["a"], ["b", "c"], ["d"]]

    asyncio.run(scenario())


def test_a_poison_message_fails_only_its_own_caller() -> None:
    async def scenario() -> None:
        rpc = FakeRpc()
        rpc.hold = True
        queue = commit(rpc)
        first = asyncio.create_task(queue.publish("t", ["a"], 5))
        await _started([first])
        group = [asyncio.create_task(queue.publish("t", [m], 5)) for m in ("b", "poison", "c")]
        await _started(group)
        rpc.release.set()
        await first
        results = await asyncio.gather(*group, return_exceptions=True)
        assert results[0] == ["id-b"] and results[2] == ["id-c"]
        assert isinstance(results[1], Poison)
        assert rpc.calls[1:] == [["b", "poison", "c"], ["b"], ["poison"], ["c"]]

    asyncio.run(scenario())


def test_a_caller_still_queued_at_its_deadline_leaves_the_queue_unsent() -> None:
    async def scenario() -> None:
        rpc = FakeRpc()
        rpc.hold = True
        queue = commit(rpc)
        first = asyncio.create_task(queue.publish("t", ["a"], 0.2))
        await _started([first])
        late = asyncio.create_task(queue.publish("t", ["b"], 0.05))
        with pytest.raises(TimeoutError, match=r"deadline \(0\)"):
            await late  # QUEUED (0): never sent
        with pytest.raises(TimeoutError, match=r"deadline \(2\)"):
            await first  # SENDING (2): in flight, it may still succeed
        rpc.release.set()
        await asyncio.sleep(0.01)
        assert rpc.calls == [["a"]]
        # The topic is free again, and the pending counts were given back.
        rpc.hold = False
        assert await queue.publish("t", ["c"], 1) == ["id-c"]

    asyncio.run(scenario())


def test_over_the_pending_limits_a_caller_is_refused_at_once() -> None:
    async def scenario() -> None:
        rpc = FakeRpc()
        rpc.hold = True
        queue = commit(rpc, max_pending_messages=3)
        # An idle publisher admits one caller, however large.
        first = asyncio.create_task(queue.publish("t", ["a", "b", "c", "d"], 5))
        await _started([first])
        with pytest.raises(QueueFull):
            await queue.publish("t", ["e"], 5)
        rpc.release.set()
        assert await first == ["id-a", "id-b", "id-c", "id-d"]

    asyncio.run(scenario())


def test_topics_never_wait_for_each_other() -> None:
    async def scenario() -> None:
        rpc = FakeRpc()
        held: asyncio.Event = asyncio.Event()

        async def send(topic: str, messages: list[str]) -> Sequence[str]:
            if topic == "slow":
                await held.wait()
            return await rpc.send(topic, messages)

        queue: AsyncGroupCommit[str] = AsyncGroupCommit(
            send, len, lambda exc: False, 1000, 10_000, 100, 100_000
        )
        slow = asyncio.create_task(queue.publish("slow", ["s"], 5))
        assert await queue.publish("fast", ["f"], 5) == ["id-f"]
        assert not slow.done()
        held.set()
        assert await slow == ["id-s"]

    asyncio.run(scenario())


class ThreadRecordingPublisher:
    """A synchronous publisher that notes the thread each call ran on."""

    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[tuple[str, int, str]] = []
        self.error = error

    def publish(self, topic: str, messages: Messages) -> list[str]:
        messages = list(messages)
        self.calls.append((topic, len(messages), threading.current_thread().name))
        if self.error is not None:
            raise self.error
        return [f"{topic}-{i}" for i in range(len(messages))]


def test_the_publisher_sends_each_group_in_a_thread_not_on_the_loop() -> None:
    publisher = ThreadRecordingPublisher()
    async_publisher = AsyncGroupPublisher(publisher)

    async def scenario() -> list[list[str]]:
        calls = [async_publisher.publish("t", [(b"{}", {"k": "v"})]) for _ in range(20)]
        return await asyncio.gather(*calls)

    answers = asyncio.run(scenario())
    assert all(len(ids) == 1 for ids in answers)
    assert sum(count for _, count, _ in publisher.calls) == 20
    # Callers that arrived while an RPC was in flight shared the next one.
    assert len(publisher.calls) < 20
    assert all(name.startswith("publish") for _, _, name in publisher.calls)


def test_the_publishers_errors_reach_the_request_and_overload_is_a_503() -> None:
    down = ThreadRecordingPublisher(Unavailable("Pub/Sub is unavailable, retry later"))
    with pytest.raises(Unavailable, match="Pub/Sub is unavailable"):
        asyncio.run(AsyncGroupPublisher(down).publish("t", [(b"{}", {})]))

    class Held(ThreadRecordingPublisher):
        def __init__(self) -> None:
            super().__init__()
            self.release = threading.Event()

        def publish(self, topic: str, messages: Messages) -> list[str]:
            self.release.wait(5)
            return super().publish(topic, messages)

    held = Held()
    publisher = AsyncGroupPublisher(held)

    async def scenario() -> None:
        # One request alone is always admitted, however large; the next finds it pending.
        big = asyncio.create_task(
            publisher.publish("t", [(b"{}", {})] * (MAX_PENDING_MESSAGES + 1))
        )
        await asyncio.sleep(0.01)
        with pytest.raises(Unavailable) as refused:
            await publisher.publish("u", [(b"{}", {})])
        assert refused.value.retry_after == 1 and "overloaded" in refused.value.message
        held.release.set()
        assert len(await big) == MAX_PENDING_MESSAGES + 1

    asyncio.run(scenario())


def test_an_invalid_message_over_rest_fails_only_its_own_request() -> None:
    class RefusesOne(ThreadRecordingPublisher):
        def publish(self, topic: str, messages: Messages) -> list[str]:
            messages = list(messages)
            if any(data == b"bad" for data, _ in messages):
                raise RestError(400, "INVALID_ARGUMENT", "bad message")
            return super().publish(topic, messages)

    async_publisher = AsyncGroupPublisher(RefusesOne())

    async def scenario() -> list[object]:
        calls = [
            async_publisher.publish("t", [(b"bad" if i == 3 else b"{}", {})]) for i in range(8)
        ]
        return await asyncio.gather(*calls, return_exceptions=True)

    results = asyncio.run(scenario())
    assert isinstance(results[3], RestError)
    assert all(isinstance(r, list) for i, r in enumerate(results) if i != 3)
