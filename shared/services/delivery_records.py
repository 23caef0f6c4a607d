"""Deliver's records: one document per deliveries-topic message (`delivery_batches`), holding
each of its deliveries by delivery id (docs/ARCHITECTURE.md, "deliver"), or, with the
deduplication window in Valkey, a mark there instead when every delivery of the message was
accepted at its first attempt, alike (`DeliveryMarks`).

A delivery is normally in one record. A replay travels in a message of its own, so a delivery
that was replayed is in the record of its first message and in the replay's: readers that show
one line per delivery keep the most recently attempted.

A mark holds what such a record would hold, but for what each delivery's message already says
(its delivery id, messageId, rule and destination): readers give the record's entries back
(`settled_entry`), so trace, the console and dead letters read both alike.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from shared.domain.errors import Unavailable
from shared.domain.pipeline import delivery_batch_path, delivery_batches_collection
from shared.ports import (
    ConfigStore,
    DeliveryMarks,
    Document,
    Filter,
    SettledBatch,
    Write,
)

log = logging.getLogger(__name__)


class DeliveryRecords:
    """Where deliver keeps what became of each delivery, and how everything else reads it."""

    def __init__(self, store: ConfigStore, marks: DeliveryMarks | None = None):
        self._store = store
        self._marks = marks

    def load(
        self, workspace_id: str, batch_id: str, deliveries: Sequence[Mapping[str, Any]]
    ) -> tuple[Document | None, dict[str, Document]]:
        """A message's record (None when it has none in Firestore) and its entries by delivery
        id, for the message's `deliveries` (each with delivery_id, message_id, rule_id and
        destination_id). With marks: a mark read first (one round trip to Valkey), Firestore
        only when the mark says the record is there."""
        if self._marks is not None:
            mark = self._marks.get(workspace_id, [batch_id])[batch_id]
            if mark is None:
                return None, {}
            if isinstance(mark, SettledBatch):
                return None, {d["delivery_id"]: settled_entry(d, mark) for d in deliveries}
        record = self._store.get(delivery_batch_path(workspace_id, batch_id))
        return record, dict((record or {}).get("deliveries") or {})

    def save(
        self,
        workspace_id: str,
        batch_id: str,
        destination_id: str,
        previous: Document | None,
        record: Document,
        whole: bool,
    ) -> None:
        """Keep a message's record after an attempt: as a mark when that loses nothing (marks
        in use, no earlier record, `whole`: the record holds every delivery of the message, and
        every entry is what `settled_entry` gives back), else in Firestore, marked as there
        first (a crash between leaves a mark that sends readers to Firestore, which has nothing
        yet: the redelivery attempts again, as without marks)."""
        if self._marks is not None and previous is None:
            try:
                if _mark(self._marks, workspace_id, batch_id, destination_id, record, whole):
                    return
            except Unavailable:
                # Valkey failed after the attempt: keep the record in Firestore rather than fail
                # the push, whose redelivery, once a node without a replica restarts empty, would
                # find no mark and send again.
                log.warning("deliveries message %s recorded in Firestore: no Valkey", batch_id)
        self._store.commit([Write("set", delivery_batch_path(workspace_id, batch_id), record)])

    def of_event(
        self, workspace_id: str, message_id: str, listed: Iterable[Mapping[str, Any]] = ()
    ) -> list[Document]:
        """Every delivery of one event: its records in Firestore (one query: `message_ids`
        array-contains), and, for the deliveries process `listed` (with their batch ids) that no
        record holds, their messages' marks."""
        records = self._store.query(
            delivery_batches_collection(workspace_id),
            [Filter("message_ids", "array-contains", message_id)],
        )
        found = [
            entry
            for record in records
            for entry in entries_of(record)
            if entry.get("message_id") == message_id
        ]
        missing = [
            d
            for d in listed
            if d.get("batch_id") and not any(e["delivery_id"] == d["delivery_id"] for e in found)
        ]
        if self._marks is None or not missing:
            return found
        marks = self._marks.get(workspace_id, [d["batch_id"] for d in missing])
        for delivery in missing:
            mark = marks.get(delivery["batch_id"])
            if isinstance(mark, SettledBatch):
                found.append(settled_entry({**delivery, "message_id": message_id}, mark))
        return found

    def of_delivery(self, workspace_id: str, delivery_id: str) -> list[Document]:
        """What each record holding the delivery says of it (one query: `delivery_ids`
        array-contains). Marks never hold a delivery a replay or a dead letter is about."""
        records = self._store.query(
            delivery_batches_collection(workspace_id),
            [Filter("delivery_ids", "array-contains", delivery_id)],
        )
        return [
            record["deliveries"][delivery_id]
            for record in records
            if delivery_id in (record.get("deliveries") or {})
        ]

    def recent(self, workspace_id: str, destination_id: str, limit: int) -> list[Document]:
        """The destination's deliveries, most recently attempted first, at most `limit`.

        A record's `updated_at` is that of the delivery it holds that was attempted last, so the
        `limit` most recently attempted deliveries are all in the `limit` most recently updated
        records: one query of at most `limit` records, and, with marks, the destination's
        `limit` most recently settled messages.
        """
        records = self._store.query(
            delivery_batches_collection(workspace_id),
            [Filter("destination_id", "==", destination_id)],
            order_by="updated_at",
            descending=True,
            limit=limit,
        )
        latest: dict[str, Document] = {}
        candidates = [entry for record in records for entry in entries_of(record)]
        if self._marks is not None:
            candidates += [
                entry
                for settled in self._marks.recent(workspace_id, destination_id, limit)
                for entry in _recent_entries(settled, destination_id)
            ]
        for entry in candidates:
            known = latest.get(entry["delivery_id"])
            if known is None or entry["updated_at"] > known["updated_at"]:
                latest[entry["delivery_id"]] = entry
        ordered = sorted(latest.values(), key=lambda e: e["updated_at"], reverse=True)
        return ordered[:limit]


