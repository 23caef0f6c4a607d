"""Records that follow an event through the pipeline: log entry, deliveries, dead letters."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from shared.domain.errors import InvalidMessage
from shared.domain.event import CanonicalEvent
from shared.domain.poison import safe_text
from shared.domain.sources import BOT_POLICIES, BotPolicy

# Dedup window: PRODUCT asks for at least 24 h; the margin covers Pub/Sub's own redelivery.
DEDUP_HOURS = 48
# How long delivery records and dead letters are kept (replayable) after their last change.
RECORD_RETENTION_DAYS = 30
# How long a record of deliveries that all settled at their first attempt is kept: as long as
# the events' own trace entries (the window). Nothing in it can be replayed, and a redelivery of
# its message comes within minutes; 30 days of every accepted delivery were most of the storage
# bill (docs/COST.md).
SETTLED_RECORD_HOURS = DEDUP_HOURS
# Attempt history kept per delivery: enough to explain a failure, bounded so documents stay small.
HISTORY_LIMIT = 20

# Where a delivery stands after an attempt: the status of the attempt, of the delivery's record
# and of each entry of its history. delivered: the destination took it; skipped: the destination
# takes no such event; dropped: the rule's transformation dropped it; retrying: Pub/Sub brings it
# back after a backoff; dead_lettered: it failed for good (or ran out of attempts) and went to the
# dead-letter topic, from where it can be replayed.
DeliveryStatus = Literal["delivered", "skipped", "dropped", "retrying", "dead_lettered"]
# Settled for good: a redelivery or a replay never sends these again.
FINAL_STATUSES: frozenset[DeliveryStatus] = frozenset({"delivered", "skipped", "dropped"})
# The reason code of a delivery Pub/Sub dead-lettered itself, after `deliver` kept failing.
FUNCTION_ERROR = "function_error"
# The reason code of a delivery whose destination cannot take the event as it is (an
# analytics destination and an event with no identity).
EVENT_REJECTED = "event_rejected"
# Reason codes of events dead-lettered before any destination: `process` set one event of a
# message aside, or Pub/Sub gave up on a whole source message after its attempt limit.
UNPROCESSABLE_EVENT = "unprocessable_event"
PROCESSING_FAILED = "processing_failed"


def event_key(message_id: str) -> str:
    """A document id for a messageId: messageIds are client-chosen and may contain '/' (or even
    a lone surrogate, which `surrogatepass` hashes instead of failing on)."""
    return hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def quarantine_collection(workspace_id: str) -> str:
    """Where events blocked by contracts are kept (shared/services/quarantine.py)."""
    return f"workspaces/{workspace_id}/quarantine"


def delivery_batches_collection(workspace_id: str) -> str:
    """Deliver's records: one per deliveries-topic message, holding each of its deliveries."""
    return f"workspaces/{workspace_id}/delivery_batches"


def delivery_batch_path(workspace_id: str, batch: str) -> str:
    return f"{delivery_batches_collection(workspace_id)}/{batch}"


def delivery_id(message_id: str, rule_id: str) -> str:
    """One delivery per event and forwarding rule; the id makes redelivery idempotent."""
    return f"{event_key(message_id)}-{rule_id}"


def dead_letters_collection(workspace_id: str) -> str:
    return f"workspaces/{workspace_id}/dead_letters"


def dead_letter_path(workspace_id: str, delivery: str) -> str:
    return f"{dead_letters_collection(workspace_id)}/{delivery}"


def event_dead_letter_id(message_id: str) -> str:
    """The dead letter of an event that never reached routing (no rule id can end so)."""
    return f"{event_key(message_id)}-event"


@dataclass(frozen=True)
class SourceMessage:
    """One message of a source topic: the accepted events of one ingest request, or of several
    that reached the topic together (`merge_source_messages`)."""

    pubsub_message_id: str
    workspace_id: str
    source_id: str
    events: list[CanonicalEvent]
    # Set on events republished by a replay (`quarantine`): they were processed once already.
    replay: str | None = None
    # The source's bot policy when ingest (or a replay) published the message.
    bot_policy: BotPolicy = "keep"


@dataclass(frozen=True)
class DeliveryMessage:
    """One message of the deliveries topic: an event on its way to one rule's destination."""

    delivery_id: str
    workspace_id: str
    message_id: str
    rule_id: str
    destination_id: str
    transformation_id: str | None
    event: CanonicalEvent
    replay: bool = False

    def to_json(self) -> bytes:
        return json.dumps(self.__dict__, separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, data: bytes) -> DeliveryMessage:
        try:
            fields = json.loads(data)
            return cls(**{name: fields[name] for name in DELIVERY_FIELDS if name in fields})
        except (ValueError, TypeError) as exc:
            raise InvalidMessage(f"not a delivery message: {exc}") from None

    def attributes(self) -> dict[str, str]:
        return {
            "workspace_id": self.workspace_id,
            "destination_id": self.destination_id,
            "rule_id": self.rule_id,
            # Attributes must be UTF-8: a lone surrogate is written as its escape.
            "message_id": safe_text(self.message_id),
        }


