"""A small per-instance TTL cache: configuration read once per interval, not once per event."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


# Kept over cachetools (issue 21): its locked TTLCache measured ~4x slower on a hit, the hot
# path (bench/cache.py; figures in docs/BENCHMARKS.md).
class TtlCache(Generic[V]):
    """Values by key, reloaded when older than `ttl_seconds`; a change shows within that time."""

    def __init__(
        self,
        ttl_seconds: float,
        max_entries: int = 10_000,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._monotonic = monotonic
        self._entries: dict[Hashable, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, load: Callable[[], V]) -> V:
        now = self._monotonic()
        # No lock on a read: one dict lookup is atomic under the GIL, and hits are the hot path.
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            return entry[1]
        value = load()
        with self._lock:
            if len(self._entries) >= self._max_entries:
                self._entries.clear()
            self._entries[key] = (now + self._ttl, value)
        return value

    def invalidate(self, key: Hashable) -> None:
        self._entries.pop(key, None)
