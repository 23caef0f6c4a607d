"""Trace: an event's stages, in time order, from its log entry, deliveries and dead letters."""

from __future__ import annotations

from typing import Any, get_args

import pytest

from shared.domain.errors import NotFound, Unavailable
from shared.domain.event import CanonicalEvent
from shared.domain.pipeline import DeliveryStatus, delivery_id
from shared.services.dead_letters import PUBSUB_DEAD_LETTER_COUNT, DeadLetterQuery
from shared.services.process import Verdict
from shared.services.trace import ATTEMPT_STAGES
from tests.unit.pipeline_fixtures import (
    DELIVERIES_TOPIC,
    GA4_CONFIG,
    SOURCE_ID,
    WORKSPACE_ID,
    Pipeline,
    add_destination,
    add_rule,
    alias,
    http_error,
    identify,
    make_events,
    make_pipeline,
    ok,
    source_message,
    track,
)


def routed_pipeline(*results: Any, validator: Any = None) -> Pipeline:
    pipeline = make_pipeline(list(results), max_attempts=3, validator=validator)
    add_destination(pipeline.store, "dest-1")
    add_rule(pipeline.store, "rule-1", "dest-1")
    return pipeline


def trace(pipeline: Pipeline, message_id: str = "msg-1") -> dict[str, Any]:
    return pipeline.traces.trace(WORKSPACE_ID, message_id)


def stage_names(traced: dict[str, Any]) -> list[str]:
    return [stage["stage"] for stage in traced["stages"]]


def assert_in_time_order(traced: dict[str, Any]) -> None:
    times = [stage["at"] for stage in traced["stages"]]
    assert all(times), times
    assert times == sorted(times)


def test_a_delivered_event() -> None:
    pipeline = routed_pipeline(ok())
    pipeline.process(source_message(make_events(track(), identify())))
    pipeline.pump_deliveries()

    traced = trace(pipeline)

    assert stage_names(traced) == ["received", "stored", "routed", "delivered"]
    assert_in_time_order(traced)
    assert traced["stages"][0]["at"] == make_events(track())[0]["receivedAt"]
    assert (traced["message_id"], traced["workspace_id"]) == ("msg-1", WORKSPACE_ID)
    assert (traced["source_id"], traced["event_type"]) == (SOURCE_ID, "track")
    assert traced["state"] == "processed"
    assert traced["stages"][2]["reason"] == "1 matching rule(s)"
    delivered = traced["stages"][-1]
    assert delivered["delivery_id"] == delivery_id("msg-1", "rule-1")
    assert (delivered["rule_id"], delivered["destination_id"]) == ("rule-1", "dest-1")
    assert (delivered["attempt"], delivered["http_status"]) == (1, 200)


def test_every_delivery_status_has_its_trace_stage() -> None:
    # mypy checks each key is a status; this checks none is missing.
    assert set(ATTEMPT_STAGES) == set(get_args(DeliveryStatus))


def test_a_retried_then_delivered_event() -> None:
    pipeline = routed_pipeline(http_error(503), http_error(503), ok())
    pipeline.process(source_message(make_events(track())))
    for _ in range(3):  # Pub/Sub redelivers after each failure
        pipeline.pump_deliveries()

    traced = trace(pipeline)

    assert stage_names(traced) == [
        "received",
        "stored",
        "routed",
        "retried",
        "retried",
        "delivered",
    ]
    assert_in_time_order(traced)
    attempts = [(s["attempt"], s["status"], s["http_status"]) for s in traced["stages"][3:]]
    assert attempts == [(1, "retrying", 503), (2, "retrying", 503), (3, "delivered", 200)]


def dead_lettered_and_replayed() -> Pipeline:
    pipeline = routed_pipeline(http_error(400), ok())
    pipeline.process(source_message(make_events(track())))
    pipeline.pump_deliveries()
    pipeline.pump_dead_letters()
    pipeline.dead_letters.replay(WORKSPACE_ID, DeadLetterQuery(), dry_run=False)
    pipeline.pump_deliveries()
    return pipeline


def test_a_dead_lettered_and_replayed_event() -> None:
    traced = trace(dead_lettered_and_replayed())

    assert stage_names(traced) == [
        "received",
        "stored",
        "routed",
        "dead_lettered",
        "replayed",
        "delivered",
    ]
    assert_in_time_order(traced)
    dead, replayed, delivered = traced["stages"][3:]
    assert (dead["http_status"], delivered["http_status"]) == (400, 200)
    assert replayed["reason"] == "replayed 1 time(s)"
    assert (replayed["rule_id"], replayed["destination_id"]) == ("rule-1", "dest-1")


