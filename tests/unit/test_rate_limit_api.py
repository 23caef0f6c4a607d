"""A source's rate limit: set and read through the Event Sources API (audited, carried on the
write-key record), and enforced by ingest with 429 and Retry-After, publishing nothing of a
refused request."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.domain.rate_limit import FLUSH_SECONDS, WINDOW_SECONDS, RateLimit, rate_window_path
from shared.domain.sources import EventSource
from shared.services.rate_limiter import RateLimiter
from tests.fakes import FakeServices, InMemoryCounterStore
from tests.functions import function_client
from tests.tenants import Tenant
from tests.unit.conftest import published

START = 1_700_000_000.0  # the start of a window


class Clock:
    """Unix time that moves only when told to."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def counters(services: FakeServices, clock: Clock) -> InMemoryCounterStore:
    """The shared counter, and ingest's limiter on it and on the test's clock."""
    store = InMemoryCounterStore()
    services.__dict__["counters"] = store
    services.__dict__["rate_limiter"] = RateLimiter(lambda: store, clock=clock)
    return store


@pytest.fixture
def keys() -> Any:
    return function_client("event_keys")


@pytest.fixture
def ingest() -> Any:
    return function_client("ingest")


def path(tenant: Tenant, source_id: str) -> str:
    return f"/api/v1/workspaces/{tenant[0]}/event-keys/{source_id}/rate-limit"


def limited(services: FakeServices, source: EventSource, per_second: int, burst: int) -> None:
    services.sources.set_rate_limit(
        source.workspace_id, source.id, RateLimit(events_per_second=per_second, burst=burst)
    )


def track(ingest: Any, source: EventSource, **body: Any) -> Any:
    return ingest.post(
        "/v1/track",
        json={"event": "Clicked", "userId": "u1", **body},
        headers={"X-Write-Key": source.key},
    )


def batch(ingest: Any, source: EventSource, items: list[dict[str, Any]]) -> Any:
    return ingest.post("/v1/batch", json={"batch": items}, headers={"X-Write-Key": source.key})


# --- the setting ------------------------------------------------------------------------------


def test_no_limit_by_default_then_set_read_and_removed(
    keys: Any, services: FakeServices, tenant: Tenant
) -> None:
    workspace_id, auth = tenant
    source = services.sources.create(workspace_id, "Web", "t")
    url = path(tenant, source.id)

    initial = keys.get(url, headers=auth)
    assert initial.status_code == 200
    assert initial.get_json()["rate_limit"] is None
    assert initial.get_json()["window_seconds"] == WINDOW_SECONDS

    updated = keys.put(url, json={"rate_limit": {"events_per_second": 50}}, headers=auth)
    assert updated.status_code == 200, updated.get_json()
    # The burst defaults to one second of the rate.
    assert updated.get_json()["rate_limit"] == {"events_per_second": 50, "burst": 50}
    assert keys.get(url, headers=auth).get_json()["rate_limit"]["burst"] == 50
    # On the record ingest caches, so enforcing it costs no read of its own.
    key = services.sources.resolve_write_key(source.key)
    assert key is not None and key.rate_limit == RateLimit(events_per_second=50, burst=50)

    both = {"rate_limit": {"events_per_second": 5, "burst": 200}}
    assert keys.put(url, json=both, headers=auth).get_json()["rate_limit"]["burst"] == 200

    removed = keys.put(url, json={"rate_limit": None}, headers=auth)
    assert removed.status_code == 200 and removed.get_json()["rate_limit"] is None
    key = services.sources.resolve_write_key(source.key)
    assert key is not None and key.rate_limit is None
    # The seed's Event Source Object stays exact: the limit is only on its own resource.
    listed = keys.get(f"/api/v1/workspaces/{workspace_id}/event-keys", headers=auth).get_json()
    assert "rate_limit" not in listed[0]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "rate_limit"),
        ({"rate_limit": {}}, "rate_limit.events_per_second"),
        ({"rate_limit": {"events_per_second": 0}}, "rate_limit.events_per_second"),
        ({"rate_limit": {"events_per_second": -5}}, "rate_limit.events_per_second"),
        ({"rate_limit": {"events_per_second": 1.5}}, "rate_limit.events_per_second"),
        ({"rate_limit": {"events_per_second": "10"}}, "rate_limit.events_per_second"),
        ({"rate_limit": {"events_per_second": True}}, "rate_limit.events_per_second"),
        ({"rate_limit": {"events_per_second": 10**7}}, "rate_limit.events_per_second"),
        ({"rate_limit": {"events_per_second": 10, "burst": 0}}, "rate_limit.burst"),
        ({"rate_limit": {"events_per_second": 10, "burst": 2.5}}, "rate_limit.burst"),
        ({"rate_limit": {"events_per_second": 10, "per_minute": 5}}, "rate_limit.per_minute"),
        ({"rate_limit": 100}, "rate_limit"),
        ({"rate_limit": None, "extra": 1}, "extra"),
    ],
)
def test_bad_limits_are_400_naming_the_field(
    keys: Any, services: FakeServices, tenant: Tenant, body: dict[str, Any], field: str
) -> None:
    source = services.sources.create(tenant[0], "Web", "t")
    response = keys.put(path(tenant, source.id), json=body, headers=tenant[1])
    assert response.status_code == 400
    error = response.get_json()
    assert error["field"] == field and field in error["message"]
    assert services.sources.get(tenant[0], source.id).rate_limit is None


