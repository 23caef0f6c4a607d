"""Deliver with a forwarding rule's transformation: forward modified, drop, fan out, and dead
letters for code that throws, returns no event, is not active or no longer compiles."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from shared.destinations.pubsub import TopicGuard
from shared.domain.outcomes import EventObserver
from shared.domain.routing import transformation_path
from shared.services.deliver import Deliverer
from shared.services.delivery_transformer import SandboxTransformer
from shared.services.workspace_config import WorkspaceConfig
from shared.transform import Limits, ProgramCache
from tests.unit.pipeline_fixtures import (
    DEAD_LETTERS_TOPIC,
    DELIVERIES_TOPIC,
    PROJECT_ID,
    WORKSPACE_ID,
    Pipeline,
    add_destination,
    add_rule,
    dead_letter_envelopes,
    make_events,
    make_pipeline,
    source_message,
    track,
)
from tests.unit.test_process import RecordingObserver

SEED_CODE = (
    "function transform(event) {\n if (event.properties.total > 100) {\n "
    "event.properties.tier = 'high_value';\n }\n return event;\n}"
)


def pipeline_with(
    source_code: str, status: str = "active", observers: Sequence[EventObserver] = ()
) -> Pipeline:
    """A webhook destination, one rule applying transformation t-1, and deliver wired with the
    sandbox (no caching, so every change shows at once)."""
    pipeline = make_pipeline()
    add_destination(pipeline.store, "dest-1")
    add_rule(pipeline.store, "rule-1", "dest-1", transformation_id="t-1")
    store_transformation(pipeline, source_code, status)
    pipeline.deliverer = Deliverer(
        pipeline.store,
        WorkspaceConfig(pipeline.store, ttl_seconds=0),
        pipeline.sender,
        pipeline.publisher,
        DEAD_LETTERS_TOPIC,
        3,
        customer_publisher=pipeline.publisher,
        topic_guard=TopicGuard(PROJECT_ID),
        transformer=SandboxTransformer(pipeline.store, ProgramCache(Limits()), ttl_seconds=0),
        clock=pipeline.clock,
        observers=observers,
    )
    return pipeline


def store_transformation(
    pipeline: Pipeline, source_code: str, status: str = "active", version: int = 1
) -> None:
    pipeline.store.documents[transformation_path(WORKSPACE_ID, "t-1")] = {
        "id": "t-1",
        "workspace_id": WORKSPACE_ID,
        "name": "Enrich",
        "description": "",
        "source_code": source_code,
        "test_input": None,
        "test_output": None,
        "status": status,
        "version": version,
        "compile_error": None,
        "created_at": "2024-01-01T00:00:00.000Z",
        "updated_at": "2024-01-01T00:00:00.000Z",
    }


def deliver(pipeline: Pipeline, *items: dict[str, Any]) -> list[Any]:
    pipeline.process(source_message(make_events(*items)))
    return pipeline.pump_deliveries()


def sent_bodies(pipeline: Pipeline) -> list[dict[str, Any]]:
    return [json.loads(request.body) for request in pipeline.sender.sent]


def test_a_transformation_modifies_what_is_sent() -> None:
    pipeline = pipeline_with(SEED_CODE)

    [high, low] = deliver(
        pipeline,
        track("purchase_completed", properties={"total": 150}),
        track("purchase_completed", properties={"total": 20}),
    )

    assert (high.status, low.status) == ("delivered", "delivered")
    bodies = sent_bodies(pipeline)
    assert [b["properties"] for b in bodies] == [
        {"total": 150, "tier": "high_value"},
        {"total": 20},
    ]
    assert bodies[0]["messageId"] == "msg-1"


def test_metadata_names_the_rule_and_destination() -> None:
    pipeline = pipeline_with("function transform(e, metadata) {\n  return {...e, metadata};\n}")
    deliver(pipeline, track())
    [body] = sent_bodies(pipeline)
    assert body["metadata"] == {
        "workspace_id": WORKSPACE_ID,
        "source_id": "src-1",
        "destination_id": "dest-1",
        "destination_type": "webhook",
        "rule_id": "rule-1",
    }


def test_a_drop_is_recorded_and_shown_in_the_trace() -> None:
    pipeline = pipeline_with("function transform(e) {\n  return null;\n}")

    [outcome] = deliver(pipeline, track())

    assert outcome.status == "dropped"
    assert pipeline.sender.sent == []
    trace = pipeline.traces.trace(WORKSPACE_ID, "msg-1")
    dropped = [s for s in trace["stages"] if s["stage"] == "dropped"]
    assert len(dropped) == 1
    assert DEAD_LETTERS_TOPIC not in pipeline.publisher.published


def test_a_drop_is_shown_to_the_live_stream_once_with_its_reason() -> None:
    observer = RecordingObserver()
    pipeline = pipeline_with("function transform(e) {\n  return null;\n}", observers=[observer])
    deliver(pipeline, track())
    [again] = pipeline.push(*pipeline.published(DELIVERIES_TOPIC)[0])  # a redelivery
    assert again.detail == "already done"
    assert observer.seen == [
        ("msg-1", "dropped", "dropped by transformation t-1 for destination dest-1")
    ]


def stage_names(pipeline: Pipeline) -> list[str]:
    return [s["stage"] for s in pipeline.traces.trace(WORKSPACE_ID, "msg-1")["stages"]]


def transformed_stages(pipeline: Pipeline) -> list[dict[str, Any]]:
    stages = pipeline.traces.trace(WORKSPACE_ID, "msg-1")["stages"]
    return [s for s in stages if s["stage"] == "transformed"]


def test_the_trace_shows_the_transformation_between_routing_and_delivery() -> None:
    pipeline = pipeline_with(SEED_CODE)
    store_transformation(pipeline, SEED_CODE, version=3)

    deliver(pipeline, track("purchase_completed", properties={"total": 150}))

    assert stage_names(pipeline) == ["received", "stored", "routed", "transformed", "delivered"]
    [stage] = transformed_stages(pipeline)
    assert (stage["status"], stage["reason"]) == ("ok", "1 event(s) to send")
    assert (stage["transformation_id"], stage["transformation_version"]) == ("t-1", 3)
    assert (stage["rule_id"], stage["destination_id"], stage["attempt"]) == ("rule-1", "dest-1", 1)


@pytest.mark.parametrize(
    ("source_code", "status", "reason"),
    [
        ("function transform(e) {\n  return null;\n}", "dropped", "dropped the event"),
        ("function transform(e) {\n  throw new Error('bad');\n}", "failed", "bad"),
    ],
)
def test_a_dropping_or_failing_transformation_is_its_own_stage(
    source_code: str, status: str, reason: str
) -> None:
    pipeline = pipeline_with(source_code)

    deliver(pipeline, track())

    [stage] = transformed_stages(pipeline)
    assert stage["status"] == status
    assert reason in stage["reason"]
    assert stage_names(pipeline).index("transformed") == stage_names(pipeline).index("routed") + 1


def test_an_array_fans_out() -> None:
    pipeline = pipeline_with(
        "function transform(e) {\n"
        "  return [1, 2].map((n) => ({...e, messageId: `${e.messageId}-${n}`}));\n"
        "}"
    )
    [outcome] = deliver(pipeline, track())
    assert outcome.status == "delivered"
    assert [b["messageId"] for b in sent_bodies(pipeline)] == ["msg-1-1", "msg-1-2"]


@pytest.mark.parametrize(
    ("source_code", "reason"),
    [
        (
            "function transform(e) {\n  console.log('checking', e.event);\n"
            "  throw new Error('no price');\n}",
            "transformation failed: Error: no price (line 3); console: checking Order Completed",
        ),
        (
            "function transform(e) {\n  return {event: 'x'};\n}",
            "transformation failed: the returned event is not a valid event: type is missing; "
            "it must be one of alias, group, identify, page, screen, track",
        ),
        (
            "function transform(e) {\n  while (true) {}\n}",
            "transformation failed: the transformation used more than 100 ms of CPU time",
        ),
    ],
)
def test_a_failing_transformation_dead_letters_with_its_error(
    source_code: str, reason: str
) -> None:
    pipeline = pipeline_with(source_code)

    [outcome] = deliver(pipeline, track())

    assert outcome.status == "dead_lettered"
    assert pipeline.sender.sent == []
    [envelope] = dead_letter_envelopes(pipeline)
    assert envelope["reason_code"] == "transformation_error"
    assert envelope["reason"] == reason


@pytest.mark.parametrize("status", ["draft", "error"])
def test_a_rule_never_runs_a_transformation_that_is_not_active(status: str) -> None:
    pipeline = pipeline_with("function transform(e) {\n  return e;\n}", status=status)

    [outcome] = deliver(pipeline, track())

    assert outcome.status == "dead_lettered"
    [envelope] = dead_letter_envelopes(pipeline)
    assert envelope["reason"] == (
        f"transformation failed: transformation 'Enrich' (t-1) is {status}, not active: "
        "the rule does not run it"
    )
    assert pipeline.sender.sent == []


def test_a_missing_transformation_dead_letters() -> None:
    pipeline = pipeline_with("function transform(e) {\n  return e;\n}")
    del pipeline.store.documents[transformation_path(WORKSPACE_ID, "t-1")]
    [outcome] = deliver(pipeline, track())
    assert outcome.status == "dead_lettered"
    assert dead_letter_envelopes(pipeline)[0]["reason"] == (
        "transformation failed: transformation t-1 does not exist"
    )


def test_stored_code_that_no_longer_compiles_is_marked_error() -> None:
    # Saves never store such code; an engine change could make stored code stop compiling.
    pipeline = pipeline_with("function transform(e) {\n  return e +;\n}")

    [outcome] = deliver(pipeline, track())

    assert outcome.status == "dead_lettered"
    assert dead_letter_envelopes(pipeline)[0]["reason"].startswith(
        "transformation failed: the code does not compile: SyntaxError"
    )
    stored = pipeline.store.get(transformation_path(WORKSPACE_ID, "t-1"))
    assert stored is not None and stored["status"] == "error"
    assert stored["compile_error"].startswith("SyntaxError")


def test_a_new_version_is_used_as_soon_as_it_is_read() -> None:
    pipeline = pipeline_with("function transform(e) {\n  return {...e, version: 1};\n}")
    deliver(pipeline, track(messageId="a"))
    store_transformation(
        pipeline, "function transform(e) {\n  return {...e, version: 2};\n}", version=2
    )
    deliver(pipeline, track(messageId="b"))
    assert [b["version"] for b in sent_bodies(pipeline)] == [1, 2]


def test_console_output_is_kept_with_the_attempt_and_shown_in_the_trace() -> None:
    pipeline = pipeline_with(
        "function transform(e) {\n  console.log('total', e.properties.total);\n  return e;\n}"
    )

    [outcome] = deliver(pipeline, track("purchase_completed", properties={"total": 7}))

    assert outcome.status == "delivered"
    trace = pipeline.traces.trace(WORKSPACE_ID, "msg-1")
    [delivered] = [s for s in trace["stages"] if s["stage"] == "delivered"]
    assert any("total 7" in line for line in delivered["logs"])
