"""With the deduplication window in Valkey, a deliveries message whose deliveries were all
accepted at their first attempt is kept as a mark there, not as a Firestore record: no
Firestore operation on the common path, and trace, the console's recent deliveries, redelivery
and dead letters read it as they read a record."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.domain.errors import Unavailable
from shared.domain.pipeline import encode_deliveries
from shared.ports import RECORDED, SettledBatch
from shared.services.dead_letters import PUBSUB_DEAD_LETTER_COUNT
from shared.services.deliver import RetryDelivery
from shared.services.delivery_records import DeliveryRecords, settled_alike
from tests.fakes import InMemoryDeliveryMarks
from tests.unit.pipeline_fixtures import (
    DELIVERIES_TOPIC,
    WORKSPACE_ID,
    Pipeline,
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


class CountedReads:
    """Counts the store's reads of deliver's records (gets and queries)."""

    def __init__(self, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
        self.paths: list[str] = []
        get, query = pipeline.store.get, pipeline.store.query

        def counted_get(path: str) -> Any:
            self.paths.append(path)
            return get(path)

        def counted_query(collection: str, *args: Any, **kwargs: Any) -> Any:
            self.paths.append(collection)
            return query(collection, *args, **kwargs)

        monkeypatch.setattr(pipeline.store, "get", counted_get)
        monkeypatch.setattr(pipeline.store, "query", counted_query)

    def of_records(self) -> list[str]:
        return [p for p in self.paths if "/delivery_batches" in p]


def marked_pipeline(*results: Any) -> tuple[Pipeline, InMemoryDeliveryMarks]:
    marks = InMemoryDeliveryMarks()
    pipeline = make_pipeline(list(results), max_attempts=3, marks=marks)
    add_destination(pipeline.store, "dest-1")
    add_rule(pipeline.store, "rule-1", "dest-1")
    return pipeline, marks


def test_a_message_accepted_at_once_costs_no_firestore_record_and_is_never_sent_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipeline, marks = marked_pipeline(ok(), ok())
    pipeline.process(source_message(make_events(track(), track())))
    [(data, attributes)] = pipeline.published(DELIVERIES_TOPIC)
    reads = CountedReads(pipeline, monkeypatch)

    first = pipeline.push(data, attributes)
    again = pipeline.push(data, attributes)  # Pub/Sub redelivers it

    assert [o.status for o in first] == ["delivered", "delivered"]
    assert [(o.status, o.detail) for o in again] == [("delivered", "already done")] * 2
    assert len(pipeline.sender.sent) == 2
    assert pipeline.batch_records() == []
    assert reads.of_records() == []
    [mark] = marks.marks.values()
    assert isinstance(mark, SettledBatch) and (mark.http_status, mark.detail) == (200, "HTTP 200")


def test_trace_and_recent_deliveries_read_the_mark() -> None:
    pipeline, _ = marked_pipeline(ok())
    pipeline.process(source_message(make_events(track(), track())))
    pipeline.pump_deliveries()

    traced = pipeline.traces.trace(WORKSPACE_ID, "msg-1")
    recent = DeliveryRecords(pipeline.store, _marks(pipeline)).recent(WORKSPACE_ID, "dest-1", 50)

    assert [s["stage"] for s in traced["stages"]] == ["received", "stored", "routed", "delivered"]
    delivered = traced["stages"][-1]
    assert (delivered["rule_id"], delivered["destination_id"]) == ("rule-1", "dest-1")
    assert (delivered["attempt"], delivered["http_status"]) == (1, 200)
    assert sorted(d["message_id"] for d in recent) == ["msg-1", "msg-2"]
    assert {(d["status"], d["attempts"], d["last_http_status"]) for d in recent} == {
        ("delivered", 1, 200)
    }


def _marks(pipeline: Pipeline) -> InMemoryDeliveryMarks:
    marks = pipeline.deliverer._records._marks  # the fixture's own
    assert isinstance(marks, InMemoryDeliveryMarks)
    return marks


def test_a_message_with_a_retry_is_recorded_in_firestore_and_marked_so_first() -> None:
    pipeline, marks = marked_pipeline()
    by_message = {"msg-1": [ok()], "msg-2": [http_error(503), ok()]}

    def send(request: Any, timeout: float | None = None) -> Any:
        return by_message[json.loads(request.body)["messageId"]].pop(0)

    pipeline.sender.send = send  # type: ignore[method-assign]
    batch = [delivery_message("msg-1"), delivery_message("msg-2")]
    [(_, data, attributes)] = encode_deliveries(batch, "ps-1")

    with pytest.raises(RetryDelivery):
        pipeline.push(data, attributes)
    again = pipeline.push(data, attributes)

    assert list(marks.marks.values()) == [RECORDED]
    [record] = pipeline.batch_records()
    assert {e["message_id"]: e["status"] for e in record["deliveries"].values()} == {
        "msg-1": "delivered",
        "msg-2": "delivered",
    }
    assert [(o.status, o.detail) for o in again] == [
        ("delivered", "already done"),
        ("delivered", "HTTP 200"),
    ]


def test_a_skipped_delivery_keeps_its_message_in_firestore() -> None:
    pipeline, marks = marked_pipeline()
    add_destination(pipeline.store, "dest-2", "slack", {"webhook_url": "https://hooks.slack.com/x"})
    add_rule(pipeline.store, "rule-2", "dest-2")
    pipeline.process(source_message(make_events({"type": "identify", "userId": "u-1"})))

    statuses = pipeline.pump_statuses()

    assert "skipped" in statuses
    assert RECORDED in marks.marks.values()
    assert any(
        e["status"] == "skipped" for r in pipeline.batch_records() for e in r["deliveries"].values()
    )


def test_a_forwarded_message_leaves_out_the_deliveries_its_mark_settled() -> None:
    pipeline, _ = marked_pipeline(ok())
    batch = [delivery_message("msg-1"), delivery_message("msg-2")]
    [(_, data, attributes)] = encode_deliveries(batch, "ps-1")
    pipeline.push(data, attributes)

    # Say deliver then failed before Pub/Sub saw the answer, until it gave the message up.
    letters = pipeline.dead_letters.record(data, {**attributes, PUBSUB_DEAD_LETTER_COUNT: "10"})

    assert letters == []


def test_only_deliveries_alike_accepted_at_once_make_a_mark() -> None:
    pipeline, marks = marked_pipeline()
    pipeline.sender.results.extend([ok(200), ok(202)])
    batch = [delivery_message("msg-1"), delivery_message("msg-2")]
    [(_, data, attributes)] = encode_deliveries(batch, "ps-1")

    pipeline.push(data, attributes)

    entries = list(pipeline.batch_records()[0]["deliveries"].values())
    assert settled_alike(entries) is None  # one answered 200, the other 202
    assert list(marks.marks.values()) == [RECORDED]


def test_a_message_with_a_delivery_not_yet_attempted_is_never_marked_settled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipeline, marks = marked_pipeline()
    send_paced = pipeline.deliverer._send_paced

    def out_of_time_for_msg_2(plan: Any, batch: Any, start_by: float) -> Any:
        if json.loads(batch.request.body)["messageId"] == "msg-2":
            return None  # could not start before the message's budget ran out
        return send_paced(plan, batch, start_by)

    monkeypatch.setattr(pipeline.deliverer, "_send_paced", out_of_time_for_msg_2)
    batch = [delivery_message("msg-1"), delivery_message("msg-2")]
    [(_, data, attributes)] = encode_deliveries(batch, "ps-1")

    with pytest.raises(RetryDelivery, match="not attempted yet"):
        pipeline.push(data, attributes)
    monkeypatch.undo()
    again = pipeline.push(data, attributes)

    assert list(marks.marks.values()) == [RECORDED]
    assert [(o.status, o.detail) for o in again] == [
        ("delivered", "already done"),
        ("delivered", "HTTP 200"),
    ]
    assert [json.loads(r.body)["messageId"] for r in pipeline.sender.sent] == ["msg-1", "msg-2"]


def test_valkey_failing_after_the_attempt_records_the_message_in_firestore() -> None:
    # The push must not fail: its redelivery, once a node without a replica restarts empty,
    # would find no mark and send again.
    pipeline, marks = marked_pipeline(ok(), ok())
    pipeline.process(source_message(make_events(track(), track())))
    [(data, attributes)] = pipeline.published(DELIVERIES_TOPIC)
    marks.marking_fails = Unavailable("the deduplication store is unavailable")

    outcomes = pipeline.push(data, attributes)

    assert [o.status for o in outcomes] == ["delivered", "delivered"]
    [record] = pipeline.batch_records()
    assert {e["status"] for e in record["deliveries"].values()} == {"delivered"}
    assert marks.marks == {}
    traced = pipeline.traces.trace(WORKSPACE_ID, "msg-1")
    assert traced["stages"][-1]["stage"] == "delivered"
