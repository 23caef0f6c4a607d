"""TtlCache: what the hot paths (write keys, routing, contracts, privacy, SDK settings) rely on."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from shared.services.cache import TtlCache


class FakeClock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def must_not_load() -> str:
    raise AssertionError("a fresh cached value was loaded again")


def loader(value: str, calls: list[str]) -> Callable[[], str]:
    def load() -> str:
        calls.append(value)
        return value

    return load


def test_a_value_is_loaded_once_and_served_until_the_ttl_passes() -> None:
    clock = FakeClock()
    cache: TtlCache[str] = TtlCache(5.0, monotonic=clock)
    calls: list[str] = []

    assert cache.get("key", loader("v1", calls)) == "v1"
    clock.now += 4.999
    assert cache.get("key", must_not_load) == "v1"
    assert calls == ["v1"]


def test_a_change_shows_once_the_ttl_has_passed() -> None:
    clock = FakeClock()
    cache: TtlCache[str] = TtlCache(5.0, monotonic=clock)
    calls: list[str] = []
    cache.get("key", loader("v1", calls))

    clock.now += 5.0
    assert cache.get("key", loader("v2", calls)) == "v2"
    # The reloaded value gets a TTL of its own, from the time it was loaded.
    clock.now += 4.0
    assert cache.get("key", must_not_load) == "v2"
    assert calls == ["v1", "v2"]


def test_keys_are_cached_separately() -> None:
    cache: TtlCache[str] = TtlCache(5.0, monotonic=FakeClock())
    calls: list[str] = []

    assert cache.get("a", loader("for a", calls)) == "for a"
    assert cache.get("b", loader("for b", calls)) == "for b"
    assert cache.get("a", must_not_load) == "for a"
    assert calls == ["for a", "for b"]


def test_a_missing_record_is_cached_too() -> None:
    # Ingest caches "no such write key" (None) so a flood of bad keys does not reach Firestore.
    cache: TtlCache[str | None] = TtlCache(5.0, monotonic=FakeClock())
    calls: list[str] = []

    def load_nothing() -> None:
        calls.append("looked up")

    assert cache.get("unknown", load_nothing) is None
    assert cache.get("unknown", must_not_load) is None
    assert calls == ["looked up"]


def test_invalidate_makes_the_next_get_load_again() -> None:
    cache: TtlCache[str] = TtlCache(5.0, monotonic=FakeClock())
    calls: list[str] = []
    cache.get("key", loader("old", calls))
    cache.get("other", loader("other", calls))

    cache.invalidate("key")
    cache.invalidate("never cached")  # nothing to drop: no error

    assert cache.get("key", loader("new", calls)) == "new"
    assert cache.get("other", must_not_load) == "other"
    assert calls == ["old", "other", "new"]


def test_it_holds_at_most_max_entries() -> None:
    cache: TtlCache[str] = TtlCache(5.0, max_entries=3, monotonic=FakeClock())
    calls: list[str] = []
    for key in ("a", "b", "c"):
        cache.get(key, loader(key, calls))
    for key in ("a", "b", "c"):
        assert cache.get(key, must_not_load) == key

    cache.get("d", loader("d", calls))

    assert cache.get("d", must_not_load) == "d"
    assert cache.get("a", loader("a again", calls)) == "a again"
    assert calls == ["a", "b", "c", "d", "a again"]


def test_the_default_clock_is_real_time() -> None:
    cache: TtlCache[str] = TtlCache(0.0)
    calls: list[str] = []
    cache.get("key", loader("v1", calls))
    # A TTL of zero on the real clock: every get is a miss.
    assert cache.get("key", loader("v2", calls)) == "v2"
    assert calls == ["v1", "v2"]


@pytest.mark.timeout(60)
def test_concurrent_gets_each_receive_their_own_keys_value() -> None:
    # Eight threads, as a function instance runs, on few entries so the bound's clearing and
    # the expiry run while other threads read.
    clock = FakeClock()
    cache: TtlCache[str] = TtlCache(1.0, max_entries=7, monotonic=clock)
    keys = [f"key-{i}" for i in range(20)]
    errors: list[BaseException] = []
    wrong: list[tuple[str, str]] = []
    loads: list[str] = []
    start = threading.Barrier(8)

    def worker(slot: int) -> None:
        try:
            start.wait()
            for index in range(3000):
                key = keys[(index * 7 + slot) % len(keys)]
                if index % 50 == 0:
                    clock.now += 0.5
                value = cache.get(key, loader(f"value of {key}", loads))
                if value != f"value of {key}":
                    wrong.append((key, value))
        except BaseException as error:  # reported by the assertion below, not lost in the thread
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(slot,)) for slot in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert wrong == []
