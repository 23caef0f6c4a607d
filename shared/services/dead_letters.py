"""Dead letters: recorded from the dead-letter topic, listed with filters, replayed on demand.

Two kinds share the workspace's `dead_letters`: deliveries that `deliver` gave up on (replayed to
their destination's topic), and events that never reached routing (`kind: event`: `process` set
one aside, or Pub/Sub gave up on its source message), replayed to their source's topic.
"""

from __future__ import annotations

import builtins
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, TypeGuard

from shared.domain import ids
from shared.domain.errors import InvalidMessage, Unavailable
from shared.domain.event import CanonicalEvent
from shared.domain.event_dead_letters import EVENT_KIND, event_dead_letter
from shared.domain.pipeline import (
    FINAL_STATUSES,
    FUNCTION_ERROR,
    PROCESSING_FAILED,
    RECORD_RETENTION_DAYS,
    DeliveryMessage,
    dead_letter_path,
    dead_letters_collection,
    decode_deliveries,
    event_dead_letter_id,
    message_batch_id,
)
from shared.domain.poison import DATA_ERRORS, event_json, firestore_storable, safe_text
from shared.domain.sources import WRITE_KEYS, process_subscription_id, source_path
from shared.ports import ConfigStore, Document, Filter, Publisher, Write, commit_in_chunks
from shared.services.delivery_records import DeliveryRecords
from shared.services.event_log import EventLog
from shared.services.ingest import MESSAGE_SCHEMA
from shared.services.process import publish_deliveries

log = logging.getLogger("streams.dead_letters")

# Pub/Sub's own dead-lettering (after a pushed function itself failed repeatedly) marks each
# forwarded message with these attributes (checked on the emulator: the subscription is its
# short name there; a full resource name is accepted too).
PUBSUB_DEAD_LETTER_COUNT = "CloudPubSubDeadLetterSourceDeliveryCount"
PUBSUB_DEAD_LETTER_SUBSCRIPTION = "CloudPubSubDeadLetterSourceSubscription"
PROCESS_SUBSCRIPTION_PREFIX = process_subscription_id("")
# What a replayed event's message says, when the event was redacted once already.
REPLAY_ATTRIBUTE = "dead_letter"
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
    # Each id of `replayed` and `skipped` -> its event's messageId: what people know an event by.
    message_ids: dict[str, str] = field(default_factory=dict)