def test_another_workspaces_source_is_404(
    keys: Any, services: FakeServices, tenant: Tenant
) -> None:
    other = services.workspaces.create("Other")
    theirs = services.sources.create(other.id, "Theirs", "t")
    body = {"rate_limit": {"events_per_second": 1}}
    assert keys.put(path(tenant, theirs.id), json=body, headers=tenant[1]).status_code == 404
    assert keys.get(path(tenant, theirs.id), headers=tenant[1]).status_code == 404
    assert services.sources.get(other.id, theirs.id).rate_limit is None


def test_a_change_is_audited_with_before_and_after(
    keys: Any, services: FakeServices, tenant: Tenant
) -> None:
    source = services.sources.create(tenant[0], "Web", "t")
    body = {"rate_limit": {"events_per_second": 20, "burst": 40}}
    assert keys.put(path(tenant, source.id), json=body, headers=tenant[1]).status_code == 200
    governance = function_client("governance")
    entries = governance.get(
        f"/api/v1/workspaces/{tenant[0]}/audit-log?resource_type=event_source",
        headers=tenant[1],
    ).get_json()["data"]
    [entry] = [e for e in entries if e["operation_id"] == "updateEventSourceRateLimit"]
    assert entry["resource_id"] == source.id and entry["action"] == "update"
    assert entry["before"]["rate_limit"] is None
    assert entry["after"]["rate_limit"] == {"events_per_second": 20, "burst": 40}


# --- ingest enforces it -----------------------------------------------------------------------


def test_over_the_limit_is_429_with_retry_after_and_nothing_published(
    ingest: Any, services: FakeServices, source: EventSource, counters: InMemoryCounterStore
) -> None:
    limited(services, source, per_second=2, burst=3)
    assert [track(ingest, source).status_code for _ in range(3)] == [200] * 3
    refused = track(ingest, source, messageId="refused-1")
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"  # one token accrues in 0.5 s
    error = refused.get_json()
    assert error["code"] == 429 and error["error"] == "too_many_requests"
    assert "2 events per second (bursts of up to 3)" in error["message"]
    assert "nothing of this request was published" in error["message"]
    events = published(services, source)
    assert len(events) == 3 and "refused-1" not in {e["messageId"] for e in events}


def test_the_streams_api_and_test_events_publish_under_the_same_limit(
    services: FakeServices, tenant: Tenant, counters: InMemoryCounterStore
) -> None:
    """POST /v1/streams/events and .../test-event publish through the source as ingest does."""
    source = services.sources.create(tenant[0], "Web", "t")
    limited(services, source, per_second=1, burst=2)
    auth = tenant[1]
    streams, keys = function_client("streams"), function_client("event_keys")
    event = {"sourceId": source.id, "type": "signup"}
    test_event = f"/api/v1/workspaces/{tenant[0]}/event-keys/{source.id}/test-event"
    answers = [
        streams.post("/v1/streams/events", json=event, headers=auth),
        keys.post(test_event, headers=auth),
        streams.post("/v1/streams/events", json=event, headers=auth),
        keys.post(test_event, headers=auth),
    ]
    assert [a.status_code for a in answers] == [202, 202, 429, 429]
    assert all(int(a.headers["Retry-After"]) >= 1 for a in answers[2:])
    assert len(published(services, source)) == 2


