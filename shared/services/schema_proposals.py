"""A contract schema proposed from the stored events a contract would judge (the console's
"events seen" panel): the newest events of that type and name, read from the events table, and
their properties (or traits) described by `schema_inference`."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from shared.domain import ids
from shared.domain.contracts import ANY_NAME, NAMED_TYPES, TARGETS
from shared.domain.errors import InvalidRequest
from shared.domain.schema_inference import propose_schema
from shared.ports import EventQuery, EventStore

# Page and screen events are found by type only (the events query names tracks alone), then
# sorted by name here: this many of the newest are read to find `limit` of one name.
MAX_NAMED_SCAN = 1000


class SchemaProposals:
    """Schemas proposed from a workspace's stored events (BigQuery: one query per proposal)."""

    def __init__(self, events: EventStore, clock: Callable[[], datetime] = ids.utcnow):
        self._events = events
        self._clock = clock

    def propose(
        self, workspace_id: str, event_type: str, event_name: str | None, limit: int, days: int
    ) -> dict[str, Any]:
        """The compact-form schema describing the newest `limit` matching events received in
        the last `days`, with what each field was inferred from."""
        name = None if event_name in (None, ANY_NAME) else event_name
        if name is not None and event_type not in NAMED_TYPES:
            raise InvalidRequest(
                f'event_name: {event_type} events have no name; use "*" or leave it out',
                field="event_name",
            )
        if name is None and event_type == "track":
            raise InvalidRequest(
                "event_name: a track proposal is for one event name", field="event_name"
            )
        until = self._clock()
        since = until - timedelta(days=days)
        # A track is found by its name; page and screen by their type (see MAX_NAMED_SCAN).
        stream_type = name if event_type == "track" else event_type
        scan = limit if event_type == "track" or name is None else MAX_NAMED_SCAN
        rows = self._events.find(EventQuery(workspace_id, since, until, None, stream_type, scan))
        matching = [row for row in rows if row["event_type"] == event_type]
        if name is not None and event_type != "track":
            matching = [row for row in matching if row.get("event_name") == name]
        matching = matching[:limit]
        target = TARGETS[event_type]
        proposal = propose_schema(_payload(row.get(target)) for row in matching)
        return {
            "event_type": event_type,
            "event_name": name or ANY_NAME,
            "target": target,
            "sampled": proposal.sampled,
            "since": ids.isoformat(since),
            "until": ids.isoformat(until),
            "newest_received_at": ids.isoformat(matching[0]["received_at"]) if matching else None,
            "schema_definition": proposal.schema_definition,
            "fields": [
                {"field": f.field, "types": f.types, "seen": f.seen, "required": f.required}
                for f in proposal.fields
            ],
        }


def _payload(value: Any) -> Any:
    # The events query answers JSON columns parsed; some emulator versions answer JSON text.
    return json.loads(value) if isinstance(value, str) else value
