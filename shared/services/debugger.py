"""The source debugger: is a source receiving calls, and what did it receive lately."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from shared.domain import ids
from shared.ports import EventQuery, EventStore
from shared.services.event_query import stream_event
from shared.services.sources import EventSources

# A source is `connected` when it received an event within this window.
CONNECTED_WINDOW = timedelta(minutes=5)
# Recent events come from BigQuery partitions of this window only (at most two days scanned).
DEBUG_WINDOW = timedelta(hours=24)
DEFAULT_DEBUG_LIMIT = 50
MAX_DEBUG_LIMIT = 500


class SourceDebugger:
    """Per-source activity: recent events, last event time, and today's counts."""

    def __init__(
        self,
        events: EventStore,
        sources: EventSources,
        clock: Callable[[], datetime] = ids.utcnow,
    ):
        self._events = events
        self._sources = sources
        self._clock = clock

    def debug(
        self, workspace_id: str, source_id: str, limit: int = DEFAULT_DEBUG_LIMIT
    ) -> dict[str, Any]:
        """`{data, connected, lastEventAt}`: the newest events first."""
        source = self._sources.get(workspace_id, source_id, field="sourceId")
        now = self._clock()
        rows = self._events.find(
            EventQuery(workspace_id, now - DEBUG_WINDOW, source_id=source_id, limit=limit)
        )
        # Ingest records last_used_at (at most every 30 s) for calls still in the pipeline or
        # blocked by a contract; the newest stored event is exact. The later of the two wins.
        seen = [rows[0]["received_at"]] if rows else []
        if source.last_used_at:
            seen.append(datetime.fromisoformat(source.last_used_at))
        last = max(seen, default=None)
        return {
            "data": [stream_event(row) for row in rows],
            "connected": last is not None and now - last <= CONNECTED_WINDOW,
            "lastEventAt": ids.isoformat(last) if last else None,
        }

    def events_today(self, workspace_id: str) -> dict[str, int]:
        """Events received since UTC midnight per source: one query for every source."""
        midnight = self._clock().replace(hour=0, minute=0, second=0, microsecond=0)
        return self._events.counts_by_source(workspace_id, midnight)