class DeadLetters:
    """Undeliverable deliveries, kept per workspace for inspection and replay."""

    def __init__(
        self,
        store: ConfigStore,
        publisher: Publisher,
        delivery_topic: Callable[[str], str],
        log: EventLog,
        clock: Callable[[], datetime] = ids.utcnow,
        records: DeliveryRecords | None = None,
    ):
        self._store = store
        self._records = records or DeliveryRecords(store)
        # Whether an event was processed since, and forgetting it before its replay.
        self._log = log
        self._publisher = publisher
        self._delivery_topic = delivery_topic
        self._clock = clock

    def record(self, data: bytes, attributes: dict[str, str]) -> list[Document]:
        """Record a message of the dead-letter topic: ours (one delivery), or one Pub/Sub
        forwarded after `deliver` (every delivery it holds) or `process` (every event it holds)
        kept failing.

        Never loops: a message whose content cannot be recorded raises `InvalidMessage` (logged
        once and acknowledged); only an outage raises for a redelivery.
        """
        try:
            return self._record_message(data, attributes)
        except (Unavailable, InvalidMessage):
            raise
        except DATA_ERRORS as error:
            raise InvalidMessage(
                f"dead letter cannot be recorded: {type(error).__name__}: "
                f"{safe_text(str(error))[:300]}"
            ) from None

    def _record_message(self, data: bytes, attributes: dict[str, str]) -> list[Document]:
        subscription = attributes.get(PUBSUB_DEAD_LETTER_SUBSCRIPTION, "").rsplit("/", 1)[-1]
        if subscription.startswith(PROCESS_SUBSCRIPTION_PREFIX):
            source_id = subscription.removeprefix(PROCESS_SUBSCRIPTION_PREFIX)
            attempts = int(attributes.get(PUBSUB_DEAD_LETTER_COUNT, "0") or 0)
            return self._record_source_message(source_id, data, attributes, attempts)
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
            # Forwarded as it was published: its attributes and data name deliver's record.
            _, entries = self._records.load(
                deliveries[0].workspace_id,
                message_batch_id(data, attributes),
                [{**d.__dict__, "message_id": safe_text(d.message_id)} for d in deliveries],
            )
            # A batch gives up whole, but some of its deliveries may have gone through.
            return [
                self._record(d, envelope)
                for d in deliveries
                if (entries.get(d.delivery_id) or {}).get("status") not in FINAL_STATUSES
            ]
        try:
            envelope = json.loads(data)
        except ValueError as exc:
            raise InvalidMessage(f"dead letter is not JSON: {exc}") from None
        if not isinstance(envelope, dict):
            raise InvalidMessage("dead letter is not a JSON object")
        delivery = DeliveryMessage.from_json(json.dumps(envelope.get("delivery")).encode())
        return [self._record(delivery, envelope)]

    def _record_source_message(
        self, source_id: str, data: bytes, attributes: dict[str, str], attempts: int
    ) -> list[Document]:
        """Record each event of a source message Pub/Sub gave up on, in the workspace that owns
        the source (looked up, not taken from the message), unless it was processed after all."""
        workspace_id = self._source_workspace(source_id)
        if workspace_id is None:
            raise InvalidMessage(f"dead-lettered source message of unknown source {source_id}")
        claimed = attributes.get("workspace_id")
        if claimed is not None and claimed != workspace_id:
            raise InvalidMessage(f"source {source_id} is not of workspace {claimed}")
        try:
            body = json.loads(data)
        except ValueError as exc:
            raise InvalidMessage(f"dead-lettered source message is not JSON: {exc}") from None
        if not isinstance(body, list) or not all(isinstance(e, dict) for e in body):
            raise InvalidMessage("dead-lettered source message is not a list of events")
        if any(e.get("workspaceId") != workspace_id for e in body):
            raise InvalidMessage("dead-lettered message holds events of another workspace")
        events = [e for e in body if _has_text_message_id(e)]
        entries = self._log.entries(workspace_id, [e["messageId"] for e in events])
        paths = [
            dead_letter_path(workspace_id, event_dead_letter_id(e["messageId"])) for e in events
        ]
        previous = self._store.get_many(paths)
        now = self._clock()
        reason = f"the process function failed {attempts} times on this event's message"
        documents = []
        for event, path in zip(events, paths, strict=True):
            entry = entries[event["messageId"]]
            if entry is not None and entry.get("state") == "done":
                continue  # processed after all (its message failed afterwards)
            documents.append(
                event_dead_letter(
                    workspace_id,
                    source_id,
                    event,
                    PROCESSING_FAILED,
                    reason,
                    attempts,
                    now,
                    previous[path],
                )
            )
        commit_in_chunks(
            self._store,
            [Write("set", dead_letter_path(workspace_id, d["id"]), d) for d in documents],
        )
        return documents

    def _source_workspace(self, source_id: str) -> str | None:
        if not source_id:
            return None
        found = self._store.query(WRITE_KEYS, [Filter("source_id", "==", source_id)], limit=1)
        return str(found[0]["workspace_id"]) if found else None

    def _record(self, delivery: DeliveryMessage, envelope: Document) -> Document:
        now = ids.isoformat(self._clock())
        path = dead_letter_path(delivery.workspace_id, delivery.delivery_id)
        previous = self._store.get(path)
        delivery_form: dict[str, Any] = json.loads(
            json.dumps(delivery.__dict__, separators=(",", ":"))
        )
        event_text = None
        if not firestore_storable(delivery_form):
            # Empty or reserved keys, or text that is not Unicode: the event is kept as JSON
            # text instead of a map, and replay reads it back from there.
            event_text = event_json(delivery.event)
            delivery_form = {**delivery_form, "event": None}
        document = {
            "id": delivery.delivery_id,
            "kind": "delivery",
            "workspace_id": delivery.workspace_id,
            "message_id": safe_text(delivery.message_id),
            "rule_id": delivery.rule_id,
            "destination_id": delivery.destination_id,
            "destination_type": envelope.get("destination_type"),
            "reason_code": envelope.get("reason_code"),
            "reason": safe_text(str(envelope.get("reason"))),
            "attempts": envelope.get("attempts"),
            "last_http_status": envelope.get("last_http_status"),
            "status": "dead_lettered",
            "times_dead_lettered": (previous or {}).get("times_dead_lettered", 0) + 1,
            "replay_count": (previous or {}).get("replay_count", 0),
            "delivery": delivery_form,
            "event_json": event_text,
            "created_at": (previous or {}).get("created_at", now),
            "updated_at": now,
            "replayed_at": (previous or {}).get("replayed_at"),
            "expires_at": self._clock() + timedelta(days=RECORD_RETENTION_DAYS),
        }
        try:
            self._store.commit([Write("set", path, document)])
        except Unavailable:
            raise
        except Exception as error:
            if event_text is not None:
                raise
            # A map the store refused for a reason not foreseen above: the text form holds
            # nothing but ids and text, so it is recorded, and the message does not loop.
            log.warning("dead letter %s kept as text: %s", delivery.delivery_id, error)
            document = {
                **document,
                "delivery": {**delivery_form, "event": None},
                "event_json": event_json(delivery.event),
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
        """Send matching dead letters through again: a delivery through deliver (never to a
        destination that already accepted the event; deliver checks too, so a race cannot send
        twice), an event through its source's topic and process."""
        selection = self.list(workspace_id, replace(query, limit=min(query.limit, REPLAY_LIMIT)))
        report = ReplayReport(
            dry_run=dry_run,
            matched=len(selection),
            message_ids={letter["id"]: letter["message_id"] for letter in selection},
        )
        letters = [letter for letter in selection if letter.get("kind") != EVENT_KIND]
        events = [letter for letter in selection if letter.get("kind") == EVENT_KIND]
        delivery_replays = self._deliveries_to_replay(workspace_id, letters, report)
        event_replays = self._events_to_replay(workspace_id, events, report)
        order = {letter["id"]: n for n, letter in enumerate(selection)}
        report.replayed.sort(key=order.__getitem__)
        if dry_run or not (delivery_replays or event_replays):
            return report
        if delivery_replays:
            publish_deliveries(
                self._publisher, self._delivery_topic, [m for _, m in delivery_replays]
            )
        if event_replays:
            # Process drops a messageId it has seen: its claim goes first.
            self._log.release(workspace_id, [r.message_id for r in event_replays])
            by_topic: dict[str, list[tuple[bytes, dict[str, str]]]] = {}
            for replay_of in event_replays:
                by_topic.setdefault(replay_of.topic, []).append(replay_of.message)
            for topic, messages in by_topic.items():
                self._publisher.publish(topic, messages)
        now = ids.isoformat(self._clock())
        replayed = [letter for letter, _ in delivery_replays] + [r.letter for r in event_replays]
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
            for letter in replayed
        )
        return report

    def _deliveries_to_replay(
        self, workspace_id: str, selection: builtins.list[Document], report: ReplayReport
    ) -> builtins.list[tuple[Document, DeliveryMessage]]:
        replays: builtins.list[tuple[Document, DeliveryMessage]] = []
        for letter in selection:
            if letter["status"] != "dead_lettered":
                report.skipped.append({"id": letter["id"], "reason": f"already {letter['status']}"})
            elif any(
                entry.get("status") == "delivered"
                # One query per delivery: the records of every message that carried it.
                for entry in self._records.of_delivery(workspace_id, letter["id"])
            ):
                report.skipped.append({"id": letter["id"], "reason": "already delivered"})
            else:
                fields = dict(letter["delivery"])
                if letter.get("event_json") is not None:
                    fields["event"] = json.loads(letter["event_json"])
                message = DeliveryMessage(**{**fields, "replay": True})
                replays.append((letter, message))
                report.replayed.append(letter["id"])
        return replays

    def _events_to_replay(
        self, workspace_id: str, selection: builtins.list[Document], report: ReplayReport
    ) -> builtins.list[EventReplay]:
        parsed = [_stored_event(letter) for letter in selection]
        message_ids = [str(e.get("messageId")) if e else None for e in parsed]
        entries = self._log.entries(workspace_id, [m for m in message_ids if m is not None])
        source_ids = sorted({str(letter.get("source_id")) for letter in selection})
        sources = self._store.get_many([source_path(workspace_id, s) for s in source_ids])
        replays: builtins.list[EventReplay] = []
        for letter, event, message_id in zip(selection, parsed, message_ids, strict=True):
            source = sources.get(source_path(workspace_id, str(letter.get("source_id"))))
            entry = entries.get(message_id) if message_id is not None else None
            reason = None
            if letter["status"] != "dead_lettered":
                reason = f"already {letter['status']}"
            elif event is None:
                reason = "the event was not kept"
            elif (
                entry is not None
                and entry.get("state") == "done"
                and not entry.get("dead_lettered")
            ):
                reason = "already processed"
            elif source is None:
                reason = f"event source {letter.get('source_id')} no longer exists"
            if reason is not None:
                report.skipped.append({"id": letter["id"], "reason": reason})
                continue
            assert event is not None and source is not None
            replays.append(
                EventReplay(
                    letter,
                    str(event["messageId"]),
                    str(source["pubsub_topic"]),
                    _source_message(workspace_id, letter, event, source),
                )
            )
            report.replayed.append(letter["id"])
        return replays


