"""Poison messages: one event the pipeline cannot carry is dead-lettered with its reason, its
neighbours go on, nothing is retried forever, and the dead letter can be replayed."""

from __future__ import annotations

import json
from typing import Any

import pytest

import shared.services.deliver as deliver_module
from shared.bootstrap import process_push_policy
from shared.config import Settings
from shared.domain.errors import InvalidMessage, Unavailable
from shared.domain.event import CanonicalEvent
from shared.domain.pipeline import (
    dead_letter_path,
    event_dead_letter_id,
    event_key,
    parse_source_message,
)
from shared.domain.sources import source_path, write_key_path
from shared.services.dead_letters import (
    PUBSUB_DEAD_LETTER_COUNT,
    PUBSUB_DEAD_LETTER_SUBSCRIPTION,
    DeadLetterQuery,
)
from shared.services.process import Verdict
from tests.fakes import FakeTopicAdmin
from tests.unit.pipeline_fixtures import (
    DEAD_LETTERS_TOPIC,
    SOURCE_ID,
    WORKSPACE_ID,
    Pipeline,
    add_destination,
    add_rule,
    http_error,
    make_events,
    make_pipeline,
    source_message,
    track,
)

SOURCE_TOPIC = f"projects/test-project/topics/streams-source-{SOURCE_ID}"
LONE_SURROGATE_ID = "x-\ud800"


class RecursingValidator:
    """A contract step that recurses without end on events with `properties.nested` (what a
    recursive `$ref` did), and passes every other event."""

    def __init__(self) -> None:
        self.fixed = False

    def validate(self, workspace_id: str, events: list[CanonicalEvent]) -> list[Verdict]:
        if not self.fixed and any("nested" in (e.get("properties") or {}) for e in events):
            raise RecursionError("maximum recursion depth exceeded")
        return [Verdict() for _ in events]


class DownValidator:
    def validate(self, workspace_id: str, events: list[CanonicalEvent]) -> list[Verdict]:
        raise Unavailable("Firestore is unavailable, retry later")


def with_source(pipeline: Pipeline) -> Pipeline:
    """The source's documents, as EventSources.create writes them (replay reads its topic)."""
    pipeline.store.documents[source_path(WORKSPACE_ID, SOURCE_ID)] = {
        "id": SOURCE_ID,
        "workspace_id": WORKSPACE_ID,
        "pubsub_topic": SOURCE_TOPIC,
    }
    pipeline.store.documents[write_key_path("wk_test")] = {
        "workspace_id": WORKSPACE_ID,
        "source_id": SOURCE_ID,
        "status": "active",
        "pubsub_topic": SOURCE_TOPIC,
    }
    return pipeline


def routed_pipeline(**kwargs: Any) -> Pipeline:
    pipeline = with_source(make_pipeline(**kwargs))
    add_destination(pipeline.store, "dest-1")
    add_rule(pipeline.store, "rule-1", "dest-1")
    return pipeline


def published_source_message(pipeline: Pipeline, data: bytes) -> Any:
    """A source-topic message as process receives it: JSON as ingest writes it, escapes kept."""
    return parse_source_message(
        data, {"workspace_id": WORKSPACE_ID, "source_id": SOURCE_ID}, "ps-raw"
    )


def event_letter(pipeline: Pipeline, message_id: str) -> dict[str, Any]:
    letter = pipeline.store.get(dead_letter_path(WORKSPACE_ID, event_dead_letter_id(message_id)))
    assert letter is not None, f"no dead letter for {message_id!r}"
    return letter


# --- a lone surrogate in a messageId -----------------------------------------------------------


def test_a_lone_surrogate_message_id_is_dead_lettered_and_its_neighbour_delivered() -> None:
    pipeline = routed_pipeline()
    good, bad = make_events(track(messageId="good-1"), track(messageId="bad-1"))
    bad["messageId"] = LONE_SURROGATE_ID
    # Published raw (ingest now refuses it): JSON carries the surrogate as an escape.
    data = json.dumps([good, bad]).encode()
    message = published_source_message(pipeline, data)

    outcome = pipeline.process(message)
    again = pipeline.process(message)  # a redelivery neither fails nor duplicates

    assert (outcome.stored, outcome.dead_lettered, outcome.deliveries) == (1, 1, 1)
    assert again.duplicates == 1 and again.stored == 0
    assert [row["message_id"] for row in pipeline.events.rows] == ["good-1"]
    assert pipeline.delivery_messages()[0].message_id == "good-1"
    assert pipeline.pump_statuses() == ["delivered"]
    letter = event_letter(pipeline, LONE_SURROGATE_ID)
    assert letter["kind"] == "event" and letter["reason_code"] == "unprocessable_event"
    assert "lone surrogate" in letter["reason"] and "messageId" in letter["reason"]
    assert letter["message_id"] == "x-\\ud800"  # storable text, readable
    assert json.loads(letter["event_json"])["messageId"] == LONE_SURROGATE_ID
    assert pipeline.log_entry(LONE_SURROGATE_ID) is None  # nothing of it reached the log


