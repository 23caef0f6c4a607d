"""Process: deduplicate, validate, store and route the events of one source-topic message."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from shared.domain import ids
from shared.domain.pipeline import (
    DEDUP_HOURS,
    DeliveryMessage,
    SourceMessage,
    delivery_id,
    encode_deliveries,
    event_log_path,
)
from shared.domain.routing import matching_rules
from shared.domain.storage import event_row
from shared.ports import (
    WRITES_PER_COMMIT,
    AlreadyExists,
    ConfigStore,
    Document,
    EventStore,
    Publisher,
    Write,
    commit_in_chunks,
)
from shared.services.privacy import PrivacyOutcome
from shared.services.workspace_config import WorkspaceConfig

log = logging.getLogger("streams.process")


@dataclass(frozen=True)
class Verdict:
    """The contracts' decision on one event: blocked events are quarantined, never stored."""

    blocked: bool = False
    violations: list[dict[str, Any]] = field(default_factory=list)


class Validator(Protocol):
    """The contract-validation step: one verdict per event, in order."""

    def validate(self, workspace_id: str, events: list[dict[str, Any]]) -> list[Verdict]: ...


class EventObserver(Protocol):
    """Sees every stored event right after storage (the live stream, the source debugger).

    Best effort: an observer's failure is logged and never fails or retries processing.
    """

    def observe(self, workspace_id: str, source_id: str, events: list[dict[str, Any]]) -> None: ...


class PrivacyStep(Protocol):
    """Drops suppressed users' events and redacts PII (shared/services/privacy.py)."""

    def apply(
        self, workspace_id: str, events: list[dict[str, Any]], replay: bool = False
    ) -> PrivacyOutcome: ...


class NoContracts:
    """Every event passes: the step's place in the pipeline before contracts exist."""

    def validate(self, workspace_id: str, events: list[dict[str, Any]]) -> list[Verdict]:
        return [Verdict() for _ in events]


@dataclass
class ProcessOutcome:
    """What happened to one message's events."""

    received: int = 0
    duplicates: int = 0
    stored: int = 0
    blocked: int = 0
    suppressed: int = 0
    deliveries: int = 0
    skipped: int = 0


