"""The live stream over fakes: written only while watched, resumable, filtered, bounded."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.domain.event import CanonicalEvent
from shared.domain.outcomes import Observed
from shared.ports import WRITES_PER_COMMIT, Document, Filter, Write
from shared.services.live import (
    HEARTBEAT_SECONDS,
    RETENTION,
    Cursor,
    Heartbeat,
    LiveEvent,
    LiveFeed,
    LiveFilters,
    LiveItem,
    live_events_collection,
    live_sessions_collection,
)
from tests.fakes import FakeServices, InMemoryConfigStore
from tests.functions import function_client
from tests.tenants import Tenant

T0 = datetime(2024, 1, 15, 14, 0, tzinfo=UTC)
W = "ws-1"


class CountingStore(InMemoryConfigStore):
    """Counts queries and commits, so that costs can be asserted."""

    def __init__(self) -> None:
        super().__init__()
        self.queries: list[str] = []
        self.commits: list[list[Write]] = []

    def query(
        self,
        collection: str,
        where: Iterable[Filter] = (),
        order_by: str | None = None,
        descending: bool = False,
        limit: int | None = None,
    ) -> list[Document]:
        self.queries.append(collection)
        return super().query(collection, where, order_by, descending, limit)

    def commit(self, writes: Iterable[Write]) -> None:
        batch = list(writes)
        self.commits.append(batch)
        super().commit(batch)


class Clock:
    """Wall and monotonic time that move only when told (or when the stream sleeps)."""

    def __init__(self) -> None:
        self.now = T0
        self.mono_ms = 1_000_000  # whole milliseconds: no float drift over many sleeps
        self.on_sleep: list[Callable[[], None]] = []

    @property
    def mono(self) -> float:
        return self.mono_ms / 1000

    def wall(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.mono_ms += round(seconds * 1000)

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)
        if self.on_sleep:
            self.on_sleep.pop(0)()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store() -> CountingStore:
    return CountingStore()


@pytest.fixture
def feed(store: CountingStore, clock: Clock) -> LiveFeed:
    return LiveFeed(
        store, clock=clock.wall, monotonic=clock.monotonic, sleep=clock.sleep, max_stream_seconds=60
    )


def stored(*events: CanonicalEvent) -> list[Observed]:
    return [Observed(e) for e in events]


def event(
    i: int, type_: str = "track", name: str = "Order Completed", source: str = "s1"
) -> CanonicalEvent:
    return {
        "messageId": f"m{i}",
        "type": type_,
        "event": name if type_ == "track" else None,
        "name": name if type_ in ("page", "screen") else None,
        "sourceId": source,
        "workspaceId": W,
        "receivedAt": "2024-01-15T14:00:00.000Z",
    }


def live_documents(store: InMemoryConfigStore) -> list[Document]:
    return store.list_documents(live_events_collection(W))


def take(items: Iterable[LiveItem], count: int) -> list[LiveItem]:
    taken: list[LiveItem] = []
    for item in items:
        taken.append(item)
        if len(taken) == count:
            break
    return taken


def test_nothing_is_written_while_nobody_watches(feed: LiveFeed, store: CountingStore) -> None:
    for i in range(50):
        feed.observe(W, "s1", stored(event(i)))
    assert live_documents(store) == []
    assert store.commits == []
    # One session lookup, then the cached answer (0.5 s): no read per event either.
    assert store.queries == [live_sessions_collection(W)]


def test_a_watched_workspace_gets_one_batched_write_per_400_events(
    feed: LiveFeed, store: CountingStore
) -> None:
    feed.open(W, LiveFilters())
    store.commits.clear()
    feed.observe(W, "s1", stored(*(event(i) for i in range(900))))
    assert [len(c) for c in store.commits] == [WRITES_PER_COMMIT, WRITES_PER_COMMIT, 100]
    documents = live_documents(store)
    assert len(documents) == 900
    first = next(d for d in documents if d["message_id"] == "m0")
    assert json.loads(first["event"]) == event(0)
    assert first["expires_at"] == T0 + RETENTION
    assert (first["event_type"], first["event_name"], first["source_id"]) == (
        "track",
        "Order Completed",
        "s1",
    )


def test_watched_is_cached_until_the_session_expires(
    feed: LiveFeed, store: CountingStore, clock: Clock
) -> None:
    feed.open(W, LiveFilters())
    store.queries.clear()
    for _ in range(30):
        feed.observe(W, "s1", stored(event(1)))
        clock.advance(1)
    assert store.queries == [live_sessions_collection(W)]
    clock.advance(60)  # past the session's expiry: nobody refreshed it
    feed.observe(W, "s1", stored(event(2)))
    assert not feed.watched(W)


def test_stream_yields_new_events_in_order_with_resumable_ids(
    feed: LiveFeed, store: CountingStore, clock: Clock
) -> None:
    feed.observe(W, "s1", stored(event(0)))  # before anyone watched: never written
    items = feed.open(W, LiveFilters())
    clock.advance(0.5)  # "nobody watches" was cached for this long
    clock.on_sleep = [
        lambda: feed.observe(W, "s1", stored(event(1), event(2))),
        lambda: feed.observe(W, "s1", stored(event(3))),
    ]
    got = take(items, 3)
    assert [json.loads(i.data)["messageId"] for i in got if isinstance(i, LiveEvent)] == [
        "m1",
        "m2",
        "m3",
    ]
    ids = [i.id for i in got if isinstance(i, LiveEvent)]
    assert ids == sorted(ids) and all(Cursor.parse(i) for i in ids)


def test_resume_after_an_id_skips_what_was_sent_and_misses_nothing(
    feed: LiveFeed, store: CountingStore, clock: Clock
) -> None:
    first = feed.open(W, LiveFilters())
    clock.on_sleep = [lambda: feed.observe(W, "s1", stored(event(1), event(2)))]
    sent = take(first, 2)
    last_id = sent[-1].id
    assert last_id is not None
    clock.advance(1)
    feed.observe(W, "s1", stored(event(3)))  # while disconnected: the session still holds
    clock.advance(1)
    feed.observe(W, "s1", stored(event(4)))
    resumed = take(feed.open(W, LiveFilters(), Cursor.parse(last_id)), 2)
    assert [json.loads(i.data)["messageId"] for i in resumed if isinstance(i, LiveEvent)] == [
        "m3",
        "m4",
    ]


def test_a_commit_that_lands_late_is_still_sent_once(
    feed: LiveFeed, store: CountingStore, clock: Clock
) -> None:
    stamps = iter([T0 + timedelta(milliseconds=500), T0 + timedelta(milliseconds=450)])
    late = LiveFeed(
        store,
        clock=clock.wall,
        monotonic=clock.monotonic,
        sleep=clock.sleep,
        commit_time=lambda: next(stamps),
        max_stream_seconds=2,
    )
    items = late.open(W, LiveFilters())
    clock.on_sleep = [
        lambda: late.observe(W, "s1", stored(event(1))),  # committed at +500 ms
        lambda: late.observe(W, "s1", stored(event(2))),  # visible later, stamped +450 ms
    ]
    got = [i for i in items if isinstance(i, LiveEvent)]
    assert [json.loads(i.data)["messageId"] for i in got] == ["m1", "m2"]
    assert got[1].id == got[0].id, "the id stays the furthest position reached"


def test_filters_and_heartbeats_carry_the_cursor(
    feed: LiveFeed, store: CountingStore, clock: Clock
) -> None:
    items = feed.open(W, LiveFilters(source_id="s2", event_type="page"))
    clock.on_sleep = [
        lambda: feed.observe(W, "s1", stored(event(1, "page", "Home"))),
        lambda: feed.observe(W, "s2", stored(event(2, "track", source="s2"))),
        lambda: feed.observe(W, "s2", stored(event(3, "page", "Pricing", source="s2"))),
        lambda: feed.observe(W, "s1", stored(event(4, "track"))),
    ]
    got = take(items, 2)
    assert isinstance(got[0], LiveEvent) and json.loads(got[0].data)["messageId"] == "m3"
    # Only filtered-out events since: the heartbeat moves Last-Event-ID past them.
    assert isinstance(got[1], Heartbeat) and got[1].id is not None and got[1].id > got[0].id
    assert clock.mono >= 1000 + HEARTBEAT_SECONDS


def test_a_stream_ends_after_its_lifetime_and_refreshes_its_session(
    feed: LiveFeed, store: CountingStore, clock: Clock
) -> None:
    items = list(feed.open(W, LiveFilters()))
    assert clock.mono - 1000 >= 60
    assert all(isinstance(i, Heartbeat) for i in items)
    assert len(items) == 60 / HEARTBEAT_SECONDS
    [session] = store.list_documents(live_sessions_collection(W))
    assert session["expires_at"] > clock.now  # refreshed while streaming


def test_expired_events_are_never_sent_and_garbage_is_collected(
    feed: LiveFeed, store: CountingStore, clock: Clock
) -> None:
    feed.open(W, LiveFilters())
    feed.observe(W, "s1", stored(event(1)))
    [stale] = live_documents(store)
    clock.advance(RETENTION.total_seconds() + 120)
    resumed = feed.open(W, LiveFilters(), Cursor(T0 - timedelta(seconds=1)))
    assert live_documents(store) == [], "expired event deleted"
    assert len(store.list_documents(live_sessions_collection(W))) == 1, "old session deleted"
    store.documents[f"{live_events_collection(W)}/{stale['key']}"] = stale  # as if TTL lagged
    assert not [i for i in take(resumed, 1) if isinstance(i, LiveEvent)]


@pytest.mark.parametrize(
    "text", ["", "nope", "2024-01-15T14:00:00.000000~k", "20x4-01-15T14:00:00.000000Z~k"]
)
def test_foreign_ids_are_not_cursors(text: str) -> None:
    assert Cursor.parse(text) is None


def test_cursor_round_trips() -> None:
    cursor = Cursor(datetime(2024, 1, 15, 14, 0, 1, 123456, tzinfo=UTC), "abc")
    assert str(cursor) == "2024-01-15T14:00:01.123456Z~abc"
    assert Cursor.parse(str(cursor)) == cursor


# --- through the `events` function ---------------------------------------------------------


@pytest.fixture
def client() -> Any:
    return function_client("events")


def serve_live(services: FakeServices, clock: Clock) -> LiveFeed:
    """The services' live feed on `clock`, its streams ending after 20 s of that clock."""
    feed = LiveFeed(
        services.store,
        clock=clock.wall,
        monotonic=clock.monotonic,
        sleep=clock.sleep,
        max_stream_seconds=20,
    )
    services.__dict__["live"] = feed
    return feed