def test_a_lone_surrogate_in_a_property_is_traced_from_its_dead_letter() -> None:
    pipeline = routed_pipeline()
    [event] = make_events(track(messageId="prop-1", properties={"name": "a"}))
    event["properties"]["name"] = "\udfff"
    message = published_source_message(pipeline, json.dumps([event]).encode())

    pipeline.process(message)
    trace = pipeline.traces.trace(WORKSPACE_ID, "prop-1")

    assert [s["stage"] for s in trace["stages"]] == ["received", "dead_lettered"]
    assert trace["stages"][1]["reason_code"] == "unprocessable_event"
    assert "$.properties.name" in trace["stages"][1]["reason"]


# --- a step that fails on one event (a recursive contract) --------------------------------------


def test_a_contract_that_recurses_on_one_event_does_not_take_its_batch_down() -> None:
    validator = RecursingValidator()
    pipeline = routed_pipeline(validator=validator)
    events = make_events(
        track(messageId="ok-1"),
        track(messageId="deep-1", properties={"nested": {}}),
        track(messageId="ok-2"),
    )

    outcome = pipeline.process(source_message(events))

    assert (outcome.stored, outcome.dead_lettered) == (2, 1)
    assert sorted(row["message_id"] for row in pipeline.events.rows) == ["ok-1", "ok-2"]
    assert sorted(d.message_id for d in pipeline.delivery_messages()) == ["ok-1", "ok-2"]
    letter = event_letter(pipeline, "deep-1")
    assert letter["reason"].startswith("contract validation failed on this event: RecursionError")
    entry = pipeline.log_entry("deep-1")
    assert entry is not None and entry["state"] == "done" and entry["dead_lettered"]
    stages = pipeline.traces.trace(WORKSPACE_ID, "deep-1")["stages"]
    assert [s["stage"] for s in stages] == ["received", "dead_lettered"]


def test_a_dead_lettered_event_is_replayed_to_its_source_once_the_contract_is_fixed() -> None:
    validator = RecursingValidator()
    pipeline = routed_pipeline(validator=validator)
    events = make_events(track(messageId="deep-1", properties={"nested": {}}))
    pipeline.process(source_message(events))
    validator.fixed = True

    report = pipeline.dead_letters.replay(WORKSPACE_ID, DeadLetterQuery(), dry_run=False)
    [(data, attributes)] = pipeline.published(SOURCE_TOPIC)
    replayed = parse_source_message(data, attributes, "ps-replay")
    outcome = pipeline.process(replayed)

    assert report.replayed == [event_dead_letter_id("deep-1")] and report.skipped == []
    assert attributes["source_id"] == SOURCE_ID and "replay" not in attributes
    assert outcome.stored == 1 and outcome.dead_lettered == 0
    assert event_letter(pipeline, "deep-1")["status"] == "replayed"
    stages = [s["stage"] for s in pipeline.traces.trace(WORKSPACE_ID, "deep-1")["stages"]]
    assert stages[-2:] == ["stored", "routed"] and "replayed" in stages


def test_a_transient_failure_still_raises_for_a_redelivery() -> None:
    pipeline = routed_pipeline(validator=DownValidator())

    with pytest.raises(Unavailable):
        pipeline.process(source_message(make_events(track(messageId="m-1"))))

    assert pipeline.dead_letters.list(WORKSPACE_ID, DeadLetterQuery()) == []


# --- a dead letter holding an empty key ---------------------------------------------------------


def test_a_dead_letter_with_an_empty_key_is_recorded_as_text_and_replayable() -> None:
    pipeline = routed_pipeline(results=[http_error(400)])
    events = make_events(track(messageId="empty-1", properties={"ok": True}))
    events[0]["properties"][""] = 1  # published raw: ingest now refuses empty keys
    pipeline.process(source_message(events))
    pipeline.pump_deliveries()

    [letter] = pipeline.pump_dead_letters()
    report = pipeline.dead_letters.replay(WORKSPACE_ID, DeadLetterQuery(), dry_run=False)

    assert letter["delivery"]["event"] is None
    assert json.loads(letter["event_json"])["properties"] == {"ok": True, "": 1}
    assert report.replayed == [letter["id"]]
    [replayed] = pipeline.delivery_messages()[1:]
    assert replayed.replay and replayed.event["properties"] == {"ok": True, "": 1}
    assert pipeline.pump_statuses() == ["delivered"]


def test_a_dead_letter_that_can_never_be_recorded_is_refused_once_not_retried() -> None:
    pipeline = make_pipeline()

    with pytest.raises(InvalidMessage):  # logged once and acknowledged by handle_push
        pipeline.dead_letters.record(b"{}", {PUBSUB_DEAD_LETTER_COUNT: "five"})


