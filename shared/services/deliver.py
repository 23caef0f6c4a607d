"""Deliver: send one event to one rule's destination, once, with retries and dead letters."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from pydantic import BaseModel

from shared import structured_log
from shared.destinations import connector_for, validate_config
from shared.destinations.base import (
    Batch,
    Connector,
    EventRejected,
    Outbound,
    Part,
    batched,
)
from shared.destinations.pubsub import TopicGuard
from shared.domain import ids
from shared.domain.errors import InvalidRequest
from shared.domain.event import CanonicalEvent
from shared.domain.outcomes import EventObserver, Observed
from shared.domain.pipeline import (
    EVENT_REJECTED,
    FINAL_STATUSES,
    HISTORY_LIMIT,
    RECORD_RETENTION_DAYS,
    SETTLED_RECORD_HOURS,
    UNPROCESSABLE_EVENT,
    DeliveryMessage,
    DeliveryStatus,
    message_batch_id,
)
from shared.domain.poison import DATA_ERRORS, failure_reason, safe_text
from shared.domain.routing import Destination
from shared.domain.stored_documents import value_size
from shared.ports import (
    ConfigStore,
    Document,
    FileWriter,
    Publisher,
    Sender,
    SendStatus,
)
from shared.services.delivery_records import DeliveryRecords
from shared.services.outlets import Outlets
from shared.services.pacing import Pacer
from shared.services.workspace_config import WorkspaceConfig

log = logging.getLogger("streams.deliver")
# The message of the line each attempt's outcome writes (shared/structured_log.py).
DELIVERY_OUTCOME = "delivery outcome"


@dataclass(frozen=True)
class TransformOutcome:
    """What a forwarding rule's transformation made of an event.

    `events` empty means dropped (recorded, never silent); several mean fan-out; `error` set
    means the code failed, and the delivery is dead-lettered with it.
    """

    events: list[CanonicalEvent]
    error: str | None = None
    logs: list[str] = field(default_factory=list)
    # The version of the code that ran (None when the transformation no longer exists).
    version: int | None = None


class Transformer(Protocol):
    """Runs a rule's transformation on the event before it is sent."""

    def transform(self, message: DeliveryMessage, destination: Destination) -> TransformOutcome: ...


@dataclass(frozen=True)
class Attempt:
    """One attempt's result: the status it leaves the delivery in (with a reason code when the
    delivery is dead-lettered)."""

    status: DeliveryStatus
    detail: str
    http_status: int | None = None
    code: str | None = None
    logs: list[str] = field(default_factory=list)
    # What the rule's transformation did before this attempt (the trace's `transformed` stage).
    transformed: dict[str, Any] | None = None


# What a send's outcome leaves the delivery as.
SENT_STATUS: dict[SendStatus, DeliveryStatus] = {
    "delivered": "delivered",
    "retry": "retrying",
    "failed": "dead_lettered",
}
# A batch record holds up to 100 deliveries (BATCH_MAX_DELIVERIES) within Firestore's 1 MiB
# document: each delivery is kept within ENTRY_BYTES (as Firestore sizes values), leaving room
# for the record's messageId and delivery id arrays (tests/unit/test_deliver.py builds the
# largest record possible). Texts are clipped: an attempt's detail (the status and the start of
# the answer) and each console line of the transformation, of which the last TRACE_LOG_LINES
# are kept. That bounds one attempt's history entry to about 2.9 kB, so at least the last two
# attempts always fit; the oldest are left out beyond (with no console lines, about 20 fit).
ENTRY_BYTES = 9_000
DETAIL_BYTES = 300
LOG_LINE_BYTES = 200
TRACE_LOG_LINES = 10
CLIPPED = "..."


# Parallel sends per deliveries-topic message. Each message gets its own threads: a slow
# destination's message never takes threads from another's.
SEND_CONCURRENCY = 8
# Sends not started this long after a message arrived wait for its redelivery: each send may
# take up to its timeout (30 s at most), and the whole must end inside the 60 s ack deadline.
START_BUDGET_SECONDS = 25.0


