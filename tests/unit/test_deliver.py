"""Deliver: one attempt per call, recorded; retries until max_attempts, then dead letters."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import pytest

from shared.destinations.base import OutboundRequest
from shared.destinations.outbound import HttpSender, UrlGuard
from shared.destinations.pubsub import TopicGuard
from shared.destinations.webhook import (
    MESSAGE_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify_signature,
)
from shared.domain.errors import Unavailable
from shared.domain.event import CanonicalEvent
from shared.domain.pipeline import (
    BATCH_ID_ATTRIBUTE,
    BATCH_MAX_DELIVERIES,
    HISTORY_LIMIT,
    DeliveryMessage,
    decode_deliveries,
    delivery_batch_path,
    delivery_id,
    encode_deliveries,
    message_batch_id,
)
from shared.domain.stored_documents import (
    MAX_DOCUMENT_BYTES,
    document_size,
    encode_document,
    value_size,
)
from shared.ports import ConfigStore, Document, Filter, Write
from shared.services.deliver import (
    ENTRY_BYTES,
    TRACE_LOG_LINES,
    Attempt,
    Deliverer,
    RetryDelivery,
    batch_record,
    delivery_entry,
)
from shared.services.delivery_records import DeliveryRecords
from shared.services.workspace_config import WorkspaceConfig
from tests.fakes import FakePublisher, InMemoryConfigStore
from tests.unit.pipeline_fixtures import (
    BATCH_ID,
    CUSTOMER_TOPIC,
    DEAD_LETTERS_TOPIC,
    GA4_CONFIG,
    PROJECT_ID,
    START,
    WEBHOOK_CONFIG,
    WORKSPACE_ID,
    Pipeline,
    add_destination,
    add_rule,
    alias,
    dead_letter_envelopes,
    delivery_message,
    http_error,
    make_events,
    make_pipeline,
    ok,
    source_message,
    track,
)
from tests.webhook_receiver import webhook_receiver


def webhook_pipeline(*results: Any, max_attempts: int = 3) -> Pipeline:
    pipeline = make_pipeline(list(results), max_attempts=max_attempts)
    add_destination(pipeline.store, "dest-1")
    return pipeline


def record_of(pipeline: Pipeline, message: DeliveryMessage) -> dict[str, Any]:
    record = pipeline.delivery(message.delivery_id)
    assert record is not None
    return record


def test_success_records_delivered_with_history_and_never_sends_again() -> None:
    pipeline = webhook_pipeline(ok())
    message = delivery_message()

    outcome = pipeline.deliverer.deliver(message)

    assert (outcome.status, outcome.attempts) == ("delivered", 1)
    record = record_of(pipeline, message)
    assert (record["status"], record["attempts"], record["last_http_status"]) == (
        "delivered",
        1,
        200,
    )
    assert (record["destination_type"], record["message_id"]) == ("webhook", "msg-1")
    assert record["delivered_at"] == record["updated_at"]
    assert [(h["status"], h["http_status"], h["replay"]) for h in record["history"]] == [
        ("delivered", 200, False)
    ]
    [request] = pipeline.sender.sent
    assert request.url == WEBHOOK_CONFIG["url"]
    assert json.loads(request.body) == message.event

    again = pipeline.deliverer.deliver(message)
    replayed = pipeline.deliverer.deliver(DeliveryMessage(**{**message.__dict__, "replay": True}))

    assert (again.status, again.detail) == ("delivered", "already done")
    assert replayed.status == "delivered"
    assert len(pipeline.sender.sent) == 1
    assert record_of(pipeline, message) == record


@pytest.mark.parametrize("http_status", [500, 503, 429, 408])
def test_a_transient_failure_raises_retry_and_counts_attempts(http_status: int) -> None:
    pipeline = webhook_pipeline(http_error(http_status), http_error(http_status))
    message = delivery_message()

    for attempt in (1, 2):
        with pytest.raises(RetryDelivery):
            pipeline.deliverer.deliver(message)
        record = record_of(pipeline, message)
        assert (record["status"], record["attempts"]) == ("retrying", attempt)
        assert record["last_http_status"] == http_status
        assert record["delivered_at"] is None

    assert len(record["history"]) == 2
    assert DEAD_LETTERS_TOPIC not in pipeline.publisher.published


def test_reaching_max_attempts_dead_letters_without_raising() -> None:
    pipeline = webhook_pipeline(http_error(503), http_error(503), http_error(502))
    message = delivery_message()

    for _ in range(2):
        with pytest.raises(RetryDelivery):
            pipeline.deliverer.deliver(message)
    outcome = pipeline.deliverer.deliver(message)

    assert (outcome.status, outcome.attempts) == ("dead_lettered", 3)
    assert outcome.detail.startswith("gave up after 3 attempts: HTTP 502")
    record = record_of(pipeline, message)
    assert [h["status"] for h in record["history"]] == ["retrying", "retrying", "dead_lettered"]
    [envelope] = dead_letter_envelopes(pipeline)
    assert envelope["reason_code"] == "retries_exhausted"
    assert (envelope["attempts"], envelope["last_http_status"]) == (3, 502)
    assert envelope["destination_type"] == "webhook"
    assert envelope["delivery"] == json.loads(message.to_json())
    [(_, attributes)] = pipeline.published(DEAD_LETTERS_TOPIC)
    assert attributes == message.attributes()

    # A late redelivery of the same message is not sent, nor dead-lettered again.
    late = pipeline.deliverer.deliver(message)
    assert (late.status, late.detail) == ("dead_lettered", "already dead-lettered")
    assert len(pipeline.sender.sent) == 3
    assert len(pipeline.published(DEAD_LETTERS_TOPIC)) == 1


def test_max_attempts_of_one_dead_letters_the_first_transient_failure() -> None:
    pipeline = webhook_pipeline(http_error(503), max_attempts=1)

    outcome = pipeline.deliverer.deliver(delivery_message())

    assert (outcome.status, outcome.attempts) == ("dead_lettered", 1)
    assert dead_letter_envelopes(pipeline)[0]["reason_code"] == "retries_exhausted"


@pytest.mark.parametrize("http_status", [400, 401, 404, 410])
def test_a_permanent_http_failure_dead_letters_at_once(http_status: int) -> None:
    pipeline = webhook_pipeline(http_error(http_status))
    message = delivery_message()

    outcome = pipeline.deliverer.deliver(message)

    assert (outcome.status, outcome.attempts) == ("dead_lettered", 1)
    assert record_of(pipeline, message)["status"] == "dead_lettered"
    [envelope] = dead_letter_envelopes(pipeline)
    assert (envelope["reason_code"], envelope["last_http_status"]) == ("http_error", http_status)


@pytest.mark.parametrize(
    ("status", "code", "destination_type"),
    [
        (None, "destination_missing", None),
        ("inactive", "destination_inactive", "webhook"),
    ],
)
def test_a_missing_or_inactive_destination_dead_letters(
    status: str | None, code: str, destination_type: str | None
) -> None:
    pipeline = make_pipeline()
    if status is not None:
        add_destination(pipeline.store, "dest-1", status=status)
    message = delivery_message()

    outcome = pipeline.deliverer.deliver(message)

    assert outcome.status == "dead_lettered"
    assert pipeline.sender.sent == []
    [envelope] = dead_letter_envelopes(pipeline)
    assert (envelope["reason_code"], envelope["destination_type"]) == (code, destination_type)
    assert record_of(pipeline, message)["destination_type"] == destination_type


def test_an_invalid_destination_config_dead_letters() -> None:
    pipeline = make_pipeline()
    add_destination(pipeline.store, "dest-1", config={"url": "https://hooks.example.com/in"})

    outcome = pipeline.deliverer.deliver(delivery_message())

    assert outcome.status == "dead_lettered"
    assert pipeline.sender.sent == []
    assert dead_letter_envelopes(pipeline)[0]["reason_code"] == "invalid_config"


def test_an_event_the_connector_does_not_take_is_skipped() -> None:
    pipeline = make_pipeline()
    add_destination(pipeline.store, "dest-1", type_="ga4", config=dict(GA4_CONFIG))
    message = delivery_message(event=make_events(alias())[0])

    outcome = pipeline.deliverer.deliver(message)

    assert (outcome.status, outcome.detail) == ("skipped", "ga4 does not take alias events")
    assert record_of(pipeline, message)["status"] == "skipped"
    assert pipeline.sender.sent == []
    assert DEAD_LETTERS_TOPIC not in pipeline.publisher.published
    assert pipeline.deliverer.deliver(message).detail == "already done"


def test_an_event_with_no_identity_is_rejected_by_a_destination_that_needs_one() -> None:
    pipeline = make_pipeline([ok()])
    add_destination(pipeline.store, "dest-ga4", type_="ga4", config=dict(GA4_CONFIG))
    add_destination(pipeline.store, "dest-hook")
    anonymous: CanonicalEvent = {**make_events(track())[0], "userId": None, "anonymousId": None}
    rejected = delivery_message(rule_id="rule-ga4", destination_id="dest-ga4", event=anonymous)
    sent = delivery_message(rule_id="rule-hook", destination_id="dest-hook", event=anonymous)

    outcomes = pipeline.deliverer.deliver_all([rejected, sent], BATCH_ID)

    reason = "GA4 needs a userId or an anonymousId, and this event has neither"
    assert [(o.status, o.detail) for o in outcomes] == [
        ("dead_lettered", reason),
        ("delivered", "HTTP 200"),
    ]
    record = record_of(pipeline, rejected)
    assert (record["status"], record["last_detail"]) == ("dead_lettered", reason)
    [letter] = dead_letter_envelopes(pipeline)
    assert (letter["reason_code"], letter["reason"]) == ("event_rejected", reason)
    assert len(pipeline.sender.sent) == 1  # only the webhook's request went out


def test_a_pubsub_destination_publishes_the_event_to_the_customer_topic() -> None:
    pipeline = make_pipeline()
    add_destination(pipeline.store, "dest-1", type_="pubsub", config={"topic": CUSTOMER_TOPIC})
    message = delivery_message()

    outcome = pipeline.deliverer.deliver(message)

    assert outcome.status == "delivered"
    [(data, attributes)] = pipeline.published(CUSTOMER_TOPIC)
    assert json.loads(data) == message.event
    assert attributes["messageId"] == "msg-1"
    assert attributes["type"] == "track"
    assert attributes["event"] == "Order Completed"
    assert pipeline.sender.sent == []
    assert record_of(pipeline, message)["destination_type"] == "pubsub"


class FailingTopicPublisher(FakePublisher):
    """Refuses messages for one topic, like a Pub/Sub outage on the customer's project."""

    def publish(self, topic: str, messages: Iterable[tuple[bytes, Mapping[str, str]]]) -> list[str]:
        if topic == CUSTOMER_TOPIC:
            raise Unavailable("Pub/Sub is unavailable")
        return super().publish(topic, messages)


