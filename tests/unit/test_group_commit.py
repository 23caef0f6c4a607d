"""Group commit: concurrent callers share RPCs, and each gets its own outcome, never another's."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence

import pytest

from shared.adapters.group_commit import GroupCommit, QueueFull


class Poison(Exception):
    """What a server answers for a bad message: it must fail only the caller that sent it."""


class FakeRpc:
    """Records each RPC's messages; `hold` keeps the next RPCs in flight until released."""

    def __init__(self) -> None:
        self.rpcs: list[tuple[str, list[str]]] = []
        self.fail: Callable[[list[str]], BaseException | None] = lambda messages: None
        self.hold = threading.Event()
        self.hold.set()
        self.in_flight = threading.Event()
        self._lock = threading.Lock()
        self._concurrent: dict[str, int] = {}
        self.max_concurrent = 0

    def __call__(self, topic: str, messages: list[str]) -> Sequence[str]:
        with self._lock:
            self.rpcs.append((topic, list(messages)))
            self._concurrent[topic] = self._concurrent.get(topic, 0) + 1
            self.max_concurrent = max(self.max_concurrent, self._concurrent[topic])
        self.in_flight.set()
        try:
            assert self.hold.wait(10)
            error = self.fail(messages)
            if error is not None:
                raise error
            return [f"id-{message}" for message in messages]
        finally:
            with self._lock:
                self._concurrent[topic] -= 1


def group_commit(rpc: FakeRpc, **limits: int) -> GroupCommit[str]:
    settings = {
        "max_rpc_messages": 1000,
        "max_rpc_bytes": 1_000_000,
        "max_pending_messages": 10_000,
        "max_pending_bytes": 10_000_000,
        **limits,
    }
    return GroupCommit(rpc, len, lambda exc: isinstance(exc, Poison), **settings)


class Caller(threading.Thread):
    """Publishes once in its own thread and keeps the outcome."""

    def __init__(self, queue: GroupCommit[str], messages: list[str], topic: str = "t"):
        super().__init__(daemon=True)
        self.queue, self.messages, self.topic = queue, messages, topic
        self.ids: list[str] | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.ids = self.queue.publish(self.topic, self.messages, timeout=10)
        except BaseException as exc:
            self.error = exc

    def outcome(self) -> list[str] | BaseException | None:
        self.join(10)
        assert not self.is_alive(), "caller hung"
        return self.error if self.error is not None else self.ids


def wait_queued(queue: GroupCommit[str], count: int, topic: str = "t") -> None:
    """Until `count` callers wait behind the RPC in flight."""
    deadline = time.monotonic() + 5
    while len(queue._topics[topic].waiting) < count:
        assert time.monotonic() < deadline, "callers did not queue"
        time.sleep(0.001)


def start_held(rpc: FakeRpc, queue: GroupCommit[str], messages: list[str]) -> Caller:
    """A first caller whose RPC stays in flight until `rpc.hold` is set."""
    rpc.hold.clear()
    rpc.in_flight.clear()
    first = Caller(queue, messages)
    first.start()
    assert rpc.in_flight.wait(5)
    return first


def test_an_idle_topic_publishes_at_once() -> None:
    rpc = FakeRpc()
    queue = group_commit(rpc)
    assert queue.publish("t", ["a", "b"], timeout=1) == ["id-a", "id-b"]
    assert rpc.rpcs == [("t", ["a", "b"])]
    assert queue.publish("t", [], timeout=1) == []
    assert len(rpc.rpcs) == 1


def test_callers_arriving_during_an_rpc_share_the_next_one() -> None:
    rpc = FakeRpc()
    queue = group_commit(rpc)
    first = start_held(rpc, queue, ["a"])
    others = [Caller(queue, [f"m{i}", f"n{i}"]) for i in range(5)]
    for caller in others:
        caller.start()
    wait_queued(queue, 5)
    rpc.hold.set()
    assert first.outcome() == ["id-a"]
    for i, caller in enumerate(others):
        assert caller.outcome() == [f"id-m{i}", f"id-n{i}"]
    assert len(rpc.rpcs) == 2
    assert sorted(rpc.rpcs[1][1]) == sorted(m for c in others for m in c.messages)
    assert rpc.max_concurrent == 1


def test_a_failed_rpc_fails_exactly_the_callers_it_carried() -> None:
    rpc = FakeRpc()
    queue = group_commit(rpc)
    rpc.fail = lambda messages: ConnectionError("down") if "a" in messages else None
    first = start_held(rpc, queue, ["a"])
    second, third = Caller(queue, ["b"]), Caller(queue, ["c"])
    second.start()
    third.start()
    wait_queued(queue, 2)
    rpc.hold.set()
    assert isinstance(first.outcome(), ConnectionError)
    assert second.outcome() == ["id-b"]
    assert third.outcome() == ["id-c"]


def test_a_failure_of_the_next_group_leaves_the_earlier_caller_acknowledged() -> None:
    rpc = FakeRpc()
    queue = group_commit(rpc)
    rpc.fail = lambda messages: TimeoutError("slow") if "b" in messages else None
    first = start_held(rpc, queue, ["a"])
    second, third = Caller(queue, ["b"]), Caller(queue, ["c"])
    second.start()
    third.start()
    wait_queued(queue, 2)
    rpc.hold.set()
    assert first.outcome() == ["id-a"]
    # b and c travelled together: both failed, and a later caller is unaffected.
    assert isinstance(second.outcome(), TimeoutError)
    assert isinstance(third.outcome(), TimeoutError)
    assert queue.publish("t", ["d"], timeout=1) == ["id-d"]


