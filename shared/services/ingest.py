"""Ingest: resolve the write key, normalise the request, publish accepted events, answer."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from shared.domain import ids
from shared.domain.errors import (
    Conflict,
    Forbidden,
    InvalidRequest,
    StreamsError,
    Unauthorized,
)
from shared.domain.event import CanonicalEvent
from shared.domain.events import (
    IngestContext,
    Rejection,
    normalise_request,
    normalise_stream_event,
)
from shared.domain.origins import origin_allowed
from shared.domain.privacy import apply_ip_policy
from shared.domain.sources import EventSource, WriteKey, source_path
from shared.ports import ConfigStore, Publisher, Write
from shared.services.cache import TtlCache
from shared.services.rate_limiter import RateLimiter
from shared.services.sources import EventSources

log = logging.getLogger("streams.ingest")

# One Pub/Sub message carries every accepted event of one request (see docs/INGEST.md):
# the emulator pushes ~300 messages/s and production bills per message, so per-event
# messages would cap a batch-sending source at a few hundred events/s.
MESSAGE_SCHEMA = "streams.events.v1"
# last_used_at is written at most this often per source and instance, never per request.
LAST_USED_WRITE_SECONDS = 30.0
TEST_EVENT = {
    "event": "Streams Test Event",
    "anonymousId": "streams-test-event",
    "properties": {"test": True},
    "context": {"library": {"name": "streams-test-event", "version": "1"}},
}


def encode_events(events: list[CanonicalEvent]) -> bytes:
    """The message body: the events as compact UTF-8 JSON.

    orjson takes ~0.6 us per event where the standard encoder takes ~6 (a tenth of a 100-event
    batch's CPU). It writes NaN and infinities as null, where the standard encoder wrote tokens
    no JSON parser outside Python accepts. What it refuses (integers beyond 64 bits, a lone
    surrogate that a client sent as `\\ud800`) normalisation has already refused, per event.
    """
    return orjson.dumps(events)


@dataclass(frozen=True)
class IngestResult:
    """What one request achieved: the events published and the items refused."""

    message_ids: list[str]
    rejections: list[Rejection]


class LastUsedTracker:
    """Keeps each source's `last_used_at` current with one write per interval, not per request."""

    def __init__(
        self,
        store: ConfigStore,
        interval_seconds: float = LAST_USED_WRITE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self._store = store
        self._interval = interval_seconds
        self._monotonic = monotonic
        self._written_at: dict[str, float] = {}
        self._lock = threading.Lock()

    def touch(self, key: WriteKey, moment: datetime) -> None:
        now = self._monotonic()
        with self._lock:
            due = now - self._written_at.get(key.source_id, float("-inf")) >= self._interval
            if due:
                self._written_at[key.source_id] = now
        if not due:
            return
        path = source_path(key.workspace_id, key.source_id)
        try:
            self._store.commit([Write("update", path, {"last_used_at": ids.isoformat(moment)})])
        except StreamsError:
            # Bookkeeping must never fail an ingest that Pub/Sub already acknowledged.
            log.warning("could not record last_used_at of source %s", key.source_id)


class Ingest:
    """Accepts Segment-style requests for a source and publishes them to the source's topic."""

    def __init__(
        self,
        sources: EventSources,
        publisher: Publisher,
        store: ConfigStore,
        key_cache_seconds: float,
        clock: Callable[[], datetime] = ids.utcnow,
        new_message_id: Callable[[], str] = ids.new_id,
        rate_limiter: RateLimiter | None = None,
    ):
        self._sources = sources
        # Without a shared counter (tests of one instance), sources' limits hold per instance.
        self._rate_limiter = rate_limiter or RateLimiter()
        self._keys: TtlCache[WriteKey | None] = TtlCache(key_cache_seconds)
        self._publisher = publisher
        self._last_used = LastUsedTracker(store)
        self._clock = clock
        self._new_message_id = new_message_id

    def authorize(self, write_key: str | None, origin: str | None = None) -> WriteKey:
        """The active source behind a write key; `Unauthorized` otherwise, and `Forbidden` when
        `origin` (a web page's `Origin` header) is not one the source allows."""
        if not write_key:
            raise Unauthorized(
                "missing write key: send X-Write-Key, HTTP Basic username, ?writeKey= or writeKey"
            )
        # A key that cannot be one is refused unread, exactly like an unknown one: the key is a
        # document id, and `wk_a/b` or a lone surrogate would fail the lookup itself.
        if not ids.is_write_key(write_key):
            raise Unauthorized("unknown write key")
        record = self._keys.get(write_key, lambda: self._sources.resolve_write_key(write_key))
        if record is None:
            raise Unauthorized("unknown write key")
        if record.status != "active":
            raise Unauthorized("write key revoked")
        # Checked on the cached record: refusing an origin costs no read.
        if not origin_allowed(record.allowed_origins, origin):
            raise Forbidden(
                f"Origin {origin} is not one of this source's allowed origins", field="Origin"
            )
        return record

    def context(self, key: WriteKey, request_ip: str | None) -> IngestContext:
        return IngestContext(key.workspace_id, key.source_id, self._clock(), request_ip)

    def accept(
        self, key: WriteKey, body: Any, call_type: str | None, request_ip: str | None
    ) -> IngestResult:
        """Normalise a request body and publish its valid events; bad items become rejections."""
        ctx = self.context(key, request_ip)
        batch = normalise_request(body, call_type, ctx, self._new_message_id)
        self.publish(key, ctx, batch.events)
        return IngestResult([event["messageId"] for event in batch.events], batch.rejections)

    def accept_stream_event(self, key: WriteKey, body: Any, request_ip: str | None) -> str:
        """Publish a /v1/streams `EventInput`; return its messageId (or `InvalidRequest`)."""
        ctx = self.context(key, request_ip)
        outcome = normalise_stream_event(body, ctx, self._new_message_id)
        if isinstance(outcome, Rejection):
            raise InvalidRequest(outcome.reason, field=outcome.field)
        self.publish(key, ctx, [outcome])
        return str(outcome["messageId"])

    def authorize_source(self, source: EventSource, field: str = "sourceId") -> WriteKey:
        """A source's key record for publishing on behalf of a management caller."""
        if source.status != "active":
            raise Conflict(f"event source {source.id} is {source.status}", field=field)
        return source.write_key_record()

    def send_test_event(self, source: EventSource, request_ip: str | None) -> str:
        """Publish a recognisable test event through a source, exactly as a client would."""
        key = self.authorize_source(source, field="keyId")
        result = self.accept(key, dict(TEST_EVENT), "track", request_ip)
        return result.message_ids[0]

    def publish(self, key: WriteKey, ctx: IngestContext, events: list[CanonicalEvent]) -> None:
        """Publish events to the source's topic; returns only once Pub/Sub has acknowledged."""
        if not events:
            return
        # Before anything is published: a refused request (429) is resent whole by the SDK.
        self._rate_limiter.admit(key, len(events))
        if key.ip_policy != "keep":
            # Before anything leaves ingest: the raw address is never published or stored.
            events = [apply_ip_policy(event, key.ip_policy) for event in events]
        data = encode_events(events)
        attributes = {
            "schema": MESSAGE_SCHEMA,
            "workspace_id": key.workspace_id,
            "source_id": key.source_id,
            "event_count": str(len(events)),
        }
        self._publisher.publish(key.pubsub_topic, [(data, attributes)])
        self._last_used.touch(key, ctx.received_at)
