"""The trace of one event: every stage it passed, assembled from the records the pipeline keeps
anyway (its log entry, its deliveries, its dead letters), so tracing costs no extra write."""

from __future__ import annotations

from typing import Any

from shared.domain.errors import NotFound
from shared.domain.event_dead_letters import EVENT_KIND
from shared.domain.pipeline import (
    FUNCTION_ERROR,
    DeliveryStatus,
    dead_letters_collection,
)
from shared.ports import ConfigStore, Document, Filter
from shared.services.delivery_records import DeliveryRecords
from shared.services.event_log import EventLog

# A delivery attempt's status, as a trace stage.
ATTEMPT_STAGES: dict[DeliveryStatus, str] = {
    "delivered": "delivered",
    "retrying": "retried",
    "dead_lettered": "dead_lettered",
    "skipped": "skipped",
    "dropped": "dropped",
}


class Traces:
    """Explains what happened to an event, by messageId."""

    def __init__(self, store: ConfigStore, log: EventLog, records: DeliveryRecords | None = None):
        self._store = store
        self._log = log
        self._records = records or DeliveryRecords(store)

    def trace(self, workspace_id: str, message_id: str) -> dict[str, Any]:
        entry = self._log.entries(workspace_id, [message_id])[message_id]
        by_message = [Filter("message_id", "==", message_id)]
        dead_letters = self._store.query(dead_letters_collection(workspace_id), by_message)
        event_letter = next((d for d in dead_letters if d.get("kind") == EVENT_KIND), None)
        if entry is None and event_letter is None:
            raise NotFound(f"no event with messageId {message_id}", field="messageId")
        if entry is None or (entry.get("state") == "claimed" and event_letter is not None):
            # Set aside before it could be claimed (text no store holds), or claimed by a
            # message Pub/Sub gave up on: its dead letter says what the log cannot.
            assert event_letter is not None
            entry = {
                "source_id": event_letter.get("source_id"),
                "event_type": event_letter.get("event_type"),
                "received_at": event_letter.get("created_at"),
                "state": "dead_lettered",
                **(entry or {}),
            }
        deliveries = self._records.of_event(workspace_id, message_id, entry.get("deliveries") or [])
        stages = _event_stages(entry)
        for delivery in deliveries:
            stages.extend(_delivery_stages(delivery))
        for letter in dead_letters:
            if letter.get("kind") == EVENT_KIND and not entry.get("dead_lettered"):
                # Pub/Sub gave up on the event's message (its entry still says claimed), or
                # process set the event aside before claiming it.
                stages.append(
                    _stage(
                        "dead_lettered",
                        "failed",
                        letter.get("updated_at"),
                        letter.get("reason"),
                        letter,
                        reason_code=letter.get("reason_code"),
                        dead_letter_id=letter["id"],
                    )
                )
            elif letter.get("reason_code") == FUNCTION_ERROR:
                # Dead-lettered by Pub/Sub itself, so no attempt of deliver's records it.
                stages.append(
                    _stage(
                        "dead_lettered",
                        "failed",
                        letter.get("created_at"),
                        letter.get("reason"),
                        letter,
                        delivery_id=letter["id"],
                    )
                )
            if letter.get("replayed_at"):
                stages.append(
                    _stage(
                        "replayed",
                        "ok",
                        letter["replayed_at"],
                        f"replayed {letter.get('replay_count', 1)} time(s)",
                        letter,
                        delivery_id=letter["id"],
                    )
                )
        stages.sort(key=lambda stage: stage["at"] or "")
        return {
            "message_id": message_id,
            "workspace_id": workspace_id,
            "source_id": entry.get("source_id"),
            "event_type": entry.get("event_type"),
            "state": "processing"
            if entry.get("state") == "claimed" and event_letter is None
            else "processed",
            "stages": stages,
        }


