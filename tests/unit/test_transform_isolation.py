"""One transformation cannot fail another's through the instance they share: CPU is counted per
thread, running heaps share a budget, idle contexts give their heap back, and a context that ran
out of memory is never reused."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from shared.transform import HeapBudget, Limits, Program, ProgramCache
from shared.transform.limits import MB

EVENT = {"type": "track", "event": "e"}
METADATA = {"workspace_id": "w-1"}
LIMITS = Limits()
# A loop whose CPU time the caller picks (the iterations come in the event).
COUNTING = (
    "function transform(e) {\n"
    "  let total = 0;\n"
    "  for (let i = 0; i < e.n; i++) total += i % 7;\n"
    "  return {...e, total};\n"
    "}"
)


def iterations_for(cpu_ms: float) -> int:
    """Iterations of COUNTING that take about `cpu_ms` of this machine's CPU on their own."""
    program = Program(COUNTING, Limits(cpu_ms=10_000))
    n = 100_000
    result = program.run({**EVENT, "n": n}, METADATA)
    assert result.ok, result.error
    return max(1, int(n * cpu_ms / max(result.cpu_ms, 0.01)))


@contextmanager
def busy_threads(count: int) -> Iterator[None]:
    """Threads running JavaScript loops (the engine releases the GIL, so each takes a core)."""
    stop = threading.Event()

    def spin() -> None:
        program = Program(COUNTING, Limits(cpu_ms=10_000))
        n = iterations_for(20)
        while not stop.is_set():
            program.run({**EVENT, "n": n}, METADATA)

    threads = [threading.Thread(target=spin, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    time.sleep(0.05)
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def test_busy_threads_do_not_use_up_another_calls_cpu_limit() -> None:
    # C clock(), which the binding's own limit reads, counts every thread of the process: beside
    # two busy threads a 35 ms call passed its 100 ms limit.
    n = iterations_for(35)
    program = Program(COUNTING, LIMITS)
    with busy_threads(2):
        results = [program.run({**EVENT, "n": n}, METADATA) for _ in range(8)]
    assert [result.error for result in results] == [None] * 8
    assert all(result.cpu_ms < LIMITS.cpu_ms for result in results)
    assert not program.broken


def test_an_endless_loop_still_stops_at_its_own_cpu_limit_beside_busy_threads() -> None:
    program = Program("function transform(e) { for (;;) {} }", LIMITS)
    with busy_threads(2):
        result = program.run(EVENT, METADATA)
    assert result.error == "the transformation used more than 100 ms of CPU time"
    assert LIMITS.cpu_ms <= result.cpu_ms < LIMITS.cpu_ms + 50
    assert program.broken


def test_a_lower_cpu_limit_for_one_call() -> None:
    result = Program("function transform(e) { for (;;) {} }", LIMITS).run(EVENT, METADATA, 30)
    assert result.error == "the transformation used more than 30 ms of CPU time"
    assert 30 <= result.cpu_ms < 80


class CountingBudget(HeapBudget):
    """A `HeapBudget` that records the most calls it admitted at once."""

    def __init__(self, limits: Limits):
        super().__init__(limits)
        self._lock = threading.Lock()
        self.running = 0
        self.most = 0

    def __enter__(self) -> None:
        super().__enter__()
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        with self._lock:
            self.running -= 1
        super().__exit__(kind, error, trace)


def test_running_heaps_stay_within_the_sandbox_budget() -> None:
    limits = Limits(memory_bytes=16 * MB, sandbox_bytes=32 * MB)
    budget = CountingBudget(limits)
    assert budget.slots == 2
    n = iterations_for(20)
    results: list[Any] = []

    def deliver() -> None:
        program = Program(COUNTING, limits, budget)
        results.extend(program.run({**EVENT, "n": n}, METADATA) for _ in range(3))

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [result.error for result in results] == [None] * 18
    assert budget.most == 2


def test_the_default_budget_is_eight_default_heaps() -> None:
    assert HeapBudget(Limits()).slots == 8
    assert HeapBudget(Limits(memory_bytes=1024 * MB, sandbox_bytes=512 * MB)).slots == 1


def test_an_idle_context_gives_back_the_garbage_of_its_call() -> None:
    # A cycle keeps its objects until the engine's next collection: 20 MB would stay held.
    program = Program(
        "function transform(e) {\n"
        "  const a = {big: new Array(2500000).fill(1)};\n"
        "  a.self = a;\n"
        "  return e;\n"
        "}",
        LIMITS,
    )
    assert program.run(EVENT, METADATA).ok
    assert program.heap_bytes() <= LIMITS.idle_bytes
    assert not program.broken


def test_a_context_that_keeps_more_than_its_idle_heap_is_dropped() -> None:
    limits = Limits(idle_bytes=64 * 1024)  # below an empty context's own heap
    program = Program("function transform(e) { return e; }", limits)
    assert program.run(EVENT, METADATA).ok
    assert program.broken


def test_code_that_catches_out_of_memory_still_fails_and_its_context_is_dropped() -> None:
    source = (
        "function transform(e) {\n"
        "  try { e.pad = 'x'.repeat(200 * 1024 * 1024); } catch (error) { e.caught = true; }\n"
        "  return e;\n"
        "}"
    )
    program = Program(source, LIMITS)
    result = program.run(EVENT, METADATA)
    assert result.error == "the transformation used more than 64 MB of memory"
    assert program.broken


def test_out_of_memory_caught_in_to_json_fails_too() -> None:
    source = (
        "function transform(e) {\n"
        "  return {toJSON() { try { 'x'.repeat(200 * 1024 * 1024); } catch (error) {} "
        "return e; }};\n"
        "}"
    )
    program = Program(source, LIMITS)
    assert program.run(EVENT, METADATA).error == "the transformation used more than 64 MB of memory"
    assert program.broken


def test_the_cache_never_reuses_a_context_after_out_of_memory() -> None:
    cache = ProgramCache(LIMITS)
    key = ("w-1", "t-1", 1)
    source = (
        "function transform(e) {\n"
        "  if (e.event === 'big') { try { 'x'.repeat(200 * 1024 * 1024); } catch (error) {} }\n"
        "  return e;\n"
        "}"
    )
    first = cache.program(key, source)
    assert cache.run(key, source, {**EVENT, "event": "big"}, METADATA).error is not None
    assert cache.size() == 0
    assert cache.run(key, source, EVENT, METADATA).output == EVENT
    assert cache.program(key, source) is not first