DELIVERY_FIELDS = tuple(DeliveryMessage.__dataclass_fields__)
# What deliveries of one batch message share; each item adds delivery_id, message_id and event.
BATCH_FIELDS = ("workspace_id", "rule_id", "destination_id", "transformation_id", "replay")
ITEM_FIELDS = ("delivery_id", "message_id", "event")
# A deliveries-topic message holds the deliveries of one rule from one source message (or one
# replay). The caps keep a message far below Pub/Sub's 10 MB, and the time deliver spends on it
# well inside the push ack deadline.
BATCH_MAX_DELIVERIES = 100
BATCH_MAX_BYTES = 1_000_000
# The attribute naming deliver's record of a deliveries-topic message (`message_batch_id`): 40
# hex digits, a document id whatever the source message id was.
BATCH_ID_ATTRIBUTE = "batch_id"
BATCH_ID_FORM = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class EncodedBatch:
    """One deliveries-topic message, and the deliveries it carries."""

    destination_id: str
    data: bytes
    attributes: dict[str, str]
    delivery_ids: list[str]

    @property
    def batch_id(self) -> str:
        return message_batch_id(self.data, self.attributes)


def encode_deliveries(
    deliveries: list[DeliveryMessage], source_message_id: str | None = None
) -> list[tuple[str, bytes, dict[str, str]]]:
    """Deliveries as deliveries-topic messages: (destination_id, data, attributes)
    (`encode_delivery_batches`)."""
    return [
        (batch.destination_id, batch.data, batch.attributes)
        for batch in encode_delivery_batches(deliveries, source_message_id)
    ]


def encode_delivery_batches(
    deliveries: list[DeliveryMessage], source_message_id: str | None = None
) -> list[EncodedBatch]:
    """Deliveries as deliveries-topic messages, each with the ids of the deliveries it carries.

    One message per rule (and replay flag) rather than per event: `deliver` then keeps one
    record per message, read and written once per push, and Pub/Sub pushes one message for many
    events. `source_message_id` (the Pub/Sub id of the source message process is handling) gives
    each message a `batch_id` attribute that stays the same when process handles that message
    again after a crash and republishes its deliveries, so that deliver finds the record of the
    first copy; without it (replays), deliver keys the record by the message's data.
    """
    groups: dict[tuple[Any, ...], list[DeliveryMessage]] = {}
    for delivery in deliveries:
        key = tuple(getattr(delivery, name) for name in BATCH_FIELDS)
        groups.setdefault(key, []).append(delivery)
    messages = []
    for key, members in groups.items():
        shared = dict(zip(BATCH_FIELDS, key, strict=True))
        ids = iter([d.delivery_id for d in members])
        for chunk_number, chunk in enumerate(_batches([_item_json(d) for d in members])):
            data = b'{"deliveries":[' + b",".join(chunk) + b"]," + _json(shared)[1:]
            attributes = {
                "workspace_id": shared["workspace_id"],
                "destination_id": shared["destination_id"],
                "rule_id": shared["rule_id"],
                "deliveries": str(len(chunk)),
            }
            if source_message_id is not None:
                attributes[BATCH_ID_ATTRIBUTE] = batch_id(
                    source_message_id, shared["rule_id"], shared["replay"], chunk_number
                )
            carried = [next(ids) for _ in chunk]
            messages.append(EncodedBatch(shared["destination_id"], data, attributes, carried))
    return messages


def batch_id(source_message_id: str, rule_id: str, replay: bool, chunk_number: int) -> str:
    """The `batch_id` of a deliveries-topic message process publishes for a source message: the
    same each time process handles that message."""
    parts = (source_message_id, rule_id, str(replay), str(chunk_number))
    return _digest("\n".join(parts).encode("utf-8", "surrogatepass"))


def message_batch_id(data: bytes, attributes: Mapping[str, str]) -> str:
    """The id of deliver's record of a deliveries-topic message: its `batch_id` attribute, or
    (messages published without one: replays, or before batch records) a hash of its data,
    which Pub/Sub's redeliveries and its dead-letter forwarding keep as they are."""
    given = attributes.get(BATCH_ID_ATTRIBUTE, "")
    return given if BATCH_ID_FORM.fullmatch(given) else _digest(data)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:40]


