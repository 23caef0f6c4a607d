"""Builders shared by the pipeline's unit tests: events, config documents, a scripted sender, and
the four services wired over the in-memory fakes, with pumps that move messages between them."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.destinations.outbound import classify
from shared.destinations.pubsub import TopicGuard
from shared.domain.event import CanonicalEvent
from shared.domain.events import IngestContext, normalise_request
from shared.domain.outcomes import EventObserver
from shared.domain.pipeline import (
    DeliveryMessage,
    SourceMessage,
    decode_deliveries,
    delivery_batches_collection,
    delivery_id,
    message_batch_id,
)
from shared.domain.routing import destination_path, rule_path, rules_collection
from shared.ports import Claims, Document, OutboundRequest, Sender, SendResult
from shared.services.claims import StoreClaims
from shared.services.dead_letters import DeadLetters
from shared.services.deliver import Deliverer, DeliveryOutcome, RetryDelivery
from shared.services.delivery_records import DeliveryRecords
from shared.services.event_log import EventLog
from shared.services.privacy import PrivacyFilter
from shared.services.process import Processor, ProcessOutcome, Validator
from shared.services.trace import Traces
from shared.services.workspace_config import WorkspaceConfig
from tests.fakes import FakeEventStore, FakePublisher, InMemoryConfigStore, InMemoryDeliveryMarks

WORKSPACE_ID = "ws-1"
SOURCE_ID = "src-1"
PROJECT_ID = "test-project"
DELIVERIES_TOPIC = "projects/test-project/topics/streams-deliveries"
DEAD_LETTERS_TOPIC = "projects/test-project/topics/streams-dead-letters"
CUSTOMER_TOPIC = "projects/customer-project/topics/events-out"
START = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)
# The record of the one deliveries-topic message a test pushes (again) with `deliver_all`.
BATCH_ID = "b" * 40
WEBHOOK_CONFIG = {"url": "https://hooks.example.com/in", "secret": "s3cret-s3cret-s3cret"}
GA4_CONFIG = {"measurement_id": "G-ABC123", "api_secret": "ga4-secret"}


class Clock:
    """A clock that moves one second per reading, so every record has a distinct, ordered time."""

    def __init__(self, start: datetime = START, step: timedelta = timedelta(seconds=1)):
        self.now = start
        self.step = step

    def __call__(self) -> datetime:
        self.now += self.step
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def make_events(
    *items: dict[str, Any],
    workspace_id: str = WORKSPACE_ID,
    received_at: datetime = START,
) -> list[CanonicalEvent]:
    """Canonical events of a /v1/batch request; messageIds msg-1, msg-2, ... unless given."""
    numbers = itertools.count(1)
    ctx = IngestContext(workspace_id, SOURCE_ID, received_at, None)
    batch = normalise_request({"batch": list(items)}, None, ctx, lambda: f"msg-{next(numbers)}")
    assert not batch.rejections, batch.rejections
    return batch.events


def track(event: str = "Order Completed", **fields: Any) -> dict[str, Any]:
    return {"type": "track", "event": event, "userId": "u-1", **fields}


def identify(**fields: Any) -> dict[str, Any]:
    return {"type": "identify", "userId": "u-1", "traits": {"plan": "pro"}, **fields}


def alias(**fields: Any) -> dict[str, Any]:
    return {"type": "alias", "userId": "u-2", "previousId": "u-1", **fields}


def source_message(
    events: list[CanonicalEvent], pubsub_message_id: str = "ps-1", workspace_id: str = WORKSPACE_ID
) -> SourceMessage:
    return SourceMessage(pubsub_message_id, workspace_id, SOURCE_ID, events)


def add_destination(
    store: InMemoryConfigStore,
    destination_id: str,
    type_: str = "webhook",
    config: dict[str, Any] | None = None,
    status: str = "active",
    workspace_id: str = WORKSPACE_ID,
) -> None:
    store.documents[destination_path(workspace_id, destination_id)] = {
        "id": destination_id,
        "workspace_id": workspace_id,
        "name": destination_id,
        "type": type_,
        "config": config if config is not None else dict(WEBHOOK_CONFIG),
        "status": status,
        "created_at": "2024-01-01T00:00:00.000Z",
        "updated_at": "2024-01-01T00:00:00.000Z",
    }


def add_rule(
    store: InMemoryConfigStore,
    rule_id: str,
    destination_id: str,
    event_types: list[str] | None = None,
    event_names: list[str] | None = None,
    enabled: bool = True,
    transformation_id: str | None = None,
    workspace_id: str = WORKSPACE_ID,
) -> None:
    # created_at in creation order: routing lists rules by it.
    order = len(store.list_documents(rules_collection(workspace_id)))
    created_at = f"2024-01-01T{order // 3600:02d}:{order // 60 % 60:02d}:{order % 60:02d}.000Z"
    store.documents[rule_path(workspace_id, rule_id)] = {
        "id": rule_id,
        "workspace_id": workspace_id,
        "name": rule_id,
        "destination_id": destination_id,
        "event_types": event_types or [],
        "event_names": event_names or [],
        "transformation_id": transformation_id,
        "enabled": enabled,
        "created_at": created_at,
        "updated_at": created_at,
    }


def ok(http_status: int = 200) -> SendResult:
    return SendResult("delivered", http_status, f"HTTP {http_status}", 1.0)


def http_error(http_status: int) -> SendResult:
    """What HttpSender reports for an error status (classified as it classifies them)."""
    return SendResult(classify(http_status), http_status, f"HTTP {http_status}: boom", 1.0)


def outcome_status(outcome: DeliveryOutcome | RetryDelivery) -> str:
    """A pumped delivery's status; `retry` when deliver asked Pub/Sub to push it again."""
    return "retry" if isinstance(outcome, RetryDelivery) else outcome.status