def test_a_bad_message_fails_only_its_own_caller() -> None:
    rpc = FakeRpc()
    queue = group_commit(rpc)
    rpc.fail = lambda messages: Poison("invalid") if "bad" in messages else None
    first = start_held(rpc, queue, ["a"])
    good, bad, good_too = Caller(queue, ["b"]), Caller(queue, ["x", "bad"]), Caller(queue, ["c"])
    for caller in (good, bad, good_too):
        caller.start()
    wait_queued(queue, 3)
    rpc.hold.set()
    assert first.outcome() == ["id-a"]
    assert good.outcome() == ["id-b"]
    assert isinstance(bad.outcome(), Poison)
    assert good_too.outcome() == ["id-c"]


def test_groups_respect_the_rpc_limits_and_large_callers_are_split() -> None:
    rpc = FakeRpc()
    queue = group_commit(rpc, max_rpc_messages=3, max_rpc_bytes=10)
    messages = [f"m{i}" for i in range(7)]
    assert queue.publish("t", messages, timeout=1) == [f"id-{m}" for m in messages]
    assert [len(sent) for _, sent in rpc.rpcs] == [3, 3, 1]
    rpc.rpcs.clear()
    # By bytes: 4-byte messages, at most 10 bytes per RPC.
    assert queue.publish("t", ["aaaa", "bbbb", "cccc"], timeout=1) == [
        "id-aaaa",
        "id-bbbb",
        "id-cccc",
    ]
    assert [sent for _, sent in rpc.rpcs] == [["aaaa", "bbbb"], ["cccc"]]
    rpc.rpcs.clear()
    first = start_held(rpc, queue, ["a"])
    callers = [Caller(queue, [f"x{i}", f"y{i}"]) for i in range(3)]
    for caller in callers:
        caller.start()
    wait_queued(queue, 3)
    rpc.hold.set()
    first.outcome()
    for i, caller in enumerate(callers):
        assert caller.outcome() == [f"id-x{i}", f"id-y{i}"]
    # The leader takes whole callers while they fit: 2 + 2 messages would exceed 3.
    assert all(len(sent) <= 3 for _, sent in rpc.rpcs)


def test_topics_do_not_wait_for_each_other() -> None:
    rpc = FakeRpc()
    queue = group_commit(rpc)
    rpc.hold.clear()
    held = Caller(queue, ["a"], topic="slow")
    held.start()
    assert rpc.in_flight.wait(5)
    other = Caller(queue, ["b"], topic="fast")
    rpc.hold.set()  # both RPCs may now finish; "fast" never queued behind "slow"
    other.start()
    assert other.outcome() == ["id-b"]
    assert held.outcome() == ["id-a"]
    assert ("fast", ["b"]) in rpc.rpcs


def test_over_the_pending_limits_callers_are_refused_at_once() -> None:
    rpc = FakeRpc()
    queue = group_commit(rpc, max_pending_messages=3)
    # An idle publisher admits one caller of any size: it can always be sent.
    assert len(queue.publish("t", ["a", "b", "c", "d"], timeout=1)) == 4
    first = start_held(rpc, queue, ["a", "b"])
    with pytest.raises(QueueFull):
        queue.publish("t", ["c", "d"], timeout=1)
    rpc.hold.set()
    assert first.outcome() == ["id-a", "id-b"]
    assert queue.publish("t", ["c", "d", "e"], timeout=1) == ["id-c", "id-d", "id-e"]


def test_a_caller_that_times_out_in_the_queue_is_never_sent() -> None:
    rpc = FakeRpc()
    queue = group_commit(rpc)
    first = start_held(rpc, queue, ["a"])
    with pytest.raises(TimeoutError):
        queue.publish("t", ["late"], timeout=0.05)
    rpc.hold.set()
    assert first.outcome() == ["id-a"]
    assert queue.publish("t", ["b"], timeout=1) == ["id-b"]
    assert all("late" not in sent for _, sent in rpc.rpcs)


def test_an_unexpected_error_fails_the_group_and_the_queue_goes_on() -> None:
    rpc = FakeRpc()
    queue = group_commit(rpc)
    rpc.fail = lambda messages: KeyError("bug") if "b" in messages else None
    first = start_held(rpc, queue, ["a"])
    second = Caller(queue, ["b"])
    second.start()
    wait_queued(queue, 1)
    third = Caller(queue, ["c"])
    rpc.hold.set()
    assert first.outcome() == ["id-a"]
    assert isinstance(second.outcome(), KeyError)
    third.start()
    assert third.outcome() == ["id-c"]


def test_many_threads_each_get_their_own_ids_or_their_own_rpcs_error() -> None:
    rpc = FakeRpc()
    queue = group_commit(rpc, max_rpc_messages=50)
    failing: set[str] = set()
    lock = threading.Lock()

    def fail(messages: list[str]) -> BaseException | None:
        if random.random() < 0.2:
            with lock:
                failing.update(messages)
            return ConnectionError("flaky")
        return None

    rpc.fail = fail
    outcomes: dict[str, list[str] | BaseException] = {}

    def worker(n: int) -> None:
        for i in range(200):
            messages = [f"{n}-{i}-{k}" for k in range(1 + (i % 3))]
            try:
                outcomes[messages[0]] = queue.publish("t", messages, timeout=10)
            except ConnectionError as exc:
                outcomes[messages[0]] = exc
            else:
                assert outcomes[messages[0]] == [f"id-{m}" for m in messages]

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
        assert not thread.is_alive()
    assert len(outcomes) == 16 * 200
    for first, outcome in outcomes.items():
        # An error only for messages that rode a failed RPC; ids only for ones that did not.
        assert isinstance(outcome, ConnectionError) == (first in failing)
    assert rpc.max_concurrent == 1
    assert queue._pending.messages == 0 and queue._pending.bytes == 0
