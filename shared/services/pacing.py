"""Keeping to a destination's documented request rate, in each deliver instance and across them.

Each instance keeps a token bucket per destination: `RateLimit(requests, per_seconds)` refills
`requests` tokens over `per_seconds`, holding at most `requests`, so its sends are spread out.
Then the destination's shared window (the `RateLimiter` ingest uses for sources, counted in the
counter store at most once a second per instance and destination, never per send) keeps every
instance together within the rate: an instance learns its share of the destination's sends and
refills at that share. A send waits for both, but never past its deadline: a send that cannot
start in time is left for Pub/Sub's redelivery instead (deliver's start budget), so pacing never
holds a message past its ack deadline. A vendor's 429 is retried after a backoff all the same.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from shared.destinations.base import RateLimit
from shared.domain import rate_limit
from shared.domain.rate_limit import TokenBucket
from shared.services.rate_limiter import RateLimiter

# Destinations one instance keeps a bucket for; beyond, the buckets start over (full).
MAX_BUCKETS = 10_000
MIN_WAIT_SECONDS = 0.001


class Pacer:
    """Token buckets by key (a destination id); safe to share between threads."""

    def __init__(
        self,
        shared: RateLimiter | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Without `shared`, each instance keeps to the rate alone (tests, one instance)."""
        self._shared = shared
        self._clock = clock
        self._sleep = sleep
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str, limit: RateLimit | None, deadline: float) -> bool:
        """Take a token, waiting for one (no wait without a limit); False when none would come
        by `deadline` (a `clock` reading)."""
        if limit is None:
            return True
        return self._local(key, limit, deadline) and self._everywhere(key, limit, deadline)

    def _everywhere(self, key: str, limit: RateLimit, deadline: float) -> bool:
        if self._shared is None:
            return True
        # The shared window counts whole requests per second; a rate under one a second is
        # kept by the local bucket alone.
        per_second = max(1, int(limit.requests / limit.per_seconds))
        window = rate_limit.RateLimit(events_per_second=per_second, burst=limit.requests)
        while wait := self._shared.wait(f"destination-{key}", window, 1):
            if self._clock() + wait > deadline:
                return False
            self._sleep(wait)
        return True

    def _local(self, key: str, limit: RateLimit, deadline: float) -> bool:
        while True:
            with self._lock:
                now = self._clock()
                bucket = self._buckets.get(key)
                if bucket is None or bucket.capacity != limit.requests:
                    if len(self._buckets) >= MAX_BUCKETS:
                        self._buckets.clear()
                    rate = limit.requests / limit.per_seconds
                    bucket = self._buckets[key] = TokenBucket.full(rate, limit.requests, now)
                wait = bucket.take(1, now)
            if wait == 0:
                return True
            if now + wait > deadline:
                return False
            # Another thread may take the token first: then this one waits again. At least a
            # millisecond: a wait left by rounding must still move the clock on.
            self._sleep(max(wait, MIN_WAIT_SECONDS))