@dataclass(frozen=True)
class EventReplay:
    """An event dead letter on its way back to its source's topic."""

    letter: Document
    message_id: str
    topic: str
    message: tuple[bytes, dict[str, str]]


def _has_text_message_id(value: Any) -> TypeGuard[CanonicalEvent]:
    """Whether a decoded value is an event that can be recorded and replayed: an object whose
    messageId is text (its dead letter's id and its event log entry are keyed by it)."""
    return isinstance(value, dict) and isinstance(value.get("messageId"), str)


def _stored_event(letter: Document) -> CanonicalEvent | None:
    text = letter.get("event_json")
    try:
        event = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None
    return event if _has_text_message_id(event) else None


def _source_message(
    workspace_id: str, letter: Document, event: CanonicalEvent, source: Document
) -> tuple[bytes, dict[str, str]]:
    """The event as ingest publishes it: a one-event message of its source's topic, with the
    source's bot policy as it is now (ASCII JSON, so that even an event holding a lone
    surrogate travels, to be set aside again)."""
    attributes = {
        "schema": MESSAGE_SCHEMA,
        "workspace_id": workspace_id,
        "source_id": str(letter["source_id"]),
        "event_count": "1",
        "bot_policy": str(source.get("bot_policy", "keep")),
    }
    if letter.get("redacted"):
        attributes["replay"] = REPLAY_ATTRIBUTE  # PII rules ran once: hashes are not hashed again
    return json.dumps([event], separators=(",", ":")).encode(), attributes