def _event_stages(entry: Document) -> list[dict[str, Any]]:
    stages = [_stage("received", "ok", entry.get("received_at"), None, entry)]
    if entry.get("duplicates"):
        stages.append(
            _stage(
                "duplicate",
                "dropped",
                entry.get("last_duplicate_at"),
                f"{entry['duplicates']} duplicate(s) of this messageId ignored",
                entry,
            )
        )
    if entry.get("state") != "done":
        return stages
    if entry.get("suppressed"):
        # A suppression regulation (docs/PRIVACY.md): never stored, routed or forwarded.
        stages.append(
            _stage(
                "suppressed",
                "dropped",
                entry.get("suppressed_at"),
                "the user is suppressed by a regulation",
                entry,
                regulation_id=entry.get("regulation_id"),
            )
        )
        return stages
    if entry.get("ignored"):
        # A webhook request its source's transformation ignored on purpose (it returned null),
        # or a bot's event its source's bot policy drops.
        stages.append(
            _stage("ignored", "dropped", entry.get("ignored_at"), entry.get("reason"), entry)
        )
        return stages
    if entry.get("dead_lettered"):
        # Set aside by process: its own content made a step fail (its neighbours went on).
        stages.append(
            _stage(
                "dead_lettered",
                "failed",
                entry.get("dead_lettered_at"),
                entry.get("reason"),
                entry,
                reason_code=entry.get("reason_code"),
            )
        )
        return stages
    if entry.get("blocked"):
        stages.append(
            _stage(
                "blocked",
                "blocked",
                entry.get("claimed_at"),
                "blocked by a contract",
                entry,
                violations=entry.get("violations"),
            )
        )
        return stages
    if entry.get("violations"):
        stages.append(
            _stage(
                "violated",
                "warning",
                entry.get("stored_at"),
                f"{len(entry['violations'])} contract violation(s)",
                entry,
                violations=entry.get("violations"),
            )
        )
    stages.append(_stage("stored", "ok", entry.get("stored_at"), None, entry))
    matched = len(entry.get("deliveries") or []) + len(entry.get("skipped") or [])
    reason = f"{matched} matching rule(s)" if matched else "no matching enabled rule"
    stages.append(_stage("routed", "ok", entry.get("routed_at"), reason, entry))
    for skipped in entry.get("skipped") or []:
        # A delivery held back for consent is its own stage (`consent_denied`): not lost, and
        # told apart from a paused destination's.
        stage = skipped.get("outcome", "skipped")
        stages.append(_stage(stage, "skipped", entry.get("routed_at"), skipped["reason"], skipped))
    return stages


def _delivery_stages(delivery: Document) -> list[dict[str, Any]]:
    stages = []
    for number, attempt in enumerate(delivery.get("history", []), start=1):
        if transformed := attempt.get("transformed"):
            stages.append(_transformed_stage(transformed, delivery, number))
        stages.append(
            _stage(
                ATTEMPT_STAGES.get(attempt["status"], attempt["status"]),
                attempt["status"],
                attempt["at"],
                attempt.get("detail"),
                delivery,
                attempt=number,
                http_status=attempt.get("http_status"),
                **({"logs": attempt["logs"]} if attempt.get("logs") else {}),
            )
        )
    return stages


def _transformed_stage(transformed: Document, delivery: Document, number: int) -> dict[str, Any]:
    """The rule's transformation, run before an attempt: ok (with how many events it made),
    dropped (none) or failed (its error)."""
    count = transformed.get("events", 0)
    error = transformed.get("error")
    status = "failed" if error else "ok" if count else "dropped"
    reason = error or (
        "the transformation dropped the event" if not count else f"{count} event(s) to send"
    )
    return _stage(
        "transformed",
        status,
        transformed.get("at"),
        reason,
        delivery,
        attempt=number,
        transformation_id=transformed.get("transformation_id"),
        transformation_version=transformed.get("version"),
    )


def _stage(
    stage: str, status: str, at: str | None, reason: str | None, record: Document, **extra: Any
) -> dict[str, Any]:
    return {
        "stage": stage,
        "status": status,
        "at": at,
        "reason": reason,
        "rule_id": record.get("rule_id"),
        "destination_id": record.get("destination_id"),
        "delivery_id": record.get("delivery_id"),
        **extra,
    }
