"""The per-instance TTL cache (`shared.services.cache.TtlCache`) against `cachetools` (issue 21).

Issue 21 asks that a hand-written piece be replaced by a maintained library where the library
is measured no slower. `TtlCache.get` sits on hot paths (ingest's write-key lookup per request,
the workspace's routing config per message, contracts, privacy, SDK settings), so this measures,
in the same run, with the same keys and loads:

- `baseline`: `TtlCache` as the project has it (a dict of (expiry, value); a hit takes no lock,
  a store takes one; the whole dict is dropped when full);
- `cachetools_lock`: `cachetools.TTLCache` (`timer=` the injected clock) behind a
  `threading.Lock` taken on every access, since its caches are not thread-safe;
- `cachetools_cached`: the same cache through the `cachetools.cached(cache, key=, lock=)`
  decorator, the library's own locked form.

All three offer what the call sites need: `get(key, load)`, `invalidate(key)`, a bound, an
injected clock; `check_behaviour` confirms each serves a value within the TTL, reloads after it
and after `invalidate`, before anything is timed.

Scenarios:

- `hit`: every `get` finds its key (100 keys, like a function's write keys or workspaces): the
  hot path;
- `miss`: every `get` asks for a key never seen, so it loads (a constant) and stores, and once
  the bound (10,000) is reached evicts;
- `threads8`: 8 threads hitting the same cache at once (a function instance runs 8 request
  threads), with the machine's CPUs as the process was given them (not pinned).

The single-thread scenarios run pinned to one core with the implementations taking turns on
chunks of calls (`bench.running.interleaved`: the machine is shared and drifts); `threads8`
runs each implementation in turn, the order rotating each round. Medians over `--rounds` (3).
Writes bench/results/cache-<UTC>.json and cache-latest.json. Exit status 1 when an
implementation misbehaves (a hit that loads, a stale value, a wrong value under threads).
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

import cachetools

from bench.measuring import (
    Sample,
    machine_under_load,
    one_minute_load,
    package_versions,
    round_ratios,
)
from bench.reporting import Column, machine_summary, print_table, report_head, write_report
from bench.running import interleaved, pin_to_one_core, rotated
from shared.services.cache import TtlCache

V = TypeVar("V")

KEYS = 100
MAX_ENTRIES = 10_000
# Long enough that no entry expires while a scenario runs (a hit that reloads is a failure);
# the expiry check still runs on every call.
TTL_SECONDS = 3600.0
# The services' usual TTL, for the behaviour check on a fake clock.
CHECK_TTL_SECONDS = 5.0
THREADS = 8


class Cache(Protocol):
    def get(self, key: Hashable, load: Callable[[], Any]) -> Any: ...

    def invalidate(self, key: Hashable) -> None: ...


class _LockedTtlCache(Generic[V]):
    """A `cachetools.TTLCache` (`timer=` the injected clock) and the lock that guards it, since
    the library's caches are not thread-safe; the two forms below differ only in `get`."""

    def __init__(
        self,
        ttl_seconds: float,
        max_entries: int = MAX_ENTRIES,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self._cache: cachetools.TTLCache[Hashable, V] = cachetools.TTLCache(
            max_entries, ttl_seconds, timer=monotonic
        )
        self._lock = threading.Lock()

    def invalidate(self, key: Hashable) -> None:
        with self._lock:
            self._cache.pop(key, None)


class CachetoolsLocked(_LockedTtlCache[V]):
    """`cachetools.TTLCache` behind one lock taken on every read and write."""

    def get(self, key: Hashable, load: Callable[[], V]) -> V:
        with self._lock:
            try:
                return self._cache[key]
            except KeyError:
                pass
        # Loaded outside the lock, as TtlCache does: a slow Firestore read must not stall
        # the threads that want other keys.
        value = load()
        with self._lock:
            self._cache[key] = value
        return value


class CachetoolsCached(_LockedTtlCache[V]):
    """The same cache through `cachetools.cached`, which takes the lock around lookup and store
    and calls the function outside it."""

    def __init__(
        self,
        ttl_seconds: float,
        max_entries: int = MAX_ENTRIES,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        super().__init__(ttl_seconds, max_entries, monotonic)

        # The cache key is the caller's key alone; `load` differs on every call.
        @cachetools.cached(self._cache, key=lambda key, load: key, lock=self._lock)
        def cached_get(key: Hashable, load: Callable[[], V]) -> V:
            return load()

        self._get = cached_get

    def get(self, key: Hashable, load: Callable[[], V]) -> V:
        return self._get(key, load)


IMPLEMENTATIONS: dict[str, Callable[..., Cache]] = {
    "baseline": TtlCache,
    "cachetools_lock": CachetoolsLocked,
    "cachetools_cached": CachetoolsCached,
}


class HitLoaded(AssertionError):
    """A `get` of a cached, fresh key called its loader."""


def constant(value: V) -> Callable[[], V]:
    """A loader returning `value` (bound now, not when called)."""
    return lambda: value


def never_load() -> Any:
    raise HitLoaded("a hit called its loader")


def check_behaviour(make: Callable[..., Cache]) -> list[str]:
    """What the call sites rely on, on a fake clock; the failures (empty when it behaves)."""
    now = [100.0]
    cache = make(CHECK_TTL_SECONDS, max_entries=MAX_ENTRIES, monotonic=lambda: now[0])
    problems = []
    if cache.get("k", lambda: 1) != 1:
        problems.append("first get did not return the loaded value")
    try:
        if cache.get("k", never_load) != 1:
            problems.append("a hit returned another value")
    except HitLoaded:
        problems.append("a hit within the TTL loaded again")
    now[0] += CHECK_TTL_SECONDS + 0.001
    if cache.get("k", lambda: 2) != 2:
        problems.append("a value older than the TTL was served")
    cache.invalidate("k")
    if cache.get("k", lambda: 3) != 3:
        problems.append("an invalidated value was served")
    return problems


# --- the scenarios -----------------------------------------------------------------------------


def single_thread_engines(
    scenario: str, caches: Mapping[str, Cache]
) -> dict[str, Callable[[int, int], None]]:
    """Per implementation, a function doing calls [start, stop) of the scenario."""
    keys = [f"write-key-{i:03d}" for i in range(KEYS)]
    engines: dict[str, Callable[[int, int], None]] = {}
    for name, cache in caches.items():
        if scenario == "hit":
            for key in keys:
                cache.get(key, constant(key))

            def hit(start: int, stop: int, get: Any = cache.get) -> None:
                for index in range(start, stop):
                    get(keys[index % KEYS], never_load)

            engines[name] = hit
        else:
            # A key never asked for before on every call (interleaved repeats chunks, so the
            # call's index would hit on the second pass).
            fresh = itertools.count()

            def miss(start: int, stop: int, get: Any = cache.get, fresh: Any = fresh) -> None:
                for _ in range(start, stop):
                    get(next(fresh), int)

            engines[name] = miss
    return engines


def calls_summary(samples: Sequence[Sample]) -> dict[str, Any]:
    """Medians over the rounds, in nanoseconds per call and calls per second (a sample's
    `events` are calls here)."""
    cpu = [s.cpu_rate for s in samples]
    wall = [s.wall_rate for s in samples]
    return {
        "ns_per_call_cpu": round(1e9 / statistics.median(cpu), 1),
        "calls_per_second_cpu": round(statistics.median(cpu)),
        "calls_per_second_wall": round(statistics.median(wall)),
        "cpu_rate_min_max": [round(min(cpu)), round(max(cpu))],
        "rounds": [
            {"calls": s.events, "wall_s": round(s.wall_s, 4), "cpu_s": round(s.cpu_s, 4)}
            for s in samples
        ],
    }


def ratios_to_baseline(samples: Mapping[str, Sequence[Sample]]) -> dict[str, Any]:
    """Each library form against the baseline: medians of the per-round ratios."""
    return {
        f"ratio_{name}_vs_baseline": round_ratios(s, samples["baseline"])
        for name, s in samples.items()
        if name != "baseline"
    }


def run_single_thread(
    scenario: str, calls: int, chunk: int, rounds: int, sample_seconds: float
) -> dict[str, Any]:
    caches = {name: make(TTL_SECONDS) for name, make in IMPLEMENTATIONS.items()}
    samples, passes = interleaved(
        single_thread_engines(scenario, caches), calls, chunk, rounds, sample_seconds
    )
    return {
        "calls": calls,
        "passes_per_chunk": passes,
        **{name: calls_summary(s) for name, s in samples.items()},
        **ratios_to_baseline(samples),
    }


def threaded_hits(cache: Cache, threads: int, calls_per_thread: int) -> tuple[Sample, int]:
    """`threads` threads released together, each hitting the cache; and how many wrong values."""
    keys = [f"write-key-{i:03d}" for i in range(KEYS)]
    for key in keys:
        cache.get(key, constant(key))
    start = threading.Barrier(threads + 1)
    wrong = [0] * threads

    def worker(slot: int) -> None:
        get, bad = cache.get, 0
        start.wait()
        for index in range(calls_per_thread):
            key = keys[(index + slot) % KEYS]
            if get(key, never_load) is not key:
                bad += 1
        wrong[slot] = bad

    workers = [threading.Thread(target=worker, args=(slot,)) for slot in range(threads)]
    for thread in workers:
        thread.start()
    cpu, wall = time.process_time(), time.perf_counter()
    start.wait()
    for thread in workers:
        thread.join()
    sample = Sample(
        threads * calls_per_thread, time.perf_counter() - wall, time.process_time() - cpu
    )
    return sample, sum(wrong)


def run_threads(threads: int, calls_per_thread: int, rounds: int) -> dict[str, Any]:
    names = list(IMPLEMENTATIONS)
    samples: dict[str, list[Sample]] = {name: [] for name in names}
    wrong = dict.fromkeys(names, 0)
    for name in names:  # warm-up, not counted
        threaded_hits(IMPLEMENTATIONS[name](TTL_SECONDS), threads, calls_per_thread // 10)
    for turn in range(rounds):
        for name in rotated(names, turn):
            sample, bad = threaded_hits(
                IMPLEMENTATIONS[name](TTL_SECONDS), threads, calls_per_thread
            )
            samples[name].append(sample)
            wrong[name] += bad
    return {
        "threads": threads,
        "calls_per_thread": calls_per_thread,
        "wrong_values": wrong,
        **{name: calls_summary(s) for name, s in samples.items()},
        **ratios_to_baseline(samples),
    }


def run(args: argparse.Namespace) -> int:
    started_at = datetime.now(UTC)
    behaviour = {name: check_behaviour(make) for name, make in IMPLEMENTATIONS.items()}
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    load_before = one_minute_load()
    cpu = pin_to_one_core(args.cpu)
    scenarios: dict[str, dict[str, Any]] = {}
    failures = sum(len(p) for p in behaviour.values())
    for scenario in ("hit", "miss"):
        print(f"  {scenario}: {args.rounds} rounds", flush=True)
        try:
            scenarios[scenario] = run_single_thread(
                scenario, args.calls, args.chunk, args.rounds, args.sample_seconds
            )
        except HitLoaded as error:
            print(f"  {scenario}: {error}")
            failures += 1
    if allowed is not None:
        os.sched_setaffinity(0, allowed)
    print(f"  threads{args.threads}: {args.rounds} rounds", flush=True)
    threaded = run_threads(args.threads, args.calls_per_thread, args.rounds)
    scenarios[f"threads{args.threads}"] = threaded
    failures += sum(threaded["wrong_values"].values())
    hit_ratios = {
        name: scenarios["hit"][f"ratio_{name}_vs_baseline"]["cpu"]
        for name in IMPLEMENTATIONS
        if name != "baseline" and "hit" in scenarios
    }
    machine = machine_under_load(
        load_before, pinned_cpu_single_thread=cpu, cpus_threads_scenario=allowed
    )
    report = {
        **report_head("cache", started_at, machine),
        "settings": settings(args),
        "behaviour_problems": behaviour,
        "scenarios": scenarios,
        "hit_ratio_vs_baseline_cpu": hit_ratios,
        "library_no_slower_on_hit": {name: r >= 1.0 for name, r in hit_ratios.items()},
        "failures": failures,
    }
    write_report("cache", report)
    print_results(report)
    return 1 if failures else 0


def settings(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "baseline": "shared.services.cache.TtlCache",
        "cachetools_lock": "cachetools.TTLCache(timer=) + threading.Lock on every access",
        "cachetools_cached": "cachetools.cached(TTLCache, key=, lock=threading.Lock())",
        "keys": KEYS,
        "max_entries": MAX_ENTRIES,
        "ttl_seconds": TTL_SECONDS,
        "calls": args.calls,
        "chunk": args.chunk,
        "rounds": args.rounds,
        "sample_seconds": args.sample_seconds,
        "timing": "hit/miss: pinned, interleaved chunks, this thread's CPU time and "
        "perf_counter; threads: whole-process CPU time and perf_counter; medians over rounds",
        "versions": package_versions("cachetools"),
    }


def print_results(report: dict[str, Any]) -> None:
    m = report["machine"]
    print(f"{machine_summary(m)}; median of {report['settings']['rounds']} rounds")
    columns = [
        Column("scenario", 10, align="<"),
        Column("implementation", 20, align="<"),
        Column("ns/call cpu", 12, ",.0f"),
        Column("calls/s wall", 14, ","),
        Column("x baseline cpu", 16, ".2f"),
    ]
    rows = [
        [
            scenario,
            name,
            r[name]["ns_per_call_cpu"],
            r[name]["calls_per_second_wall"],
            r.get(f"ratio_{name}_vs_baseline", {}).get("cpu"),
        ]
        for scenario, r in report["scenarios"].items()
        for name in IMPLEMENTATIONS
    ]
    print_table(columns, rows)
    for name, problems in report["behaviour_problems"].items():
        for problem in problems:
            print(f"MISBEHAVES {name}: {problem}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cache", description=__doc__)
    parser.add_argument("--calls", type=int, default=10_000, help="calls per pass (hit, miss)")
    parser.add_argument("--chunk", type=int, default=500, help="calls per interleaved turn")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--sample-seconds", type=float, default=0.15, help="CPU seconds per implementation/round"
    )
    parser.add_argument("--threads", type=int, default=THREADS)
    parser.add_argument("--calls-per-thread", type=int, default=10_000)
    parser.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: the last)")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