def decode_deliveries(data: bytes) -> list[DeliveryMessage]:
    """The deliveries of a deliveries-topic message; `InvalidMessage` for anything else.

    A single-delivery message (the format before batching, still used inside dead letters) is
    accepted too, so messages published before an upgrade are still delivered.
    """
    try:
        body = json.loads(data)
        if isinstance(body, dict) and "deliveries" not in body:
            return [DeliveryMessage.from_json(data)]
        shared = {name: body[name] for name in BATCH_FIELDS if name in body}
        items = body["deliveries"]
        if not isinstance(items, list) or not items:
            raise TypeError("deliveries must be a non-empty list")
        return [
            DeliveryMessage(**shared, **{name: item[name] for name in ITEM_FIELDS})
            for item in items
        ]
    except (ValueError, TypeError, KeyError) as exc:
        raise InvalidMessage(f"not a delivery message: {exc!r}") from None


def _item_json(delivery: DeliveryMessage) -> bytes:
    return _json({name: getattr(delivery, name) for name in ITEM_FIELDS})


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _batches(items: list[bytes]) -> list[list[bytes]]:
    batches: list[list[bytes]] = [[]]
    size = 0
    for item in items:
        full = len(batches[-1]) >= BATCH_MAX_DELIVERIES or size + len(item) > BATCH_MAX_BYTES
        if batches[-1] and full:
            batches.append([])
            size = 0
        batches[-1].append(item)
        size += len(item) + 1
    return batches


# What one merged source message holds at most: no more than one request may carry.
MERGED_MAX_BYTES = 500 * 1024
MERGED_MAX_EVENTS = 500
EVENT_COUNT_ATTRIBUTE = "event_count"


def merge_source_messages(
    messages: Sequence[tuple[bytes, Mapping[str, str]]],
) -> tuple[list[tuple[bytes, dict[str, str]]], list[int]]:
    """Source messages of concurrent requests as fewer messages, and which one carries each.

    Every message costs downstream whatever its size: a push of process (billed by Pub/Sub at 1
    KB at least), process's record, and a deliveries message per rule with deliver's push and
    record. Requests of one event each (browsers and phones send events one by one) that reach
    ingest together are worth one message: their events' arrays are joined, in order, when
    their attributes agree but for the event count, within `MERGED_MAX_BYTES` and
    `MERGED_MAX_EVENTS`. A message that is not a JSON array of events goes as it is.
    """
    merged: list[tuple[bytes, dict[str, str]]] = []
    parts: list[list[bytes]] = []
    counts: list[int] = []
    sizes: list[int] = []
    open_by_kind: dict[tuple[tuple[str, str], ...], int] = {}
    owners: list[int] = []
    for data, attributes in messages:
        count = attributes.get(EVENT_COUNT_ATTRIBUTE, "")
        kind = tuple(sorted((k, v) for k, v in attributes.items() if k != EVENT_COUNT_ATTRIBUTE))
        index = open_by_kind.get(kind)
        joinable = count.isdigit() and data[:1] == b"[" and data[-1:] == b"]" and data != b"[]"
        if (
            joinable
            and index is not None
            and sizes[index] + len(data) <= MERGED_MAX_BYTES
            and counts[index] + int(count) <= MERGED_MAX_EVENTS
        ):
            parts[index].append(data[1:-1])
            counts[index] += int(count)
            sizes[index] += len(data) - 1
            owners.append(index)
            continue
        owners.append(len(merged))
        if joinable:
            open_by_kind[kind] = len(merged)
        merged.append((data, dict(attributes)))
        parts.append([data[1:-1]])
        counts.append(int(count) if joinable else 0)
        sizes.append(len(data))
    for index, (_, attributes) in enumerate(merged):
        if len(parts[index]) > 1:
            joined = b"[" + b",".join(parts[index]) + b"]"
            merged[index] = (joined, {**attributes, EVENT_COUNT_ATTRIBUTE: str(counts[index])})
    return merged, owners


def parse_source_message(
    data: bytes, attributes: dict[str, str], pubsub_message_id: str
) -> SourceMessage:
    """A source-topic message as published by ingest; `InvalidMessage` for anything else."""
    try:
        events = json.loads(data)
    except (ValueError, RecursionError) as exc:  # nesting too deep to read: never readable
        raise InvalidMessage(f"message {pubsub_message_id} is not JSON: {exc!r}") from None
    workspace_id = attributes.get("workspace_id")
    source_id = attributes.get("source_id")
    if not workspace_id or not source_id:
        raise InvalidMessage(f"message {pubsub_message_id} lacks workspace_id/source_id")
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise InvalidMessage(f"message {pubsub_message_id} is not a list of events")
    mismatched = [
        e for e in events if e.get("workspaceId") != workspace_id or not e.get("messageId")
    ]
    if mismatched:
        raise InvalidMessage(f"message {pubsub_message_id} has events of another workspace")
    bot_policy = attributes.get("bot_policy", "keep")
    return SourceMessage(
        pubsub_message_id,
        workspace_id,
        source_id,
        events,
        attributes.get("replay") or None,
        # A value this version does not know (from a newer ingest) keeps the events.
        bot_policy if bot_policy in BOT_POLICIES else "keep",
    )
