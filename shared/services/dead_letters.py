"""Dead letters: recorded from the dead-letter topic, listed with filters, replayed on demand."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from shared.domain import ids
from shared.domain.pipeline import (
    FINAL_STATUSES,
    FUNCTION_ERROR,
    RECORD_RETENTION_DAYS,
    DeliveryMessage,
    InvalidMessage,
    dead_letter_path,
    dead_letters_collection,
    decode_deliveries,
    delivery_path,
)
from shared.ports import ConfigStore, Document, Filter, Publisher, Write
from shared.services.process import publish_deliveries

# Pub/Sub's own dead-lettering (after the deliver function itself failed repeatedly) marks
# forwarded messages with this attribute.
PUBSUB_DEAD_LETTER_COUNT = "CloudPubSubDeadLetterSourceDeliveryCount"
# One replay call republishes at most this many (Firestore batches hold 500 writes).
REPLAY_LIMIT = 400


@dataclass(frozen=True)
class DeadLetterQuery:
    """Which dead letters to list or replay; every field narrows the selection."""

    ids: list[str] | None = None
    destination_id: str | None = None
    reason_code: str | None = None
    status: str | None = None
    since: str | None = None
    until: str | None = None
    limit: int = 100


@dataclass
class ReplayReport:
    """What a replay did (or, in a dry run, would do)."""

    dry_run: bool
    matched: int = 0
    replayed: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)


class DeadLetters:
    """Undeliverable deliveries, kept per workspace for inspection and replay."""

    def __init__(
        self,
        store: ConfigStore,
        publisher: Publisher,
        delivery_topic: Callable[[str], str],
        clock: Callable[[], datetime] = ids.utcnow,
    ):
        self._store = store
        self._publisher = publisher
        self._delivery_topic = delivery_topic
        self._clock = clock

    def record(self, data: bytes, attributes: dict[str, str]) -> list[Document]:
        """Record a message of the dead-letter topic: ours (one delivery), or one Pub/Sub
        forwarded after `deliver` itself kept failing (every delivery it holds)."""
        if PUBSUB_DEAD_LETTER_COUNT in attributes:
            attempts = int(attributes[PUBSUB_DEAD_LETTER_COUNT])
            reason = f"the deliver function failed {attempts} times without an answer"
            envelope = {
                "reason_code": FUNCTION_ERROR,
                "reason": reason,
                "attempts": attempts,
                "last_http_status": None,
                "destination_type": None,
            }
            deliveries = decode_deliveries(data)
            records = self._store.get_many(
                [delivery_path(d.workspace_id, d.delivery_id) for d in deliveries]
            )
            # A batch gives up whole, but some of its deliveries may have gone through.
            return [
                self._record(d, envelope)
                for d in deliveries
                if (records[delivery_path(d.workspace_id, d.delivery_id)] or {}).get("status")
                not in FINAL_STATUSES
            ]
        try:
            envelope = json.loads(data)
        except ValueError as exc:
            raise InvalidMessage(f"dead letter is not JSON: {exc}") from None
        if not isinstance(envelope, dict):
            raise InvalidMessage("dead letter is not a JSON object")
        delivery = DeliveryMessage.from_json(json.dumps(envelope.get("delivery")).encode())
        return [self._record(delivery, envelope)]

    def _record(self, delivery: DeliveryMessage, envelope: Document) -> Document:
        now = ids.isoformat(self._clock())
        path = dead_letter_path(delivery.workspace_id, delivery.delivery_id)
        previous = self._store.get(path)
        document = {
            "id": delivery.delivery_id,
            "workspace_id": delivery.workspace_id,
            "message_id": delivery.message_id,
            "rule_id": delivery.rule_id,
            "destination_id": delivery.destination_id,
            "destination_type": envelope.get("destination_type"),
            "reason_code": envelope.get("reason_code"),
            "reason": envelope.get("reason"),
            "attempts": envelope.get("attempts"),
            "last_http_status": envelope.get("last_http_status"),
            "status": "dead_lettered",
            "times_dead_lettered": (previous or {}).get("times_dead_lettered", 0) + 1,
            "replay_count": (previous or {}).get("replay_count", 0),
            "delivery": json.loads(delivery.to_json()),
            "created_at": (previous or {}).get("created_at", now),
            "updated_at": now,
            "replayed_at": (previous or {}).get("replayed_at"),
            "expires_at": self._clock() + timedelta(days=RECORD_RETENTION_DAYS),
        }
        self._store.commit([Write("set", path, document)])
        return document

    def list(self, workspace_id: str, query: DeadLetterQuery) -> list[Document]:
        """Dead letters matching the query, newest first."""
        where = [
            Filter(name, "==", value)
            for name, value in (
                ("destination_id", query.destination_id),
                ("reason_code", query.reason_code),
                ("status", query.status),
            )
            if value is not None
        ]
        if query.since:
            where.append(Filter("updated_at", ">=", query.since))
        if query.until:
            where.append(Filter("updated_at", "<=", query.until))
        found = self._store.query(
            dead_letters_collection(workspace_id),
            where,
            order_by="updated_at",
            descending=True,
            limit=None if query.ids else query.limit,
        )
        if query.ids is not None:
            wanted = set(query.ids)
            found = [d for d in found if d["id"] in wanted][: query.limit]
        return found

    def replay(self, workspace_id: str, query: DeadLetterQuery, dry_run: bool) -> ReplayReport:
        """Send matching dead letters through deliver again; never to a destination that already
        accepted the event (deliver checks too, so a race cannot send twice)."""
        selection = self.list(workspace_id, replace(query, limit=min(query.limit, REPLAY_LIMIT)))
        report = ReplayReport(dry_run=dry_run, matched=len(selection))
        deliveries = self._store.get_many(
            [delivery_path(workspace_id, letter["id"]) for letter in selection]
        )
        replays: list[tuple[Document, DeliveryMessage]] = []
        for letter in selection:
            delivered = deliveries.get(delivery_path(workspace_id, letter["id"]))
            if letter["status"] != "dead_lettered":
                report.skipped.append({"id": letter["id"], "reason": f"already {letter['status']}"})
            elif delivered and delivered.get("status") == "delivered":
                report.skipped.append({"id": letter["id"], "reason": "already delivered"})
            else:
                message = DeliveryMessage(**{**letter["delivery"], "replay": True})
                replays.append((letter, message))
                report.replayed.append(letter["id"])
        if dry_run or not replays:
            return report
        publish_deliveries(self._publisher, self._delivery_topic, [m for _, m in replays])
        now = ids.isoformat(self._clock())
        self._store.commit(
            Write(
                "update",
                dead_letter_path(workspace_id, letter["id"]),
                {
                    "status": "replayed",
                    "replayed_at": now,
                    "updated_at": now,
                    "replay_count": letter.get("replay_count", 0) + 1,
                },
            )
            for letter, _ in replays
        )
        return report