def test_a_pubsub_destination_that_cannot_publish_is_retried() -> None:
    pipeline = make_pipeline(publisher=FailingTopicPublisher())
    add_destination(pipeline.store, "dest-1", type_="pubsub", config={"topic": CUSTOMER_TOPIC})
    message = delivery_message()

    with pytest.raises(RetryDelivery, match="Pub/Sub is unavailable"):
        pipeline.deliverer.deliver(message)

    assert record_of(pipeline, message)["status"] == "retrying"


def test_a_replay_of_a_dead_lettered_delivery_is_attempted_again_from_attempt_one() -> None:
    pipeline = webhook_pipeline(http_error(503), http_error(503), http_error(503), ok())
    message = delivery_message()
    for _ in range(2):
        with pytest.raises(RetryDelivery):
            pipeline.deliverer.deliver(message)
    assert pipeline.deliverer.deliver(message).status == "dead_lettered"

    outcome = pipeline.deliverer.deliver(DeliveryMessage(**{**message.__dict__, "replay": True}))

    assert (outcome.status, outcome.attempts) == ("delivered", 1)
    record = record_of(pipeline, message)
    assert (record["status"], record["attempts"]) == ("delivered", 1)
    # The replay travelled in a message of its own: its record holds its attempts, and the
    # first message's record still holds the first three.
    histories = sorted(
        [(h["status"], h["replay"]) for h in r["deliveries"][message.delivery_id]["history"]]
        for r in pipeline.batch_records()
    )
    assert histories == [
        [("delivered", True)],
        [("retrying", False), ("retrying", False), ("dead_lettered", False)],
    ]
    # The trace reads both: the event's deliveries, by messageId, in every record.
    found = DeliveryRecords(pipeline.store).of_event(WORKSPACE_ID, message.message_id)
    assert sorted(len(entry["history"]) for entry in found) == [1, 3]
    assert len(pipeline.sender.sent) == 4


