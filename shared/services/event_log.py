"""What process recorded of each event: its claim in the deduplication window (`Claims`), and its
entry in the record of the message that processed it.

A record is one Firestore document per source-topic message (`workspaces/{ws}/event_log/
{hash of its Pub/Sub message id}`, more when its entries outgrow one document), written once
when the message is done and expired by TTL with the window: one write for the events of one
SDK batch, where an entry per event cost a write each. An event whose claim's message has a
record holding it is done; a claim without one is still being processed (or its message failed
midway and is redelivered: it resumes).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from shared.domain import ids
from shared.domain.pipeline import DEDUP_HOURS, event_key
from shared.ports import Claims, ConfigStore, Document, Filter, Write, commit_in_chunks

# A record's entries are cut into documents of at most this many entries and about this many
# bytes of JSON: well under Firestore's 1 MiB and 20,000 fields per document (its own encoding is
# larger than JSON's for nested maps; an entry has about 15 fields, violations more).
RECORD_ENTRIES = 200
RECORD_BYTES = 600_000


def event_log_collection(workspace_id: str) -> str:
    return f"workspaces/{workspace_id}/event_log"


class EventLog:
    """Claims and records together: what trace, replays and dead letters read of an event."""

    def __init__(self, store: ConfigStore, claims: Claims):
        self._store = store
        self._claims = claims

    def recorded(self, workspace_id: str, owner: str) -> dict[str, Document]:
        """The entries (by event key) of the records message `owner` wrote."""
        documents = self._store.query(
            event_log_collection(workspace_id), [Filter("pubsub_message_id", "==", owner)]
        )
        entries: dict[str, Document] = {}
        for document in documents:
            common = {k: v for k, v in document.items() if k != "events"}
            for key, entry in (document.get("events") or {}).items():
                entries[key] = {**common, **entry}
        return entries

    def write(
        self,
        workspace_id: str,
        source_id: str,
        owner: str,
        entries: Mapping[str, Document],
        claimed_at: datetime,
    ) -> None:
        """Record message `owner`'s events as done (by event key), in as few documents as fit."""
        if not entries:
            return
        common = {
            "workspace_id": workspace_id,
            "source_id": source_id,
            "pubsub_message_id": owner,
            "claimed_at": ids.isoformat(claimed_at),
            # A timestamp, not a string: Firestore TTL policies only expire on timestamp fields.
            "expires_at": claimed_at + timedelta(hours=DEDUP_HOURS),
        }
        # Named by the message (a hash: any text is a message id to Pub/Sub's fakes and
        # replays, not only Pub/Sub's digits); found again by `pubsub_message_id`.
        name = event_key(owner)
        writes = [
            Write(
                "set",
                f"{event_log_collection(workspace_id)}/{name if n == 0 else f'{name}-{n}'}",
                {**common, "events": part},
            )
            for n, part in enumerate(_parts(entries))
        ]
        commit_in_chunks(self._store, writes)

    def entries(self, workspace_id: str, message_ids: Iterable[str]) -> dict[str, Document | None]:
        """Each event's log entry: None outside the window (never received, expired or
        released); `state: claimed` while its message is processed; else its recorded entry,
        `state: done`. Duplicates turned away are counted on the claim."""
        keys = {message_id: event_key(message_id) for message_id in message_ids}
        claims = self._claims.get(workspace_id, list(keys.values()))
        owners = {c.owner for c in claims.values() if c is not None}
        recorded = {owner: self.recorded(workspace_id, owner) for owner in owners}
        answer: dict[str, Document | None] = {}
        for message_id, key in keys.items():
            claim = claims[key]
            if claim is None:
                answer[message_id] = None
                continue
            entry = recorded[claim.owner].get(key) or {
                "state": "claimed",
                "pubsub_message_id": claim.owner,
            }
            answer[message_id] = {
                **entry,
                "message_id": message_id,
                "duplicates": claim.duplicates,
                "last_duplicate_at": claim.last_duplicate_at,
            }
        return answer

    def release(self, workspace_id: str, message_ids: Iterable[str]) -> None:
        """Forget the events, so that process takes their next copies as new (a replay)."""
        self._claims.release(workspace_id, [event_key(m) for m in message_ids])


def _parts(entries: Mapping[str, Document]) -> list[dict[str, Document]]:
    parts: list[dict[str, Document]] = [{}]
    size = 0
    for key, entry in entries.items():
        entry_size = len(key) + len(json.dumps(entry, default=_text))
        if parts[-1] and (size + entry_size > RECORD_BYTES or len(parts[-1]) >= RECORD_ENTRIES):
            parts.append({})
            size = 0
        parts[-1][key] = entry
        size += entry_size
    return parts


def _text(value: Any) -> str:
    return str(value)
