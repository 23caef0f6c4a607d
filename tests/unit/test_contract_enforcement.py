"""Contracts in the pipeline, over the fakes: the validator as process's contract step (policy,
matching precedence, caching, recording, quarantine) and the quarantine's list and replay."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from shared.domain.contracts import (
    CompiledContract,
    EventContract,
    contract_path,
    violations_collection,
)
from shared.domain.pipeline import event_key, parse_source_message
from shared.domain.sources import source_path
from shared.ports import Write
from shared.services.contract_validator import (
    ContractValidator,
    contract_document,
    quarantine_path,
)
from shared.services.contracts import EventContracts
from shared.services.quarantine import Quarantine, QuarantineQuery
from tests.fakes import FakePublisher, InMemoryConfigStore
from tests.unit.pipeline_fixtures import (
    SOURCE_ID,
    WORKSPACE_ID,
    Clock,
    Pipeline,
    add_destination,
    add_rule,
    identify,
    make_events,
    make_pipeline,
    source_message,
    track,
)

SOURCE_TOPIC = f"projects/test-project/topics/streams-source-{SOURCE_ID}"
PURCHASE = {
    "properties": {
        "order_id": {"type": "string", "required": True},
        "total": {"type": "number", "required": True},
        "currency": {"type": "string", "required": True},
    }
}
GOOD = {"order_id": "o-1", "total": 150, "currency": "USD"}
BAD = {"order_id": "o-2", "currency": "USD"}  # no total


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingStore(InMemoryConfigStore):
    """Counts commits and their sizes (the validator must batch)."""

    def __init__(self) -> None:
        super().__init__()
        self.commits: list[int] = []

    def commit(self, writes: Any) -> None:
        batch = list(writes)
        self.commits.append(len(batch))
        super().commit(batch)


@dataclass
class Setup:
    store: CountingStore
    pipeline: Pipeline
    contracts: EventContracts
    validator: ContractValidator
    quarantine: Quarantine
    monotonic: Monotonic

    def stored_contract(self, schema_definition: dict[str, Any], **fields: Any) -> EventContract:
        """A contract written straight to the store, as one saved before a check that now
        refuses its schema."""
        contract = EventContract(
            id="c-stored",
            workspace_id=WORKSPACE_ID,
            name="Saved long ago",
            event_type="track",
            event_name="purchase_completed",
            schema_definition=schema_definition,
            enforcement_mode="warn",
            undeclared_fields="allow",
            status="active",
            version=1,
            created_at="2024-01-01T00:00:00.000Z",
            updated_at="2024-01-01T00:00:00.000Z",
        ).model_copy(update=fields)
        self.store.documents[contract_path(WORKSPACE_ID, contract.id)] = contract_document(contract)
        return contract

    def contract(self, **fields: Any) -> EventContract:
        body = {
            "name": "Purchase Completed Schema",
            "event_type": "track",
            "event_name": "purchase_completed",
            "schema_definition": PURCHASE,
            **fields,
        }
        return self.contracts.create(WORKSPACE_ID, **body)

    def send(self, *items: dict[str, Any], pubsub_id: str = "ps-1") -> Any:
        return self.pipeline.process(source_message(make_events(*items), pubsub_id))

    def records(self, contract: EventContract) -> list[dict[str, Any]]:
        return self.store.list_documents(violations_collection(WORKSPACE_ID, contract.id))

    def quarantined(self) -> list[dict[str, Any]]:
        return self.quarantine.list(WORKSPACE_ID, QuarantineQuery())

    def stored_ids(self) -> list[str]:
        return [row["message_id"] for row in self.pipeline.events.rows]

    def routed_ids(self) -> list[str]:
        return [m.message_id for m in self.pipeline.delivery_messages()]


@pytest.fixture
def setup() -> Setup:
    store = CountingStore()
    clock = Clock()
    monotonic = Monotonic()
    publisher = FakePublisher()
    validator = ContractValidator(store, ttl_seconds=5, clock=clock, monotonic=monotonic)
    pipeline = make_pipeline(validator=validator, store=store, clock=clock, publisher=publisher)
    add_destination(store, "dest-1")
    add_rule(store, "rule-1", "dest-1")
    store.documents[source_path(WORKSPACE_ID, SOURCE_ID)] = {
        "id": SOURCE_ID,
        "workspace_id": WORKSPACE_ID,
        "pubsub_topic": SOURCE_TOPIC,
    }
    return Setup(
        store,
        pipeline,
        EventContracts(store, clock=clock),
        validator,
        Quarantine(store, publisher, validator, pipeline.event_log, clock=clock),
        monotonic,
    )


def purchase(properties: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return track("purchase_completed", properties=properties, **fields)


def test_warn_stores_and_routes_and_records_violations(setup: Setup) -> None:
    contract = setup.contract(enforcement_mode="warn")

    outcome = setup.send(purchase(GOOD), purchase(BAD))

    assert (outcome.stored, outcome.blocked) == (2, 0)
    assert setup.stored_ids() == ["msg-1", "msg-2"] == setup.routed_ids()
    [record] = setup.records(contract)
    assert record["message_id"] == "msg-2" and record["blocked"] is False
    assert record["event_name"] == "purchase_completed"
    assert record["violations"] == [
        {
            "type": "Required-Missing",
            "field": "properties.total",
            "message": "total is required",
            "expected": "present",
            "actual": None,
            "action": "warned",
        }
    ]
    entry = setup.pipeline.log_entry("msg-2")
    assert entry is not None and entry["blocked"] is False
    assert entry["violations"][0]["type"] == "Required-Missing"
    stages = [s["stage"] for s in setup.pipeline.traces.trace(WORKSPACE_ID, "msg-2")["stages"]]
    assert "violated" in stages and "stored" in stages
    assert setup.quarantined() == []


def test_block_quarantines_and_neither_stores_nor_routes(setup: Setup) -> None:
    contract = setup.contract(enforcement_mode="block")

    outcome = setup.send(purchase(GOOD), purchase(BAD))

    assert (outcome.stored, outcome.blocked) == (1, 1)
    assert setup.stored_ids() == ["msg-1"] == setup.routed_ids()
    [held] = setup.quarantined()
    assert held["message_id"] == "msg-2" and held["status"] == "quarantined"
    assert held["contract_ids"] == [contract.id]
    assert held["reasons"][0]["type"] == "Required-Missing"
    assert held["event"]["properties"] == BAD and held["times_quarantined"] == 1
    assert setup.records(contract)[0]["violations"][0]["action"] == "blocked"
    trace = setup.pipeline.traces.trace(WORKSPACE_ID, "msg-2")
    assert [s["stage"] for s in trace["stages"]][-1] == "blocked"


def test_allow_passes_and_keeps_violations_for_the_shadow_report(setup: Setup) -> None:
    contract = setup.contract(enforcement_mode="allow")

    outcome = setup.send(purchase(BAD))

    assert (outcome.stored, outcome.blocked) == (1, 0)
    assert setup.records(contract)[0]["violations"][0]["action"] == "allowed"


@pytest.mark.parametrize(
    ("undeclared_fields", "blocked", "action"),
    [("allow", 0, "allowed"), ("warn", 0, "warned"), ("block", 1, "blocked")],
)
def test_undeclared_fields_follow_their_own_policy(
    setup: Setup, undeclared_fields: str, blocked: int, action: str
) -> None:
    contract = setup.contract(enforcement_mode="allow", undeclared_fields=undeclared_fields)

    outcome = setup.send(purchase({**GOOD, "coupon": "SAVE10"}))

    assert outcome.blocked == blocked
    [violation] = setup.records(contract)[0]["violations"]
    assert (violation["type"], violation["field"], violation["action"]) == (
        "Undeclared-Field",
        "properties.coupon",
        action,
    )


def test_every_matching_contract_applies_and_the_strictest_wins(setup: Setup) -> None:
    every_track = setup.contract(
        name="All tracks",
        event_name=None,
        schema_definition={"properties": {"total": {"type": "number"}}},
        enforcement_mode="warn",
    )
    named = setup.contract(enforcement_mode="block")
    other_name = setup.contract(event_name="Order Refunded", enforcement_mode="block")

    outcome = setup.send(
        purchase({"total": "150"}),  # breaks both matching contracts; one blocks
        track("Signed Up", properties={"total": 1}),  # only the contract for every name judges
    )

    assert outcome.blocked == 1 and setup.stored_ids() == ["msg-2"]
    assert [r["message_id"] for r in setup.records(every_track)] == ["msg-1"]
    assert [r["message_id"] for r in setup.records(named)] == ["msg-1"]
    assert setup.records(other_name) == []
    [held] = setup.quarantined()
    assert held["contract_ids"] == [named.id]  # the warn contract did not block it


def test_identify_contracts_judge_traits_and_archived_contracts_nothing(setup: Setup) -> None:
    traits = setup.contract(
        event_type="identify",
        event_name="*",
        schema_definition={"properties": {"email": {"type": "string", "required": True}}},
        enforcement_mode="block",
    )
    archived = setup.contract(enforcement_mode="block", status="archived")

    outcome = setup.send(identify(), purchase(BAD))

    assert outcome.blocked == 1 and setup.stored_ids() == ["msg-2"]
    assert setup.records(traits)[0]["violations"][0]["field"] == "traits.email"
    assert setup.records(archived) == []


def test_contracts_of_another_workspace_do_not_apply(setup: Setup) -> None:
    setup.contracts.create(
        "ws-other",
        name="Elsewhere",
        event_type="track",
        event_name="purchase_completed",
        schema_definition=PURCHASE,
        enforcement_mode="block",
    )

    outcome = setup.send(purchase(BAD))

    assert (outcome.stored, outcome.blocked) == (1, 0)


def test_a_changed_contract_applies_after_the_cache_interval_compiled_once_per_version(
    setup: Setup,
) -> None:
    contract = setup.contract(enforcement_mode="warn")
    event = make_events(purchase(BAD))[0]
    first = setup.validator.contracts(WORKSPACE_ID).matching(event)[0]
    setup.contracts.update(
        WORKSPACE_ID, contract.id, {"schema_definition": {"properties": {"x": {"type": "string"}}}}
    )

    setup.monotonic.now += 4  # inside the interval: the cached version still judges
    assert setup.validator.contracts(WORKSPACE_ID).matching(event)[0] is first
    setup.monotonic.now += 1.5
    changed = setup.validator.contracts(WORKSPACE_ID).matching(event)[0]
    assert changed is not first and changed.contract.version == 2
    setup.monotonic.now += 6  # reloaded, but not recompiled: the version did not change
    assert setup.validator.contracts(WORKSPACE_ID).matching(event)[0] is changed


def test_a_block_is_confirmed_against_fresh_contracts(setup: Setup) -> None:
    contract = setup.contract(enforcement_mode="block")
    setup.send(purchase(GOOD))  # loads (and caches) the blocking version
    setup.contracts.update(WORKSPACE_ID, contract.id, {"enforcement_mode": "warn"})
    setup.monotonic.now += 2  # older than the recheck bound, younger than the cache interval

    outcome = setup.send(purchase(BAD, messageId="late"), pubsub_id="ps-2")

    assert (outcome.stored, outcome.blocked) == (1, 0)


def test_records_and_quarantine_are_written_in_batches(setup: Setup) -> None:
    setup.contract(enforcement_mode="block")
    setup.store.commits.clear()

    outcome = setup.send(*[purchase(BAD, messageId=f"m-{n}") for n in range(450)])

    assert outcome.blocked == 450
    assert max(setup.store.commits) <= 500
    # claims (2), violations + quarantine (900 writes: 3), finish (2): never one per event
    assert len(setup.store.commits) <= 8
    assert len(setup.quarantined()) == 100  # the list's default limit


def test_a_redelivered_message_rewrites_its_records(setup: Setup) -> None:
    contract = setup.contract(enforcement_mode="block")
    events = make_events(purchase(BAD))

    setup.validator.validate(WORKSPACE_ID, events)
    setup.validator.validate(WORKSPACE_ID, events)

    assert len(setup.records(contract)) == 1
    [held] = setup.quarantined()
    assert held["times_quarantined"] == 1


def test_quarantine_lists_by_contract_status_and_time(setup: Setup) -> None:
    purchases = setup.contract(enforcement_mode="block")
    signups = setup.contract(event_name="Signed Up", enforcement_mode="block")
    setup.send(purchase(BAD, messageId="msg-1"))
    setup.send(track("Signed Up", properties={}, messageId="msg-2"), pubsub_id="ps-2")
    setup.send(purchase(BAD, messageId="msg-3"), pubsub_id="ps-3")

    def ids(**query: Any) -> list[str]:
        return [
            q["message_id"] for q in setup.quarantine.list(WORKSPACE_ID, QuarantineQuery(**query))
        ]

    assert ids() == ["msg-3", "msg-2", "msg-1"]  # newest first
    assert ids(contract_id=purchases.id) == ["msg-3", "msg-1"]
    assert ids(contract_id=signups.id, status="quarantined") == ["msg-2"]
    assert ids(status="replayed") == []
    assert ids(limit=1) == ["msg-3"]
    middle = setup.quarantine.list(WORKSPACE_ID, QuarantineQuery())[1]["quarantined_at"]
    assert ids(since=middle) == ["msg-3", "msg-2"]
    assert ids(until=middle) == ["msg-2", "msg-1"]
    assert ids(contract_id="nope") == []


def test_replay_dry_run_reports_against_the_current_contracts(setup: Setup) -> None:
    contract = setup.contract(enforcement_mode="block")
    setup.send(purchase(BAD))
    [held] = setup.quarantined()

    still = setup.quarantine.replay(WORKSPACE_ID, QuarantineQuery(), dry_run=True)
    assert (still.matched, still.replayed) == (1, [])
    assert still.skipped[0]["id"] == held["id"]
    assert still.message_ids == {held["id"]: "msg-1"}  # what the console shows
    assert "still blocked" in still.skipped[0]["reason"]
    assert "properties.total Required-Missing" in still.skipped[0]["reason"]

    fixed = {"properties": {**PURCHASE["properties"], "total": {"type": "number"}}}
    setup.contracts.update(WORKSPACE_ID, contract.id, {"schema_definition": fixed})
    would = setup.quarantine.replay(WORKSPACE_ID, QuarantineQuery(), dry_run=True)

    assert (would.matched, would.replayed, would.skipped) == (1, [held["id"]], [])
    assert SOURCE_TOPIC not in setup.pipeline.publisher.published
    assert setup.quarantined()[0]["status"] == "quarantined"
    assert setup.pipeline.log_entry("msg-1") is not None


def test_replay_republishes_to_the_source_topic_and_process_lets_it_through(
    setup: Setup,
) -> None:
    contract = setup.contract(enforcement_mode="block")
    setup.send(purchase(GOOD), purchase(BAD))
    setup.contracts.update(WORKSPACE_ID, contract.id, {"enforcement_mode": "warn"})

    report = setup.quarantine.replay(WORKSPACE_ID, QuarantineQuery(), dry_run=False)

    assert report.replayed == [event_key("msg-2")]
    [(data, attributes)] = setup.pipeline.published(SOURCE_TOPIC)
    assert attributes["source_id"] == SOURCE_ID and attributes["workspace_id"] == WORKSPACE_ID
    assert setup.pipeline.log_entry("msg-2") is None  # so dedup lets the same messageId in
    [held] = setup.quarantined()
    assert (held["status"], held["replay_count"]) == ("replayed", 1)

    # Pub/Sub pushes it to process; the cached contract (block) is rechecked before blocking.
    setup.monotonic.now += 2
    outcome = setup.pipeline.process(parse_source_message(data, attributes, "ps-replay"))

    assert (outcome.stored, outcome.blocked, outcome.duplicates) == (1, 0, 0)
    assert setup.stored_ids() == ["msg-1", "msg-2"] == setup.routed_ids()
    again = setup.quarantine.replay(WORKSPACE_ID, QuarantineQuery(ids=[held["id"]]), False)
    assert again.skipped == [{"id": held["id"], "reason": "already replayed"}]


def test_replay_skips_events_processed_meanwhile_and_sources_that_are_gone(setup: Setup) -> None:
    setup.contract(enforcement_mode="block", undeclared_fields="allow")
    setup.send(purchase(BAD), purchase(BAD))
    setup.store.commit([Write("update", quarantine_path(WORKSPACE_ID, "msg-1"), {})])
    setup.contracts.update(
        WORKSPACE_ID, setup.contracts.list(WORKSPACE_ID)[0].id, {"enforcement_mode": "allow"}
    )
    # msg-1's log entry says it passed (a concurrent replay got there first).
    entry = setup.pipeline.log_entry("msg-1")
    assert entry is not None and entry["blocked"] is True
    record = setup.store.documents[
        f"workspaces/{WORKSPACE_ID}/event_log/{event_key(entry['pubsub_message_id'])}"
    ]
    record["events"][event_key("msg-1")]["blocked"] = False
    del setup.store.documents[source_path(WORKSPACE_ID, SOURCE_ID)]

    report = setup.quarantine.replay(WORKSPACE_ID, QuarantineQuery(), dry_run=False)

    reasons = {s["id"]: s["reason"] for s in report.skipped}
    assert reasons == {
        event_key("msg-1"): "already processed",
        event_key("msg-2"): f"event source {SOURCE_ID} no longer exists",
    }
    assert report.replayed == [] and setup.pipeline.published(SOURCE_TOPIC) == []


# A schema that recurses without consuming the event: `jsonschema` raised RecursionError on
# every event it judged. The API refuses it now; older contracts may still hold one.
RECURSIVE = {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}


@pytest.mark.parametrize(("mode", "blocked"), [("block", 1), ("warn", 0)])
def test_a_stored_contract_that_cannot_run_judges_each_event_and_spares_the_others(
    setup: Setup, mode: str, blocked: int, caplog: pytest.LogCaptureFixture
) -> None:
    contract = setup.stored_contract(RECURSIVE, enforcement_mode=mode)

    outcome = setup.send(purchase(GOOD), track("page_viewed", properties={"path": "/"}))

    # The batch completes: the matching event is judged by the mode, the other stored.
    assert (outcome.stored, outcome.blocked) == (2 - blocked, blocked)
    assert "msg-2" in setup.stored_ids()
    [record] = setup.records(contract)
    [violation] = record["violations"]
    assert record["message_id"] == "msg-1"
    assert violation["type"] == "Schema-Mismatch" and violation["field"] == "properties"
    assert "could not judge" in violation["message"] and "recursive" in violation["message"]
    if blocked:
        [held] = setup.quarantined()
        assert held["message_id"] == "msg-1"
        assert "could not judge" in held["reasons"][0]["message"]
    setup.send(purchase(GOOD, messageId="again-1"), pubsub_id="ps-2")
    # Said once per contract version, not once per event.
    [logged] = [r for r in caplog.records if r.name == "streams.contracts"]
    assert "cannot run" in logged.getMessage()


class ExplodingSchema:
    """A compiled schema that fails on values holding `boom` (as a validator bug would)."""

    def accepts(self, value: Any) -> bool:
        if "boom" in value:
            raise RecursionError("maximum recursion depth exceeded")
        return True

    def refusal(self, value: Any, path: str) -> list[Any]:
        return []


def test_an_event_the_validator_fails_on_is_judged_alone(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup.contract(enforcement_mode="block")
    compiled_init = CompiledContract.__init__

    def exploding(self: CompiledContract, contract: EventContract) -> None:
        compiled_init(self, contract)
        self.schema = ExplodingSchema()  # type: ignore[assignment]

    monkeypatch.setattr(CompiledContract, "__init__", exploding)

    outcome = setup.send(purchase(GOOD), purchase({**GOOD, "boom": 1}), purchase(GOOD))

    assert (outcome.stored, outcome.blocked) == (2, 1)
    assert setup.stored_ids() == ["msg-1", "msg-3"]
    [held] = setup.quarantined()
    assert held["message_id"] == "msg-2"
    assert held["reasons"][0]["type"] == "Schema-Mismatch"
    assert "RecursionError" in held["reasons"][0]["message"]