@dataclass(frozen=True)
class Plan:
    """What one delivery sends: the parts of its (possibly transformed) events, which deliver
    joins with the other deliveries' parts into the destination's batch requests."""

    destination: Destination
    connector: Connector
    config: BaseModel
    parts: list[Part]
    event_types: list[str]  # of the events sent (for a skip's reason)
    logs: list[str]
    transformed: dict[str, Any] | None = None


class RetryDelivery(Exception):
    """A transient failure: the function fails so that Pub/Sub redelivers after a backoff."""


@dataclass(frozen=True)
class DeliveryOutcome:
    """Where a delivery ended after this attempt."""

    status: DeliveryStatus
    attempts: int
    detail: str


class Deliverer:
    """Sends deliveries through their destination's connector and records every attempt."""

    def __init__(
        self,
        store: ConfigStore,
        config: WorkspaceConfig,
        sender: Sender,
        publisher: Publisher,
        dead_letters_topic: str,
        max_attempts: int,
        *,
        customer_publisher: Publisher,
        topic_guard: TopicGuard,
        transformer: Transformer | None = None,
        files: Callable[[], FileWriter] | None = None,
        pacer: Pacer | None = None,
        clock: Callable[[], datetime] = ids.utcnow,
        observers: Sequence[EventObserver] = (),
        records: DeliveryRecords | None = None,
    ):
        """`publisher` reaches Streams' own topics (dead letters) and signs what it sends;
        `customer_publisher` reaches customers' topics only, with an identity that cannot
        publish to Streams' own, and signs nothing. `files` makes the writer of Cloud Storage
        destinations on first use (its client is loaded only by deployments that use one)."""
        self._store = store
        self._records = records or DeliveryRecords(store)
        self._config = config
        self._publisher = publisher
        self._outlets = Outlets(sender, customer_publisher, topic_guard, files)
        self._dead_letters_topic = dead_letters_topic
        self._max_attempts = max_attempts
        self._transformer = transformer
        self._pacer = pacer or Pacer()
        self._clock = clock
        self._observers = observers

    def deliver(self, message: DeliveryMessage) -> DeliveryOutcome:
        """One attempt at a delivery sent alone: handled as a deliveries-topic message of only
        it, in the single-delivery format, would be (its record named by its data). Raises
        `RetryDelivery` when it should be retried."""
        [outcome] = self.deliver_all([message], message_batch_id(message.to_json(), {}))
        return outcome

    def deliver_all(self, messages: list[DeliveryMessage], batch_id: str) -> list[DeliveryOutcome]:
        """One attempt at each delivery of a deliveries-topic message (one rule's destination).

        `batch_id` names the message's record (`message_batch_id`): it is read once, and
        written once when anything was attempted (`DeliveryRecords`: a mark in the
        deduplication store instead when every delivery was accepted at once). The sends run in
        parallel. When any delivery should be retried, everything is recorded first and then
        `RetryDelivery` is raised: Pub/Sub redelivers the whole message after a backoff, and
        the deliveries already settled are skipped then.
        """
        start_by = time.monotonic() + START_BUDGET_SECONDS
        workspace_id = messages[0].workspace_id
        record, entries = self._records.load(
            workspace_id, batch_id, [_named(message) for message in messages]
        )
        settled_elsewhere = self._settled_elsewhere(messages, entries)
        outcomes: list[DeliveryOutcome | None] = []
        todo: list[tuple[int, int]] = []  # (index in messages, attempt number)
        for index, message in enumerate(messages):
            entry = entries.get(message.delivery_id)
            if message.delivery_id in settled_elsewhere:
                outcomes.append(_settled(settled_elsewhere[message.delivery_id], "already done"))
                continue
            if entry is None:
                todo.append((index, 1))
                outcomes.append(None)
                continue
            status: DeliveryStatus = entry["status"]
            if status in FINAL_STATUSES:
                # Already accepted (or skipped): a redelivery or a replay must not send it again.
                outcomes.append(_settled(entry, "already done"))
                continue
            if status == "dead_lettered" and not message.replay:
                outcomes.append(_settled(entry, "already dead-lettered"))
                continue
            # A replay starts counting afresh; its own retries count on from there.
            restart = message.replay and status == "dead_lettered"
            todo.append((index, 1 if restart else int(entry["attempts"]) + 1))
            outcomes.append(None)
        attempts = self._attempt_all([messages[i] for i, _ in todo], start_by)
        letters: list[tuple[bytes, dict[str, str]]] = []
        retrying: list[str] = []
        attempted: list[DeliveryStatus | None] = [None] * len(messages)  # this call's outcomes
        now = self._clock()
        for (index, number), (destination, attempt) in zip(todo, attempts, strict=True):
            message = messages[index]
            if attempt is None:  # never started: the message ran out of time; not an attempt
                retrying.append(f"{message.delivery_id}: not attempted yet")
                outcomes[index] = DeliveryOutcome("retrying", number - 1, "not attempted yet")
                continue
            if attempt.status == "retrying" and number >= self._max_attempts:
                attempt = replace(
                    attempt,
                    status="dead_lettered",
                    code="retries_exhausted",
                    detail=f"gave up after {number} attempts: {attempt.detail}",
                )
            final = attempt.status
            attempted[index] = final
            if final == "dead_lettered":
                letters.append(self._dead_letter(message, destination, attempt, number))
            elif final == "retrying":
                retrying.append(f"{message.delivery_id}: {attempt.detail}")
            entries[message.delivery_id] = delivery_entry(
                entries.get(message.delivery_id), message, destination, number, attempt, now
            )
            detail = attempt.detail
            outcomes[index] = DeliveryOutcome(final, number, detail)
            # Counted by destination type and status (terraform/modules/monitoring). Not the
            # detail: it may quote what the receiver answered.
            structured_log.emit(
                DELIVERY_OUTCOME,
                logging.WARNING if final in ("retrying", "dead_lettered") else logging.INFO,
                delivery_id=message.delivery_id,
                destination_id=message.destination_id,
                destination_type=destination.type if destination else "none",
                status=final,
                attempt=number,
            )
        if letters:
            # Before the record: if recording fails, the redelivery dead-letters again (a dead
            # letter is keyed by delivery, so twice is once) instead of never.
            self._publisher.publish(self._dead_letters_topic, letters)
        if any(status is not None for status in attempted):
            self._records.save(
                workspace_id,
                batch_id,
                messages[0].destination_id,
                record,
                batch_record(batch_id, messages[0], record, entries, now),
                # A mark settles the whole message: not while a delivery waits for its first
                # attempt (out of time) or its retry.
                whole=not retrying and set(entries) >= {m.delivery_id for m in messages},
            )
        self._notify_dropped(
            [m for m, o in zip(messages, attempted, strict=True) if o == "dropped"]
        )
        if retrying:
            raise RetryDelivery(f"{len(retrying)} of {len(messages)} to retry; {retrying[0]}")
        return [outcome for outcome in outcomes if outcome is not None]

    def _settled_elsewhere(
        self, messages: list[DeliveryMessage], entries: dict[str, Document]
    ) -> dict[str, Document]:
        """Replayed deliveries that another message's record holds as settled for good.

        A replay travels in a message of its own, so its record starts empty: the records of
        the delivery's earlier messages are read too (one query per replayed delivery this
        record has not settled; replays only, never on the common path), so that a replay
        never sends to a destination that already accepted the event.
        """
        found: dict[str, Document] = {}
        for message in messages:
            entry = entries.get(message.delivery_id)
            if not message.replay or (entry is not None and entry["status"] in FINAL_STATUSES):
                continue
            for other in self._records.of_delivery(message.workspace_id, message.delivery_id):
                if other["status"] in FINAL_STATUSES:
                    found[message.delivery_id] = other
        return found

    def _notify_dropped(self, messages: list[DeliveryMessage]) -> None:
        """Show the live stream the events a rule's transformation dropped (best effort)."""
        for message in messages:
            reason = (
                f"dropped by transformation {message.transformation_id} "
                f"for destination {message.destination_id}"
            )
            observed = [Observed(message.event, "dropped", reason)]
            source_id = str(message.event.get("sourceId") or "")
            for observer in self._observers:
                try:
                    observer.observe(message.workspace_id, source_id, observed)
                except Exception:
                    log.exception("observer %s failed", type(observer).__name__)

    def _attempt_all(
        self, messages: list[DeliveryMessage], start_by: float
    ) -> list[tuple[Destination | None, Attempt | None]]:
        """Transform and build on this thread (its sandbox contexts are reused), send at once.

        The deliveries' parts are joined into the destination's batch requests, sent in
        parallel at the destination's pace. A delivery whose requests cannot start by
        `start_by` is not attempted (None), so that a message of slow deliveries still ends
        well inside the push ack deadline.
        """
        prepared: list[tuple[Destination | None, Attempt | Plan]] = []
        for message in messages:
            destination = self._config.destination(message.workspace_id, message.destination_id)
            prepared.append((destination, self._prepare(message, destination)))
        plans = {i: plan for i, (_, plan) in enumerate(prepared) if isinstance(plan, Plan)}
        sent = self._send_plans(plans, start_by)
        results: list[tuple[Destination | None, Attempt | None]] = []
        for index, (destination, plan) in enumerate(prepared):
            if isinstance(plan, Attempt):
                results.append((destination, plan))
                continue
            attempts = sent[index]
            if any(attempt is None for attempt in attempts):
                results.append((destination, None))
                continue
            # A delivery succeeds only whole: its first retry or failure decides the attempt.
            settled = [a for a in attempts if a is not None]
            decisive = next(
                (a for a in settled if a.status in ("retrying", "dead_lettered")), settled[0]
            )
            results.append(
                (destination, replace(decisive, logs=plan.logs, transformed=plan.transformed))
            )
        return results

    def _send_plans(
        self, plans: dict[int, Plan], start_by: float
    ) -> dict[int, list[Attempt | None]]:
        """Each plan's attempts, one per request carrying its parts (None: not started)."""
        outcomes: dict[int, list[Attempt | None]] = {index: [] for index in plans}
        batches: list[tuple[Plan, Batch, list[int]]] = []
        for index, plan in plans.items():
            if not plan.parts:
                kinds = " or ".join(dict.fromkeys(plan.event_types))
                detail = f"{plan.destination.type} does not take {kinds} events"
                outcomes[index].append(Attempt("skipped", detail))
        by_destination: dict[str, list[int]] = {}
        for index, plan in plans.items():
            if plan.parts:
                by_destination.setdefault(plan.destination.id, []).append(index)
        for indices in by_destination.values():
            first = plans[indices[0]]
            try:
                joined = self._batched(first, [plans[i].parts for i in indices])
            except DATA_ERRORS:
                # One delivery's parts break the joined request: each is built alone, so that
                # only the deliveries whose own request cannot be built fail.
                for index in indices:
                    try:
                        alone = self._batched(plans[index], [plans[index].parts])
                    except DATA_ERRORS as exc:
                        detail = failure_reason("building the request", exc)
                        failed = Attempt("dead_lettered", detail, code=UNPROCESSABLE_EVENT)
                        outcomes[index].append(failed)
                        continue
                    batches.extend((plans[index], batch, [index]) for batch in alone)
                continue
            for batch in joined:
                batches.append((first, batch, [indices[owner] for owner in batch.owners]))
        if not batches:
            return outcomes

        def send(item: tuple[Plan, Batch, list[int]]) -> Attempt | None:
            plan, batch, _ = item
            return self._send_paced(plan, batch, start_by)

        if len(batches) == 1:
            results = [send(batches[0])]
        else:
            with ThreadPoolExecutor(min(SEND_CONCURRENCY, len(batches))) as pool:
                results = list(pool.map(send, batches))
        for (_, _, owners), attempt in zip(batches, results, strict=True):
            if attempt is not None and attempt.code == "http_error" and len(owners) > 1:
                # A batch the vendor refused for good may be one bad event's fault: each
                # delivery is sent alone once, so that only the bad one is dead-lettered.
                for owner in owners:
                    outcomes[owner].extend(self._send_alone(plans[owner], start_by))
                continue
            for owner in owners:
                outcomes[owner].append(attempt)
        return outcomes

    def _batched(self, plan: Plan, parts: list[list[Part]]) -> list[Batch]:
        return batched(plan.connector, plan.config, parts, now=self._clock())

    def _send_alone(self, plan: Plan, start_by: float) -> list[Attempt | None]:
        attempts: list[Attempt | None] = []
        for batch in self._batched(plan, [plan.parts]):
            attempts.append(self._send_paced(plan, batch, start_by))
        return attempts

    def _send_paced(self, plan: Plan, batch: Batch, start_by: float) -> Attempt | None:
        """The batch's attempt, or None when it could not start by `start_by`."""
        limit = plan.connector.about.rate_limit
        if not self._pacer.acquire(plan.destination.id, limit, start_by):
            return None
        if time.monotonic() >= start_by:
            return None
        return self._send_one(plan.connector, batch.request)

    def _prepare(self, message: DeliveryMessage, destination: Destination | None) -> Attempt | Plan:
        """What to send for one delivery, or the attempt's result when nothing is to be sent."""
        if destination is None:
            return Attempt(
                "dead_lettered", "the destination no longer exists", code="destination_missing"
            )
        if destination.status != "active":
            return Attempt(
                "dead_lettered", "the destination is inactive", code="destination_inactive"
            )
        events = [message.event]
        logs: list[str] = []
        done: dict[str, Any] | None = None
        if message.transformation_id is not None:
            if self._transformer is None:
                return Attempt(
                    "dead_lettered", "no transformation runtime", code="transformation_error"
                )
            transformed = self._transformer.transform(message, destination)
            logs = transformed.logs
            done = {
                "at": ids.isoformat(self._clock()),
                "transformation_id": message.transformation_id,
                "version": transformed.version,
                "events": len(transformed.events),
                "error": None if transformed.error is None else safe_text(transformed.error),
            }
            if transformed.error is not None:
                detail = f"transformation failed: {transformed.error}"
                return Attempt(
                    "dead_lettered",
                    detail,
                    code="transformation_error",
                    logs=logs,
                    transformed=done,
                )
            if not transformed.events:
                detail = "the transformation dropped the event"
                return Attempt("dropped", detail, logs=logs, transformed=done)
            events = transformed.events
        try:
            config = validate_config(destination.type, destination.config)
            connector = connector_for(destination.type)
            now = self._clock()
            parts = [part for event in events for part in connector.parts(event, config, now=now)]
        except InvalidRequest as exc:
            detail = f"invalid destination config: {exc.message}"
            return Attempt(
                "dead_lettered", detail, code="invalid_config", logs=logs, transformed=done
            )
        except EventRejected as exc:
            # This destination cannot take the event (no identity): recorded with its reason
            # and dead-lettered, like any failed delivery; the others of the message go on.
            reason = str(exc)
            return Attempt(
                "dead_lettered", reason, code=EVENT_REJECTED, logs=logs, transformed=done
            )
        except DATA_ERRORS as exc:
            # The event's own content breaks the connector: this delivery is dead-lettered,
            # the others of the message are still sent.
            detail = failure_reason("building the request", exc)
            code = UNPROCESSABLE_EVENT
            return Attempt("dead_lettered", detail, code=code, logs=logs, transformed=done)
        kinds = [str(event.get("type")) for event in events]
        return Plan(destination, connector, config, parts, kinds, logs, done)

    def _send_one(self, connector: Connector, request: Outbound) -> Attempt:
        sent = self._outlets.send(connector, request)
        return Attempt(SENT_STATUS[sent.status], sent.detail, sent.http_status, sent.code)

    def _dead_letter(
        self,
        message: DeliveryMessage,
        destination: Destination | None,
        attempt: Attempt,
        attempts: int,
    ) -> tuple[bytes, dict[str, str]]:
        """The dead-letter topic message of a delivery (one per delivery, batched or not)."""
        envelope = {
            # ASCII JSON (below), so that any event travels, even one holding a lone surrogate.
            "delivery": dict(message.__dict__),
            "reason_code": attempt.code or "failed",
            "reason": attempt.detail,
            "attempts": attempts,
            "last_http_status": attempt.http_status,
            "destination_type": destination.type if destination else None,
            "dead_lettered_at": ids.isoformat(self._clock()),
        }
        return json.dumps(envelope, separators=(",", ":")).encode(), message.attributes()


