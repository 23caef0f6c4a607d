"""How a canonical event is stored as a row of the BigQuery `events` table."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from shared.domain.event import CanonicalEvent, EventKey
from shared.domain.ids import isoformat
from shared.domain.routing import event_name

# The table's schema lives in shared/schemas/bigquery/events.json, shared with Terraform.
EVENTS_TABLE = "events"
PARTITION_FIELD = "received_at"
CLUSTERING_FIELDS = ("workspace_id", "event_type", "event_name")
JSON_FIELDS: tuple[EventKey, ...] = ("properties", "traits", "context", "integrations", "extras")


def event_row(event: CanonicalEvent, consent_denied: Sequence[str] = ()) -> dict[str, Any]:
    """The `events` row of a canonical event (JSON columns as JSON text, as insertAll wants),
    with the destinations routing held it back from for consent."""
    row: dict[str, Any] = {
        "message_id": event["messageId"],
        "workspace_id": event["workspaceId"],
        "source_id": event["sourceId"],
        "event_type": event["type"],
        "event_name": event_name(event),
        "user_id": event.get("userId"),
        "anonymous_id": event.get("anonymousId"),
        "group_id": event.get("groupId"),
        "previous_id": event.get("previousId"),
        "timestamp": event["timestamp"],
        "original_timestamp": event.get("originalTimestamp"),
        "sent_at": event.get("sentAt"),
        "received_at": event["receivedAt"],
        "clock_skew_ms": event.get("clockSkewMs"),
    }
    for field in JSON_FIELDS:
        value = event.get(field)
        row[field] = None if value is None else json.dumps(value, separators=(",", ":"))
    row["consent_denied"] = list(consent_denied)
    return row


# The `events` table's columns, in schema order (what `event_row` fills and `row_event` reads).
EVENT_COLUMNS = (
    "message_id",
    "workspace_id",
    "source_id",
    "event_type",
    "event_name",
    "user_id",
    "anonymous_id",
    "group_id",
    "previous_id",
    "timestamp",
    "original_timestamp",
    "sent_at",
    "received_at",
    "clock_skew_ms",
    *JSON_FIELDS,
    "consent_denied",
)


def row_event(row: Mapping[str, Any]) -> CanonicalEvent:
    """The canonical event of an `events` row: the inverse of `event_row`.

    TIMESTAMP columns may be datetimes (the client) or text (as inserted); JSON columns parsed
    values or JSON text (some emulator versions).
    """
    event_type = row["event_type"]
    name = row.get("event_name")
    json_values = {field: _json(row.get(field)) for field in JSON_FIELDS}
    return {
        "messageId": row["message_id"],
        "type": event_type,
        "event": name if event_type == "track" else None,
        "name": name if event_type in ("page", "screen") else None,
        "userId": row.get("user_id"),
        "anonymousId": row.get("anonymous_id"),
        "groupId": row.get("group_id"),
        "previousId": row.get("previous_id"),
        "properties": json_values["properties"],
        "traits": json_values["traits"],
        "context": json_values["context"],
        "integrations": json_values["integrations"],
        "timestamp": _required_timestamp(row.get("timestamp")),
        "originalTimestamp": _timestamp(row.get("original_timestamp")),
        "sentAt": _timestamp(row.get("sent_at")),
        "receivedAt": _required_timestamp(row.get("received_at")),
        "clockSkewMs": None if row.get("clock_skew_ms") is None else int(row["clock_skew_ms"]),
        "workspaceId": row["workspace_id"],
        "sourceId": row["source_id"],
        "extras": json_values["extras"] or {},
    }


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _timestamp(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return isoformat(moment)
    raise TypeError(f"not a timestamp: {value!r}")


def _required_timestamp(value: Any) -> str:
    """A REQUIRED column's timestamp (`timestamp`, `received_at`): BigQuery never holds one
    null, and `event_row` writes them from keys every stored event has."""
    text = _timestamp(value)
    if text is None:
        raise TypeError("not a timestamp: None")
    return text
