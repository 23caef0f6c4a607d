"""Reading deliver's records: one document per deliveries-topic message (`delivery_batches`),
holding each of its deliveries by delivery id (docs/ARCHITECTURE.md, "deliver").

A delivery is normally in one record. A replay travels in a message of its own, so a delivery
that was replayed is in the record of its first message and in the replay's: readers that show
one line per delivery keep the most recently attempted.
"""

from __future__ import annotations

from shared.domain.pipeline import delivery_batches_collection
from shared.ports import ConfigStore, Document, Filter


def entries_of(record: Document) -> list[Document]:
    """The deliveries a record holds, as deliver left each after its last attempt."""
    return list((record.get("deliveries") or {}).values())


def deliveries_of_event(store: ConfigStore, workspace_id: str, message_id: str) -> list[Document]:
    """Every recorded delivery of one event (one query: `message_ids` array-contains)."""
    records = store.query(
        delivery_batches_collection(workspace_id),
        [Filter("message_ids", "array-contains", message_id)],
    )
    return [
        entry
        for record in records
        for entry in entries_of(record)
        if entry.get("message_id") == message_id
    ]


def records_of_delivery(store: ConfigStore, workspace_id: str, delivery_id: str) -> list[Document]:
    """What each record holding the delivery says of it (one query: `delivery_ids`
    array-contains)."""
    records = store.query(
        delivery_batches_collection(workspace_id),
        [Filter("delivery_ids", "array-contains", delivery_id)],
    )
    return [
        record["deliveries"][delivery_id]
        for record in records
        if delivery_id in (record.get("deliveries") or {})
    ]


def recent_deliveries(
    store: ConfigStore, workspace_id: str, destination_id: str, limit: int
) -> list[Document]:
    """The destination's deliveries, most recently attempted first, at most `limit`.

    A record's `updated_at` is that of the delivery it holds that was attempted last, so the
    `limit` most recently attempted deliveries are all in the `limit` most recently updated
    records: one query of at most `limit` records.
    """
    records = store.query(
        delivery_batches_collection(workspace_id),
        [Filter("destination_id", "==", destination_id)],
        order_by="updated_at",
        descending=True,
        limit=limit,
    )
    latest: dict[str, Document] = {}
    for record in records:
        for entry in entries_of(record):
            known = latest.get(entry["delivery_id"])
            if known is None or entry["updated_at"] > known["updated_at"]:
                latest[entry["delivery_id"]] = entry
    ordered = sorted(latest.values(), key=lambda e: e["updated_at"], reverse=True)
    return ordered[:limit]