def _named(message: DeliveryMessage) -> dict[str, str]:
    """What a record's entry says of a delivery's message."""
    return {
        "delivery_id": message.delivery_id,
        "message_id": safe_text(message.message_id),
        "rule_id": message.rule_id,
        "destination_id": message.destination_id,
    }


def _settled(entry: Document, detail: str) -> DeliveryOutcome:
    return DeliveryOutcome(entry["status"], entry["attempts"], detail)


def delivery_entry(
    previous: Document | None,
    message: DeliveryMessage,
    destination: Destination | None,
    attempts: int,
    attempt: Attempt,
    at: datetime,
) -> Document:
    """A delivery as its batch record holds it after an attempt, within `ENTRY_BYTES`: texts
    clipped (`clip`), and the oldest attempts of its history left out when it would pass."""
    now = ids.isoformat(at)
    status = attempt.status
    detail = clip(attempt.detail, DETAIL_BYTES)
    history = list(previous.get("history", [])) if previous else []
    step: dict[str, Any] = {
        "at": now,
        "status": status,
        "detail": detail,
        "http_status": attempt.http_status,
        "replay": message.replay,
    }
    if attempt.logs:
        # Console lines are the transformation's own text: any of it must be storable.
        step["logs"] = [clip(line, LOG_LINE_BYTES) for line in attempt.logs[-TRACE_LOG_LINES:]]
    if attempt.transformed is not None:
        transformed = dict(attempt.transformed)
        if transformed.get("error") is not None:
            transformed["error"] = clip(transformed["error"], DETAIL_BYTES)
        step["transformed"] = transformed
    history.append(step)
    entry: dict[str, Any] = {
        "delivery_id": message.delivery_id,
        "message_id": safe_text(message.message_id),
        "rule_id": message.rule_id,
        "destination_id": message.destination_id,
        "destination_type": destination.type if destination else None,
        "status": status,
        "attempts": attempts,
        "last_detail": detail,
        "last_http_status": attempt.http_status,
        "history": history[-HISTORY_LIMIT:],
        "created_at": previous["created_at"] if previous else now,
        "updated_at": now,
        "delivered_at": now if status == "delivered" else None,
    }
    while value_size(entry) > ENTRY_BYTES and len(entry["history"]) > 1:
        entry["history"] = entry["history"][1:]
    return entry


