"""How a canonical event is stored as a row of the BigQuery `events` table."""

from __future__ import annotations

import json
from typing import Any

from shared.domain.routing import event_name

# The table's schema lives in shared/schemas/bigquery/events.json, shared with Terraform.
EVENTS_TABLE = "events"
PARTITION_FIELD = "received_at"
CLUSTERING_FIELDS = ("workspace_id", "event_type", "event_name")
JSON_FIELDS = ("properties", "traits", "context", "integrations", "extras")


def event_row(event: dict[str, Any]) -> dict[str, Any]:
    """The `events` row of a canonical event (JSON columns as JSON text, as insertAll wants)."""
    row = {
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
    return row
