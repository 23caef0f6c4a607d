"""Ingest: resolve the write key, normalise the request, publish accepted events, answer."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, cast
from urllib.parse import parse_qsl

import orjson

from shared.domain import ids
from shared.domain.cookieless import CookielessIds, with_cookieless_id
from shared.domain.errors import (
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    StreamsError,
    Unauthorized,
    Unavailable,
)
from shared.domain.event import CanonicalEvent
from shared.domain.events import (
    IngestContext,
    Rejection,
    normalise_request,
    normalise_stream_event,
)
from shared.domain.geo import Location, with_location
from shared.domain.limits import MAX_MESSAGE_ID_CHARS
from shared.domain.origins import origin_allowed
from shared.domain.privacy import apply_ip_policy
from shared.domain.sources import EventSource, WriteKey, source_path
from shared.domain.webhook_signatures import (
    DELIVERY_ID_HEADERS,
    delivery_id,
    sign,
    signature_header,
    verify,
)
from shared.domain.webhooks import WebhookRequest, WebhookSettings, request_item
from shared.ports import DocumentStore, GeoLocator, Increment, Publisher, Write
from shared.services.cache import TtlCache
from shared.services.rate_limiter import RateLimiter
from shared.services.sources import WriteKeyResolver

log = logging.getLogger("streams.ingest")

# One Pub/Sub message carries every accepted event of one request (see docs/INGEST.md):
# the emulator pushes ~300 messages/s and production bills per message, so per-event
# messages would cap a batch-sending source at a few hundred events/s.
MESSAGE_SCHEMA = "streams.events.v1"
# last_used_at is written at most this often per source and instance, never per request.
LAST_USED_WRITE_SECONDS = 30.0
# Signature failures are added to the source's count at most this often per source and instance:
# a flood of forged requests must not become a flood of writes.
SIGNATURE_FAILURE_WRITE_SECONDS = 10.0
# Headers a webhook request is published without: credentials (a write key, a session) and the
# sender's address, which the source's IP policy governs through `context.ip` alone.
WITHHELD_HEADERS = frozenset(
    {
        "authorization",
        "cookie",
        "x-write-key",
        "x-forwarded-for",
        "forwarded",
        "x-real-ip",
    }
)
# Providers' delivery ids are UUIDs or `evt_...`: anything else in one is refused rather than
# made part of a messageId.
DELIVERY_ID_SYNTAX = re.compile(r"[\x21-\x7e]+")
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
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


class AsyncPublisher(Protocol):
    """The `Publisher` port for a caller on an asyncio event loop (the ingest function's
    asynchronous entry point): returns once Pub/Sub has acknowledged every message."""

    async def publish(
        self, topic: str, messages: Iterable[tuple[bytes, Mapping[str, str]]]
    ) -> list[str]:
        """The messages' ids, in order."""
        ...


class _NotCached(Exception):
    """A write key whose record is not in the cache (asked without loading it)."""


def _not_cached() -> WriteKey | None:
    raise _NotCached


@dataclass(frozen=True)
class IngestResult:
    """What one request achieved: the events published and the items refused."""

    message_ids: list[str]
    rejections: list[Rejection]