def batch_record(
    batch_id: str,
    message: DeliveryMessage,
    previous: Document | None,
    entries: dict[str, Document],
    at: datetime,
) -> Document:
    """The record of a deliveries-topic message: its deliveries by id, and what queries read
    (the destination and last change for the console's recent deliveries, and the messageIds
    and delivery ids held, for trace and replay, as arrays to query with array-contains)."""
    return {
        "batch_id": batch_id,
        "workspace_id": message.workspace_id,
        "destination_id": message.destination_id,
        "rule_id": message.rule_id,
        "message_ids": list(dict.fromkeys(e["message_id"] for e in entries.values())),
        "delivery_ids": list(entries),
        "deliveries": entries,
        "created_at": previous["created_at"] if previous else ids.isoformat(at),
        "updated_at": ids.isoformat(at),
        # A timestamp: Firestore TTL policies expire only on timestamp fields.
        "expires_at": at + retention(entries.values()),
    }


def retention(entries: Iterable[Document]) -> timedelta:
    """How long a record is kept after its last change: a record of deliveries that all
    settled at their first attempt, none a replay, only as long as the events' trace entries
    (`SETTLED_RECORD_HOURS`); one holding a retry, a dead letter or a replay, for the whole
    `RECORD_RETENTION_DAYS`, so that it can be explained and replayed, and a replay can see
    that an earlier one was accepted."""
    if all(settled_at_once(entry) for entry in entries):
        return timedelta(hours=SETTLED_RECORD_HOURS)
    return timedelta(days=RECORD_RETENTION_DAYS)


def settled_at_once(entry: Document) -> bool:
    return (
        entry["status"] in FINAL_STATUSES
        and entry["attempts"] == 1
        and not any(step.get("replay") for step in entry.get("history", []))
    )


def clip(text: str, limit: int) -> str:
    """`text` storable (`safe_text`) and at most `limit` bytes of UTF-8, cut on a character."""
    stored = safe_text(text)
    encoded = stored.encode()
    if len(encoded) <= limit:
        return stored
    return encoded[: limit - len(CLIPPED)].decode("utf-8", "ignore") + CLIPPED