def test_the_replayed_stage_names_its_delivery() -> None:
    traced = trace(dead_lettered_and_replayed())

    [replayed] = [s for s in traced["stages"] if s["stage"] == "replayed"]
    assert replayed["delivery_id"] == delivery_id("msg-1", "rule-1")


def test_a_duplicate() -> None:
    pipeline = make_pipeline()
    [event] = make_events(track())
    pipeline.process(source_message([event], "ps-1"))
    pipeline.process(source_message([event], "ps-2"))

    traced = trace(pipeline)

    assert stage_names(traced) == ["received", "stored", "routed", "duplicate"]
    assert_in_time_order(traced)
    duplicate = traced["stages"][-1]
    assert (duplicate["status"], duplicate["reason"]) == (
        "dropped",
        "1 duplicate(s) of this messageId ignored",
    )
    assert traced["stages"][2]["reason"] == "no matching enabled rule"


def test_a_blocked_event() -> None:
    class BlockAll:
        def validate(self, workspace_id: str, events: list[CanonicalEvent]) -> list[Verdict]:
            return [
                Verdict(blocked=True, violations=[{"type": "Required-Missing"}]) for _ in events
            ]

    pipeline = routed_pipeline(validator=BlockAll())
    pipeline.process(source_message(make_events(track())))

    traced = trace(pipeline)

    assert stage_names(traced) == ["received", "blocked"]
    assert_in_time_order(traced)
    assert traced["stages"][1]["violations"] == [{"type": "Required-Missing"}]
    assert traced["stages"][1]["status"] == "blocked"


def test_a_skipped_rule_and_a_skipped_delivery() -> None:
    pipeline = make_pipeline()
    add_destination(pipeline.store, "dest-off", status="inactive")
    add_destination(pipeline.store, "dest-ga4", type_="ga4", config=dict(GA4_CONFIG))
    add_rule(pipeline.store, "r-off", "dest-off")
    add_rule(pipeline.store, "r-ga4", "dest-ga4")
    pipeline.process(source_message(make_events(alias())))
    pipeline.pump_deliveries()

    traced = trace(pipeline)

    assert stage_names(traced) == ["received", "stored", "routed", "skipped", "skipped"]
    rule_skip, delivery_skip = traced["stages"][3:]
    assert (rule_skip["rule_id"], rule_skip["reason"]) == ("r-off", "destination is inactive")
    assert (delivery_skip["rule_id"], delivery_skip["reason"]) == (
        "r-ga4",
        "ga4 does not take alias events",
    )


def test_an_event_still_being_processed() -> None:
    pipeline = routed_pipeline()
    pipeline.events.fail = Unavailable("BigQuery is unavailable")
    with pytest.raises(Unavailable):
        pipeline.process(source_message(make_events(track())))

    traced = trace(pipeline)

    assert traced["state"] == "processing"
    assert stage_names(traced) == ["received"]


def test_only_the_traced_event_s_records_are_included() -> None:
    pipeline = routed_pipeline(ok(), http_error(400))
    pipeline.process(source_message(make_events(track(), track())))
    pipeline.pump_deliveries()
    pipeline.pump_dead_letters()

    first, second = trace(pipeline, "msg-1"), trace(pipeline, "msg-2")

    assert stage_names(first)[-1] == "delivered"
    assert stage_names(second)[-1] == "dead_lettered"


def test_an_unknown_message_id_is_not_found() -> None:
    pipeline = routed_pipeline()
    pipeline.process(source_message(make_events(track())))

    with pytest.raises(NotFound):
        trace(pipeline, "msg-unknown")
    with pytest.raises(NotFound):
        pipeline.traces.trace("ws-other", "msg-1")


def test_a_delivery_pubsub_dead_lettered_itself_shows_in_the_trace() -> None:
    pipeline = routed_pipeline()
    pipeline.process(source_message(make_events(track())))
    # deliver never answered (crashed on every push): Pub/Sub forwards the message itself.
    [(data, attributes)] = pipeline.published(DELIVERIES_TOPIC)
    pipeline.dead_letters.record(data, {**attributes, PUBSUB_DEAD_LETTER_COUNT: "10"})

    traced = trace(pipeline)

    assert stage_names(traced) == ["received", "stored", "routed", "dead_lettered"]
    dead = traced["stages"][-1]
    assert dead["reason"] == "the deliver function failed 10 times without an answer"
    assert dead["delivery_id"] == delivery_id("msg-1", "rule-1")
    assert_in_time_order(traced)