@dataclass
class FakeSender:
    """A `Sender` answering scripted results, per URL (query left out) or else in order;
    an exhausted script answers 200. Records every request."""

    results: list[SendResult] = field(default_factory=list)
    by_url: dict[str, list[SendResult]] = field(default_factory=dict)
    sent: list[OutboundRequest] = field(default_factory=list)

    def send(self, request: OutboundRequest, timeout: float | None = None) -> SendResult:
        self.sent.append(request)
        script = self.by_url.get(request.url.split("?")[0], self.results)
        return script.pop(0) if script else ok()


@dataclass
class Pipeline:
    """Process, deliver, dead letters and trace over shared fakes, as the functions wire them."""

    store: InMemoryConfigStore
    events: FakeEventStore
    publisher: FakePublisher
    sender: FakeSender
    clock: Clock
    processor: Processor
    deliverer: Deliverer
    dead_letters: DeadLetters
    traces: Traces
    event_log: EventLog
    claims: Claims
    consumed: dict[str, int] = field(default_factory=dict)
    retrying: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)

    def process(self, message: SourceMessage) -> ProcessOutcome:
        return self.processor.process(message)

    def published(self, topic: str) -> list[tuple[bytes, dict[str, str]]]:
        return self.publisher.published.get(topic, [])

    def delivery_messages(self) -> list[DeliveryMessage]:
        return [d for data, _ in self.published(DELIVERIES_TOPIC) for d in decode_deliveries(data)]

    def _take(self, topic: str) -> list[tuple[bytes, dict[str, str]]]:
        messages = self.published(topic)[self.consumed.get(topic, 0) :]
        self.consumed[topic] = len(self.published(topic))
        return messages

    def pump_deliveries(self) -> list[DeliveryOutcome | RetryDelivery]:
        """Run deliver once on every new delivery message, and again on those that raised
        `RetryDelivery` last time (Pub/Sub's push and redelivery)."""
        pending = self.retrying + self._take(DELIVERIES_TOPIC)
        self.retrying = []
        outcomes: list[DeliveryOutcome | RetryDelivery] = []
        for data, attributes in pending:
            try:
                outcomes.extend(self.push(data, attributes))
            except RetryDelivery as retry:
                self.retrying.append((data, attributes))
                outcomes.append(retry)
        return outcomes

    def pump_statuses(self) -> list[str]:
        """`pump_deliveries`, each outcome by its status (`retry` when deliver raised
        `RetryDelivery`)."""
        return [outcome_status(outcome) for outcome in self.pump_deliveries()]

    def pump_dead_letters(self) -> list[Document]:
        """Record every dead-letter message not yet consumed."""
        return [
            letter
            for data, attrs in self._take(DEAD_LETTERS_TOPIC)
            for letter in self.dead_letters.record(data, attrs)
        ]

    def push(self, data: bytes, attributes: dict[str, str]) -> list[DeliveryOutcome]:
        """Deliver one deliveries-topic message, as the deliver function's entry does."""
        batch_id = message_batch_id(data, attributes)
        return self.deliverer.deliver_all(decode_deliveries(data), batch_id)

    def delivery(self, delivery_id: str, workspace_id: str = WORKSPACE_ID) -> Document | None:
        """The delivery as the record that attempted it last holds it."""
        entries = [
            record["deliveries"][delivery_id]
            for record in self.batch_records(workspace_id)
            if delivery_id in record["deliveries"]
        ]
        return max(entries, key=lambda entry: entry["updated_at"], default=None)

    def batch_records(self, workspace_id: str = WORKSPACE_ID) -> list[Document]:
        """Deliver's records, one per deliveries-topic message it attempted."""
        return self.store.list_documents(delivery_batches_collection(workspace_id))

    def log_entry(self, message_id: str, workspace_id: str = WORKSPACE_ID) -> Document | None:
        return self.event_log.entries(workspace_id, [message_id])[message_id]


