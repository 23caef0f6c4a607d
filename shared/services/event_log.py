"""What process recorded of each event: its claim in the deduplication window (`Claims`), and its
entry in the record of the message that processed it.

A record is one Firestore document per source-topic message (`workspaces/{ws}/event_log/
{hash of its Pub/Sub message id}`, more when its entries outgrow one document), written once
when the message is done and expired by TTL with the window: one write for the events of one
SDK batch, where an entry per event cost a write each. An event whose claim's message has a
record holding it is done; a claim without one is still being processed (or its message failed
midway and is redelivered: it resumes).

Where the window keeps outcomes on its claims (Memorystore for Valkey), a small message whose
events all went the plain way (stored and routed, no contract violation) has no record: each
event's entry, in short (`compact_entry`), goes on its claim instead, in one atomic call. A
record costs two Firestore operations a message (its write and its TTL delete), so for the
single events browsers send it was two an event; an outcome costs ~150 bytes of Valkey memory
for the window whatever the message, which is the cheaper below about five events a message
(docs/COST.md). Everything else (blocked, suppressed, dropped or dead-lettered events, contract
violations, larger messages) keeps its Firestore record.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.domain import ids
from shared.domain.errors import Unavailable
from shared.domain.pipeline import DEDUP_HOURS, batch_id, delivery_id, event_key
from shared.ports import Claim, Claims, ConfigStore, Document, Filter, Write, commit_in_chunks

# A record's entries are cut into documents of at most this many entries and about this many
# bytes of JSON: well under Firestore's 1 MiB and 20,000 fields per document (its own encoding is
# larger than JSON's for nested maps; an entry has about 15 fields, violations more).
RECORD_ENTRIES = 200
RECORD_BYTES = 600_000
# The most events a message may have for its outcomes to go on their claims rather than in a
# record (the module's docstring says why).
CLAIMED_OUTCOME_EVENTS = 4
# The fields of a plain entry (`compact_entry`), as process writes it.
PLAIN_FIELDS = frozenset(
    {
        "message_id",
        "event_type",
        "received_at",
        "state",
        "blocked",
        "violations",
        "stored_at",
        "routed_at",
        "deliveries",
        "skipped",
    }
)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

log = logging.getLogger(__name__)


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
        """Record message `owner`'s events as done (by event key): on their claims where the
        window keeps outcomes and the message is small and plain, else in as few documents as
        fit."""
        if not entries:
            return
        outcomes = self._outcomes(source_id, owner, entries)
        if outcomes is not None:
            try:
                self._claims.settle(workspace_id, owner, outcomes)
                return
            except Unavailable:
                # Valkey failed after the events were stored and routed: the record goes to
                # Firestore instead of failing the message, whose redelivery, once a node
                # without a replica restarts empty, would find no claim and store them again.
                log.warning("message %s recorded in Firestore: no Valkey for its outcomes", owner)
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

    def done(self, workspace_id: str, owner: str, claims: Mapping[str, Claim]) -> set[str]:
        """Of `claims` (by event key, as the claim call answered), those message `owner` held
        already and finished: an earlier attempt at it failed midway (or its ack was lost). Read
        from the claims' outcomes when they have them, else from the message's record."""
        held = {key for key, claim in claims.items() if not claim.new and claim.owner == owner}
        done = {key for key in held if claims[key].outcome is not None}
        if held - done:
            done |= held & set(self.recorded(workspace_id, owner))
        return done

    def entries(self, workspace_id: str, message_ids: Iterable[str]) -> dict[str, Document | None]:
        """Each event's log entry: None outside the window (never received, expired or
        released); `state: claimed` while its message is processed; else its recorded entry,
        `state: done`. Duplicates turned away are counted on the claim."""
        keys = {message_id: event_key(message_id) for message_id in message_ids}
        claims = self._claims.get(workspace_id, list(keys.values()))
        owners = {c.owner for c in claims.values() if c is not None and c.outcome is None}
        recorded = {owner: self.recorded(workspace_id, owner) for owner in owners}
        answer: dict[str, Document | None] = {}
        for message_id, key in keys.items():
            claim = claims[key]
            if claim is None:
                answer[message_id] = None
                continue
            if claim.outcome is not None:
                entry = expand_entry(claim.outcome, workspace_id, message_id, claim.owner)
            else:
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

    def _outcomes(
        self, source_id: str, owner: str, entries: Mapping[str, Document]
    ) -> dict[str, str] | None:
        """The entries as their claims keep them, or None when they go in a record."""
        limit = self._claims.outcome_bytes
        if not limit or len(entries) > CLAIMED_OUTCOME_EVENTS:
            return None
        outcomes: dict[str, str] = {}
        for key, entry in entries.items():
            outcome = compact_entry(entry, source_id, owner)
            if outcome is None or len(outcome.encode()) > limit:
                return None
            outcomes[key] = outcome
        return outcomes


def compact_entry(entry: Document, source_id: str, owner: str) -> str | None:
    """A plain event's entry (stored and routed, no violation) as its claim keeps it: JSON
    `[source, type, received, stored, deliveries, skipped?]`, times in epoch milliseconds, each
    delivery `[rule, destination]` (its ids follow from the rule and the message; a batch id
    that does not is added). None for any other entry: a record keeps it whole."""
    plain = (
        entry.keys() == PLAIN_FIELDS
        and entry["state"] == "done"
        and entry["blocked"] is False
        and not entry["violations"]
        and entry["stored_at"] is not None
        and entry["stored_at"] == entry["routed_at"]
    )
    if not plain:
        return None
    deliveries: list[list[Any]] = []
    for delivery in entry["deliveries"]:
        rule_id = delivery["rule_id"]
        if delivery["delivery_id"] != delivery_id(entry["message_id"], rule_id):
            return None
        item = [rule_id, delivery["destination_id"]]
        if delivery["batch_id"] != batch_id(owner, rule_id, False, 0):
            item.append(delivery["batch_id"])
        deliveries.append(item)
    compact = [
        source_id,
        entry["event_type"],
        _milliseconds(entry["received_at"]),
        _milliseconds(entry["stored_at"]),
        deliveries,
    ]
    if entry["skipped"]:
        compact.append(entry["skipped"])
    return json.dumps(compact, separators=(",", ":"), ensure_ascii=False)


def expand_entry(outcome: str, workspace_id: str, message_id: str, owner: str) -> Document:
    """The entry `compact_entry` shortened, as a record gives it (less `claimed_at`, which only
    a blocked event's trace shows)."""
    source_id, event_type, received, stored, deliveries, *skipped = json.loads(outcome)
    at = _moment(stored)
    return {
        "workspace_id": workspace_id,
        "source_id": source_id,
        "pubsub_message_id": owner,
        "message_id": message_id,
        "event_type": event_type,
        "received_at": _moment(received),
        "state": "done",
        "blocked": False,
        "violations": [],
        "stored_at": at,
        "routed_at": at,
        "deliveries": [
            {
                "delivery_id": delivery_id(message_id, rule_id),
                "rule_id": rule_id,
                "destination_id": destination_id,
                "batch_id": batch[0] if batch else batch_id(owner, rule_id, False, 0),
            }
            for rule_id, destination_id, *batch in deliveries
        ],
        "skipped": skipped[0] if skipped else [],
    }


def _milliseconds(moment: Any) -> Any:
    """An ISO time as epoch milliseconds when that gives it back exactly (`_moment`), else as
    it is."""
    if not isinstance(moment, str):
        return moment
    try:
        parsed = datetime.fromisoformat(moment)
    except ValueError:
        return moment
    if parsed.tzinfo is None:
        return moment
    milliseconds = (parsed - EPOCH) // timedelta(milliseconds=1)
    return milliseconds if _moment(milliseconds) == moment else moment


def _moment(value: Any) -> Any:
    if isinstance(value, int):
        return ids.isoformat(EPOCH + timedelta(milliseconds=value))
    return value


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
