"""One Firestore poll per watched workspace and instance, shared by its live streams, and the caps.

Every open stream holds one of the `events` function's request threads, so an instance serves
at most `StreamLimits.per_instance` streams and one token at most `per_token` of them (429
beyond): other requests always find a thread. The streams of one workspace share one poll of
its live collection: whichever stream finds the poll due runs it (no background thread to keep
alive) and hands the new documents to every stream of the workspace; each stream then skips
what is behind its own cursor. docs/OBSERVE.md describes the whole design.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shared.domain.errors import TooManyRequests
from shared.ports import ConfigStore, Document, Filter

POLL_SECONDS = 0.1
# Commits can become visible slightly out of commit-time order (the emulator's clock has only
# milliseconds); every poll re-reads this much behind its cursor and skips what it has seen.
LATE_COMMIT_WINDOW = timedelta(milliseconds=200)
PAGE = 500
# A burst is read on at once, page after page, up to this many pages per poll.
MAX_PAGES_PER_POLL = 10
# Documents waiting for a stream whose client reads slowly: beyond, the stream ends and its
# client resumes from its last id (read from Firestore), instead of this instance's memory.
MAX_WAITING_DOCUMENTS = 20 * PAGE
# What a refused client is told to wait: streams end after at most 5 minutes, most far sooner.
RETRY_AFTER_SECONDS = 10

Mark = tuple[str, datetime]


def live_events_collection(workspace_id: str) -> str:
    return f"workspaces/{workspace_id}/live_events"


@dataclass(frozen=True, order=True)
class Cursor:
    """A position in the live collection: commit time, then document key (the SSE `id`)."""

    written_at: datetime
    key: str = ""

    def __str__(self) -> str:
        moment = self.written_at.astimezone(UTC)
        return f"{moment.strftime('%Y-%m-%dT%H:%M:%S.%f')}Z~{self.key}"

    @classmethod
    def parse(cls, text: str) -> Cursor | None:
        """The cursor an SSE id names; None when it is not one of ours."""
        moment, separator, key = text.strip().partition("~")
        if not separator or not moment.endswith("Z"):
            return None
        try:
            written_at = datetime.fromisoformat(moment[:-1]).replace(tzinfo=UTC)
        except ValueError:
            return None
        return cls(written_at, key)


@dataclass(frozen=True)
class StreamLimits:
    """How many streams one instance serves at once, and how many of them one token may hold."""

    per_instance: int = 4
    per_token: int = 4


class LiveHub:
    """This instance's live streams: counted against the limits, one shared poll per workspace."""

    def __init__(
        self,
        store: ConfigStore,
        limits: StreamLimits,
        clock: Callable[[], datetime],
        monotonic: Callable[[], float],
        poll_seconds: float = POLL_SECONDS,
    ):
        self._store = store
        self._limits = limits
        self._clock = clock
        self._monotonic = monotonic
        self._poll_seconds = poll_seconds
        self._lock = threading.Lock()
        self._polls: dict[str, SharedPoll] = {}
        self._per_holder: dict[str, int] = {}
        self._open = 0

    @property
    def open_streams(self) -> int:
        return self._open

    def subscribe(self, workspace_id: str, holder: str, start: Cursor) -> Subscription:
        """Take a slot for a stream from `start`, or raise TooManyRequests (429)."""
        with self._lock:
            held = self._per_holder.get(holder, 0)
            if held >= self._limits.per_token:
                raise TooManyRequests(
                    f"this API token already has {held} live streams open, its most: close one "
                    f"or retry in {RETRY_AFTER_SECONDS} s",
                    retry_after=RETRY_AFTER_SECONDS,
                )
            if self._open >= self._limits.per_instance:
                raise TooManyRequests(
                    f"this server already streams to {self._open} clients, its most; "
                    f"retry in {RETRY_AFTER_SECONDS} s",
                    retry_after=RETRY_AFTER_SECONDS,
                )
            poll = self._polls.get(workspace_id)
            if poll is None:
                # From now: what came before is each stream's own catch-up.
                poll = self._polls[workspace_id] = SharedPoll(
                    self._store,
                    workspace_id,
                    Cursor(self._clock()),
                    self._monotonic,
                    self._poll_seconds,
                )
            subscription = Subscription(self._store, poll, holder, start, self._release)
            poll.members.append(subscription)
            self._per_holder[holder] = held + 1
            self._open += 1
            return subscription

    def _release(self, subscription: Subscription) -> None:
        with self._lock:
            poll = subscription.poll
            poll.members.remove(subscription)
            if not poll.members and self._polls.get(poll.workspace_id) is poll:
                del self._polls[poll.workspace_id]
            remaining = self._per_holder[subscription.holder] - 1
            if remaining:
                self._per_holder[subscription.holder] = remaining
            else:
                del self._per_holder[subscription.holder]
            self._open -= 1


