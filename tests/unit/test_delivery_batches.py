"""Deliveries travel in batches: one deliveries-topic message per rule of a source message."""

from __future__ import annotations

import contextlib
import json
import time
from datetime import datetime, timedelta
from typing import Any

import pytest

from shared.domain.event import CanonicalEvent
from shared.domain.pipeline import (
    BATCH_ID_ATTRIBUTE,
    BATCH_ID_FORM,
    BATCH_MAX_DELIVERIES,
    RECORD_RETENTION_DAYS,
    SETTLED_RECORD_HOURS,
    DeliveryMessage,
    InvalidMessage,
    decode_deliveries,
    delivery_batch_path,
    encode_deliveries,
    message_batch_id,
)
from shared.ports import SendResult
from shared.services import deliver as deliver_module
from shared.services.dead_letters import PUBSUB_DEAD_LETTER_COUNT
from shared.services.deliver import RetryDelivery
from tests.unit.pipeline_fixtures import (
    BATCH_ID,
    DEAD_LETTERS_TOPIC,
    DELIVERIES_TOPIC,
    WORKSPACE_ID,
    add_destination,
    add_rule,
    delivery_message,
    http_error,
    make_events,
    make_pipeline,
    ok,
    source_message,
    track,
)


def messages(count: int, rule_id: str = "rule-1") -> list[DeliveryMessage]:
    return [delivery_message(f"msg-{n}", rule_id=rule_id) for n in range(1, count + 1)]


def test_deliveries_of_one_rule_share_a_message_and_decode_to_what_was_encoded() -> None:
    deliveries = messages(3) + messages(2, rule_id="rule-2")

    encoded = encode_deliveries(deliveries)

    assert [(d, a["rule_id"], a["deliveries"]) for d, _, a in encoded] == [
        ("dest-1", "rule-1", "3"),
        ("dest-1", "rule-2", "2"),
    ]
    assert [d for _, data, _ in encoded for d in decode_deliveries(data)] == deliveries


def test_replays_and_first_sends_never_share_a_message() -> None:
    replayed = DeliveryMessage(**{**delivery_message("msg-9").__dict__, "replay": True})

    encoded = encode_deliveries([*messages(1), replayed])

    assert [[d.replay for d in decode_deliveries(data)] for _, data, _ in encoded] == [
        [False],
        [True],
    ]


def test_a_batch_is_split_by_count_and_by_size() -> None:
    many = encode_deliveries(messages(BATCH_MAX_DELIVERIES + 1))
    big_event: CanonicalEvent = {**make_events(track())[0], "properties": {"blob": "x" * 400_000}}
    big = encode_deliveries([delivery_message(f"b-{n}", event=big_event) for n in range(3)])

    assert [a["deliveries"] for _, _, a in many] == [str(BATCH_MAX_DELIVERIES), "1"]
    assert [a["deliveries"] for _, _, a in big] == ["2", "1"]
    assert all(len(data) < 1_000_000 for _, data, _ in big)


def test_a_single_delivery_message_from_before_batching_still_decodes() -> None:
    message = delivery_message()

    assert decode_deliveries(message.to_json()) == [message]


@pytest.mark.parametrize(
    "data",
    [b"not json", b"[]", b'{"deliveries": []}', b'{"deliveries": [{"delivery_id": "d"}]}'],
)
def test_an_unreadable_deliveries_message_is_invalid(data: bytes) -> None:
    with pytest.raises(InvalidMessage):
        decode_deliveries(data)


def test_process_publishes_one_message_per_rule_for_a_whole_batch_request() -> None:
    pipeline = make_pipeline()
    add_destination(pipeline.store, "dest-1")
    add_rule(pipeline.store, "rule-1", "dest-1")
    events = make_events(*[track() for _ in range(50)])

    pipeline.process(source_message(events))

    [(_, attributes)] = pipeline.publisher.published[
        "projects/test-project/topics/streams-deliveries"
    ]
    assert attributes["deliveries"] == "50"
    assert pipeline.pump_statuses() == ["delivered"] * 50
    assert len(pipeline.sender.sent) == 50


def test_fresh_events_are_claimed_without_reading_the_event_log_first() -> None:
    pipeline = make_pipeline()
    reads: list[list[str]] = []
    get_many = pipeline.store.get_many

    def counting(paths: list[str]) -> dict[str, Any]:
        reads.append(paths)
        return get_many(paths)

    pipeline.store.get_many = counting  # type: ignore[method-assign]

    outcome = pipeline.process(source_message(make_events(track(), track())))

    assert (outcome.stored, reads) == (2, [])