def test_a_failing_replay_counts_attempts_and_dead_letters_again() -> None:
    pipeline = webhook_pipeline(http_error(400), *[http_error(503)] * 3)
    message = delivery_message()
    assert pipeline.deliverer.deliver(message).status == "dead_lettered"
    replay = DeliveryMessage(**{**message.__dict__, "replay": True})

    attempts = []
    for _ in range(2):
        with pytest.raises(RetryDelivery):
            pipeline.deliverer.deliver(replay)  # Pub/Sub redelivers the same replay message
        attempts.append(record_of(pipeline, message)["attempts"])
    outcome = pipeline.deliverer.deliver(replay)

    assert attempts == [1, 2]
    assert (outcome.status, outcome.attempts) == ("dead_lettered", 3)


def test_one_failing_destination_does_not_affect_another_delivery_of_the_event() -> None:
    pipeline = make_pipeline()
    add_destination(pipeline.store, "dest-bad", config={**WEBHOOK_CONFIG, "url": "https://a.test/"})
    add_destination(
        pipeline.store, "dest-slow", config={**WEBHOOK_CONFIG, "url": "https://b.test/"}
    )
    add_destination(
        pipeline.store, "dest-good", config={**WEBHOOK_CONFIG, "url": "https://c.test/"}
    )
    add_rule(pipeline.store, "r-bad", "dest-bad")
    add_rule(pipeline.store, "r-slow", "dest-slow")
    add_rule(pipeline.store, "r-good", "dest-good")
    pipeline.sender.by_url = {
        "https://a.test/": [http_error(400)],
        "https://b.test/": [http_error(503)],
        "https://c.test/": [ok()],
    }
    pipeline.process(source_message(make_events(track())))

    outcomes = pipeline.pump_deliveries()

    assert [getattr(o, "status", "raised") for o in outcomes] == [
        "dead_lettered",
        "raised",
        "delivered",
    ]
    assert isinstance(outcomes[1], RetryDelivery)
    statuses = {m.rule_id: record_of(pipeline, m)["status"] for m in pipeline.delivery_messages()}
    assert statuses == {"r-bad": "dead_lettered", "r-slow": "retrying", "r-good": "delivered"}
    assert [e["delivery"]["rule_id"] for e in dead_letter_envelopes(pipeline)] == ["r-bad"]


