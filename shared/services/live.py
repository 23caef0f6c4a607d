"""The live stream: a workspace's events as they are stored, written only while someone watches.

docs/OBSERVE.md explains the design and its costs. In short: each open stream keeps a session
document alive; `process` (this class as its `EventObserver`) checks, cached, whether a session
is open and only then writes the message's events to a short-lived per-workspace collection,
stamped with Firestore's commit time. The streams of a workspace on one instance share one poll
of that collection (shared/services/live_hub.py), each past its own cursor.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.domain import ids
from shared.domain.errors import StreamsError
from shared.domain.event import CanonicalEvent
from shared.domain.outcomes import EventStatus, Observed, blocked_reason
from shared.domain.pipeline import event_key, quarantine_collection
from shared.domain.routing import event_name
from shared.ports import (
    WRITES_PER_COMMIT,
    ConfigStore,
    Document,
    EventStore,
    Filter,
    Write,
    commit_in_chunks,
)
from shared.services.live_hub import (
    POLL_SECONDS,
    Cursor,
    LiveHub,
    StreamLimits,
    Subscription,
    live_events_collection,
)

log = logging.getLogger("streams.live")

# How long a stored event can be resumed from (Last-Event-ID); production also sets a TTL policy.
RETENTION = timedelta(hours=1)
# A session outlives its stream by up to this long, so a reconnect within it misses nothing.
SESSION_TTL = timedelta(seconds=60)
SESSION_REFRESH_SECONDS = 20.0
# Also how late a server that cannot see its client's socket notices the client has gone: a
# write to a closed connection fails at the second heartbeat after the close.
HEARTBEAT_SECONDS = 5.0
# Streams end after this long (the client reconnects with Last-Event-ID), so that no function
# instance is pinned by one browser tab forever. The function's timeout must exceed it.
MAX_STREAM_SECONDS = 300.0
# A fresh stream first shows the latest events of this window, at most this many, read from at
# most `BACKLOG_SCAN` stored and as many blocked events (filters other than the source's apply
# after the read).
BACKLOG_WINDOW = timedelta(hours=1)
BACKLOG_LIMIT = 100
BACKLOG_SCAN = 500
# How long process trusts "nobody watches" (a session opened meanwhile waits this long).
UNWATCHED_CACHE_SECONDS = 0.5

__all__ = ["Cursor", "LiveFeed", "StreamLimits", "live_events_collection"]


def _always_connected() -> bool:
    return True


def live_sessions_collection(workspace_id: str) -> str:
    return f"workspaces/{workspace_id}/live_sessions"


@dataclass(frozen=True)
class LiveFilters:
    """Which events a stream shows; None matches everything."""

    source_id: str | None = None
    event_type: str | None = None
    event_name: str | None = None

    def matches(self, document: Document) -> bool:
        return (
            self.source_id in (None, document.get("source_id"))
            and self.event_type in (None, document.get("event_type"))
            and self.event_name in (None, document.get("event_name"))
        )


@dataclass(frozen=True)
class LiveEvent:
    """One event for the client: `id` to resume after it, `data` the canonical event's JSON, and
    its outcome: `status` (`stored`, or why it went no further) with the `reason` in words."""

    id: str
    data: str
    status: EventStatus = "stored"
    reason: str | None = None


@dataclass(frozen=True)
class Heartbeat:
    """Keeps the connection open; `id` is set when filtered-out events moved the cursor."""

    id: str | None = None


LiveItem = LiveEvent | Heartbeat


class LiveFeed:
    """Writes watched workspaces' events (as an `EventObserver`) and serves live streams."""

    def __init__(
        self,
        store: ConfigStore,
        clock: Callable[[], datetime] = ids.utcnow,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        commit_time: Callable[[], Any] | None = None,
        new_session_id: Callable[[], str] = ids.new_id,
        max_stream_seconds: float = MAX_STREAM_SECONDS,
        limits: StreamLimits | None = None,
        poll_seconds: float = POLL_SECONDS,
        events: Callable[[], EventStore] | None = None,
    ):
        self._store = store
        # Where a fresh stream's backlog of stored events is read (None: blocked ones only).
        self._events = events
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        # `COMMIT_TIME` in production (the store's commit time); the clock where there is none.
        self._commit_time = commit_time or clock
        self._new_session_id = new_session_id
        self._max_stream_seconds = max_stream_seconds
        self._poll_seconds = poll_seconds
        self.hub = LiveHub(store, limits or StreamLimits(), clock, monotonic, poll_seconds)
        # workspace -> (monotonic time the answer holds until, watched)
        self._watched: dict[str, tuple[float, bool]] = {}

    # --- the process side ---------------------------------------------------------------

    def observe(self, workspace_id: str, source_id: str, observed: list[Observed]) -> None:
        """Write the events and their outcomes for live streams, in batched commits, only if
        someone watches."""
        if not observed or not self.watched(workspace_id):
            return
        now = self._clock()
        writes = [self._live_write(workspace_id, i, seen, now) for i, seen in enumerate(observed)]
        commit_in_chunks(self._store, writes)

    def watched(self, workspace_id: str) -> bool:
        """Whether a live session is open; one read per workspace and interval, not per event."""
        now_mono = self._monotonic()
        cached = self._watched.get(workspace_id)
        if cached is not None and cached[0] > now_mono:
            return cached[1]
        now = self._clock()
        open_sessions = self._store.query(
            live_sessions_collection(workspace_id),
            [Filter("expires_at", ">", now)],
            order_by="expires_at",
            descending=True,
            limit=1,
        )
        if open_sessions:
            # Sessions are never ended early, so "watched" holds until the latest one expires.
            remaining = (open_sessions[0]["expires_at"] - now).total_seconds()
            self._watched[workspace_id] = (now_mono + remaining, True)
            return True
        self._watched[workspace_id] = (now_mono + UNWATCHED_CACHE_SECONDS, False)
        return False

    def _live_write(self, workspace_id: str, index: int, seen: Observed, now: datetime) -> Write:
        # One commit stamps all its events alike: the index keeps them in the message's order;
        # the status tells apart an event's several outcomes (a duplicate of a stored one).
        event = seen.event
        key = f"{index:04d}-{event_key(event['messageId'])}-{seen.status}"
        return Write(
            "set",
            f"{live_events_collection(workspace_id)}/{key}",
            {
                **_live_fields(event, seen.status, seen.reason),
                "key": key,
                "written_at": self._commit_time(),
                # A timestamp, not a string: Firestore TTL policies only expire timestamp fields.
                "expires_at": now + RETENTION,
            },
        )

    # --- the stream side ----------------------------------------------------------------

    def open(
        self,
        workspace_id: str,
        filters: LiveFilters,
        after: Cursor | None = None,
        holder: str = "",
        connected: Callable[[], bool] = _always_connected,
    ) -> LiveStream:
        """Take a slot (TooManyRequests when none is left), register a session (raising if the
        store is down), then stream until the lifetime ends or `connected()` turns false.

        Without `after` the stream starts now; with it, just after that position (at most
        `RETENTION` back). `holder` is who the per-token limit counts (the API token's id).
        """
        now = self._clock()
        # Never before the retention, never after now (an id from the future would stall).
        start = (
            Cursor(now) if after is None else min(max(after, Cursor(now - RETENTION)), Cursor(now))
        )
        subscription = self.hub.subscribe(workspace_id, holder, start)
        try:
            session_id = self._new_session_id()
            self._refresh(workspace_id, session_id, filters, now, best_effort=False)
            self._collect_garbage(workspace_id, now)
            # A fresh stream starts with what just happened (a resumed one has seen it).
            backlog = self._backlog(workspace_id, filters, start) if after is None else []
        except BaseException:
            subscription.close()
            raise
        items = self._stream(workspace_id, session_id, filters, subscription, connected, backlog)
        return LiveStream(items, subscription)

    def _backlog(self, workspace_id: str, filters: LiveFilters, start: Cursor) -> list[LiveEvent]:
        """The workspace's latest stored and blocked events of the last `BACKLOG_WINDOW`, at most
        `BACKLOG_LIMIT`, oldest first, each with the stream's start as its id: a client that
        reconnects with it resumes after the backlog, not before it. Best effort: without the
        warehouse the stream still starts, with the blocked events alone."""
        since = start.written_at - BACKLOG_WINDOW
        found: list[tuple[str, Document]] = []
        if self._events is not None:
            try:
                stored = self._events().recent(
                    workspace_id,
                    BACKLOG_SCAN,
                    source_id=filters.source_id,
                    event_name=filters.event_name,
                    since=since,
                )
            except StreamsError:
                log.warning("no backlog of stored events for the live stream of %s", workspace_id)
                stored = []
            for event in stored:
                found.append((str(event.get("receivedAt", "")), _live_fields(event, "stored")))
        where = [Filter("sort_key", ">=", ids.isoformat(since))]
        blocked = self._store.query(
            quarantine_collection(workspace_id),
            where,
            order_by="sort_key",
            descending=True,
            limit=BACKLOG_SCAN,
        )
        for record in blocked:
            event = json.loads(record["event_json"])
            reason = blocked_reason(record.get("reasons", []))
            found.append(
                (str(record.get("received_at", "")), _live_fields(event, "blocked", reason))
            )
        matching = sorted((f for f in found if filters.matches(f[1])), key=lambda f: f[0])
        return [
            LiveEvent(str(start), fields["event"], fields["status"], fields.get("reason"))
            for _, fields in matching[-BACKLOG_LIMIT:]
        ]

    def _stream(
        self,
        workspace_id: str,
        session_id: str,
        filters: LiveFilters,
        subscription: Subscription,
        connected: Callable[[], bool],
        backlog: list[LiveEvent],
    ) -> Iterator[LiveItem]:
        try:
            yield from backlog
            # What the backlog showed may also reach the live collection just after the start.
            shown = {(json.loads(item.data).get("messageId"), item.status) for item in backlog}
            began = self._monotonic()
            next_heartbeat = began + HEARTBEAT_SECONDS
            next_refresh = began + SESSION_REFRESH_SECONDS
            announced = subscription.start
            while True:
                documents = subscription.read()
                now = self._clock()
                for cursor, document in documents:
                    if document["expires_at"] > now and filters.matches(document):
                        announced = cursor
                        status = document.get("status", "stored")
                        if (document["message_id"], status) in shown:
                            continue
                        yield LiveEvent(
                            str(cursor), document["event"], status, document.get("reason")
                        )

                now_mono = self._monotonic()
                if now_mono >= next_heartbeat:
                    cursor = subscription.cursor
                    yield Heartbeat(str(cursor) if cursor > announced else None)
                    announced = cursor
                    next_heartbeat = now_mono + HEARTBEAT_SECONDS
                if now_mono >= next_refresh:
                    self._refresh(workspace_id, session_id, filters, now, best_effort=True)
                    next_refresh = now_mono + SESSION_REFRESH_SECONDS
                if now_mono - began >= self._max_stream_seconds:
                    return
                if subscription.overflowed:
                    # The client reads slower than events arrive: it resumes from its last id.
                    log.warning("live stream of %s fell behind; ending it", workspace_id)
                    return
                if subscription.closed or not connected():
                    return
                if subscription.caught_up:
                    self._sleep(self._poll_seconds)
        finally:
            # Ended by its lifetime, its client or an error: the slot is free at once.
            subscription.close()

    def _refresh(
        self,
        workspace_id: str,
        session_id: str,
        filters: LiveFilters,
        now: datetime,
        best_effort: bool,
    ) -> None:
        document = {
            "id": session_id,
            "filters": {k: v for k, v in vars(filters).items() if v is not None},
            "refreshed_at": ids.isoformat(now),
            "expires_at": now + SESSION_TTL,
        }
        path = f"{live_sessions_collection(workspace_id)}/{session_id}"
        try:
            self._store.commit([Write("set", path, document)])
        except StreamsError:
            if not best_effort:
                raise
            log.warning("could not refresh live session %s", session_id)

    def _collect_garbage(self, workspace_id: str, now: datetime) -> None:
        """Delete some expired sessions and events (the emulator has no TTL; production's lags)."""
        try:
            for collection, id_field in (
                (live_sessions_collection(workspace_id), "id"),
                (live_events_collection(workspace_id), "key"),
            ):
                expired = self._store.query(
                    collection, [Filter("expires_at", "<=", now)], limit=WRITES_PER_COMMIT
                )
                if expired:
                    self._store.commit(
                        [Write("delete", f"{collection}/{d[id_field]}") for d in expired]
                    )
        except StreamsError:
            log.warning("could not collect expired live documents of %s", workspace_id)


class LiveStream(Iterator[LiveItem]):
    """An open stream's items; `close()` ends it and frees its slot, even if never iterated."""

    def __init__(self, items: Iterator[LiveItem], subscription: Subscription):
        self._items = items
        self._subscription = subscription

    def __next__(self) -> LiveItem:
        return next(self._items)

    def close(self) -> None:
        close = getattr(self._items, "close", None)
        try:
            if close is not None:
                close()
        except ValueError:
            pass  # being iterated by another thread: it sees the closed subscription and ends
        finally:
            self._subscription.close()


def _live_fields(event: CanonicalEvent, status: EventStatus, reason: str | None = None) -> Document:
    """What a stream filters and shows of one event's outcome."""
    fields: Document = {
        "message_id": event.get("messageId"),
        "source_id": event.get("sourceId"),
        "event_type": event.get("type"),
        "event_name": event_name(event),
        # JSON text: Firestore maps refuse nested arrays and `__x__` keys events may hold.
        "event": json.dumps(event, separators=(",", ":"), ensure_ascii=False),
        "status": status,
    }
    if reason is not None:
        fields["reason"] = reason
    return fields
