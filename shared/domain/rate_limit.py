"""Per-source rate limits: the setting, one instance's token bucket, and the shared window.

A limited source's events are admitted by each ingest instance against a local token bucket.
At most once a second the instance adds what it admitted to the source's counter for the
current window, shared by every instance, and learns the window's totals in the same write.
From those it refuses the source once the window's budget is spent, and refills its bucket at
its share of the source's recent traffic, so that N instances together refill at the source's
rate instead of N times it. docs/INGEST.md ("Rate limits") explains the design and its bounds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

# The shared counting window. Long enough that the ~1 s an instance's knowledge lags behind
# is a small part of it; short enough that a source over its budget waits at most this long.
WINDOW_SECONDS = 10
# Each instance writes a limited source's counter at most this often: one write per second
# per instance and source, never one per request.
FLUSH_SECONDS = 1.0
# After a failed write the instance counts alone (its bucket at its last share) this long.
FLUSH_RETRY_SECONDS = 5.0
# An instance's share never drops below this: it still admits something, and learns its
# share again from its next write.
MIN_SHARE = 0.01
MAX_EVENTS_PER_SECOND = 1_000_000
MAX_BURST = 10_000_000
# Window documents carry `expires_at` this long after their window (Firestore's TTL policy).
WINDOW_RETENTION_SECONDS = 3600

RATE_WINDOWS = "rate_windows"
ADMITTED = "admitted"
REQUESTED = "requested"


class RateLimit(BaseModel):
    """How many events per second a source may send, with bursts up to `burst` events.

    Events, not requests: a 100-event batch costs 100, as RudderStack's gateway counts them and
    as Segment states its ingestion limits."""

    model_config = ConfigDict(frozen=True)

    events_per_second: int = Field(ge=1, le=MAX_EVENTS_PER_SECOND)
    burst: int = Field(ge=1, le=MAX_BURST)

    @property
    def window_budget(self) -> int:
        """Events every instance together may admit in one window."""
        return self.events_per_second * WINDOW_SECONDS + self.burst

    def describe(self) -> str:
        return f"{self.events_per_second} events per second (bursts of up to {self.burst})"


def rate_window_path(source_id: str, window: int) -> str:
    """The shared counter of a source's window (source ids are unique across workspaces)."""
    return f"{RATE_WINDOWS}/{source_id}-{window}"