def entries_of(record: Document) -> list[Document]:
    """The deliveries a record holds, as deliver left each after its last attempt."""
    return list((record.get("deliveries") or {}).values())


def settled_entry(delivery: Mapping[str, Any], mark: SettledBatch) -> Document:
    """A delivery of a settled message as its record's entry would hold it: accepted at its
    first attempt with the message's one answer (`deliver.delivery_entry`'s shape)."""
    return {
        "delivery_id": delivery["delivery_id"],
        "message_id": delivery["message_id"],
        "rule_id": delivery["rule_id"],
        "destination_id": delivery["destination_id"],
        "destination_type": mark.destination_type,
        "status": "delivered",
        "attempts": 1,
        "last_detail": mark.detail,
        "last_http_status": mark.http_status,
        "history": [
            {
                "at": mark.at,
                "status": "delivered",
                "detail": mark.detail,
                "http_status": mark.http_status,
                "replay": False,
            }
        ],
        "created_at": mark.at,
        "updated_at": mark.at,
        "delivered_at": mark.at,
    }


def settled_alike(entries: Iterable[Document]) -> SettledBatch | None:
    """The one answer that settled every entry, when each is exactly `settled_entry` of it
    (accepted at its first attempt, no replay, no transformation, the same answer): then a
    mark loses nothing. None otherwise."""
    settled: SettledBatch | None = None
    for entry in entries:
        if entry.get("status") != "delivered" or entry.get("attempts") != 1:
            return None
        candidate = SettledBatch(
            entry["updated_at"],
            entry["last_http_status"],
            entry["last_detail"],
            entry["destination_type"],
        )
        if settled is not None and candidate != settled:
            return None
        if entry != settled_entry(entry, candidate):
            return None
        settled = candidate
    return settled


def _mark(
    marks: DeliveryMarks,
    workspace_id: str,
    batch_id: str,
    destination_id: str,
    record: Document,
    whole: bool,
) -> bool:
    """Settle the message with a mark, True; or mark it recorded in Firestore, False."""
    entries: dict[str, Document] = record["deliveries"]
    settled = settled_alike(entries.values()) if whole else None
    if settled is None:
        marks.mark_recorded(workspace_id, batch_id)
        return False
    recent = {
        "rule_id": record["rule_id"],
        "mark": [settled.at, settled.http_status, settled.detail, settled.destination_type],
        "deliveries": [[e["delivery_id"], e["message_id"]] for e in entries.values()],
    }
    marks.settle(workspace_id, batch_id, destination_id, settled, recent)
    return True


def _recent_entries(settled: Mapping[str, Any], destination_id: str) -> list[Document]:
    """A recent-list item (`DeliveryRecords.save`) as the entries of its deliveries."""
    mark = SettledBatch(*settled["mark"])
    return [
        settled_entry(
            {
                "delivery_id": delivery_id,
                "message_id": message_id,
                "rule_id": settled["rule_id"],
                "destination_id": destination_id,
            },
            mark,
        )
        for delivery_id, message_id in settled["deliveries"]
    ]
