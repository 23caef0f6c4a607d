"""Process: deduplicate, validate, store and route the events of one source-topic message."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from shared import structured_log
from shared.domain import ids
from shared.domain.consent import CONSENT_DENIED, consent_refusal
from shared.domain.enrichment import is_bot, with_device
from shared.domain.event import CanonicalEvent, EventKey
from shared.domain.event_dead_letters import event_dead_letter
from shared.domain.outcomes import (
    BOT_DROPPED_REASON,
    BOT_STORE_ONLY_REASON,
    DUPLICATE_REASON,
    EventObserver,
    Observed,
    blocked_reason,
    mapped_reason,
    suppressed_reason,
)
from shared.domain.pipeline import (
    UNPROCESSABLE_EVENT,
    DeliveryMessage,
    EncodedBatch,
    SourceMessage,
    dead_letter_path,
    delivery_id,
    encode_delivery_batches,
    event_dead_letter_id,
    event_key,
)
from shared.domain.poison import DATA_ERRORS, failure_reason
from shared.domain.routing import matching_rules
from shared.domain.sources import BotPolicy
from shared.domain.storable import find_unencodable
from shared.domain.storage import event_row
from shared.domain.webhook_mapping import WEBHOOK_MAPPING_FAILED, is_webhook_request
from shared.ports import (
    Claims,
    ConfigStore,
    Document,
    EventStore,
    Publisher,
    Write,
    commit_in_chunks,
)
from shared.services.claims import StoreClaims
from shared.services.event_log import EventLog
from shared.services.privacy import PrivacyOutcome
from shared.services.workspace_config import WorkspaceConfig

if TYPE_CHECKING:
    from shared.services.webhook_mapper import MappedRequest

log = logging.getLogger("streams.process")
# The message of the line a failed insert into the event store writes (shared/structured_log.py).
EVENTS_INSERT_FAILED = "events insert failed"
# The line process writes for a message whose bots' events the source's policy dropped: a
# log-based metric can count them by workspace and source (each is also in its trace).
BOTS_DROPPED = "bots dropped"


@dataclass(frozen=True)
class Verdict:
    """The contracts' decision on one event: blocked events are quarantined, never stored."""

    blocked: bool = False
    violations: list[dict[str, Any]] = field(default_factory=list)


class Validator(Protocol):
    """The contract-validation step: one verdict per event, in order."""

    def validate(self, workspace_id: str, events: list[CanonicalEvent]) -> list[Verdict]: ...


class PrivacyStep(Protocol):
    """Drops suppressed users' events and redacts PII (shared/services/privacy.py)."""

    def apply(
        self, workspace_id: str, events: list[CanonicalEvent], replay: bool = False
    ) -> PrivacyOutcome: ...


class WebhookStep(Protocol):
    """Maps a webhook source's request to events (shared/services/webhook_mapper.py)."""

    def map(self, workspace_id: str, source_id: str, event: Mapping[str, Any]) -> MappedRequest: ...


class NoContracts:
    """Every event passes: the step's place in the pipeline before contracts exist."""

    def validate(self, workspace_id: str, events: list[CanonicalEvent]) -> list[Verdict]:
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
    dead_lettered: int = 0
    # Bots' events the source's policy dropped (recorded in their log entries, never stored).
    bots_dropped: int = 0


@dataclass(frozen=True)
class SetAside:
    """An event that failed on its own content: dead-lettered with the reason, in the form it
    had reached (`redacted` once the privacy step had run on it)."""

    event: CanonicalEvent
    reason: str
    redacted: bool = False
    reason_code: str = UNPROCESSABLE_EVENT


@dataclass
class Expanded:
    """A message's items once its webhook requests are mapped: the events (in the message's
    order), the requests that could not be mapped (dead-lettered whole, to be replayed) and
    those the source's transformation ignored on purpose (with why)."""

    events: list[CanonicalEvent] = field(default_factory=list)
    unmapped: list[SetAside] = field(default_factory=list)
    ignored: list[tuple[CanonicalEvent, str]] = field(default_factory=list)
    # Each mapped request with what it became, for the live stream (its raw request is kept
    # nowhere else).
    mapped: list[tuple[CanonicalEvent, str]] = field(default_factory=list)


