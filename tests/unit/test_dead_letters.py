"""Dead letters: recorded from the dead-letter topic, listed with filters, replayed on demand."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.domain.pipeline import (
    DeliveryMessage,
    InvalidMessage,
    dead_letter_path,
    decode_deliveries,
)
from shared.services.dead_letters import PUBSUB_DEAD_LETTER_COUNT, DeadLetterQuery
from tests.unit.pipeline_fixtures import (
    DEAD_LETTERS_TOPIC,
    DELIVERIES_TOPIC,
    WORKSPACE_ID,
    Pipeline,
    add_destination,
    delivery_message,
    http_error,
    make_pipeline,
    ok,
)


def envelope(
    message: DeliveryMessage, reason_code: str = "http_error", http_status: int | None = 400
) -> bytes:
    """A dead letter as deliver publishes it."""
    return json.dumps(
        {
            "delivery": json.loads(message.to_json()),
            "reason_code": reason_code,
            "reason": f"{reason_code} reason",
            "attempts": 1,
            "last_http_status": http_status,
            "destination_type": "webhook",
            "dead_lettered_at": "2024-03-01T12:00:00.000Z",
        }
    ).encode()


def record(pipeline: Pipeline, message: DeliveryMessage, **kwargs: Any) -> dict[str, Any]:
    [document] = pipeline.dead_letters.record(envelope(message, **kwargs), message.attributes())
    return document


def letter(pipeline: Pipeline, message: DeliveryMessage) -> dict[str, Any]:
    document = pipeline.store.get(dead_letter_path(WORKSPACE_ID, message.delivery_id))
    assert document is not None
    return document


def test_a_dead_letter_of_deliver_is_recorded() -> None:
    pipeline = make_pipeline([http_error(404)])
    add_destination(pipeline.store, "dest-1")
    message = delivery_message()
    pipeline.deliverer.deliver(message)

    [document] = pipeline.pump_dead_letters()

    assert letter(pipeline, message) == document
    assert document["id"] == message.delivery_id
    assert (document["workspace_id"], document["message_id"]) == (WORKSPACE_ID, "msg-1")
    assert (document["rule_id"], document["destination_id"]) == ("rule-1", "dest-1")
    assert document["destination_type"] == "webhook"
    assert (document["reason_code"], document["last_http_status"]) == ("http_error", 404)
    assert document["reason"].startswith("HTTP 404")
    assert (document["attempts"], document["status"]) == (1, "dead_lettered")
    assert (document["times_dead_lettered"], document["replay_count"]) == (1, 0)
    assert document["delivery"] == json.loads(message.to_json())
    assert document["created_at"] == document["updated_at"]
    assert document["replayed_at"] is None


def test_a_message_forwarded_by_pubsub_dead_lettering_is_recorded() -> None:
    pipeline = make_pipeline()
    message = delivery_message()
    attributes = {**message.attributes(), PUBSUB_DEAD_LETTER_COUNT: "5"}

    [document] = pipeline.dead_letters.record(message.to_json(), attributes)

    assert document["id"] == message.delivery_id
    assert (document["reason_code"], document["attempts"]) == ("function_error", 5)
    assert "5 times" in document["reason"]
    assert (document["destination_type"], document["last_http_status"]) == (None, None)
    assert document["delivery"] == json.loads(message.to_json())
    assert letter(pipeline, message)["status"] == "dead_lettered"


def test_recording_the_same_delivery_again_keeps_one_letter() -> None:
    pipeline = make_pipeline()
    message = delivery_message()
    first = record(pipeline, message)

    second = record(pipeline, message, reason_code="retries_exhausted", http_status=503)

    assert second["times_dead_lettered"] == 2
    assert second["created_at"] == first["created_at"]
    assert second["updated_at"] > first["updated_at"]
    assert second["reason_code"] == "retries_exhausted"
    assert len(pipeline.dead_letters.list(WORKSPACE_ID, DeadLetterQuery())) == 1


@pytest.mark.parametrize(
    ("data", "attributes"),
    [
        (b"not json", {}),
        (b'{"reason_code": "http_error"}', {}),
        (b'{"delivery": {"delivery_id": "d-1"}}', {}),
        (b"{}", {PUBSUB_DEAD_LETTER_COUNT: "5"}),
    ],
)
def test_an_unreadable_dead_letter_is_an_invalid_message(
    data: bytes, attributes: dict[str, str]
) -> None:
    pipeline = make_pipeline()

    with pytest.raises(InvalidMessage):
        pipeline.dead_letters.record(data, attributes)

    assert pipeline.store.documents == {}


def test_a_dead_letter_that_is_not_a_json_object_is_an_invalid_message() -> None:
    with pytest.raises(InvalidMessage):
        make_pipeline().dead_letters.record(b"[1, 2]", {})


def seeded() -> tuple[Pipeline, dict[str, DeliveryMessage]]:
    """Four letters, recorded one clock second apart: a (oldest) .. d (newest)."""
    pipeline = make_pipeline()
    messages = {
        "a": delivery_message("msg-a", "rule-1", "dest-1"),
        "b": delivery_message("msg-b", "rule-2", "dest-2"),
        "c": delivery_message("msg-c", "rule-1", "dest-1"),
        "d": delivery_message("msg-d", "rule-2", "dest-2"),
    }
    codes = {
        "a": "http_error",
        "b": "retries_exhausted",
        "c": "retries_exhausted",
        "d": "http_error",
    }
    for name, message in messages.items():
        record(pipeline, message, reason_code=codes[name])
    return pipeline, messages


def listed(pipeline: Pipeline, **query: Any) -> list[str]:
    return [
        d["message_id"] for d in pipeline.dead_letters.list(WORKSPACE_ID, DeadLetterQuery(**query))
    ]


def test_list_is_newest_first_and_filters() -> None:
    pipeline, messages = seeded()
    times = {name: letter(pipeline, m)["updated_at"] for name, m in messages.items()}

    assert listed(pipeline) == ["msg-d", "msg-c", "msg-b", "msg-a"]
    assert listed(pipeline, destination_id="dest-1") == ["msg-c", "msg-a"]
    assert listed(pipeline, reason_code="retries_exhausted") == ["msg-c", "msg-b"]
    assert listed(pipeline, destination_id="dest-2", reason_code="http_error") == ["msg-d"]
    assert listed(pipeline, since=times["b"], until=times["c"]) == ["msg-c", "msg-b"]
    assert listed(pipeline, since=times["d"]) == ["msg-d"]
    assert listed(pipeline, limit=2) == ["msg-d", "msg-c"]
    assert listed(pipeline, ids=[messages["a"].delivery_id, "nope"]) == ["msg-a"]
    assert listed(pipeline, status="replayed") == []
    assert pipeline.dead_letters.list("ws-other", DeadLetterQuery()) == []


def test_replay_dry_run_publishes_nothing_and_reports() -> None:
    pipeline, messages = seeded()

    report = pipeline.dead_letters.replay(
        WORKSPACE_ID, DeadLetterQuery(destination_id="dest-1"), dry_run=True
    )

    assert report.dry_run is True
    assert report.matched == 2
    assert report.replayed == [messages["c"].delivery_id, messages["a"].delivery_id]
    assert report.skipped == []
    assert report.message_ids == {
        messages["c"].delivery_id: "msg-c",
        messages["a"].delivery_id: "msg-a",
    }
    assert DELIVERIES_TOPIC not in pipeline.publisher.published
    assert {letter(pipeline, m)["status"] for m in messages.values()} == {"dead_lettered"}


def test_replay_republishes_with_replay_and_marks_letters_replayed() -> None:
    pipeline, messages = seeded()

    report = pipeline.dead_letters.replay(
        WORKSPACE_ID, DeadLetterQuery(reason_code="retries_exhausted"), dry_run=False
    )

    assert report.replayed == [messages["c"].delivery_id, messages["b"].delivery_id]
    published = pipeline.published(DELIVERIES_TOPIC)
    assert [d for data, _ in published for d in decode_deliveries(data)] == [
        DeliveryMessage(**{**messages[name].__dict__, "replay": True}) for name in ("c", "b")
    ]
    for _, attributes in published:
        assert attributes["workspace_id"] == WORKSPACE_ID
        assert attributes["destination_id"] in {m.destination_id for m in messages.values()}
    for name in ("b", "c"):
        replayed = letter(pipeline, messages[name])
        assert (replayed["status"], replayed["replay_count"]) == ("replayed", 1)
        assert replayed["replayed_at"] == replayed["updated_at"]
    assert letter(pipeline, messages["a"])["status"] == "dead_lettered"
    # Replayed together, so with the same updated_at: order between them is not specified.
    assert sorted(listed(pipeline, status="replayed")) == ["msg-b", "msg-c"]


def test_replay_skips_delivered_deliveries_and_letters_already_replayed() -> None:
    pipeline, messages = seeded()
    pipeline.dead_letters.replay(
        WORKSPACE_ID, DeadLetterQuery(ids=[messages["a"].delivery_id]), False
    )
    # Delivered meanwhile, in another message's record (a replay another request made).
    add_destination(pipeline.store, "dest-2")
    replayed = DeliveryMessage(**{**messages["b"].__dict__, "replay": True})
    assert pipeline.deliverer.deliver(replayed).status == "delivered"
    before = len(pipeline.published(DELIVERIES_TOPIC))

    report = pipeline.dead_letters.replay(WORKSPACE_ID, DeadLetterQuery(), dry_run=False)

    assert report.matched == 4
    assert report.replayed == [messages["d"].delivery_id, messages["c"].delivery_id]
    assert sorted(report.skipped, key=lambda s: s["reason"]) == [
        {"id": messages["b"].delivery_id, "reason": "already delivered"},
        {"id": messages["a"].delivery_id, "reason": "already replayed"},
    ]
    republished = [
        d for data, _ in pipeline.published(DELIVERIES_TOPIC) for d in decode_deliveries(data)
    ]
    assert [m.message_id for m in republished[before:]] == ["msg-d", "msg-c"]
    assert letter(pipeline, messages["b"])["status"] == "dead_lettered"


def test_a_replayed_delivery_goes_through_deliver_again() -> None:
    pipeline = make_pipeline([http_error(400), ok()])
    add_destination(pipeline.store, "dest-1")
    message = delivery_message()
    pipeline.deliverer.deliver(message)
    pipeline.pump_dead_letters()

    pipeline.dead_letters.replay(WORKSPACE_ID, DeadLetterQuery(), dry_run=False)
    [outcome] = pipeline.pump_deliveries()

    assert getattr(outcome, "status", None) == "delivered"
    record = pipeline.delivery(message.delivery_id)
    assert record is not None
    assert (record["status"], record["attempts"]) == ("delivered", 1)
    assert letter(pipeline, message)["status"] == "replayed"
    again = pipeline.dead_letters.replay(WORKSPACE_ID, DeadLetterQuery(), dry_run=False)
    assert (again.replayed, again.skipped[0]["reason"]) == ([], "already replayed")


def test_a_replay_that_fails_again_is_dead_lettered_again() -> None:
    pipeline = make_pipeline([http_error(400), http_error(410)])
    add_destination(pipeline.store, "dest-1")
    message = delivery_message()
    pipeline.deliverer.deliver(message)
    pipeline.pump_dead_letters()
    pipeline.dead_letters.replay(WORKSPACE_ID, DeadLetterQuery(), dry_run=False)

    pipeline.pump_deliveries()
    [document] = pipeline.pump_dead_letters()

    assert len(pipeline.published(DEAD_LETTERS_TOPIC)) == 2
    assert (document["status"], document["last_http_status"]) == ("dead_lettered", 410)
    assert (document["times_dead_lettered"], document["replay_count"]) == (2, 1)
    assert document["delivery"]["replay"] is True
    assert document["replayed_at"] is not None