def test_history_is_bounded() -> None:
    pipeline = webhook_pipeline(*[http_error(503)] * (HISTORY_LIMIT + 5), max_attempts=100)
    message = delivery_message()

    for _ in range(HISTORY_LIMIT + 5):
        with pytest.raises(RetryDelivery):
            pipeline.deliverer.deliver(message)

    record = record_of(pipeline, message)
    assert record["attempts"] == HISTORY_LIMIT + 5
    assert len(record["history"]) == HISTORY_LIMIT


def test_a_real_webhook_send_is_signed_and_retried_after_a_server_error() -> None:
    with webhook_receiver(failures_left=1, fail_status=503) as receiver:
        pipeline = make_pipeline(sender=HttpSender(UrlGuard(allow_private=True), 5.0))
        add_destination(pipeline.store, "dest-1", config={**WEBHOOK_CONFIG, "url": receiver.url})
        message = delivery_message()

        with pytest.raises(RetryDelivery, match="HTTP 503"):
            pipeline.deliverer.deliver(message)
        outcome = pipeline.deliverer.deliver(message)
        [received] = receiver.delivered()

    assert (outcome.status, outcome.attempts) == ("delivered", 2)
    assert received.event == message.event
    headers = {name.lower(): value for name, value in received.headers.items()}
    assert headers[MESSAGE_ID_HEADER.lower()] == "msg-1"
    assert headers["idempotency-key"] == "msg-1"
    assert verify_signature(
        WEBHOOK_CONFIG["secret"],
        headers[TIMESTAMP_HEADER.lower()],
        received.body,
        headers[SIGNATURE_HEADER.lower()],
        tolerance_seconds=None,
    )