def test_live_endpoint_streams_sse(
    client: Any, services: FakeServices, tenant: Tenant, clock: Clock
) -> None:
    workspace_id, auth = tenant
    feed = serve_live(services, clock)
    clock.on_sleep = [
        lambda: feed.observe(workspace_id, "s1", stored({**event(1), "workspaceId": workspace_id})),
        lambda: feed.observe(
            workspace_id, "s1", stored({**event(2, "identify"), "workspaceId": "x"})
        ),
    ]
    response = client.get(
        f"/api/v1/workspaces/{workspace_id}/events/live?event_type=track", headers=auth
    )
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    blocks = response.get_data(as_text=True).split("\n\n")
    assert blocks[0] == "retry: 1000\n: connected"
    event_id, data = blocks[1].split("\n")
    assert event_id.startswith("id: ") and Cursor.parse(event_id[4:])
    assert json.loads(data.removeprefix("data: "))["messageId"] == "m1"
    assert blocks[2].startswith(": heartbeat\nid: ")  # moved past the filtered identify
    assert blocks[-1] == ""


def test_live_endpoint_streams_other_outcomes_as_outcome_events(
    client: Any, services: FakeServices, tenant: Tenant, clock: Clock
) -> None:
    workspace_id, auth = tenant
    feed = serve_live(services, clock)
    blocked = Observed({**event(1), "workspaceId": workspace_id}, "blocked", "blocked: why")
    clock.on_sleep = [lambda: feed.observe(workspace_id, "s1", [blocked])]
    response = client.get(f"/api/v1/workspaces/{workspace_id}/events/live", headers=auth)
    event_id, kind, data = response.get_data(as_text=True).split("\n\n")[1].split("\n")
    assert event_id.startswith("id: ") and kind == "event: outcome"
    outcome = json.loads(data.removeprefix("data: "))
    assert (outcome["status"], outcome["reason"]) == ("blocked", "blocked: why")
    assert outcome["event"]["messageId"] == "m1"


@pytest.mark.parametrize(
    ("query", "headers", "field"),
    [
        ("", {"Last-Event-ID": "garbage"}, "Last-Event-ID"),
        ("?last_event_id=garbage", {}, "last_event_id"),
        ("?event_type=purchase", {}, "event_type"),
        ("?colour=red", {}, "colour"),
    ],
)
def test_live_endpoint_refuses_bad_requests(
    client: Any,
    tenant: Tenant,
    query: str,
    headers: dict[str, str],
    field: str,
) -> None:
    workspace_id, auth = tenant
    response = client.get(
        f"/api/v1/workspaces/{workspace_id}/events/live{query}", headers={**auth, **headers}
    )
    assert response.status_code == 400
    assert response.get_json()["field"] == field


def test_live_endpoint_needs_a_token_of_the_workspace(
    client: Any, services: FakeServices, tenant: Tenant
) -> None:
    workspace_id, auth = tenant
    assert client.get(f"/api/v1/workspaces/{workspace_id}/events/live").status_code == 401
    other = services.workspaces.create("Other")
    assert client.get(f"/api/v1/workspaces/{other.id}/events/live", headers=auth).status_code == 404