@dataclass
class Progress:
    """How far `_prepare` got: the step running, and the events as privacy left them."""

    step: str = "processing"
    events: list[CanonicalEvent] | None = None


@dataclass
class Prepared:
    """A message's events ready to store and route (`fresh` in order with their verdicts)."""

    fresh: list[CanonicalEvent] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    passed: list[CanonicalEvent] = field(default_factory=list)
    suppressed: list[tuple[CanonicalEvent, str | None]] = field(default_factory=list)
    # Bots' events the source's policy drops, with why.
    bots_dropped: list[tuple[CanonicalEvent, str]] = field(default_factory=list)
    routed: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    rows: list[Document] = field(default_factory=list)
    encoded: list[EncodedBatch] = field(default_factory=list)
    deliveries: int = 0
    set_aside: list[SetAside] = field(default_factory=list)


# The fields every step relies on; an event lacking one cannot even be claimed.
REQUIRED_TEXT: tuple[EventKey, ...] = ("messageId", "type", "receivedAt")


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
        webhooks: Callable[[], WebhookStep] | None = None,
        claims: Claims | None = None,
    ):
        self._store = store
        # The deduplication window: Memorystore for Valkey where deployed, else Firestore.
        self._claims = claims or StoreClaims(store, clock)
        self._log = EventLog(store, self._claims)
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
        # A callable: the sandbox is loaded only when a message holds a webhook request.
        self._webhooks = webhooks

    def process(self, message: SourceMessage) -> ProcessOutcome:
        """Process a message; transient failures raise so that Pub/Sub redelivers it whole.

        A redelivered message resumes the events it had claimed; events claimed by another
        message, or already done, are duplicates and go no further. An event that fails on its
        own content is dead-lettered with its reason, and the others of the message go on.
        """
        now = self._clock()
        # Webhook requests become events first: from here on they are events like any other,
        # claimed by their own messageIds (so a provider's retry is a duplicate of each).
        expanded = self._expand_webhooks(message)
        outcome = ProcessOutcome(
            received=len(expanded.events) + len(expanded.unmapped) + len(expanded.ignored)
        )
        carriable, unfit = _screen(expanded.events)
        unfit = expanded.unmapped + unfit
        self._dead_letter_unfit(message, unfit, now)
        mine, duplicates = self._claim(message, carriable + [r for r, _ in expanded.ignored])
        fresh = [event for event in carriable if id(event) in mine]
        ignored = [(request, why) for request, why in expanded.ignored if id(request) in mine]
        outcome.duplicates = len(duplicates)
        outcome.dead_lettered = len(unfit)
        self._claims.count_duplicates(
            message.workspace_id, Counter(key for key, _ in duplicates), ids.isoformat(now)
        )
        seen = [Observed(request, "mapped", reason) for request, reason in expanded.mapped]
        seen += [Observed(event, "duplicate", DUPLICATE_REASON) for _, event in duplicates]
        seen += [Observed(a.event, "dead_lettered", a.reason) for a in unfit if _named(a.event)]
        seen += [Observed(request, "dropped", reason) for request, reason in ignored]
        if not fresh:
            self._finish(message, Prepared(), ignored, now, now)
            self._notify(message, seen)
            return outcome

        prepared = self._prepare_isolated(message, fresh)
        # Stored before routed: a message whose storage fails is redelivered (within a second
        # on the emulator) before any of its deliveries exist, so no two copies of a delivery
        # are ever in flight at once. Only then is the message's record written: a redelivery
        # after success goes no further.
        self._store_events(prepared.rows, [e["messageId"] for e in prepared.passed])
        # Read before publishing: a delivery can be recorded before the publish call returns,
        # and the trace must not show it before the event was routed.
        routed_at = self._clock()
        publish_encoded(self._publisher, self._delivery_topic, prepared.encoded)
        self._finish(message, prepared, ignored, now, routed_at)
        outcome.suppressed = len(prepared.suppressed)
        outcome.bots_dropped = len(prepared.bots_dropped)
        outcome.blocked = sum(v.blocked for v in prepared.verdicts)
        outcome.stored = len(prepared.passed)
        outcome.deliveries = prepared.deliveries
        outcome.skipped = sum(len(plan["skipped"]) for plan in prepared.routed.values())
        outcome.dead_lettered += len(prepared.set_aside)
        self._notify(message, seen + _observed(prepared))
        return outcome

    def _expand_webhooks(self, message: SourceMessage) -> Expanded:
        """Replace each webhook request of the message by the events it maps to."""
        expanded = Expanded()
        for event in message.events:
            if not is_webhook_request(event) or not isinstance(event.get("messageId"), str):
                # (A request without a messageId as text is set aside by `_screen`, as any
                # event no store can key.)
                expanded.events.append(event)
                continue
            if self._webhooks is None:
                # Only a Processor built without the step (a unit test's) gets here.
                reason = "this process cannot map webhook requests: it has no webhook step"
                expanded.unmapped.append(SetAside(event, reason, False, WEBHOOK_MAPPING_FAILED))
                continue
            mapped = self._webhooks().map(message.workspace_id, message.source_id, event)
            if mapped.error is not None:
                # Its dead letter keeps the request whole, for a replay once the cause is fixed.
                reason = f"the webhook request could not be mapped to events: {mapped.error}"
                expanded.unmapped.append(SetAside(event, reason, False, WEBHOOK_MAPPING_FAILED))
            elif mapped.ignored is not None:
                expanded.ignored.append((event, mapped.ignored))
            else:
                expanded.events.extend(mapped.events)
                became = [str(e.get("messageId")) for e in mapped.events]
                expanded.mapped.append((event, mapped_reason(became)))
        return expanded

    def _prepare_isolated(self, message: SourceMessage, events: list[CanonicalEvent]) -> Prepared:
        """Everything before the first write that cannot be undone, for the whole message; when
        an event's own content makes a step fail, each event is tried alone and only those that
        fail are set aside (the others go on in one batch again)."""
        try:
            return self._prepare(message, events, Progress())
        except DATA_ERRORS:
            pass
        kept: list[CanonicalEvent] = []
        set_aside: list[SetAside] = []
        for event in events:
            progress = Progress()
            try:
                self._prepare(message, [event], progress)
                kept.append(event)
            except DATA_ERRORS as error:
                reason = failure_reason(progress.step, error)
                # Logged once per event and message: the event does not come back.
                log.warning("dead-lettering event %s: %s", event_key(event["messageId"]), reason)
                [form] = progress.events or [event]
                set_aside.append(SetAside(form, reason, redacted=progress.events is not None))
        prepared = self._prepare(message, kept, Progress()) if kept else Prepared()
        prepared.set_aside = set_aside
        return prepared

    def _prepare(
        self, message: SourceMessage, events: list[CanonicalEvent], progress: Progress
    ) -> Prepared:
        """Privacy, contracts, routing, rows and deliveries' messages: writes nothing but the
        contracts' own (idempotent) records, so it may run again on part of the events."""
        workspace_id = message.workspace_id
        prepared = Prepared()
        # First: the user agent is judged as the SDK sent it, before PII rules could hash it.
        progress.step = "enrichment"
        events, prepared.bots_dropped, store_only = _enrich(events, message.bot_policy)
        consent_required = False
        if self._privacy is not None:
            # Before contracts, storage and routing (docs/PRIVACY.md): a suppressed user's
            # events go no further, and nothing downstream ever sees a redacted field's value.
            progress.step = "privacy"
            screened = self._privacy.apply(workspace_id, events, replay=message.replay is not None)
            events = screened.passed
            prepared.suppressed = screened.suppressed
            consent_required = screened.consent_required
            progress.events = events
        progress.step = "contract validation"
        verdicts = self._validator.validate(workspace_id, events) if events else []
        prepared.fresh, prepared.verdicts = events, verdicts
        prepared.passed = [e for e, v in zip(events, verdicts, strict=True) if not v.blocked]
        progress.step = "routing"
        prepared.routed = self._route(workspace_id, prepared.passed, consent_required, store_only)
        deliveries = [d for plan in prepared.routed.values() for d in plan["deliveries"]]
        progress.step = "storage"
        prepared.rows = [
            event_row(e, _consent_denied(prepared.routed[e["messageId"]])) for e in prepared.passed
        ]
        progress.step = "routing"
        prepared.encoded = encode_delivery_batches(deliveries, message.pubsub_message_id)
        prepared.deliveries = len(deliveries)
        return prepared

    def _dead_letter_unfit(
        self, message: SourceMessage, unfit: list[SetAside], now: datetime
    ) -> None:
        """Dead-letter events no store can hold, before anything of theirs is written."""
        if not unfit:
            return
        for aside in unfit:
            log.warning("dead-lettering event %r: %s", aside.event["messageId"], aside.reason)
        writes = self._dead_letter_writes(message, unfit, now)
        commit_in_chunks(self._store, writes)

    def _store_events(self, rows: list[Document], message_ids: list[str]) -> None:
        if not rows:
            return
        try:
            self._events.insert(rows, message_ids)
        except Exception as error:
            # Counted by the event store's (BigQuery's) insert errors metric and alert
            # (terraform/modules/monitoring); the message is redelivered.
            structured_log.emit(
                EVENTS_INSERT_FAILED,
                logging.ERROR,
                rows=len(rows),
                error=type(error).__name__,
                reason=str(error)[:500],
            )
            raise

    def _notify(self, message: SourceMessage, observed: list[Observed]) -> None:
        if not observed:
            return
        for observer in self._observers:
            try:
                observer.observe(message.workspace_id, message.source_id, observed)
            except Exception:
                log.exception("observer %s failed", type(observer).__name__)

    def _claim(
        self, message: SourceMessage, events: list[CanonicalEvent]
    ) -> tuple[set[int], list[tuple[str, CanonicalEvent]]]:
        """The events (by `id`) this message processes, and the duplicates (with their event
        keys): events claimed by another message, done by an earlier attempt at this one, or
        repeated inside it. Fresh claims, the common case, cost no read of the event log."""
        owner = message.pubsub_message_id
        firsts: dict[str, CanonicalEvent] = {}
        duplicates: list[tuple[str, CanonicalEvent]] = []
        for event in events:
            key = event_key(event["messageId"])
            if key in firsts:
                duplicates.append((key, event))  # the same messageId twice in one request
            else:
                firsts[key] = event
        if not firsts:
            return set(), duplicates
        claims = self._claims.claim(message.workspace_id, list(firsts), owner)
        # Held by this very message: an earlier attempt at it failed midway. What it recorded
        # is done; the rest resumes.
        done = self._log.done(message.workspace_id, owner, claims)
        mine: set[int] = set()
        for key, event in firsts.items():
            if claims[key].owner == owner and key not in done:
                mine.add(id(event))
            else:
                duplicates.append((key, event))
        return mine, duplicates

    def _route(
        self,
        workspace_id: str,
        events: list[CanonicalEvent],
        consent_required: bool = False,
        store_only: frozenset[str] = frozenset(),
    ) -> dict[str, dict[str, list[Any]]]:
        """Per messageId: the deliveries to make and the rules skipped (with why, and for
        consent the outcome `consent_denied`)."""
        routing = self._config.routing(workspace_id)
        plans: dict[str, dict[str, list[Any]]] = {}
        for event in events:
            plan: dict[str, list[Any]] = {"deliveries": [], "skipped": []}
            for rule in matching_rules(routing.rules, event):
                destination = routing.destinations.get(rule.destination_id)
                skipped = {"rule_id": rule.id, "destination_id": rule.destination_id}
                if destination is None or destination.status != "active":
                    state = "missing" if destination is None else destination.status
                    plan["skipped"].append({**skipped, "reason": f"destination is {state}"})
                    continue
                if event["messageId"] in store_only:
                    plan["skipped"].append({**skipped, "reason": BOT_STORE_ONLY_REASON})
                    continue
                refusal = consent_refusal(event, destination.consent_categories, consent_required)
                if refusal is not None:
                    plan["skipped"].append(
                        {**skipped, "reason": refusal, "outcome": CONSENT_DENIED}
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

    def _finish(
        self,
        message: SourceMessage,
        prepared: Prepared,
        ignored: list[tuple[CanonicalEvent, str]],
        claimed_at: datetime,
        routed_at: datetime,
    ) -> None:
        """Record the message's events done, in one record: each with what became of it. The
        dead letters of the events set aside are written first: a crash between leaves them
        claimed, and the redelivery sets them aside again."""
        at = ids.isoformat(routed_at)
        # Where each delivery travels: deliver's record of that message (or its mark in the
        # deduplication store) is what trace reads of it.
        batch_of = {d: batch.batch_id for batch in prepared.encoded for d in batch.delivery_ids}
        entries: dict[str, Document] = {}
        for event, verdict in zip(prepared.fresh, prepared.verdicts, strict=True):
            plan = prepared.routed.get(event["messageId"], {"deliveries": [], "skipped": []})
            entries[event_key(event["messageId"])] = _entry(
                event,
                blocked=verdict.blocked,
                violations=verdict.violations,
                stored_at=None if verdict.blocked else at,
                routed_at=None if verdict.blocked else at,
                deliveries=[
                    {
                        "delivery_id": d.delivery_id,
                        "rule_id": d.rule_id,
                        "destination_id": d.destination_id,
                        "batch_id": batch_of.get(d.delivery_id),
                    }
                    for d in plan["deliveries"]
                ],
                skipped=plan["skipped"],
            )
        for event, regulation in prepared.suppressed:
            entries[event_key(event["messageId"])] = _entry(
                event, suppressed=True, suppressed_at=at, regulation_id=regulation, **_unstored()
            )
        for event, why in prepared.bots_dropped + ignored:
            entries[event_key(event["messageId"])] = _entry(
                event, ignored=True, ignored_at=at, reason=why, **_unstored()
            )
        if prepared.set_aside:
            commit_in_chunks(
                self._store, self._dead_letter_writes(message, prepared.set_aside, routed_at)
            )
        for aside in prepared.set_aside:
            entries[event_key(aside.event["messageId"])] = _entry(
                aside.event,
                dead_lettered=True,
                dead_lettered_at=at,
                reason_code=UNPROCESSABLE_EVENT,
                reason=aside.reason,
                **_unstored(),
            )
        self._log.write(
            message.workspace_id, message.source_id, message.pubsub_message_id, entries, claimed_at
        )
        if prepared.bots_dropped:
            structured_log.emit(
                BOTS_DROPPED,
                workspace_id=message.workspace_id,
                source_id=message.source_id,
                events=len(prepared.bots_dropped),
            )

    def _dead_letter_writes(
        self, message: SourceMessage, set_aside: list[SetAside], now: datetime
    ) -> list[Write]:
        """The dead letter (`unprocessable_event`, or `webhook_mapping_failed` for a webhook
        request kept whole) of each event set aside, counting on from any earlier one of the
        same event."""
        paths = [
            dead_letter_path(message.workspace_id, event_dead_letter_id(a.event["messageId"]))
            for a in set_aside
        ]
        previous = self._store.get_many(paths)
        return [
            Write(
                "set",
                path,
                event_dead_letter(
                    message.workspace_id,
                    message.source_id,
                    aside.event,
                    aside.reason_code,
                    aside.reason,
                    None,
                    now,
                    previous[path],
                    redacted=aside.redacted,
                ),
            )
            for path, aside in zip(paths, set_aside, strict=True)
        ]


def publish_deliveries(
    publisher: Publisher, topic_of: Callable[[str], str], deliveries: list[DeliveryMessage]
) -> None:
    """Publish deliveries to their destinations' topics, batched per rule, one call per topic."""
    publish_encoded(publisher, topic_of, encode_delivery_batches(deliveries))


def publish_encoded(
    publisher: Publisher, topic_of: Callable[[str], str], encoded: list[EncodedBatch]
) -> None:
    """Publish encoded deliveries-topic messages, one call per destination's topic."""
    by_topic: dict[str, list[tuple[bytes, dict[str, str]]]] = {}
    for batch in encoded:
        by_topic.setdefault(topic_of(batch.destination_id), []).append(
            (batch.data, batch.attributes)
        )
    for topic, messages in by_topic.items():
        publisher.publish(topic, messages)


def _screen(
    events: list[CanonicalEvent],
) -> tuple[list[CanonicalEvent], list[SetAside]]:
    """Split off events that no store can hold (text that is not Unicode, a messageId that is
    not text): they are dead-lettered before anything of theirs is written."""
    carriable: list[CanonicalEvent] = []
    unfit: list[SetAside] = []
    for event in events:
        reason = None
        if not all(isinstance(event.get(name), str) for name in REQUIRED_TEXT):
            reason = f"the event lacks one of {', '.join(REQUIRED_TEXT)} as text"
        elif (problem := find_unencodable(event)) is not None:
            where = "$" if problem.field is None else f"$.{problem.field}"
            reason = f"the event holds text that is not valid Unicode (a lone surrogate) at {where}"
        if reason is None:
            carriable.append(event)
        else:
            unfit.append(SetAside(event, reason, redacted=False))
    return carriable, unfit


def _entry(event: CanonicalEvent, **fields: Any) -> Document:
    """An event's entry in its message's record (the record holds what its events share)."""
    return {
        "message_id": event["messageId"],
        "event_type": event.get("type"),
        "received_at": event.get("receivedAt"),
        "state": "done",
        **fields,
    }


def _observed(prepared: Prepared) -> list[Observed]:
    """The outcome of each event a message processed, for the observers."""
    observed = [
        Observed(event, "blocked", blocked_reason(verdict.violations))
        if verdict.blocked
        else Observed(event)
        for event, verdict in zip(prepared.fresh, prepared.verdicts, strict=True)
    ]
    observed += [Observed(e, "suppressed", suppressed_reason(r)) for e, r in prepared.suppressed]
    observed += [Observed(e, "dropped", reason) for e, reason in prepared.bots_dropped]
    observed += [Observed(a.event, "dead_lettered", a.reason) for a in prepared.set_aside]
    return observed


def _enrich(
    events: list[CanonicalEvent], bot_policy: BotPolicy
) -> tuple[list[CanonicalEvent], list[tuple[CanonicalEvent, str]], frozenset[str]]:
    """The events with their devices filled from their user agents, the bots' among them as
    the source's policy says: kept (tagged `context.bot`), stored only (tagged; their
    messageIds returned) or dropped (returned apart, with why)."""
    kept: list[CanonicalEvent] = []
    dropped: list[tuple[CanonicalEvent, str]] = []
    store_only: set[str] = set()
    for event in events:
        event = with_device(event)
        if is_bot(event):
            if bot_policy == "drop":
                dropped.append((event, BOT_DROPPED_REASON))
                continue
            event = {**event, "context": {**event["context"], "bot": True}}
            if bot_policy == "store_only":
                store_only.add(event["messageId"])
        kept.append(event)
    return kept, dropped, frozenset(store_only)


def _consent_denied(plan: dict[str, list[Any]]) -> list[str]:
    """The destinations an event was held back from for consent (its row records them)."""
    return [s["destination_id"] for s in plan["skipped"] if s.get("outcome") == CONSENT_DENIED]


def _unstored() -> Document:
    """The log entry of an event done without being stored or routed (suppressed, ignored,
    dropped, dead-lettered): a new one each time, so no two entries share a list."""
    return {
        "state": "done",
        "blocked": False,
        "violations": [],
        "stored_at": None,
        "routed_at": None,
        "deliveries": [],
        "skipped": [],
    }


def _named(event: CanonicalEvent) -> bool:
    """Whether an event has a messageId a stream can show it by."""
    return isinstance(event.get("messageId"), str) and bool(event.get("messageId"))
