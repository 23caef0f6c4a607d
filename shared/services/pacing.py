"""Keeping to a destination's documented request rate inside one deliver instance.

A token bucket per destination: `RateLimit(requests, per_seconds)` refills `requests` tokens
over `per_seconds`, holding at most `requests` (a burst of at most one window). A send takes a
token, waiting for one when none is left, but never past its deadline: a send that cannot start
in time is left for Pub/Sub's redelivery instead (deliver's start budget), so pacing never holds
a message past its ack deadline. Instances pace independently: docs/DESTINATIONS.md says how
deliver's instance cap and these rates combine, and a vendor's 429 is retried after a backoff.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from shared.destinations.base import RateLimit
from shared.domain.rate_limit import TokenBucket

# Destinations one instance keeps a bucket for; beyond, the buckets start over (full).
MAX_BUCKETS = 10_000


class Pacer:
    """Token buckets by key (a destination id); safe to share between threads."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str, limit: RateLimit | None, deadline: float) -> bool:
        """Take a token, waiting for one (no wait without a limit); False, with nothing taken,
        when none would come by `deadline` (a `clock` reading)."""
        if limit is None:
            return True
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
            # Another thread may take the token first: then this one waits again.
            self._sleep(wait)