def test_a_batch_counts_its_accepted_events_and_is_refused_whole(
    ingest: Any,
    services: FakeServices,
    source: EventSource,
    counters: InMemoryCounterStore,
    clock: Clock,
) -> None:
    limited(services, source, per_second=5, burst=5)
    items = [{"type": "track", "event": "E", "userId": "u", "messageId": f"m{i}"} for i in range(4)]
    # A refused item (no event name) costs nothing: 3 events of the bucket's 5.
    first = batch(ingest, source, [*items[:3], {"type": "track", "userId": "u"}])
    assert first.status_code == 200 and first.get_json()["accepted"] == 3
    # 3 more do not fit in the 2 left: the whole batch is refused, none of it published.
    second = batch(ingest, source, [dict(i, messageId=f"n{n}") for n, i in enumerate(items[:3])])
    assert second.status_code == 429 and second.headers["Retry-After"] == "1"
    assert len(published(services, source)) == 3
    # Once a second has passed the SDK's resend goes through, exactly as it was.
    clock.now += 1
    resent = batch(ingest, source, [dict(i, messageId=f"n{n}") for n, i in enumerate(items[:3])])
    assert resent.status_code == 200
    assert [e["messageId"] for e in published(services, source)] == [
        "m0",
        "m1",
        "m2",
        "n0",
        "n1",
        "n2",
    ]


def test_a_source_without_a_limit_and_other_sources_are_not_affected(
    ingest: Any, services: FakeServices, source: EventSource, counters: InMemoryCounterStore
) -> None:
    other = services.sources.create(source.workspace_id, "Other", "t")
    limited(services, source, per_second=1, burst=1)
    assert track(ingest, source).status_code == 200
    assert track(ingest, source).status_code == 429
    assert all(track(ingest, other).status_code == 200 for _ in range(50))
    # Unlimited sources never touch the shared counter.
    assert all(not p.startswith(f"rate_windows/{other.id}") for p in counters.documents)


def test_the_shared_counter_is_written_at_most_once_a_second(
    ingest: Any,
    services: FakeServices,
    source: EventSource,
    counters: InMemoryCounterStore,
    clock: Clock,
) -> None:
    limited(services, source, per_second=1000, burst=1000)
    for step in range(24):
        clock.now = START + step * 0.125  # 8 requests a second for 3 s
        assert track(ingest, source).status_code == 200
    # Written by the second request (the first had nothing to add yet), then 1 and 2 s later:
    # 3 writes for 24 requests, carrying 1 + 8 + 8 of them (the last 7 are not due yet).
    assert counters.calls == 3
    window = counters.documents[rate_window_path(source.id, int(START // WINDOW_SECONDS))]
    assert window["admitted"] == window["requested"] == 17
    assert window["expires_at"].timestamp() > START + WINDOW_SECONDS


def test_other_instances_counts_close_the_window_with_retry_after_until_its_end(
    ingest: Any,
    services: FakeServices,
    source: EventSource,
    counters: InMemoryCounterStore,
    clock: Clock,
) -> None:
    limited(services, source, per_second=10, burst=10)  # 110 events per 10 s window
    # Other instances already admitted 105 of this window's events.
    window = rate_window_path(source.id, int(START // WINDOW_SECONDS))
    counters.documents[window] = {"admitted": 105, "requested": 105}
    assert track(ingest, source).status_code == 200
    # The next request writes that event and learns the window's 106: 4 more fit.
    clock.now += FLUSH_SECONDS
    statuses = [track(ingest, source).status_code for _ in range(5)]
    assert statuses == [200] * 4 + [429]
    refused = track(ingest, source)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == str(WINDOW_SECONDS - 1)
    clock.now = START + WINDOW_SECONDS + 1  # a new window
    assert track(ingest, source).status_code == 200


def test_an_unavailable_counter_leaves_the_local_bucket_in_charge(
    ingest: Any,
    services: FakeServices,
    source: EventSource,
    counters: InMemoryCounterStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    counters.unavailable = True
    limited(services, source, per_second=2, burst=4)
    # No 503 and no 500: the shared counter's outage neither refuses nor fails events.
    assert [track(ingest, source).status_code for _ in range(5)] == [200] * 4 + [429]
    assert len(published(services, source)) == 4
    assert "shared window not counted" in caplog.text


def test_a_web_page_can_read_the_429_and_its_retry_after(
    ingest: Any, services: FakeServices, source: EventSource, counters: InMemoryCounterStore
) -> None:
    limited(services, source, per_second=1, burst=1)
    headers = {"X-Write-Key": source.key, "Origin": "https://shop.example.com"}
    body = json.dumps({"event": "Clicked", "userId": "u1"})
    assert ingest.post("/v1/track", data=body, headers=headers).status_code == 200
    refused = ingest.post("/v1/track", data=body, headers=headers)
    assert refused.status_code == 429
    assert refused.headers["Access-Control-Allow-Origin"] == "https://shop.example.com"
    assert "Retry-After" in refused.headers["Access-Control-Expose-Headers"]