def test_a_batch_settles_each_delivery_and_retries_only_the_unsettled() -> None:
    pipeline = make_pipeline(max_attempts=3)
    add_destination(pipeline.store, "dest-1")
    batch = messages(3)
    by_message = {"msg-1": [ok()], "msg-2": [http_error(503), ok()], "msg-3": [http_error(400)]}
    sent: list[str] = []

    def send(request: Any, timeout: float | None = None) -> SendResult:
        message_id = json.loads(request.body)["messageId"]
        sent.append(message_id)
        return by_message[message_id].pop(0)

    pipeline.sender.send = send  # type: ignore[method-assign]

    with pytest.raises(RetryDelivery, match="1 of 3 to retry"):
        pipeline.deliverer.deliver_all(batch, BATCH_ID)

    records = {m.message_id: pipeline.delivery(m.delivery_id) or {} for m in batch}
    statuses = {message_id: record.get("status") for message_id, record in records.items()}
    assert statuses == {"msg-1": "delivered", "msg-2": "retrying", "msg-3": "dead_lettered"}
    [letter] = [json.loads(data) for data, _ in pipeline.published(DEAD_LETTERS_TOPIC)]
    assert letter["delivery"]["message_id"] == "msg-3"

    # Pub/Sub redelivers the whole message.
    outcomes = pipeline.deliverer.deliver_all(batch, BATCH_ID)

    assert [(o.status, o.detail) for o in outcomes] == [
        ("delivered", "already done"),
        ("delivered", "HTTP 200"),
        ("dead_lettered", "already dead-lettered"),
    ]
    assert sorted(sent) == ["msg-1", "msg-2", "msg-2", "msg-3"]


def _kept_for(pipeline: Any, batch_id: str = BATCH_ID) -> timedelta:
    record = pipeline.store.get(delivery_batch_path(WORKSPACE_ID, batch_id))
    return record["expires_at"] - datetime.fromisoformat(record["updated_at"])


def test_a_record_of_deliveries_all_accepted_at_once_is_kept_only_for_the_window() -> None:
    pipeline = make_pipeline([ok(), ok()])
    add_destination(pipeline.store, "dest-1")

    pipeline.deliverer.deliver_all(messages(2), BATCH_ID)

    assert _kept_for(pipeline) == timedelta(hours=SETTLED_RECORD_HOURS)


@pytest.mark.parametrize("second", [503, 400], ids=["one to retry", "one dead-lettered"])
def test_a_record_with_a_delivery_not_accepted_at_once_is_kept_for_the_retention(
    second: int,
) -> None:
    pipeline = make_pipeline()
    add_destination(pipeline.store, "dest-1")
    by_message = {"msg-1": [ok()], "msg-2": [http_error(second), ok()]}

    def send(request: Any, timeout: float | None = None) -> SendResult:
        return by_message[json.loads(request.body)["messageId"]].pop(0)

    pipeline.sender.send = send  # type: ignore[method-assign]

    with contextlib.suppress(RetryDelivery):
        pipeline.deliverer.deliver_all(messages(2), BATCH_ID)
    kept = _kept_for(pipeline)
    pipeline.deliverer.deliver_all(messages(2), BATCH_ID)  # the retry, if any, goes through

    assert kept == _kept_for(pipeline) == timedelta(days=RECORD_RETENTION_DAYS)


def test_a_replay_accepted_at_once_is_kept_for_the_retention() -> None:
    pipeline = make_pipeline([ok()])
    add_destination(pipeline.store, "dest-1")
    replayed = DeliveryMessage(**{**delivery_message("msg-1").__dict__, "replay": True})

    pipeline.deliverer.deliver_all([replayed], BATCH_ID)

    assert _kept_for(pipeline) == timedelta(days=RECORD_RETENTION_DAYS)


def test_sends_that_cannot_start_in_time_wait_for_the_redelivery_uncounted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipeline = make_pipeline()
    add_destination(pipeline.store, "dest-1")
    monkeypatch.setattr(deliver_module, "START_BUDGET_SECONDS", -1.0)

    with pytest.raises(RetryDelivery, match="not attempted yet"):
        pipeline.deliverer.deliver_all(messages(2), BATCH_ID)

    assert pipeline.sender.sent == []
    assert [pipeline.delivery(m.delivery_id) for m in messages(2)] == [None, None]
    monkeypatch.setattr(deliver_module, "START_BUDGET_SECONDS", 25.0)
    assert [o.attempts for o in pipeline.deliverer.deliver_all(messages(2), BATCH_ID)] == [1, 1]


