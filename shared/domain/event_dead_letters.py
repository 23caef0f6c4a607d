"""Dead letters of events that never reached a destination: `process` set the event aside, or
Pub/Sub gave up on its whole source message. Kept beside the deliveries' dead letters, listed
and replayed the same way; a replay publishes the event to its source topic again."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from shared.domain import ids
from shared.domain.event import CanonicalEvent
from shared.domain.pipeline import RECORD_RETENTION_DAYS, event_dead_letter_id
from shared.domain.poison import event_json, safe_text

# `kind` of a dead letter; records without one (older ones) are deliveries.
DELIVERY_KIND = "delivery"
EVENT_KIND = "event"


def event_dead_letter(
    workspace_id: str,
    source_id: str,
    event: CanonicalEvent,
    reason_code: str,
    reason: str,
    attempts: int | None,
    now: datetime,
    previous: dict[str, Any] | None = None,
    redacted: bool = False,
) -> dict[str, Any]:
    """The record of one event set aside. The event is kept as JSON text (never as a map), so
    that anything JSON carries is storable: empty keys, `\\u` escapes of lone surrogates.

    `redacted` says that the workspace's PII rules were applied to the event already.
    """
    message_id = str(event.get("messageId", ""))
    at = ids.isoformat(now)
    previous = previous or {}
    return {
        "id": event_dead_letter_id(message_id),
        "kind": EVENT_KIND,
        "workspace_id": workspace_id,
        "message_id": safe_text(message_id),
        "source_id": source_id,
        "event_type": safe_text(str(event.get("type"))),
        "rule_id": None,
        "destination_id": None,
        "destination_type": None,
        "reason_code": reason_code,
        "reason": safe_text(reason),
        "attempts": attempts,
        "last_http_status": None,
        "status": "dead_lettered",
        "times_dead_lettered": int(previous.get("times_dead_lettered", 0)) + 1,
        "replay_count": int(previous.get("replay_count", 0)),
        "event_json": event_json(event),
        "redacted": redacted,
        "created_at": previous.get("created_at", at),
        "updated_at": at,
        "replayed_at": previous.get("replayed_at"),
        # A timestamp: Firestore TTL policies expire only on timestamp fields.
        "expires_at": now + timedelta(days=RECORD_RETENTION_DAYS),
    }