def make_pipeline(
    results: list[SendResult] | None = None,
    max_attempts: int = 3,
    validator: Validator | None = None,
    sender: Sender | None = None,
    clock: Clock | None = None,
    store: InMemoryConfigStore | None = None,
    publisher: FakePublisher | None = None,
    observers: Sequence[EventObserver] = (),
    privacy: bool = False,
    marks: InMemoryDeliveryMarks | None = None,
    claims: Claims | None = None,
) -> Pipeline:
    """A pipeline on fakes; `marks`: deliver keeps messages accepted at once there (as with the
    window in Valkey) instead of in Firestore records; `claims`: the window (in Firestore
    documents by default; `InMemoryClaims` keeps outcomes, as Valkey does)."""
    store = store or InMemoryConfigStore()
    events = FakeEventStore()
    publisher = publisher or FakePublisher()
    fake_sender = FakeSender(list(results or []))
    the_clock = clock or Clock()
    claims = claims or StoreClaims(store, the_clock)
    event_log = EventLog(store, claims)
    # No caching: a test's config change shows at once.
    config = WorkspaceConfig(store, ttl_seconds=0)
    records = DeliveryRecords(store, marks)
    return Pipeline(
        store=store,
        events=events,
        publisher=publisher,
        sender=fake_sender,
        clock=the_clock,
        processor=Processor(
            store,
            events,
            publisher,
            config,
            one_topic,
            validator,
            observers=observers,
            clock=the_clock,
            privacy=PrivacyFilter(store, ttl_seconds=0) if privacy else None,
            claims=claims,
        ),
        deliverer=Deliverer(
            store,
            config,
            sender or fake_sender,
            publisher,
            DEAD_LETTERS_TOPIC,
            max_attempts,
            # One fake for both: these tests read every publish from one place.
            customer_publisher=publisher,
            topic_guard=TopicGuard(PROJECT_ID),
            clock=the_clock,
            records=records,
        ),
        dead_letters=DeadLetters(
            store, publisher, one_topic, event_log, clock=the_clock, records=records
        ),
        traces=Traces(store, event_log, records),
        event_log=event_log,
        claims=claims,
    )


def one_topic(destination_id: str) -> str:
    """Every destination's deliveries on one topic: these tests follow deliveries, not topics."""
    return DELIVERIES_TOPIC


def delivery_message(
    message_id: str = "msg-1",
    rule_id: str = "rule-1",
    destination_id: str = "dest-1",
    event: CanonicalEvent | None = None,
    replay: bool = False,
) -> DeliveryMessage:
    """A deliveries-topic message as process publishes it (delivery id from messageId and rule)."""
    return DeliveryMessage(
        delivery_id=delivery_id(message_id, rule_id),
        workspace_id=WORKSPACE_ID,
        message_id=message_id,
        rule_id=rule_id,
        destination_id=destination_id,
        transformation_id=None,
        event=event or make_events(track(messageId=message_id))[0],
        replay=replay,
    )


def dead_letter_envelopes(pipeline: Pipeline) -> list[dict[str, Any]]:
    return [json.loads(data) for data, _ in pipeline.published(DEAD_LETTERS_TOPIC)]