def test_sends_of_one_message_run_in_parallel() -> None:
    pipeline = make_pipeline()
    add_destination(pipeline.store, "dest-1")

    def slow(request: Any, timeout: float | None = None) -> SendResult:
        time.sleep(0.2)
        return ok()

    pipeline.sender.send = slow  # type: ignore[method-assign]
    started = time.monotonic()

    outcomes = pipeline.deliverer.deliver_all(messages(8), BATCH_ID)

    assert [o.status for o in outcomes] == ["delivered"] * 8
    assert time.monotonic() - started < 1.0  # 8 x 0.2 s one after another would be 1.6 s


def test_a_batch_forwarded_by_pubsub_dead_lettering_records_every_delivery() -> None:
    pipeline = make_pipeline()
    batch = messages(3)
    [(_, data, attributes)] = encode_deliveries(batch)

    letters = pipeline.dead_letters.record(data, {**attributes, PUBSUB_DEAD_LETTER_COUNT: "10"})

    assert [(d["message_id"], d["reason_code"]) for d in letters] == [
        (m.message_id, "function_error") for m in batch
    ]


def test_a_forwarded_batch_leaves_out_deliveries_that_went_through() -> None:
    pipeline = make_pipeline()
    add_destination(pipeline.store, "dest-1")
    batch = messages(2)
    [(_, data, attributes)] = encode_deliveries(batch, "ps-1")
    pipeline.sender.results.extend([ok(), http_error(503)])
    with pytest.raises(RetryDelivery):
        pipeline.push(data, attributes)  # msg-1 goes through, msg-2 is to retry

    # Then deliver keeps failing without an answer, and Pub/Sub forwards the message as it is.
    letters = pipeline.dead_letters.record(data, {**attributes, PUBSUB_DEAD_LETTER_COUNT: "10"})

    assert [d["message_id"] for d in letters] == ["msg-2"]


def test_a_message_is_named_alike_each_time_process_publishes_it() -> None:
    deliveries = messages(BATCH_MAX_DELIVERIES + 1) + messages(1, rule_id="rule-2")
    replayed = [DeliveryMessage(**{**d.__dict__, "replay": True}) for d in messages(1)]

    first = encode_deliveries(deliveries + replayed, "ps-1")
    again = encode_deliveries(deliveries + replayed, "ps-1")  # process ran it again after a crash
    other = encode_deliveries(deliveries + replayed, "ps-2")

    ids = [attributes[BATCH_ID_ATTRIBUTE] for _, _, attributes in first]
    assert [attributes[BATCH_ID_ATTRIBUTE] for _, _, attributes in again] == ids
    # One per chunk, rule and replay flag, and per source message.
    assert len(set(ids)) == len(ids) == 4
    assert not {attributes[BATCH_ID_ATTRIBUTE] for _, _, attributes in other} & set(ids)
    assert all(BATCH_ID_FORM.fullmatch(batch_id) for batch_id in ids)
    assert [message_batch_id(data, attrs) for _, data, attrs in first] == ids


def test_a_message_without_a_batch_id_is_named_by_its_data() -> None:
    [(_, data, attributes)] = encode_deliveries(messages(2))  # a replay's, or from before
    [(_, other, _)] = encode_deliveries(messages(3))

    assert BATCH_ID_ATTRIBUTE not in attributes
    assert message_batch_id(data, attributes) == message_batch_id(data, {})
    assert BATCH_ID_FORM.fullmatch(message_batch_id(data, attributes))
    assert message_batch_id(other, {}) != message_batch_id(data, {})
    # An attribute that is no batch id of Streams' (not a safe document id) is not used.
    assert message_batch_id(data, {BATCH_ID_ATTRIBUTE: "../x"}) == message_batch_id(data, {})


def test_deliveries_republished_after_a_crash_of_process_are_not_sent_again() -> None:
    pipeline = make_pipeline()
    add_destination(pipeline.store, "dest-1")
    add_rule(pipeline.store, "rule-1", "dest-1")
    pipeline.process(source_message(make_events(track(), track()), "ps-1"))
    assert pipeline.pump_statuses() == ["delivered", "delivered"]

    # Process crashed after publishing and runs the message again: it publishes the same
    # deliveries once more, as a new Pub/Sub message with the same batch id.
    [published] = pipeline.published(DELIVERIES_TOPIC)
    [(_, data, attributes)] = encode_deliveries(pipeline.delivery_messages(), "ps-1")
    assert (data, attributes) == published
    outcomes = pipeline.push(data, attributes)

    assert [(o.status, o.detail) for o in outcomes] == [("delivered", "already done")] * 2
    assert len(pipeline.sender.sent) == 2
    assert len(pipeline.batch_records()) == 1