def test_a_stored_header_value_http_cannot_carry_is_dead_lettered_not_retried() -> None:
    """B16: a config stored before non-ASCII header values were refused crashed deliver on every
    attempt (UnicodeEncodeError), so Pub/Sub redelivered it with no dead letter recorded."""
    with webhook_receiver() as receiver:
        pipeline = make_pipeline(sender=HttpSender(UrlGuard(allow_private=True), 5.0))
        config = {**WEBHOOK_CONFIG, "url": receiver.url, "headers": {"X-A": "\U0007f606"}}
        add_destination(pipeline.store, "dest-1", config=config)

        outcome = pipeline.deliverer.deliver(delivery_message())

        assert outcome.status == "dead_lettered"
        assert receiver.delivered() == []
    [envelope] = dead_letter_envelopes(pipeline)
    assert envelope["reason_code"] == "invalid_config"
    assert "must be plain ASCII text" in envelope["reason"]


def test_the_real_sender_fails_a_request_it_cannot_encode_without_raising() -> None:
    sender = HttpSender(UrlGuard(allow_private=True), 5.0)
    with webhook_receiver() as receiver:
        request = OutboundRequest("POST", receiver.url, {"X-A": "\U0007f606"}, b"{}")
        result = sender.send(request)
    assert (result.status, result.http_status) == ("failed", None)
    assert "cannot be sent" in result.detail


def test_an_unsafe_destination_is_dead_lettered_by_the_real_sender() -> None:
    pipeline = make_pipeline(sender=HttpSender(UrlGuard(allow_private=False)))
    add_destination(pipeline.store, "dest-1", config={**WEBHOOK_CONFIG, "url": "http://127.0.0.1/"})

    outcome = pipeline.deliverer.deliver(delivery_message())

    assert outcome.status == "dead_lettered"
    [envelope] = dead_letter_envelopes(pipeline)
    assert (envelope["reason_code"], envelope["last_http_status"]) == ("unsafe_destination", None)


@dataclass
class CountedStore:
    """The pipeline's store, counting what deliver asks of it as Firestore bills it: each
    document looked up or returned by a query is a read (an empty query one), each document
    committed a write."""

    store: InMemoryConfigStore
    reads: int = 0
    writes: int = 0

    def get(self, path: str) -> Document | None:
        self.reads += 1
        return self.store.get(path)

    def get_many(self, paths: list[str]) -> dict[str, Document | None]:
        self.reads += len(paths)
        return self.store.get_many(paths)

    def query(self, collection: str, where: Iterable[Filter] = (), **order: Any) -> list[Document]:
        found = self.store.query(collection, where, **order)
        self.reads += max(1, len(found))
        return found

    def commit(self, writes: Iterable[Write]) -> None:
        writes = list(writes)
        self.writes += len(writes)
        self.store.commit(writes)


def counted_deliverer(pipeline: Pipeline) -> tuple[Deliverer, CountedStore]:
    """A deliverer whose record reads and writes are counted; the destination is read through
    the workspace config (cached for seconds in production, so not an operation per event)."""
    counted = CountedStore(pipeline.store)
    deliverer = Deliverer(
        cast(ConfigStore, counted),
        WorkspaceConfig(pipeline.store, ttl_seconds=0),
        pipeline.sender,
        pipeline.publisher,
        DEAD_LETTERS_TOPIC,
        3,
        customer_publisher=pipeline.publisher,
        topic_guard=TopicGuard(PROJECT_ID),
        clock=pipeline.clock,
    )
    return deliverer, counted


def test_a_message_of_ten_deliveries_costs_one_read_and_one_write() -> None:
    pipeline = webhook_pipeline()
    deliverer, counted = counted_deliverer(pipeline)
    [(_, data, attributes)] = encode_deliveries(
        [delivery_message(f"msg-{n}") for n in range(10)], "ps-1"
    )

    outcomes = deliverer.deliver_all(decode_deliveries(data), message_batch_id(data, attributes))

    assert [o.status for o in outcomes] == ["delivered"] * 10
    assert (counted.reads, counted.writes) == (1, 1)
    [record] = pipeline.batch_records()
    assert record["batch_id"] == attributes[BATCH_ID_ATTRIBUTE]
    assert sorted(record["message_ids"]) == sorted(f"msg-{n}" for n in range(10))
    assert sorted(record["delivery_ids"]) == sorted(record["deliveries"])
    assert (record["destination_id"], record["updated_at"]) == ("dest-1", record["created_at"])