class Processor:
    """Runs every accepted event exactly once through validation, storage and routing."""

    def __init__(
        self,
        store: ConfigStore,
        events: EventStore,
        publisher: Publisher,
        config: WorkspaceConfig,
        delivery_topic: Callable[[str], str],
        validator: Validator | None = None,
        observers: Sequence[EventObserver] = (),
        clock: Callable[[], datetime] = ids.utcnow,
        privacy: PrivacyStep | None = None,
    ):
        self._store = store
        self._events = events
        self._publisher = publisher
        self._config = config
        # Each destination has its own deliveries topic and subscription, so a slow or failing
        # destination holds back only its own deliveries.
        self._delivery_topic = delivery_topic
        self._validator = validator or NoContracts()
        self._observers = observers
        self._clock = clock
        self._privacy = privacy

    def process(self, message: SourceMessage) -> ProcessOutcome:
        """Process a message; transient failures raise so that Pub/Sub redelivers it whole.

        A redelivered message resumes the events it had claimed; events claimed by another
        message, or already done, are duplicates and go no further.
        """
        outcome = ProcessOutcome(received=len(message.events))
        now = self._clock()
        fresh, duplicates = self._claim(message, now)
        outcome.duplicates = len(duplicates)
        self._record_duplicates(duplicates, now)
        if not fresh:
            return outcome

        if self._privacy is not None:
            # Before contracts, storage and routing (docs/PRIVACY.md): a suppressed user's
            # events go no further, and nothing downstream ever sees a redacted field's value.
            screened = self._privacy.apply(
                message.workspace_id, fresh, replay=message.replay is not None
            )
            fresh = screened.passed
            outcome.suppressed = len(screened.suppressed)
            self._finish_suppressed(message.workspace_id, screened.suppressed)
            if not fresh:
                return outcome

        verdicts = self._validator.validate(message.workspace_id, fresh)
        passed = [e for e, v in zip(fresh, verdicts, strict=True) if not v.blocked]
        outcome.blocked = len(fresh) - len(passed)
        routed = self._route(message.workspace_id, passed)
        deliveries = [d for plan in routed.values() for d in plan["deliveries"]]
        # Stored before routed: a message whose storage fails is redelivered (within a second
        # on the emulator) before any of its deliveries exist, so no two copies of a delivery
        # are ever in flight at once. Only then is the entry done: a redelivery after success
        # goes no further.
        self._store_events(passed)
        # Read before publishing: a delivery can be recorded before the publish call returns,
        # and the trace must not show it before the event was routed.
        routed_at = self._clock()
        publish_deliveries(self._publisher, self._delivery_topic, deliveries)
        self._finish(message, fresh, verdicts, routed, routed_at)
        outcome.stored = len(passed)
        outcome.deliveries = len(deliveries)
        outcome.skipped = sum(len(plan["skipped"]) for plan in routed.values())
        self._notify(message, passed)
        return outcome

    def _store_events(self, events: list[dict[str, Any]]) -> None:
        if events:
            self._events.insert([event_row(e) for e in events], [e["messageId"] for e in events])

    def _notify(self, message: SourceMessage, events: list[dict[str, Any]]) -> None:
        for observer in self._observers:
            try:
                observer.observe(message.workspace_id, message.source_id, events)
            except Exception:
                log.exception("observer %s failed", type(observer).__name__)

    def _claim(
        self, message: SourceMessage, now: datetime
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """Split events into those this message processes and duplicates (their log paths).

        Claims are created blind, without reading first: fresh events, the common case, cost
        one write. Only a chunk where some entry already exists is read to learn which.
        """
        unique: dict[str, dict[str, Any]] = {}
        duplicates: list[str] = []
        for event in message.events:
            path = event_log_path(message.workspace_id, event["messageId"])
            if path in unique:
                duplicates.append(path)  # the same messageId twice in one request
            else:
                unique[path] = event
        claimed: set[str] = set()
        paths = list(unique)
        # Not `commit_in_chunks`: a chunk refused because some entry exists is claimed path by
        # path, and the chunks after it are still committed whole.
        for start in range(0, len(paths), WRITES_PER_COMMIT):
            chunk = paths[start : start + WRITES_PER_COMMIT]
            claims = [Write("create", p, _claim(message, unique[p], now)) for p in chunk]
            try:
                self._store.commit(claims)
                claimed.update(chunk)
            except AlreadyExists:
                claimed.update(self._claim_contended(message, chunk, unique, now))
        duplicates.extend(p for p in paths if p not in claimed)
        return [unique[p] for p in paths if p in claimed], duplicates

    def _claim_contended(
        self,
        message: SourceMessage,
        paths: list[str],
        events: dict[str, dict[str, Any]],
        now: datetime,
    ) -> set[str]:
        """Claim what is still free among `paths`; return the paths this message processes."""
        existing = self._store.get_many(paths)
        claimed: set[str] = set()
        for path in paths:
            entry = existing[path]
            if (
                entry is not None
                and entry["state"] == "claimed"
                and entry["pubsub_message_id"] == message.pubsub_message_id
            ):
                claimed.add(path)  # our own earlier attempt failed midway: resume
            elif entry is None or _expired(entry, now):
                op: Literal["create", "set"] = "set" if entry else "create"
                try:
                    self._store.commit([Write(op, path, _claim(message, events[path], now))])
                    claimed.add(path)
                except AlreadyExists:
                    pass  # a concurrent duplicate claimed it between our read and our write
        return claimed

    def _record_duplicates(self, duplicates: list[str], now: datetime) -> None:
        """Count duplicates on their log entries (read after the claims: some are new)."""
        if not duplicates:
            return
        counts = Counter(duplicates)
        entries = self._store.get_many(list(counts))
        writes = [
            Write(
                "update",
                path,
                {
                    "duplicates": int(entry.get("duplicates", 0)) + counts[path],
                    "last_duplicate_at": ids.isoformat(now),
                },
            )
            for path, entry in entries.items()
            if entry is not None
        ]
        commit_in_chunks(self._store, writes)

    def _route(
        self, workspace_id: str, events: list[dict[str, Any]]
    ) -> dict[str, dict[str, list[Any]]]:
        """Per messageId: the deliveries to make and the rules skipped (with why)."""
        routing = self._config.routing(workspace_id)
        plans: dict[str, dict[str, list[Any]]] = {}
        for event in events:
            plan: dict[str, list[Any]] = {"deliveries": [], "skipped": []}
            for rule in matching_rules(routing.rules, event):
                destination = routing.destinations.get(rule.destination_id)
                if destination is None or destination.status != "active":
                    state = "missing" if destination is None else destination.status
                    plan["skipped"].append(
                        {
                            "rule_id": rule.id,
                            "destination_id": rule.destination_id,
                            "reason": f"destination is {state}",
                        }
                    )
                    continue
                plan["deliveries"].append(
                    DeliveryMessage(
                        delivery_id=delivery_id(event["messageId"], rule.id),
                        workspace_id=workspace_id,
                        message_id=event["messageId"],
                        rule_id=rule.id,
                        destination_id=destination.id,
                        transformation_id=rule.transformation_id,
                        event=event,
                    )
                )
            plans[event["messageId"]] = plan
        return plans

    def _finish_suppressed(
        self, workspace_id: str, suppressed: list[tuple[dict[str, Any], str | None]]
    ) -> None:
        at = ids.isoformat(self._clock())
        writes = [
            Write(
                "update",
                event_log_path(workspace_id, event["messageId"]),
                {
                    "state": "done",
                    "suppressed": True,
                    "suppressed_at": at,
                    "regulation_id": regulation_id,
                    "blocked": False,
                    "violations": [],
                    "stored_at": None,
                    "routed_at": None,
                    "deliveries": [],
                    "skipped": [],
                },
            )
            for event, regulation_id in suppressed
        ]
        commit_in_chunks(self._store, writes)

    def _finish(
        self,
        message: SourceMessage,
        events: list[dict[str, Any]],
        verdicts: list[Verdict],
        routed: dict[str, dict[str, list[Any]]],
        routed_at: datetime,
    ) -> None:
        at = ids.isoformat(routed_at)
        writes = []
        for event, verdict in zip(events, verdicts, strict=True):
            plan = routed.get(event["messageId"], {"deliveries": [], "skipped": []})
            writes.append(
                Write(
                    "update",
                    event_log_path(message.workspace_id, event["messageId"]),
                    {
                        "state": "done",
                        "blocked": verdict.blocked,
                        "violations": verdict.violations,
                        "stored_at": None if verdict.blocked else at,
                        "routed_at": None if verdict.blocked else at,
                        "deliveries": [
                            {
                                "delivery_id": d.delivery_id,
                                "rule_id": d.rule_id,
                                "destination_id": d.destination_id,
                            }
                            for d in plan["deliveries"]
                        ],
                        "skipped": plan["skipped"],
                    },
                )
            )
        commit_in_chunks(self._store, writes)


def publish_deliveries(
    publisher: Publisher, topic_of: Callable[[str], str], deliveries: list[DeliveryMessage]
) -> None:
    """Publish deliveries to their destinations' topics, batched per rule, one call per topic."""
    by_topic: dict[str, list[tuple[bytes, dict[str, str]]]] = {}
    for destination_id, data, attributes in encode_deliveries(deliveries):
        by_topic.setdefault(topic_of(destination_id), []).append((data, attributes))
    for topic, messages in by_topic.items():
        publisher.publish(topic, messages)


def _claim(message: SourceMessage, event: dict[str, Any], now: datetime) -> Document:
    return {
        "message_id": event["messageId"],
        "workspace_id": message.workspace_id,
        "source_id": message.source_id,
        "pubsub_message_id": message.pubsub_message_id,
        "event_type": event["type"],
        "received_at": event["receivedAt"],
        "claimed_at": ids.isoformat(now),
        "state": "claimed",
        "duplicates": 0,
        # A timestamp, not a string: Firestore TTL policies only expire on timestamp fields.
        "expires_at": now + timedelta(hours=DEDUP_HOURS),
    }


def _expired(entry: Document, now: datetime) -> bool:
    # The emulator (and TTL's own lag in production) keeps expired entries: check here too.
    expires_at = entry.get("expires_at")
    return isinstance(expires_at, datetime) and expires_at <= now