class SharedPoll:
    """One workspace's reads of its live collection on this instance, for all its streams."""

    def __init__(
        self,
        store: ConfigStore,
        workspace_id: str,
        start: Cursor,
        monotonic: Callable[[], float],
        poll_seconds: float,
    ):
        self.workspace_id = workspace_id
        self.members: list[Subscription] = []  # changed only under the hub's lock
        self._store = store
        self._monotonic = monotonic
        self._poll_seconds = poll_seconds
        self._lock = threading.Lock()
        self._due = monotonic()
        self._cursor = start
        self._floor = start.written_at - LATE_COMMIT_WINDOW
        self._seen: dict[Mark, datetime] = {}

    def poll_if_due(self) -> None:
        """Read what is new and hand it to every member; at most once per interval, by one."""
        if not self._lock.acquire(blocking=False):
            return  # another stream is reading for everyone
        try:
            now = self._monotonic()
            if now < self._due:
                return
            self._due = now + self._poll_seconds
            for _ in range(MAX_PAGES_PER_POLL):
                documents = self._store.query(
                    live_events_collection(self.workspace_id),
                    [Filter("written_at", ">=", self._floor)],
                    order_by="written_at",
                    limit=PAGE,
                )
                fresh = self._remember(documents)
                if fresh:
                    for member in list(self.members):
                        member.deliver(fresh)
                if len(documents) < PAGE:
                    break
        finally:
            self._lock.release()

    def _remember(self, documents: list[Document]) -> list[Document]:
        fresh = []
        for document in documents:
            mark = (document["key"], document["written_at"])
            if mark in self._seen:
                continue
            self._seen[mark] = document["written_at"]
            self._cursor = max(self._cursor, _position(document))
            fresh.append(document)
        if len(documents) == PAGE:
            # A full page: read on from its end at once instead of waiting.
            last = max(document["written_at"] for document in documents)
            self._floor = last if last > self._floor else last + timedelta(microseconds=1)
        else:
            self._floor = self._cursor.written_at - LATE_COMMIT_WINDOW
        self._seen = {mark: at for mark, at in self._seen.items() if at >= self._floor}
        return fresh


class Subscription:
    """One stream's slot and its view of the shared poll: documents past its own cursor."""

    def __init__(
        self,
        store: ConfigStore,
        poll: SharedPoll,
        holder: str,
        start: Cursor,
        release: Callable[[Subscription], None],
    ):
        self.poll = poll
        self.holder = holder
        self.start = start
        self.cursor = start
        # Set when the client fell too far behind: the stream ends, the client resumes.
        self.overflowed = False
        self._store = store
        self._release = release
        self._caught_up = False
        self._catch_up_floor = start.written_at - LATE_COMMIT_WINDOW
        self._seen: dict[Mark, datetime] = {}
        # Filled by the shared poll from another stream's thread, emptied by this stream's.
        self._waiting: deque[Document] = deque()
        self._closed = False
        self._lock = threading.Lock()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def caught_up(self) -> bool:
        """Whether the stream reads the shared poll yet (before: its own pages from `start`)."""
        return self._caught_up

    def read(self) -> list[tuple[Cursor, Document]]:
        """New documents in position order, each with the stream's furthest position then.

        First the stream's own pages from `start` to the present (a resumed stream may be up
        to an hour behind), one per call; then what the shared poll hands over. Documents both
        read are sent once.
        """
        if self.overflowed:
            return []
        if self._caught_up:
            self.poll.poll_if_due()
            with self._lock:
                documents = list(self._waiting)
                self._waiting.clear()
        else:
            documents = self._store.query(
                live_events_collection(self.poll.workspace_id),
                [Filter("written_at", ">=", self._catch_up_floor)],
                order_by="written_at",
                limit=PAGE,
            )
            if len(documents) == PAGE:
                last = max(document["written_at"] for document in documents)
                floor = self._catch_up_floor
                self._catch_up_floor = last if last > floor else last + timedelta(microseconds=1)
            else:
                self._caught_up = True
        return self._accept(documents)

    def deliver(self, documents: list[Document]) -> None:
        """Called by the shared poll, from whichever stream's thread ran it."""
        with self._lock:
            if self.overflowed or self._closed:
                return
            if len(self._waiting) + len(documents) > MAX_WAITING_DOCUMENTS:
                self.overflowed = True
                self._waiting.clear()
                return
            self._waiting.extend(documents)

    def close(self) -> None:
        """Give the slot back; safe to call more than once."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._waiting.clear()
        self._release(self)

    def _accept(self, documents: list[Document]) -> list[tuple[Cursor, Document]]:
        # What a poll from the stream's own cursor would not have read is skipped, as are
        # documents already sent (re-read windows, and what both the catch-up and the shared
        # poll read).
        floor = self.cursor.written_at - LATE_COMMIT_WINDOW
        accepted = []
        for document in sorted(documents, key=_position):
            position = _position(document)
            mark = (document["key"], document["written_at"])
            if position <= self.start or mark in self._seen or document["written_at"] < floor:
                continue
            self._seen[mark] = document["written_at"]
            self.cursor = max(self.cursor, position)
            accepted.append((self.cursor, document))
        floor = self.cursor.written_at - LATE_COMMIT_WINDOW
        self._seen = {mark: at for mark, at in self._seen.items() if at >= floor}
        return accepted


def _position(document: Document) -> Cursor:
    return Cursor(document["written_at"], document["key"])
