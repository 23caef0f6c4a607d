"""Deliver: one attempt per call, recorded; retries until max_attempts, then dead letters."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from shared.destinations.base import OutboundRequest
from shared.destinations.outbound import HttpSender, UrlGuard
from shared.destinations.webhook import (
    MESSAGE_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify_signature,
)
from shared.domain.errors import Unavailable
from shared.domain.event import CanonicalEvent
from shared.domain.pipeline import HISTORY_LIMIT, DeliveryMessage
from shared.services.deliver import RetryDelivery
from tests.fakes import FakePublisher
from tests.unit.pipeline_fixtures import (
    CUSTOMER_TOPIC,
    DEAD_LETTERS_TOPIC,
    GA4_CONFIG,
    WEBHOOK_CONFIG,
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

    outcomes = pipeline.deliverer.deliver_all([rejected, sent])

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
    assert [(h["status"], h["replay"]) for h in record["history"]] == [
        ("retrying", False),
        ("retrying", False),
        ("dead_lettered", False),
        ("delivered", True),
    ]
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
