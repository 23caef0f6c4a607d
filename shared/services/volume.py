"""Event volume of a workspace per hour or per day, counted by BigQuery (never by per-event
counters)."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from shared.domain import ids
from shared.domain.consent import CONSENT_DENIED
from shared.ports import EventStore

DEFAULT_HOURS = 24
# 30 days: the window a BigQuery scan of this kind stays cheap in (partition-pruned, clustered).
MAX_HOURS = 720
HOUR_BUCKET_FORMAT = "%Y-%m-%dT%H:00:00Z"
Granularity = Literal["hour", "day"]
UTC_ZONE = ZoneInfo("UTC")


class EventVolume:
    """The seed's volume rows (`event_type`, `event_name`, `hour_bucket`, `event_count`), or per
    day (`day_bucket` instead of `hour_bucket`), optionally of one source."""

    def __init__(self, events: EventStore, clock: Callable[[], datetime] = ids.utcnow):
        self._events = events
        self._clock = clock

    def consent_denials(
        self, workspace_id: str, hours: int = DEFAULT_HOURS, destination_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Per hour (the current one and the `hours - 1` before it) and destination: the events
        held back from it for consent. Oldest hour first; hours without any are absent."""
        if not 1 <= hours <= MAX_HOURS:
            raise ValueError(f"hours must be within 1..{MAX_HOURS}")
        since = self._clock().replace(minute=0, second=0, microsecond=0)
        since -= timedelta(hours=hours - 1)
        return [
            {
                "destination_id": row["destination_id"],
                "outcome": CONSENT_DENIED,
                **_bucket(row["bucket"], "hour", UTC_ZONE),
                "event_count": int(row["event_count"]),
            }
            for row in self._events.consent_denials(workspace_id, since, destination_id)
        ]

    def counts(
        self,
        workspace_id: str,
        hours: int = DEFAULT_HOURS,
        *,
        granularity: Granularity = "hour",
        time_zone: ZoneInfo = UTC_ZONE,
        source_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Per hour: the current hour and the `hours - 1` before it. Per day: today in
        `time_zone` and the days before it, as many as `hours` spans (168 hours: 7 days), each
        from its midnight there. Oldest bucket first; buckets without events are absent."""
        if not 1 <= hours <= MAX_HOURS:
            raise ValueError(f"hours must be within 1..{MAX_HOURS}")
        now = self._clock()
        if granularity == "day":
            since = first_midnight(now, math.ceil(hours / 24), time_zone)
        else:
            since = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
        rows = self._events.volume(
            workspace_id,
            since,
            granularity=granularity,
            time_zone=time_zone.key,
            source_id=source_id,
        )
        return [
            {
                "event_type": row["event_type"],
                "event_name": row["event_name"],
                **_bucket(row["bucket"], granularity, time_zone),
                "event_count": int(row["event_count"]),
            }
            for row in rows
        ]


def first_midnight(now: datetime, days: int, zone: ZoneInfo) -> datetime:
    """The instant the first of `days` days (the last being today in `zone`) began there.

    Calendar arithmetic on the local date, then its midnight: a day across a change of
    daylight-saving time lasts 23 or 25 hours, so subtracting 24-hour steps would miss or
    double an hour."""
    today = now.astimezone(zone).date()
    return datetime.combine(today - timedelta(days=days - 1), time(), tzinfo=zone).astimezone(UTC)


def _bucket(start: datetime, granularity: Granularity, zone: ZoneInfo) -> dict[str, str]:
    if granularity == "day":
        # The day's midnight with its offset there, e.g. 2024-01-15T00:00:00+01:00.
        return {"day_bucket": start.astimezone(zone).isoformat()}
    return {"hour_bucket": start.astimezone(UTC).strftime(HOUR_BUCKET_FORMAT)}