class LastUsedTracker:
    """Keeps each source's `last_used_at` current with one write per interval, not per request."""

    def __init__(
        self,
        store: DocumentStore,
        interval_seconds: float = LAST_USED_WRITE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self._store = store
        self._interval = interval_seconds
        self._monotonic = monotonic
        self._written_at: dict[str, float] = {}
        self._lock = threading.Lock()

    def touch(self, key: WriteKey, moment: datetime) -> None:
        if self.claim(key):
            self.write(key, moment)

    def claim(self, key: WriteKey) -> bool:
        """Whether this request is the one to write the source's `last_used_at` (then it must
        `write`); at most one per source per interval."""
        now = self._monotonic()
        with self._lock:
            due = now - self._written_at.get(key.source_id, float("-inf")) >= self._interval
            if due:
                self._written_at[key.source_id] = now
        return due

    def write(self, key: WriteKey, moment: datetime) -> None:
        path = source_path(key.workspace_id, key.source_id)
        try:
            self._store.commit([Write("update", path, {"last_used_at": ids.isoformat(moment)})])
        except StreamsError:
            # Bookkeeping must never fail an ingest that Pub/Sub already acknowledged.
            log.warning("could not record last_used_at of source %s", key.source_id)


class SignatureFailureCounter:
    """Adds webhook signature failures to the source's count, with one write per interval:
    the failures in between are added by the next write that is due."""

    def __init__(
        self,
        store: DocumentStore,
        interval_seconds: float = SIGNATURE_FAILURE_WRITE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self._store = store
        self._interval = interval_seconds
        self._monotonic = monotonic
        self._written_at: dict[str, float] = {}
        self._pending: dict[str, int] = {}
        self._lock = threading.Lock()

    def count(self, key: WriteKey) -> None:
        now = self._monotonic()
        with self._lock:
            pending = self._pending.get(key.source_id, 0) + 1
            if now - self._written_at.get(key.source_id, float("-inf")) < self._interval:
                self._pending[key.source_id] = pending
                return
            self._written_at[key.source_id] = now
            self._pending.pop(key.source_id, None)
        path = source_path(key.workspace_id, key.source_id)
        try:
            self._store.commit(
                [Write("update", path, {"webhook_signature_failures": Increment(pending)})]
            )
        except Exception:
            # Counting must never change the answer (401), whatever the store says: a source
            # deleted since its key was cached has no document to add to.
            log.warning("could not count signature failures of source %s", key.source_id)


class Ingest:
    """Accepts Segment-style requests for a source and publishes them to the source's topic."""

    def __init__(
        self,
        sources: WriteKeyResolver,
        publisher: Publisher,
        store: DocumentStore,
        key_cache_seconds: float,
        clock: Callable[[], datetime] = ids.utcnow,
        new_message_id: Callable[[], str] = ids.new_id,
        rate_limiter: RateLimiter | None = None,
        geo: GeoLocator | None = None,
        cookieless: CookielessIds | None = None,
    ):
        self._sources = sources
        # Both optional: without a database nothing is located; without a key, a cookieless
        # source's events are refused (never published with the SDK's own anonymousId).
        self._geo = geo
        self._cookieless = cookieless
        # Without a shared counter (tests of one instance), sources' limits hold per instance.
        self._rate_limiter = rate_limiter or RateLimiter()
        self._keys: TtlCache[WriteKey | None] = TtlCache(key_cache_seconds)
        self._publisher = publisher
        self._last_used = LastUsedTracker(store)
        self._signature_failures = SignatureFailureCounter(store)
        self._clock = clock
        self._new_message_id = new_message_id
        # What `accept` normalises with. Only bench/ingest.py's frozen WSGI entry sets another:
        # the normalisation of issue 19's day, which the live one is measured against.
        self.normalise = normalise_request

    def authorize(
        self, write_key: str | None, origin: str | None = None, webhook: bool = False
    ) -> WriteKey:
        """The active source behind a write key; `Unauthorized` otherwise, and `Forbidden` when
        `origin` (a web page's `Origin` header) is not one the source allows. A webhook
        source's key is for the webhook endpoint alone (`webhook`), and only its key is."""
        if not write_key:
            raise Unauthorized(
                "missing write key: send X-Write-Key, HTTP Basic username, ?writeKey= or writeKey"
            )
        # A key that cannot be one is refused unread, exactly like an unknown one: the key is a
        # document id, and `wk_a/b` or a lone surrogate would fail the lookup itself.
        if not ids.is_write_key(write_key):
            raise Unauthorized("unknown write key")
        record = self._keys.get(write_key, lambda: self._sources.resolve_write_key(write_key))
        return self._admit_key(record, origin, webhook)

    async def authorize_async(
        self, write_key: str | None, origin: str | None = None, webhook: bool = False
    ) -> WriteKey:
        """`authorize` for a caller on an event loop: a key the cache holds is checked at once;
        a miss reads the store in a thread, never blocking the loop."""
        if write_key and ids.is_write_key(write_key):
            try:
                record = self._keys.get(write_key, _not_cached)
            except _NotCached:
                return await asyncio.to_thread(self.authorize, write_key, origin, webhook)
            return self._admit_key(record, origin, webhook)
        return self.authorize(write_key, origin, webhook)

    def _admit_key(self, record: WriteKey | None, origin: str | None, webhook: bool) -> WriteKey:
        """The checks of `authorize` on a key's record (None: no such key)."""
        if record is None:
            raise Unauthorized("unknown write key")
        if record.status != "active":
            raise Unauthorized("write key revoked")
        # Checked on the cached record: refusing an origin costs no read.
        if not origin_allowed(record.allowed_origins, origin):
            raise Forbidden(
                f"Origin {origin} is not one of this source's allowed origins", field="Origin"
            )
        if webhook and record.type != "webhook":
            raise NotFound(
                f"writeKey: this key's source is of type {record.type}, not webhook: send its "
                "events to the SDK endpoints (/v1/track, /v1/batch, ...)",
                field="writeKey",
            )
        if not webhook and record.type == "webhook":
            raise Forbidden(
                "writeKey: this key's source is a webhook source: post its requests to "
                "/v1/webhook/<writeKey>",
                field="writeKey",
            )
        return record

    def context(self, key: WriteKey, request_ip: str | None) -> IngestContext:
        return IngestContext(key.workspace_id, key.source_id, self._clock(), request_ip)

    def accept(
        self, key: WriteKey, body: Any, call_type: str | None, request_ip: str | None
    ) -> IngestResult:
        """Normalise a request body and publish its valid events; bad items become rejections."""
        ctx = self.context(key, request_ip)
        batch = self.normalise(body, call_type, ctx, self._new_message_id)
        self.publish(key, ctx, batch.events)
        return IngestResult([event["messageId"] for event in batch.events], batch.rejections)

    async def accept_async(
        self,
        key: WriteKey,
        body: Any,
        call_type: str | None,
        request_ip: str | None,
        publisher: AsyncPublisher,
    ) -> IngestResult:
        """`accept` for a caller on an event loop: the same normalisation and message, published
        through `publisher` (built on this service's own publisher); no store I/O on the loop."""
        ctx = self.context(key, request_ip)
        batch = self.normalise(body, call_type, ctx, self._new_message_id)
        await self.publish_async(key, ctx, batch.events, publisher)
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
        if key.type == "webhook":
            raise Conflict(
                f"event source {source.id} is a webhook source: send a test request with "
                "POST .../test-webhook",
                field="type",
            )
        result = self.accept(key, dict(TEST_EVENT), "track", request_ip)
        return result.message_ids[0]

    def accept_webhook(
        self,
        key: WriteKey,
        raw_body: bytes,
        headers: Mapping[str, str],
        query: Mapping[str, str],
        request_ip: str | None,
    ) -> str:
        """Verify a webhook request's signature on its raw body, then publish it whole (mapped
        to events by process); return its messageId. `headers` keyed by lower-cased name."""
        settings = key.webhook or WebhookSettings()
        ctx = self.context(key, request_ip)
        try:
            verify(settings, headers, raw_body, int(ctx.received_at.timestamp()))
        except Unauthorized as refusal:
            self._signature_failures.count(key)
            log.warning("webhook source %s: %s", key.source_id, refusal.message)
            raise
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        body = parse_webhook_body(raw_body, content_type)
        provider = settings.signature
        delivery = delivery_id(provider, headers, body)
        message_id = f"{provider}:{delivery}" if delivery else self._new_message_id()
        if delivery and (
            len(message_id) > MAX_MESSAGE_ID_CHARS or not DELIVERY_ID_SYNTAX.fullmatch(delivery)
        ):
            where = DELIVERY_ID_HEADERS.get(provider, "id")
            raise InvalidRequest(
                f"{where}: a delivery id must be at most "
                f"{MAX_MESSAGE_ID_CHARS - len(provider) - 1} visible ASCII characters",
                field=where,
            )
        withheld = WITHHELD_HEADERS | {(signature_header(settings) or "").lower()}
        request = WebhookRequest(
            headers={name: value for name, value in headers.items() if name not in withheld},
            query={name: value for name, value in query.items() if name != "writeKey"},
            body=body,
            content_type=content_type,
            delivery_id=delivery,
        )
        item = request_item(
            request,
            message_id,
            key.workspace_id,
            key.source_id,
            ids.isoformat(ctx.received_at),
            request_ip,
        )
        try:
            # The item is the canonical event's shape with one key of its own, `request`.
            self.publish(key, ctx, [cast(CanonicalEvent, item)])
        except orjson.JSONEncodeError:
            raise InvalidRequest(
                "body: holds a value that cannot be published (an integer beyond 64 bits, or "
                "text with a lone surrogate such as \\ud800)",
                field="body",
            ) from None
        return message_id

    def send_test_webhook(
        self,
        source: EventSource,
        body: Any,
        headers: Mapping[str, str],
        request_ip: str | None,
    ) -> str:
        """Post a request through a webhook source's own path, signed with its stored secret as
        its provider would sign it (so verification passes); `body` None: a sample JSON body."""
        key = self.authorize_source(source, field="keyId")
        if key.type != "webhook":
            raise Conflict(
                f"event source {source.id} is of type {key.type}, not webhook: send a test "
                "event with POST .../test-event",
                field="type",
            )
        if body is None:
            # A new id each time: as a Stripe event's id it is the delivery id, and a repeated
            # one would make every test after the first a duplicate.
            body = {
                "id": f"evt_streams_test_{self._new_message_id()}",
                "type": "streams.test",
                "data": {"message": "A test request sent by Streams"},
            }
        raw_body = orjson.dumps(body)
        settings = key.webhook or WebhookSettings()
        now = int(self._clock().timestamp())
        sent = {
            "content-type": "application/json",
            **{name.lower(): value for name, value in headers.items()},
            **{name.lower(): value for name, value in sign(settings, raw_body, now).items()},
        }
        return self.accept_webhook(key, raw_body, sent, {}, request_ip)

    @property
    def publisher(self) -> Publisher:
        """The publisher this service publishes with (an `AsyncPublisher` is built on it)."""
        return self._publisher

    def publish(self, key: WriteKey, ctx: IngestContext, events: list[CanonicalEvent]) -> None:
        """Publish events to the source's topic; returns only once Pub/Sub has acknowledged."""
        if not events:
            return
        # Before anything is published: a refused request (429) is resent whole by the SDK.
        self._rate_limiter.admit(key, len(events))
        topic, message = self._message(key, ctx, events)
        self._publisher.publish(topic, [message])
        self._last_used.touch(key, ctx.received_at)

    async def publish_async(
        self,
        key: WriteKey,
        ctx: IngestContext,
        events: list[CanonicalEvent],
        publisher: AsyncPublisher,
    ) -> None:
        """`publish` for a caller on an event loop: the same checks and message; the writes to
        the store (the shared rate-limit counter, `last_used_at`) run in a thread."""
        if not events:
            return
        if key.rate_limit is not None:
            # A limited source's shared counter is written about once a second: store I/O.
            await asyncio.to_thread(self._rate_limiter.admit, key, len(events))
        topic, message = self._message(key, ctx, events)
        await publisher.publish(topic, [message])
        if self._last_used.claim(key):
            await asyncio.to_thread(self._last_used.write, key, ctx.received_at)

    def _message(
        self, key: WriteKey, ctx: IngestContext, events: list[CanonicalEvent]
    ) -> tuple[str, tuple[bytes, dict[str, str]]]:
        """The source's topic, and the one message carrying `events`."""
        if key.type != "webhook":
            # A webhook request's address is its provider's server, not a person's.
            events = self._from_address(key, ctx, events)
        if key.ip_policy != "keep":
            # Before anything leaves ingest: the raw address is never published or stored.
            events = [apply_ip_policy(event, key.ip_policy) for event in events]
        data = encode_events(events)
        attributes = {
            "schema": MESSAGE_SCHEMA,
            "workspace_id": key.workspace_id,
            "source_id": key.source_id,
            "event_count": str(len(events)),
            "bot_policy": key.bot_policy,
        }
        return key.pubsub_topic, (data, attributes)

    def _from_address(
        self, key: WriteKey, ctx: IngestContext, events: list[CanonicalEvent]
    ) -> list[CanonicalEvent]:
        """Geo enrichment and cookieless ids: both read the full `context.ip`, so they run
        before the source's IP policy truncates or removes it (docs/PRIVACY.md)."""
        geo = self._geo
        if geo is not None:
            # A request's events mostly share one address: looked up once per request.
            located: dict[str, Location | None] = {}

            def locate(ip: str) -> Location | None:
                if ip not in located:
                    located[ip] = geo.locate(ip)
                return located[ip]

            events = [with_location(event, locate) for event in events]
        if key.cookieless:
            cookieless_ids = self._cookieless
            if cookieless_ids is None:
                raise Unavailable(
                    "this source is cookieless and ingest has no STREAMS_COOKIELESS_KEY: "
                    "nothing was published (docs/PRIVACY.md)"
                )
            # The UTC day the request arrived: a late-sent event is counted on the day it came.
            day = ctx.received_at.astimezone(UTC).date()

            def anonymous_id(ip: str, user_agent: str) -> str:
                return cookieless_ids.anonymous_id(day, key.source_id, ip, user_agent)

            events = [with_cookieless_id(event, anonymous_id) for event in events]
        return events


def parse_webhook_body(raw_body: bytes, content_type: str) -> Any:
    """A webhook body as JSON (any value), or a form (application/x-www-form-urlencoded) as a
    dict of strings, a repeated field keeping its last value; an empty body is `{}`."""
    if not raw_body.strip():
        return {}
    try:
        if content_type == FORM_CONTENT_TYPE:
            return dict(parse_qsl(raw_body.decode(), keep_blank_values=True))
        return json.loads(raw_body)
    except UnicodeDecodeError:
        raise InvalidRequest("body: is not valid UTF-8 text", field="body") from None
    except ValueError as exc:
        raise InvalidRequest(
            f"body: is not JSON ({exc}); send JSON, or a form as {FORM_CONTENT_TYPE}",
            field="body",
        ) from None
    except RecursionError:
        raise InvalidRequest("body: JSON nested too deeply", field="body") from None
