"""Event volume per hour or per day (in a named time zone), optionally of one source."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from shared.domain.event import CanonicalEvent
from shared.domain.storage import event_row
from shared.services.volume import EventVolume, first_midnight
from tests.fakes import FakeEventStore, FakeServices
from tests.functions import function_client
from tests.tenants import Tenant

PARIS = ZoneInfo("Europe/Paris")
# The Monday after Europe's spring change of time (29 March 2026: 02:00 became 03:00).
NOW = datetime(2026, 3, 30, 10, 0, tzinfo=UTC)


def received(store: FakeEventStore, at: datetime, source_id: str = "s1", name: str = "Buy") -> None:
    moment = at.isoformat().replace("+00:00", "Z")
    event: CanonicalEvent = {
        "messageId": f"m-{len(store.rows)}",
        "workspaceId": "w1",
        "sourceId": source_id,
        "type": "track",
        "event": name,
        "userId": "u1",
        "timestamp": moment,
        "receivedAt": moment,
        "properties": {},
    }
    store.insert([event_row(event)], [event["messageId"]])


def test_days_start_at_midnight_in_the_zone_asked_for_even_across_a_change_of_time() -> None:
    store = FakeEventStore()
    received(store, datetime(2026, 3, 27, 22, 30, tzinfo=UTC))  # 23:30 in Paris on the 27th
    received(store, datetime(2026, 3, 27, 23, 30, tzinfo=UTC))  # 00:30 on the 28th there
    received(store, datetime(2026, 3, 28, 22, 59, tzinfo=UTC))  # 23:59 on the 28th
    received(store, datetime(2026, 3, 28, 23, 0, tzinfo=UTC))  # 00:00 on the 29th
    received(store, datetime(2026, 3, 29, 21, 59, tzinfo=UTC))  # 23:59 on the 29th (UTC+2)
    received(store, datetime(2026, 3, 29, 22, 0, tzinfo=UTC))  # 00:00 on the 30th
    volume = EventVolume(store, clock=lambda: NOW)

    rows = volume.counts("w1", 72, granularity="day", time_zone=PARIS)

    assert [(r["day_bucket"], r["event_count"]) for r in rows] == [
        ("2026-03-28T00:00:00+01:00", 2),
        ("2026-03-29T00:00:00+01:00", 2),
        ("2026-03-30T00:00:00+02:00", 1),
    ]
    assert all(set(r) == {"event_type", "event_name", "day_bucket", "event_count"} for r in rows)
    in_utc = volume.counts("w1", 48, granularity="day")
    assert [(r["day_bucket"], r["event_count"]) for r in in_utc] == [
        ("2026-03-29T00:00:00+00:00", 2)
    ]


def test_the_first_day_of_a_window_is_found_by_the_calendar() -> None:
    # Seven days back from the Monday crosses the 23-hour Sunday: still local midnight.
    assert first_midnight(NOW, 7, PARIS) == datetime(2026, 3, 23, 23, 0, tzinfo=UTC)
    assert first_midnight(NOW, 1, PARIS) == datetime(2026, 3, 29, 22, 0, tzinfo=UTC)
    assert first_midnight(NOW, 2, ZoneInfo("UTC")) == datetime(2026, 3, 29, tzinfo=UTC)


def test_hours_and_days_count_only_the_source_asked_for() -> None:
    store = FakeEventStore()
    for _ in range(3):
        received(store, NOW - timedelta(minutes=5), source_id="web")
    received(store, NOW - timedelta(minutes=5), source_id="ios")
    received(store, NOW - timedelta(hours=2), source_id="web")
    volume = EventVolume(store, clock=lambda: NOW)

    hourly = volume.counts("w1", 24, source_id="web")
    assert [(r["hour_bucket"], r["event_count"]) for r in hourly] == [
        ("2026-03-30T08:00:00Z", 1),
        ("2026-03-30T09:00:00Z", 3),
    ]
    assert sum(r["event_count"] for r in volume.counts("w1", 24)) == 5
    daily = volume.counts("w1", 168, granularity="day", time_zone=PARIS, source_id="ios")
    assert daily == [
        {
            "event_type": "track",
            "event_name": "Buy",
            "day_bucket": "2026-03-30T00:00:00+02:00",
            "event_count": 1,
        }
    ]


def test_the_api_answers_days_in_the_zone_asked_for(services: FakeServices, tenant: Tenant) -> None:
    workspace_id, auth = tenant
    now = datetime.now(UTC)
    event: CanonicalEvent = {
        "messageId": "m1",
        "workspaceId": workspace_id,
        "sourceId": "web",
        "type": "page",
        "name": "Home",
        "userId": "u1",
        "timestamp": now.isoformat(),
        "receivedAt": now.isoformat(),
    }
    services.event_store.insert([event_row(event)], ["m1"])
    client = function_client("events")
    path = f"/api/v1/workspaces/{workspace_id}/events/volume"

    daily = client.get(
        path,
        query_string={"hours": 720, "granularity": "day", "time_zone": "Asia/Kolkata"},
        headers=auth,
    )
    assert daily.status_code == 200, daily.get_json()
    midnight = datetime.combine(
        now.astimezone(ZoneInfo("Asia/Kolkata")).date(), datetime.min.time()
    )
    assert daily.get_json() == [
        {
            "event_type": "page",
            "event_name": "Home",
            "day_bucket": f"{midnight.isoformat()}+05:30",
            "event_count": 1,
        }
    ]
    other_source = client.get(path, query_string={"source_id": "ios"}, headers=auth)
    assert other_source.status_code == 200 and other_source.get_json() == []


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"time_zone": "Mars/Olympus"}, "time_zone", "must be an IANA time zone name"),
        ({"time_zone": "../../etc/passwd"}, "time_zone", "must be an IANA time zone name"),
        ({"granularity": "week"}, "granularity", "must be one of: hour, day"),
    ],
)
def test_the_api_refuses_an_unknown_zone_or_granularity_naming_the_field(
    tenant: Tenant, query: dict[str, Any], field: str, message: str
) -> None:
    workspace_id, auth = tenant
    response = function_client("events").get(
        f"/api/v1/workspaces/{workspace_id}/events/volume", query_string=query, headers=auth
    )
    assert response.status_code == 400
    body = response.get_json()
    assert body["field"] == field
    assert message in body["message"]