# --- source messages Pub/Sub gave up on ---------------------------------------------------------


def pubsub_forwarded(events: list[CanonicalEvent], **attributes: str) -> tuple[bytes, dict]:
    """A source message as Pub/Sub forwards it after `process` failed 100 times (the attributes
    the emulator adds, checked against it)."""
    return json.dumps(events).encode(), {
        "workspace_id": WORKSPACE_ID,
        "source_id": SOURCE_ID,
        PUBSUB_DEAD_LETTER_COUNT: "100",
        PUBSUB_DEAD_LETTER_SUBSCRIPTION: f"streams-process-{SOURCE_ID}",
        "CloudPubSubDeadLetterSourceSubscriptionProject": "test-project",
        **attributes,
    }


def test_a_source_message_pubsub_gave_up_on_is_recorded_per_event_and_replayable() -> None:
    pipeline = routed_pipeline()
    done, stuck = make_events(track(messageId="done-1"), track(messageId="stuck-1"))
    pipeline.process(source_message([done]))
    # The message's first push claimed `stuck-1`, then every push failed.
    pipeline.claims.claim(WORKSPACE_ID, [event_key("stuck-1")], "ps-stuck")

    letters = pipeline.dead_letters.record(*pubsub_forwarded([done, stuck]))
    trace = pipeline.traces.trace(WORKSPACE_ID, "stuck-1")
    report = pipeline.dead_letters.replay(WORKSPACE_ID, DeadLetterQuery(), dry_run=False)
    [(data, attributes)] = pipeline.published(SOURCE_TOPIC)
    outcome = pipeline.process(parse_source_message(data, attributes, "ps-replay"))

    assert [d["message_id"] for d in letters] == ["stuck-1"]  # done-1 was processed after all
    [letter] = letters
    assert (letter["workspace_id"], letter["source_id"]) == (WORKSPACE_ID, SOURCE_ID)
    assert (letter["reason_code"], letter["attempts"]) == ("processing_failed", 100)
    assert trace["state"] == "processed"
    assert [s["stage"] for s in trace["stages"]] == ["received", "dead_lettered"]
    assert report.replayed == [letter["id"]]
    assert outcome.stored == 1, "the replay is not mistaken for a duplicate of the claim"


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({PUBSUB_DEAD_LETTER_SUBSCRIPTION: "streams-process-unknown"}, "unknown source"),
        ({"workspace_id": "ws-other"}, "is not of workspace"),
    ],
)
def test_a_forwarded_source_message_names_its_workspace_only_through_its_source(
    change: dict[str, str], why: str
) -> None:
    pipeline = routed_pipeline()
    events = make_events(track(messageId="m-1"))

    with pytest.raises(InvalidMessage, match=why):
        pipeline.dead_letters.record(*pubsub_forwarded(events, **change))


def test_a_forwarded_source_message_with_events_of_another_workspace_is_refused() -> None:
    pipeline = routed_pipeline()
    events = make_events(track(messageId="m-1"), workspace_id="ws-other")

    with pytest.raises(InvalidMessage, match="another workspace"):
        pipeline.dead_letters.record(*pubsub_forwarded(events))
    assert pipeline.store.query("workspaces/ws-other/dead_letters") == []


def test_source_subscriptions_dead_letter_after_the_attempt_limit() -> None:
    settings = Settings(project_id="test-project", process_push_endpoint="http://process")

    policy = process_push_policy(settings, FakeTopicAdmin())

    assert policy is not None
    assert policy.dead_letter_topic == DEAD_LETTERS_TOPIC
    assert policy.max_delivery_attempts == 100 and policy.max_backoff_seconds == 60


# --- deliver: one event its connector cannot build ----------------------------------------------


def test_an_event_its_connector_cannot_build_is_dead_lettered_and_the_others_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = deliver_module.connector_for

    class Breaks:
        def __init__(self, connector: Any) -> None:
            self._connector = connector
            self.type, self.about = connector.type, connector.about

        def parts(self, event: dict[str, Any], config: Any, *, now: Any) -> Any:
            if event["messageId"] == "breaks-1":
                raise KeyError("context")
            return self._connector.parts(event, config, now=now)

        def request(self, key: str, payloads: Any, config: Any, *, now: Any) -> Any:
            return self._connector.request(key, payloads, config, now=now)

    monkeypatch.setattr(deliver_module, "connector_for", lambda kind: Breaks(real(kind)))
    pipeline = routed_pipeline()
    events = make_events(track(messageId="fine-1"), track(messageId="breaks-1"))
    pipeline.process(source_message(events))

    statuses = pipeline.pump_statuses()
    [letter] = pipeline.pump_dead_letters()

    assert sorted(statuses) == ["dead_lettered", "delivered"]
    assert letter["message_id"] == "breaks-1"
    assert letter["reason_code"] == "unprocessable_event"
    assert "KeyError" in letter["reason"]
