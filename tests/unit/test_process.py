"""Process: dedup by messageId, contract verdicts, storage, routing, deliveries per event."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import pytest

from shared.domain.errors import Unavailable
from shared.domain.event import CanonicalEvent
from shared.domain.outcomes import DUPLICATE_REASON, Observed
from shared.domain.pipeline import DEDUP_HOURS, delivery_id, encode_deliveries, event_key
from shared.domain.storage import event_row
from shared.ports import Write
from shared.services.claims import claim_path
from shared.services.process import Verdict
from tests.fakes import InMemoryConfigStore
from tests.unit.pipeline_fixtures import (
    DELIVERIES_TOPIC,
    WORKSPACE_ID,
    add_destination,
    add_rule,
    alias,
    identify,
    make_events,
    make_pipeline,
    source_message,
    track,
)


class BlockingValidator:
    """Blocks the track events named in `blocked`; warns (without blocking) on those in `warned`."""

    def __init__(self, blocked: set[str], warned: frozenset[str] = frozenset()):
        self.blocked = blocked
        self.warned = warned
        self.calls: list[tuple[str, list[str]]] = []

    def validate(self, workspace_id: str, events: list[CanonicalEvent]) -> list[Verdict]:
        self.calls.append((workspace_id, [e["messageId"] for e in events]))
        violation = [{"type": "Unplanned-Event", "field": "event"}]
        return [
            Verdict(blocked=True, violations=violation)
            if e.get("event") in self.blocked
            else Verdict(violations=violation if e.get("event") in self.warned else [])
            for e in events
        ]


def routed_pairs(pipeline: Any) -> list[tuple[str, str]]:
    return [(m.message_id, m.rule_id) for m in pipeline.delivery_messages()]


def test_every_event_is_stored_once_and_routed_to_every_matching_enabled_rule() -> None:
    pipeline = make_pipeline()
    add_destination(pipeline.store, "dest-a")
    add_destination(pipeline.store, "dest-b")
    add_rule(pipeline.store, "r-all", "dest-a")
    add_rule(pipeline.store, "r-track", "dest-b", event_types=["track"])
    add_rule(pipeline.store, "r-name", "dest-a", event_names=["Order Completed"])
    add_rule(pipeline.store, "r-off", "dest-a", enabled=False)
    add_rule(pipeline.store, "r-page", "dest-b", event_types=["page"])
    events = make_events(track(), identify())

    outcome = pipeline.process(source_message(events))

    assert pipeline.events.rows == [event_row(e) for e in events]
    assert sorted(routed_pairs(pipeline)) == [
        ("msg-1", "r-all"),
        ("msg-1", "r-name"),
        ("msg-1", "r-track"),
        ("msg-2", "r-all"),
    ]
    # One deliveries-topic message per rule, holding that rule's events of the source message.
    assert sorted(a["rule_id"] for _, a in pipeline.published(DELIVERIES_TOPIC)) == [
        "r-all",
        "r-name",
        "r-track",
    ]
    assert (outcome.received, outcome.stored, outcome.deliveries) == (2, 2, 4)
    assert (outcome.duplicates, outcome.blocked, outcome.skipped) == (0, 0, 0)
    entry = pipeline.log_entry("msg-1")
    assert entry is not None
    assert entry["state"] == "done"
    assert [d["rule_id"] for d in entry["deliveries"]] == ["r-all", "r-track", "r-name"]
    assert entry["stored_at"] and entry["routed_at"]


@pytest.mark.parametrize(
    ("item", "selected"),
    [
        (track(), {"r-all", "r-types", "r-names"}),
        (track("Signed Up"), {"r-all", "r-types"}),
        (identify(), {"r-all", "r-types"}),
        ({"type": "page", "userId": "u-1", "name": "Order Completed"}, {"r-all", "r-names"}),
        ({"type": "screen", "userId": "u-1", "name": "Home"}, {"r-all"}),
        ({"type": "group", "userId": "u-1", "groupId": "g-1"}, {"r-all"}),
        (alias(), {"r-all"}),
    ],
)
def test_rules_select_by_type_and_name_and_empty_lists_select_all(
    item: dict[str, Any], selected: set[str]
) -> None:
    pipeline = make_pipeline()
    add_destination(pipeline.store, "dest-1")
    add_rule(pipeline.store, "r-all", "dest-1")
    add_rule(pipeline.store, "r-types", "dest-1", event_types=["track", "identify"])
    add_rule(pipeline.store, "r-names", "dest-1", event_names=["Order Completed"])

    pipeline.process(source_message(make_events(item)))

    assert {m.rule_id for m in pipeline.delivery_messages()} == selected


def test_unmatched_events_and_disabled_rules_produce_no_delivery() -> None:
    pipeline = make_pipeline()
    add_destination(pipeline.store, "dest-1")
    add_rule(pipeline.store, "r-signup", "dest-1", event_names=["Signed Up"])
    add_rule(pipeline.store, "r-off", "dest-1", enabled=False)

    outcome = pipeline.process(source_message(make_events(track(), identify())))

    assert DELIVERIES_TOPIC not in pipeline.publisher.published
    assert (outcome.stored, outcome.deliveries, outcome.skipped) == (2, 0, 0)
    entry = pipeline.log_entry("msg-1")
    assert entry is not None
    assert (entry["state"], entry["deliveries"], entry["skipped"]) == ("done", [], [])


def test_a_rule_whose_destination_is_inactive_or_missing_is_recorded_as_skipped() -> None:
    pipeline = make_pipeline()
    add_destination(pipeline.store, "dest-off", status="inactive")
    add_destination(pipeline.store, "dest-on")
    add_rule(pipeline.store, "r-off", "dest-off")
    add_rule(pipeline.store, "r-gone", "dest-deleted")
    add_rule(pipeline.store, "r-on", "dest-on")

    outcome = pipeline.process(source_message(make_events(track())))

    assert routed_pairs(pipeline) == [("msg-1", "r-on")]
    assert (outcome.deliveries, outcome.skipped) == (1, 2)
    entry = pipeline.log_entry("msg-1")
    assert entry is not None
    assert entry["skipped"] == [
        {"rule_id": "r-off", "destination_id": "dest-off", "reason": "destination is inactive"},
        {"rule_id": "r-gone", "destination_id": "dest-deleted", "reason": "destination is missing"},
    ]


def test_delivery_messages_carry_ids_attributes_and_transformation() -> None:
    pipeline = make_pipeline()
    add_destination(pipeline.store, "dest-1")
    add_rule(pipeline.store, "rule-1", "dest-1", transformation_id="tr-1")
    [event] = make_events(track())

    pipeline.process(source_message([event]))

    [(_, attributes)] = pipeline.published(DELIVERIES_TOPIC)
    [message] = pipeline.delivery_messages()
    assert message.delivery_id == delivery_id("msg-1", "rule-1")
    assert (message.workspace_id, message.message_id) == (WORKSPACE_ID, "msg-1")
    assert (message.rule_id, message.destination_id) == ("rule-1", "dest-1")
    assert message.transformation_id == "tr-1"
    assert message.event == event
    assert message.replay is False
    assert attributes == {
        "workspace_id": WORKSPACE_ID,
        "destination_id": "dest-1",
        "rule_id": "rule-1",
        "deliveries": "1",
        # Deliver's record of the message, the same if process runs the source message again.
        "batch_id": encode_deliveries([message], "ps-1")[0][2]["batch_id"],
    }


def test_the_same_message_id_twice_in_one_message_is_processed_once() -> None:
    pipeline = make_pipeline()
    add_destination(pipeline.store, "dest-1")
    add_rule(pipeline.store, "rule-1", "dest-1")
    events = make_events(track(messageId="dup"), track(messageId="dup"), track(messageId="other"))

    outcome = pipeline.process(source_message(events))

    assert [row["message_id"] for row in pipeline.events.rows] == ["dup", "other"]
    assert routed_pairs(pipeline) == [("dup", "rule-1"), ("other", "rule-1")]
    assert (outcome.received, outcome.duplicates, outcome.stored) == (3, 1, 2)


def test_the_same_message_id_twice_in_one_message_is_counted_in_the_event_log() -> None:
    pipeline = make_pipeline()
    events = make_events(track(messageId="dup"), track(messageId="dup"))

    pipeline.process(source_message(events))

    entry = pipeline.log_entry("dup")
    assert entry is not None
    assert entry["duplicates"] == 1


def test_the_same_message_id_in_another_message_is_a_duplicate() -> None:
    pipeline = make_pipeline()
    add_destination(pipeline.store, "dest-1")
    add_rule(pipeline.store, "rule-1", "dest-1")
    [event] = make_events(track())
    pipeline.process(source_message([event], "ps-1"))

    second = pipeline.process(source_message([event], "ps-2"))
    third = pipeline.process(source_message([event], "ps-3"))

    assert (second.duplicates, second.stored, second.deliveries) == (1, 0, 0)
    assert third.duplicates == 1
    assert len(pipeline.events.rows) == 1
    assert len(pipeline.delivery_messages()) == 1
    entry = pipeline.log_entry("msg-1")
    assert entry is not None
    assert (entry["duplicates"], entry["pubsub_message_id"]) == (2, "ps-1")
    assert entry["last_duplicate_at"] > entry["claimed_at"]


def test_dedup_is_per_workspace() -> None:
    pipeline = make_pipeline()
    first = make_events(track(messageId="same"), workspace_id="ws-1")
    second = make_events(track(messageId="same"), workspace_id="ws-2")

    pipeline.process(source_message(first, "ps-1", workspace_id="ws-1"))
    outcome = pipeline.process(source_message(second, "ps-2", workspace_id="ws-2"))

    assert (outcome.stored, outcome.duplicates) == (1, 0)
    assert [row["workspace_id"] for row in pipeline.events.rows] == ["ws-1", "ws-2"]


def test_a_redelivery_after_a_failure_midway_resumes_without_duplicating_deliveries() -> None:
    pipeline = make_pipeline()
    add_destination(pipeline.store, "dest-1")
    add_rule(pipeline.store, "rule-1", "dest-1")
    message = source_message(make_events(track(), identify()), "ps-1")
    pipeline.events.fail = Unavailable("BigQuery is unavailable")

    with pytest.raises(Unavailable):
        pipeline.process(message)

    assert pipeline.events.rows == []
    assert DELIVERIES_TOPIC not in pipeline.publisher.published
    claimed = pipeline.log_entry("msg-1")
    assert claimed is not None
    assert claimed["state"] == "claimed"

    pipeline.events.fail = None
    outcome = pipeline.process(message)  # Pub/Sub redelivers the same message

    assert (outcome.stored, outcome.duplicates, outcome.deliveries) == (2, 0, 2)
    assert [row["message_id"] for row in pipeline.events.rows] == ["msg-1", "msg-2"]
    assert routed_pairs(pipeline) == [("msg-1", "rule-1"), ("msg-2", "rule-1")]
    done = pipeline.log_entry("msg-1")
    assert done is not None
    assert (done["state"], done["duplicates"]) == ("done", 0)

    again = pipeline.process(message)  # a late redelivery after success goes no further
    assert (again.duplicates, again.stored, again.deliveries) == (2, 0, 0)
    assert len(pipeline.delivery_messages()) == 2


def test_an_event_claimed_by_another_unfinished_message_is_a_duplicate() -> None:
    pipeline = make_pipeline()
    [event] = make_events(track())
    pipeline.events.fail = Unavailable("BigQuery is unavailable")
    with pytest.raises(Unavailable):
        pipeline.process(source_message([event], "ps-1"))
    pipeline.events.fail = None

    outcome = pipeline.process(source_message([event], "ps-2"))

    assert (outcome.duplicates, outcome.stored) == (1, 0)
    assert pipeline.events.rows == []


@pytest.mark.parametrize(
    ("later", "processed_again"),
    [(timedelta(hours=DEDUP_HOURS - 1), False), (timedelta(hours=DEDUP_HOURS, seconds=1), True)],
)
def test_an_expired_dedup_entry_is_processed_again(later: timedelta, processed_again: bool) -> None:
    pipeline = make_pipeline()
    add_destination(pipeline.store, "dest-1")
    add_rule(pipeline.store, "rule-1", "dest-1")
    [event] = make_events(track())
    pipeline.process(source_message([event], "ps-1"))
    pipeline.clock.advance(later)

    outcome = pipeline.process(source_message([event], "ps-2"))

    assert outcome.stored == int(processed_again)
    assert outcome.duplicates == int(not processed_again)
    assert len(pipeline.events.rows) == 1 + int(processed_again)
    assert len(pipeline.delivery_messages()) == 1 + int(processed_again)
    entry = pipeline.log_entry("msg-1")
    assert entry is not None
    assert entry["pubsub_message_id"] == ("ps-2" if processed_again else "ps-1")
    assert entry["state"] == "done"
    assert entry["expires_at"] > pipeline.clock.now


def test_blocked_verdicts_keep_the_event_out_of_storage_and_routing() -> None:
    validator = BlockingValidator(blocked={"Bad Event"}, warned=frozenset({"Odd Event"}))
    pipeline = make_pipeline(validator=validator)
    add_destination(pipeline.store, "dest-1")
    add_rule(pipeline.store, "rule-1", "dest-1")
    events = make_events(track("Bad Event"), track("Odd Event"))

    outcome = pipeline.process(source_message(events))

    assert validator.calls == [(WORKSPACE_ID, ["msg-1", "msg-2"])]
    assert [row["message_id"] for row in pipeline.events.rows] == ["msg-2"]
    assert routed_pairs(pipeline) == [("msg-2", "rule-1")]
    assert (outcome.blocked, outcome.stored, outcome.deliveries) == (1, 1, 1)
    blocked = pipeline.log_entry("msg-1")
    assert blocked is not None
    assert blocked["state"] == "done"
    assert blocked["blocked"] is True
    assert blocked["violations"] == [{"type": "Unplanned-Event", "field": "event"}]
    assert (blocked["stored_at"], blocked["routed_at"], blocked["deliveries"]) == (None, None, [])
    warned = pipeline.log_entry("msg-2")
    assert warned is not None
    assert (warned["blocked"], len(warned["violations"])) == (False, 1)
    assert warned["stored_at"] is not None


def test_duplicates_are_not_validated_again() -> None:
    validator = BlockingValidator(blocked=set())
    pipeline = make_pipeline(validator=validator)
    [event] = make_events(track())
    pipeline.process(source_message([event], "ps-1"))

    outcome = pipeline.process(source_message([event], "ps-2"))

    assert outcome.duplicates == 1
    assert validator.calls == [(WORKSPACE_ID, ["msg-1"])]


class RacingStore(InMemoryConfigStore):
    """Another instance claims `raced` just before our claims are committed."""

    def __init__(self, raced: str):
        super().__init__()
        self.raced = raced

    def commit(self, writes: Iterable[Write]) -> None:
        writes = list(writes)
        if any(w.path == self.raced and w.op == "create" for w in writes):
            self.documents.setdefault(self.raced, {"owner": "ps-other", "duplicates": 0})
        super().commit(writes)


def test_a_claim_lost_to_a_concurrent_instance_is_a_duplicate() -> None:
    racing = RacingStore(claim_path(WORKSPACE_ID, event_key("msg-1")))
    pipeline = make_pipeline(store=racing)
    events = make_events(track(), identify())

    outcome = pipeline.process(source_message(events))

    assert (outcome.duplicates, outcome.stored) == (1, 1)
    assert [row["message_id"] for row in pipeline.events.rows] == ["msg-2"]
    assert racing.documents[claim_path(WORKSPACE_ID, event_key("msg-1"))]["owner"] == "ps-other"


class RecordingObserver:
    """What the live stream is handed: (messageId, status, reason) per observed event."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str | None]] = []

    def observe(self, workspace_id: str, source_id: str, observed: list[Observed]) -> None:
        self.seen += [(o.event["messageId"], o.status, o.reason) for o in observed]


def test_observers_see_every_outcome_with_its_reason() -> None:
    observer = RecordingObserver()
    pipeline = make_pipeline(validator=BlockingValidator({"Bad"}), observers=[observer])
    pipeline.process(
        source_message(make_events(track(messageId="ok"), track("Bad", messageId="bad")))
    )
    pipeline.process(source_message(make_events(track(messageId="ok"))))  # a duplicate only
    assert observer.seen == [
        ("ok", "stored", None),
        ("bad", "blocked", "blocked by a contract: event: Unplanned-Event"),
        ("ok", "duplicate", DUPLICATE_REASON),
    ]
