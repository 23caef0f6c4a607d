"""Rate limits in one instance, shared with the others through a counter store: sources' in
ingest, and destinations' in deliver (shared/services/pacing.py).

The decisions are `SourceThrottle`'s (shared/domain/rate_limit.py); this keeps one per limited
name, serialises the calls to it, and makes its writes: at most one per name per second, by the
request that finds one due, never one per request. docs/INGEST.md ("Rate limits").
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from shared.domain.errors import StreamsError, TooManyRequests
from shared.domain.rate_limit import (
    WINDOW_RETENTION_SECONDS,
    Flush,
    RateLimit,
    SourceThrottle,
    rate_window_path,
    window_end,
)
from shared.domain.sources import WriteKey
from shared.ports import CounterStore

log = logging.getLogger("streams.ingest")

# Limited sources one instance keeps a view of; beyond, the views start over (a source's view
# rebuilds itself from its next write).
MAX_SOURCES = 10_000


class RateLimiter:
    """Admits or refuses the events of limited sources; unlimited sources cost nothing."""

    def __init__(
        self,
        counters: Callable[[], CounterStore] | None = None,
        clock: Callable[[], float] = time.time,
    ):
        # None: this instance counts alone (its bucket at the whole rate), as when the store
        # is unavailable. The store is built on first use: most sources have no limit.
        self._counters = counters
        # Wall-clock time: windows must be the same in every instance.
        self._clock = clock
        self._throttles: dict[str, SourceThrottle] = {}
        self._lock = threading.Lock()

    def admit(self, key: WriteKey, events: int) -> None:
        """Count a request of `events` events of the key's source, or raise `TooManyRequests`
        (429) with the seconds to wait; nothing of a refused request may be published."""
        limit = key.rate_limit
        if limit is None or events <= 0:
            return
        wait = self.wait(key.source_id, limit, events)
        if wait:
            raise TooManyRequests(
                f"source {key.source_id} is over its rate limit of {limit.describe()}; "
                f"nothing of this request was published: retry after {wait} s",
                retry_after=wait,
            )

    def wait(self, name: str, limit: RateLimit, cost: int) -> int:
        """Count `cost` against the limit of `name` (a source id, or `destination-<id>` for
        deliver's sends): 0 when admitted, else the whole seconds to wait first."""
        now = self._clock()
        with self._lock:
            throttle = self._throttles.get(name)
            if throttle is None or throttle.limit != limit:
                # New, or the limit changed (seen within the write-key cache interval).
                if len(self._throttles) >= MAX_SOURCES:
                    self._throttles.clear()
                throttle = self._throttles[name] = SourceThrottle(limit, now)
            flush = throttle.take_flush(now) if self._counters is not None else None
        if flush is not None:
            # Written before deciding, so that this request is decided on the fresh totals.
            self._flush(name, throttle, flush)
        with self._lock:
            return throttle.admit(cost, self._clock())

    def _flush(self, source_id: str, throttle: SourceThrottle, flush: Flush) -> None:
        assert self._counters is not None
        expires_at = datetime.fromtimestamp(
            window_end(flush.window) + WINDOW_RETENTION_SECONDS, UTC
        )
        try:
            totals = self._counters().increment(
                rate_window_path(source_id, flush.window), flush.amounts(), expires_at
            )
        except StreamsError as exc:
            # The limit is then this instance's bucket alone: an outage of the shared counter
            # must never refuse or fail events that the local limit admits.
            log.warning("source %s: shared window not counted (%s)", source_id, exc)
            with self._lock:
                throttle.flush_failed(flush, self._clock())
            return
        with self._lock:
            throttle.flushed(flush, totals, self._clock())