def test_a_message_redelivered_after_success_sends_and_writes_nothing() -> None:
    pipeline = webhook_pipeline()
    deliverer, counted = counted_deliverer(pipeline)
    [(_, data, attributes)] = encode_deliveries(
        [delivery_message(f"msg-{n}") for n in range(10)], "ps-1"
    )
    batch_id = message_batch_id(data, attributes)
    deliverer.deliver_all(decode_deliveries(data), batch_id)
    before = copy.deepcopy(pipeline.batch_records())
    counted.reads = counted.writes = 0

    again = deliverer.deliver_all(decode_deliveries(data), batch_id)  # Pub/Sub redelivers

    assert [(o.status, o.detail) for o in again] == [("delivered", "already done")] * 10
    assert len(pipeline.sender.sent) == 10
    assert (counted.reads, counted.writes) == (1, 0)
    assert pipeline.batch_records() == before


# The widest text: 4 bytes of UTF-8 a character.
WIDE = "\U0001f600" * 2_000
TRANSFORMED = {"at": "2024-03-01T12:00:00.000Z", "transformation_id": "t" * 36, "version": 3}


@pytest.mark.parametrize(
    ("attempt", "kept"),
    [
        # The longest detail, console output and transformation error.
        (
            Attempt(
                "retrying", WIDE, 503, logs=[WIDE] * 50, transformed={**TRANSFORMED, "error": WIDE}
            ),
            2,
        ),
        # A long detail and nothing else: all the history the count allows.
        (Attempt("retrying", "HTTP 503: " + "x" * 400, 503), HISTORY_LIMIT),
    ],
)
def test_each_delivery_keeps_its_latest_attempts_within_its_share_of_the_record(
    attempt: Attempt, kept: int
) -> None:
    message = delivery_message()
    entry = None
    for number in range(1, HISTORY_LIMIT + 10):
        entry = delivery_entry(entry, message, None, number, attempt, START)
    assert entry is not None

    assert value_size(entry) <= ENTRY_BYTES
    assert len(entry["history"]) >= kept  # the most the count or the bytes allow
    latest = entry["history"][-1]
    assert (entry["attempts"], latest["detail"]) == (HISTORY_LIMIT + 9, entry["last_detail"])
    assert latest["detail"].endswith("...") and len(latest["detail"].encode()) <= 300
    assert len(latest.get("logs", [])) in (0, TRACE_LOG_LINES)


def test_a_full_record_of_the_largest_deliveries_fits_in_a_firestore_document() -> None:
    # The longest messageIds (each character stored as a 6-byte escape) and deliveries taking
    # all their share (ENTRY_BYTES): the most a record of a message can hold.
    deliveries = [
        DeliveryMessage(
            **{
                **delivery_message().__dict__,
                "delivery_id": delivery_id(f"{n:02d}" + "\ud800" * 97, "rule-1"),
                "message_id": f"{n:02d}" + "\ud800" * 97,
            }
        )
        for n in range(BATCH_MAX_DELIVERIES)
    ]
    attempt = Attempt(
        "retrying", WIDE, 503, logs=[WIDE] * 50, transformed={**TRANSFORMED, "error": WIDE}
    )
    entries: dict[str, Document] = {}
    for delivery in deliveries:
        entry = delivery_entry(None, delivery, None, 1, attempt, START)
        padding = "x" * (ENTRY_BYTES - value_size(entry))
        entries[delivery.delivery_id] = {**entry, "last_detail": entry["last_detail"] + padding}
        assert value_size(entries[delivery.delivery_id]) == ENTRY_BYTES
    path = delivery_batch_path(WORKSPACE_ID, "f" * 40)
    record = batch_record("f" * 40, deliveries[0], None, entries, START)

    assert document_size(path, encode_document(path, record)) <= MAX_DOCUMENT_BYTES
    pipeline = make_pipeline()
    pipeline.store.commit([Write("set", path, record)])  # as Firestore takes it
    assert pipeline.batch_records()[0]["deliveries"] == entries
