"""A fresh live stream starts with what just happened, and shows every outcome, not only
stored events (issue 24 item 1)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import timedelta

import pytest

from shared.domain import ids
from shared.domain.event import CanonicalEvent
from shared.domain.outcomes import Observed
from shared.domain.pipeline import quarantine_collection
from shared.domain.sort_keys import sort_key
from shared.domain.storage import event_row
from shared.ports import Write
from shared.services.live import (
    BACKLOG_LIMIT,
    BACKLOG_WINDOW,
    Cursor,
    LiveEvent,
    LiveFeed,
    LiveFilters,
)
from tests.fakes import FakeEventStore
from tests.unit.test_observe_live import T0, Clock, CountingStore, W, event, take


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def events() -> FakeEventStore:
    return FakeEventStore()


@pytest.fixture
def store() -> CountingStore:
    return CountingStore()


@pytest.fixture
def feed(store: CountingStore, clock: Clock, events: FakeEventStore) -> LiveFeed:
    return LiveFeed(
        store,
        clock=clock.wall,
        monotonic=clock.monotonic,
        sleep=clock.sleep,
        max_stream_seconds=60,
        events=lambda: events,
    )


def received(i: int, seconds_ago: float, **kwargs: str) -> CanonicalEvent:
    """`event(i)` received `seconds_ago` before T0."""
    received_event = event(i, **kwargs)
    at = ids.isoformat(T0 - timedelta(seconds=seconds_ago))
    received_event["receivedAt"] = received_event["timestamp"] = at
    return received_event


def store_events(events: FakeEventStore, *stored: CanonicalEvent) -> None:
    events.insert([event_row(e) for e in stored], [e["messageId"] for e in stored])


def quarantine(store: CountingStore, blocked: CanonicalEvent, field: str) -> None:
    """`blocked` as the contract validator quarantines it (the fields the backlog reads)."""
    at = blocked["receivedAt"]
    record = {
        "id": blocked["messageId"],
        "message_id": blocked["messageId"],
        "source_id": blocked.get("sourceId"),
        "received_at": at,
        "sort_key": sort_key(at, blocked["messageId"]),
        "reasons": [{"field": field, "message": "total is required", "type": "required"}],
        "event_json": json.dumps(blocked),
        "status": "quarantined",
    }
    path = f"{quarantine_collection(W)}/{blocked['messageId']}"
    store.commit([Write("set", path, record)])


def events_of(items: Iterable[object]) -> list[LiveEvent]:
    return [item for item in items if isinstance(item, LiveEvent)]


def test_a_fresh_stream_starts_with_recent_stored_and_blocked_events_oldest_first(
    feed: LiveFeed, store: CountingStore, events: FakeEventStore
) -> None:
    store_events(events, received(1, 30), received(3, 7))
    quarantine(store, received(2, 20), "properties.total")
    stream = feed.open(W, LiveFilters())
    backlog = events_of(take(stream, 3))
    assert [json.loads(e.data)["messageId"] for e in backlog] == ["m1", "m2", "m3"]
    assert [e.status for e in backlog] == ["stored", "blocked", "stored"]
    assert backlog[1].reason == "blocked by a contract: total is required"
    # Each carries the stream's start: a reconnect resumes after the backlog, never before it.
    assert {e.id for e in backlog} == {str(Cursor(T0))}


def test_the_backlog_is_bounded_by_its_window_and_count_and_keeps_the_newest(
    feed: LiveFeed, events: FakeEventStore
) -> None:
    window = BACKLOG_WINDOW.total_seconds()
    store_events(events, received(0, window + 5))  # too old
    store_events(events, *(received(i, 300 - i) for i in range(1, BACKLOG_LIMIT + 21)))
    stream = feed.open(W, LiveFilters())
    backlog = events_of(take(stream, BACKLOG_LIMIT))
    ids_shown = [json.loads(e.data)["messageId"] for e in backlog]
    assert ids_shown == [f"m{i}" for i in range(21, BACKLOG_LIMIT + 21)]


def test_the_backlog_obeys_the_stream_s_filters(feed: LiveFeed, events: FakeEventStore) -> None:
    store_events(
        events,
        received(1, 30, source="s2"),
        received(2, 20, type_="page", name="Pricing"),
        received(3, 10, type_="track", name="Signed Up"),
    )
    stream = feed.open(W, LiveFilters(event_type="track", event_name="Signed Up"))
    [shown] = events_of(take(stream, 1))
    assert json.loads(shown.data)["messageId"] == "m3"
    stream.close()
    other = feed.open(W, LiveFilters(source_id="s2"))
    [shown] = events_of(take(other, 1))
    assert json.loads(shown.data)["messageId"] == "m1"


def test_a_resumed_stream_has_no_backlog(
    feed: LiveFeed, events: FakeEventStore, clock: Clock
) -> None:
    store_events(events, received(1, 30))
    clock.on_sleep = [lambda: feed.observe(W, "s1", [Observed(received(2, 0))])]
    stream = feed.open(W, LiveFilters(), after=Cursor(T0 - timedelta(seconds=1)))
    [shown] = events_of(take(stream, 1))
    assert json.loads(shown.data)["messageId"] == "m2"


def test_an_event_in_the_backlog_is_not_shown_again_when_its_live_copy_arrives(
    feed: LiveFeed, events: FakeEventStore, clock: Clock
) -> None:
    late = received(1, 0)
    store_events(events, late)
    clock.on_sleep = [
        lambda: feed.observe(W, "s1", [Observed(late), Observed(received(2, 0))]),
    ]
    stream = feed.open(W, LiveFilters())
    shown = events_of(take((i for i in stream if isinstance(i, LiveEvent)), 2))
    assert [json.loads(e.data)["messageId"] for e in shown] == ["m1", "m2"]


def test_every_outcome_is_streamed_with_its_status_and_reason(feed: LiveFeed, clock: Clock) -> None:
    outcomes = [
        Observed(event(1), "duplicate", "a duplicate"),
        Observed(event(1)),
        Observed(event(2), "suppressed", "suppressed by privacy regulation r1"),
    ]
    clock.on_sleep = [lambda: feed.observe(W, "s1", outcomes)]
    stream = feed.open(W, LiveFilters())
    shown = events_of(take((i for i in stream if isinstance(i, LiveEvent)), 3))
    assert [(json.loads(e.data)["messageId"], e.status, e.reason) for e in shown] == [
        ("m1", "duplicate", "a duplicate"),
        ("m1", "stored", None),
        ("m2", "suppressed", "suppressed by privacy regulation r1"),
    ]
