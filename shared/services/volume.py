"""Hourly event volume of a workspace, counted by BigQuery (never by per-event counters)."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from shared.ports import EventStore

DEFAULT_HOURS = 24
# 30 days: the window a BigQuery scan of this kind stays cheap in (partition-pruned, clustered).
MAX_HOURS = 720
HOUR_BUCKET_FORMAT = "%Y-%m-%dT%H:00:00Z"


class EventVolume:
    """The seed's volume rows: `event_type`, `event_name`, `hour_bucket`, `event_count`."""

    def __init__(self, events: EventStore):
        self._events = events

    def hourly(self, workspace_id: str, hours: int = DEFAULT_HOURS) -> list[dict[str, Any]]:
        """Counts of the current hour and the `hours - 1` before it, oldest bucket first."""
        if not 1 <= hours <= MAX_HOURS:
            raise ValueError(f"hours must be within 1..{MAX_HOURS}")
        return [
            {
                "event_type": row["event_type"],
                "event_name": row["event_name"],
                "hour_bucket": row["hour_bucket"].astimezone(UTC).strftime(HOUR_BUCKET_FORMAT),
                "event_count": int(row["event_count"]),
            }
            for row in self._events.volume(workspace_id, hours)
        ]