def window_of(moment: float) -> int:
    """The window a Unix time falls in: windows are aligned on the epoch, the same in every
    instance."""
    return int(moment // WINDOW_SECONDS)


def window_end(window: int) -> float:
    return float((window + 1) * WINDOW_SECONDS)


def retry_after_seconds(wait: float) -> int:
    """`Retry-After` in whole seconds, at least 1: a client told 0 would retry at once."""
    return max(1, math.ceil(wait))


@dataclass
class TokenBucket:
    """Tokens refilled at `rate` per second up to `capacity`; a request takes one per event."""

    rate: float
    capacity: float
    tokens: float
    updated_at: float

    @classmethod
    def full(cls, rate: float, capacity: float, now: float) -> TokenBucket:
        return cls(rate, capacity, capacity, now)

    def take(self, cost: float, now: float) -> float:
        """Take `cost` tokens: 0.0 when taken, else the seconds until they would be.

        A request costing more than the capacity (a batch larger than the burst) is taken when
        the bucket is full and leaves it in debt: it is admitted, and the rate still holds on
        average, where refusing it would refuse it forever."""
        self._refill(now)
        needed = min(cost, self.capacity)
        if self.tokens >= needed:
            self.tokens -= cost
            return 0.0
        return (needed - self.tokens) / self.rate

    def set_rate(self, rate: float, now: float) -> None:
        """Refill at `rate` from now on (what accrued until now stays)."""
        self._refill(now)
        self.rate = rate

    def drain(self, now: float) -> None:
        """Empty the bucket (a debt stays a debt)."""
        self._refill(now)
        self.tokens = min(self.tokens, 0.0)

    def _refill(self, now: float) -> None:
        # A clock stepping back never takes tokens away.
        elapsed = max(0.0, now - self.updated_at)
        self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
        self.updated_at = max(self.updated_at, now)


@dataclass(frozen=True)
class Flush:
    """What one instance adds to a window's shared counter in one write."""

    window: int
    admitted: int
    requested: int

    def amounts(self) -> dict[str, int]:
        return {ADMITTED: self.admitted, REQUESTED: self.requested}


class SourceThrottle:
    """One instance's view of one limited source: its bucket, its share, and the window.

    Pure and single-threaded: the caller serialises calls and does the writes. `requested`
    counts every event asked for (admitted or not), so shares follow demand: an instance that
    refuses much because its share is small gets a larger one at its next write."""

    def __init__(self, limit: RateLimit, now: float):
        self.limit = limit
        self.share = 1.0  # alone until a write shows otherwise: a lone instance is exact
        self._bucket = TokenBucket.full(limit.events_per_second, limit.burst, now)
        self._window = window_of(now)
        self._known_admitted = 0  # the window's total as of this instance's last write
        # The window's requested total after this instance's previous write; None until its
        # first write in the window, whose interval started before the window did.
        self._share_basis: int | None = None
        self._unflushed_admitted = 0
        self._unflushed_requested = 0
        self._in_flight: Flush | None = None
        self._next_flush_at = now

    def admit(self, cost: int, now: float) -> int:
        """Count a request of `cost` events: 0 when admitted, else `Retry-After` seconds."""
        self._roll(now)
        self._unflushed_requested += cost
        admitted = self._known_admitted + self._unflushed_admitted
        if self._in_flight is not None and self._in_flight.window == self._window:
            admitted += self._in_flight.admitted
        # The window's first request always fits, however large, as a full bucket takes it.
        if admitted and admitted + cost > self.limit.window_budget:
            # Nothing accrues while the budget is spent: otherwise every instance would
            # release a bucketful at once when the next window starts.
            self._bucket.drain(now)
            return retry_after_seconds(window_end(self._window) - now)
        wait = self._bucket.take(cost, now)
        if wait:
            # A small share refills slowly; it is learnt again within a second.
            return retry_after_seconds(min(wait, WINDOW_SECONDS))
        self._unflushed_admitted += cost
        return 0

    def take_flush(self, now: float) -> Flush | None:
        """The counts to add to the shared counter now, if a write is due (then in flight)."""
        self._roll(now)
        if self._in_flight is not None or now < self._next_flush_at:
            return None
        if not self._unflushed_requested:
            return None
        flush = Flush(self._window, self._unflushed_admitted, self._unflushed_requested)
        self._in_flight = flush
        self._unflushed_admitted = self._unflushed_requested = 0
        self._next_flush_at = now + FLUSH_SECONDS
        return flush

    def flushed(self, flush: Flush, totals: Mapping[str, int], now: float) -> None:
        """The write of `flush` answered the window's totals: adopt them and the new share."""
        self._in_flight = None
        self._roll(now)
        if flush.window != self._window:
            return  # a past window's totals say nothing about this one
        self._known_admitted = max(self._known_admitted, totals[ADMITTED])
        requested = totals[REQUESTED]
        if self._share_basis is not None and requested > self._share_basis:
            # Everything requested of any instance since this one's previous write, of which
            # this instance's part is what it just wrote.
            self.share = min(1.0, max(MIN_SHARE, flush.requested / (requested - self._share_basis)))
            # The rate follows the share; the capacity stays the whole burst, so that a
            # compliant source spread thinly over many instances is not refused for want of
            # a few tokens in each (the window's budget bounds what the bursts add up to).
            self._bucket.set_rate(self.limit.events_per_second * self.share, now)
        self._share_basis = requested

    def flush_failed(self, flush: Flush, now: float) -> None:
        """The write failed: count alone for a while, and add these counts to the next one.
        (A write that timed out may have been applied: counted twice, it errs towards
        refusing, never towards exceeding.)"""
        self._in_flight = None
        self._next_flush_at = now + FLUSH_RETRY_SECONDS
        self._roll(now)
        if flush.window == self._window:
            self._unflushed_admitted += flush.admitted
            self._unflushed_requested += flush.requested

    def _roll(self, now: float) -> None:
        window = window_of(now)
        if window == self._window:
            return
        # A new window starts empty; what was not written of the last one no longer matters.
        self._window = window
        self._known_admitted = 0
        self._share_basis = None
        self._unflushed_admitted = self._unflushed_requested = 0
