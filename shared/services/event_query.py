"""The /v1/streams API's view of stored events: `Event` objects and the event query (BigQuery)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from shared.domain import ids
from shared.domain.errors import InvalidRequest
from shared.ports import Document, EventQuery, EventStore

# Without `from`, a query looks back this far from `to` (a bound BigQuery prunes partitions on).
DEFAULT_WINDOW = timedelta(hours=24)
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# Calls that carry traits, not properties: their traits are the `properties` a reader wants.
TRAIT_CALLS = frozenset({"identify", "group"})
PAGE_FIELDS = ("url", "title", "referrer")


def stream_type(event_type: str, event_name: str | None) -> str:
    """The /v1/streams API's `Event.type`: a track's event name (`purchase`), else the call type."""
    return event_name if event_type == "track" and event_name else event_type


def stream_event(row: Document) -> dict[str, Any]:
    """A stored row as the /v1/streams API's `Event`."""
    context = row.get("context") or {}
    payload = row.get("traits") if row["event_type"] in TRAIT_CALLS else row.get("properties")
    page = context.get("page")
    if not isinstance(page, dict) and row["event_type"] == "page":
        page = row.get("properties")  # server-side page calls put url/title in properties
    return {
        "id": row["message_id"],
        "sourceId": row["source_id"],
        "type": stream_type(row["event_type"], row.get("event_name")),
        "properties": payload or {},
        "context": {
            "ip": _text(context.get("ip")),
            "userAgent": _text(context.get("userAgent")),
            "locale": _text(context.get("locale")),
            "page": {f: _text(page.get(f)) for f in PAGE_FIELDS}
            if isinstance(page, dict)
            else None,
        },
        "userId": row.get("user_id"),
        "anonymousId": row.get("anonymous_id"),
        "timestamp": ids.isoformat(row["timestamp"]),
        "receivedAt": ids.isoformat(row["received_at"]),
    }


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


class EventQueries:
    """Events of a workspace by source, type and time, newest first, with a summary."""

    def __init__(self, events: EventStore, clock: Callable[[], datetime] = ids.utcnow):
        self._events = events
        self._clock = clock

    def query(
        self,
        workspace_id: str,
        source_id: str | None = None,
        event_type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> dict[str, Any]:
        """`{data, summary}`: received in [since, until); `summary` counts every match.

        `source_id` need not name a source that exists now: a deleted source's events stay
        queryable (the query is scoped to the workspace, so no other tenant's can match).
        """
        if source_id == "":
            # `?sourceId=` is a filter whose value went missing (a template with an unset
            # variable): querying every source instead would answer other sources' events.
            raise InvalidRequest(
                "sourceId must not be empty: leave it out to query every source", field="sourceId"
            )
        until = until or self._clock()
        if since is None:
            # `until - DEFAULT_WINDOW` overflows within a day of year 1.
            earliest = datetime.min.replace(tzinfo=until.tzinfo)
            since = until - DEFAULT_WINDOW if until - earliest > DEFAULT_WINDOW else earliest
        if since >= until:
            raise InvalidRequest("from must be before to", field="from")
        query = EventQuery(workspace_id, since, until, source_id, event_type, limit)
        # Two independent BigQuery jobs: run them side by side.
        with ThreadPoolExecutor(max_workers=2) as pool:
            found = pool.submit(self._events.find, query)
            summary = pool.submit(self._events.summarise, query)
            rows, totals = found.result(), summary.result()
        return {
            "data": [stream_event(row) for row in rows],
            "summary": {
                "totalEvents": totals.total_events,
                "uniqueEventTypes": totals.unique_event_types,
                "timeRange": {"from": ids.isoformat(since), "to": ids.isoformat(until)},
            },
        }
