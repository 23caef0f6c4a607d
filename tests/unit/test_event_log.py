"""The event log: claims in the deduplication window plus one record per processed message, and
what process costs Firestore per event with its claims elsewhere (Valkey's, in production)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from shared.domain.errors import Unavailable
from shared.domain.event import CanonicalEvent
from shared.domain.pipeline import SourceMessage, batch_id, delivery_id, event_key
from shared.ports import Document, Write
from shared.services.claims import StoreClaims
from shared.services.event_log import (
    RECORD_ENTRIES,
    EventLog,
    compact_entry,
    event_log_collection,
    expand_entry,
)
from shared.services.process import Verdict
from tests.fakes import InMemoryClaims, InMemoryConfigStore
from tests.unit.pipeline_fixtures import (
    SOURCE_ID,
    WORKSPACE_ID,
    Pipeline,
    add_destination,
    add_rule,
    make_events,
    make_pipeline,
    source_message,
    track,
)

AT = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


class CountingStore(InMemoryConfigStore):
    """Counts what a Firestore bill counts of the pipeline's state: documents read and written
    (deletes apart). Not `list_documents`: the configuration's reads, cached per instance in
    production (these tests' pipeline reads it afresh each time)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.writes = 0
        self.deletes = 0

    def get(self, path: str) -> Document | None:
        self.reads += 1
        return super().get(path)

    def get_many(self, paths: list[str]) -> dict[str, Document | None]:
        self.reads += len(paths)
        return super().get_many(paths)

    def query(self, collection: str, *args: Any, **kwargs: Any) -> list[Document]:
        found = super().query(collection, *args, **kwargs)
        self.reads += max(1, len(found))  # Firestore bills an empty query one read
        return found

    def commit(self, writes: Iterable[Write]) -> None:
        writes = list(writes)
        self.deletes += sum(w.op == "delete" for w in writes)
        self.writes += sum(w.op != "delete" for w in writes)
        super().commit(writes)


def entry(n: int, **fields: Any) -> Document:
    return {"message_id": f"msg-{n}", "event_type": "track", "state": "done", **fields}


def test_a_record_holds_many_events_in_one_document_and_splits_when_large() -> None:
    store = InMemoryConfigStore()
    log = EventLog(store, StoreClaims(InMemoryConfigStore()))
    small = {event_key(f"msg-{n}"): entry(n) for n in range(10)}
    large = {event_key(f"big-{n}"): entry(n) for n in range(RECORD_ENTRIES * 2 + 1)}
    heavy = {
        event_key(f"heavy-{n}"): entry(n, violations=[{"message": "x" * 100_000}]) for n in range(9)
    }

    log.write(WORKSPACE_ID, "src-1", "ps-small", small, AT)
    log.write(WORKSPACE_ID, "src-1", "ps-large", large, AT)
    log.write(WORKSPACE_ID, "src-1", "ps-heavy", heavy, AT)

    documents = store.list_documents(event_log_collection(WORKSPACE_ID))
    by_owner: dict[str, int] = {}
    for document in documents:
        by_owner[document["pubsub_message_id"]] = by_owner.get(document["pubsub_message_id"], 0) + 1
        assert len(document["events"]) <= RECORD_ENTRIES
    assert by_owner == {"ps-small": 1, "ps-large": 3, "ps-heavy": 2}
    assert log.recorded(WORKSPACE_ID, "ps-large").keys() == large.keys()
    assert log.recorded(WORKSPACE_ID, "ps-heavy").keys() == heavy.keys()
    [record] = [d for d in documents if d["pubsub_message_id"] == "ps-small"]
    assert (record["source_id"], record["claimed_at"]) == ("src-1", "2026-12-03T10:00:00.000Z")
    assert record["expires_at"] == datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


def test_an_entry_is_its_claim_and_its_owners_record() -> None:
    claims = StoreClaims(InMemoryConfigStore())
    log = EventLog(InMemoryConfigStore(), claims)
    keys = [event_key("done-1"), event_key("busy-1")]
    claims.claim(WORKSPACE_ID, keys, "ps-1")
    claims.count_duplicates(WORKSPACE_ID, {keys[0]: 2}, "2026-12-03T10:00:09.000Z")
    log.write(WORKSPACE_ID, "src-1", "ps-1", {keys[0]: entry(1, stored_at="x")}, AT)

    entries = log.entries(WORKSPACE_ID, ["done-1", "busy-1", "never-1"])

    done = entries["done-1"]
    assert done is not None
    assert (done["state"], done["stored_at"], done["source_id"]) == ("done", "x", "src-1")
    assert (done["message_id"], done["duplicates"]) == ("done-1", 2)
    assert done["last_duplicate_at"] == "2026-12-03T10:00:09.000Z"
    busy = entries["busy-1"]
    assert busy is not None
    assert (busy["state"], busy["pubsub_message_id"]) == ("claimed", "ps-1")
    assert entries["never-1"] is None


def test_a_released_event_is_forgotten_though_its_old_record_stays_until_its_ttl() -> None:
    claims = StoreClaims(InMemoryConfigStore())
    log = EventLog(InMemoryConfigStore(), claims)
    claims.claim(WORKSPACE_ID, [event_key("msg-1")], "ps-1")
    log.write(WORKSPACE_ID, "src-1", "ps-1", {event_key("msg-1"): entry(1, blocked=True)}, AT)

    log.release(WORKSPACE_ID, ["msg-1"])
    assert log.entries(WORKSPACE_ID, ["msg-1"]) == {"msg-1": None}
    claims.claim(WORKSPACE_ID, [event_key("msg-1")], "ps-2")

    replayed = log.entries(WORKSPACE_ID, ["msg-1"])["msg-1"]
    assert replayed is not None and replayed["state"] == "claimed"  # the new owner's, not ps-1's


def test_process_writes_one_document_per_message_when_claims_are_kept_elsewhere() -> None:
    store = CountingStore()
    pipeline = make_pipeline(store=store)
    add_destination(store, "dest-1")
    add_rule(store, "rule-1", "dest-1")
    elsewhere = StoreClaims(InMemoryConfigStore())
    pipeline.processor._claims = elsewhere
    pipeline.processor._log = EventLog(store, elsewhere)
    # The first message reads the rules and destinations into the cache.
    pipeline.processor.process(source_message(make_events(track(messageId="warm-1"))))
    store.reads = store.writes = store.deletes = 0

    outcome = pipeline.processor.process(
        source_message(make_events(*[track(messageId=f"b-{n}") for n in range(10)]), "ps-batch")
    )

    assert (outcome.stored, outcome.deliveries) == (10, 10)
    # One record for ten events, no read of the event log: the claims' store took the rest.
    assert (store.reads, store.writes, store.deletes) == (0, 1, 0)


def test_a_redelivery_after_the_record_is_a_duplicate_for_one_query() -> None:
    store = CountingStore()
    pipeline = make_pipeline(store=store)
    message = source_message(make_events(track(), track()), "ps-1")
    pipeline.processor.process(message)
    store.reads = store.writes = 0

    again = pipeline.processor.process(message)

    assert (again.duplicates, again.stored) == (2, 0)
    assert pipeline.events.rows and len(pipeline.events.rows) == 2
    entry_1 = pipeline.log_entry(message.events[0]["messageId"])
    assert entry_1 is not None and entry_1["duplicates"] == 1


def test_the_services_claim_in_valkey_when_a_url_names_one() -> None:
    from shared.adapters.valkey_claims import ValkeyClaims
    from shared.config import Settings
    from tests.fakes import FakeServices

    settings = Settings(project_id="p", valkey_url="valkey://127.0.0.1:1/0")
    assert isinstance(FakeServices(settings).claims, ValkeyClaims)  # no connection until a claim
    assert isinstance(FakeServices().claims, StoreClaims)


class WarnsOnSome:
    """Contracts that find a violation (warn) in events whose messageId says `warn-`."""

    def validate(self, workspace_id: str, events: list[CanonicalEvent]) -> list[Verdict]:
        return [
            Verdict(violations=[{"message": "odd"}] if e["messageId"].startswith("warn-") else [])
            for e in events
        ]


def plain_run(claims: Any, *messages: SourceMessage) -> tuple[Pipeline, CountingStore]:
    """A pipeline with one webhook destination and rule, warmed up, then counted for
    `messages`."""
    store = CountingStore()
    pipeline = make_pipeline(store=store, claims=claims, validator=WarnsOnSome())
    add_destination(store, "dest-1")
    add_rule(store, "rule-1", "dest-1")
    pipeline.process(source_message(make_events(track(messageId="warm-1")), "ps-warm"))
    store.reads = store.writes = store.deletes = 0
    for message in messages:
        pipeline.process(message)
    return pipeline, store


def untimed(entry: Document | None) -> Document:
    """An entry or trace without its times (the fake clock ticks on each read, and the two
    windows read it differently often) or its record's own (`claimed_at`, `expires_at`)."""
    assert entry is not None
    times = ("claimed_at", "expires_at", "stored_at", "routed_at", "at")
    return {
        k: [untimed(s) for s in v] if k == "stages" else v
        for k, v in entry.items()
        if k not in times
    }


def test_a_small_plain_message_keeps_its_outcomes_on_its_claims_and_tells_the_same() -> None:
    messages = [
        source_message(make_events(track(messageId="one-1")), "ps-1"),
        source_message(make_events(*[track(messageId=f"four-{n}") for n in range(4)]), "ps-2"),
    ]
    ids = ["one-1", *[f"four-{n}" for n in range(4)]]

    on_claims, store = plain_run(InMemoryClaims(), *messages)
    in_records, _ = plain_run(None, *messages)

    # Not one Firestore operation for the five events: their outcomes went on their claims.
    assert (store.reads, store.writes, store.deletes) == (0, 0, 0)
    assert not store.list_documents(event_log_collection(WORKSPACE_ID))[1:]  # the warm-up's
    for message_id in ids:
        kept = on_claims.log_entry(message_id)
        assert kept is not None and kept["stored_at"] == kept["routed_at"] is not None
        assert untimed(kept) == untimed(in_records.log_entry(message_id))
        trace = on_claims.traces.trace(WORKSPACE_ID, message_id)
        assert untimed(trace) == untimed(in_records.traces.trace(WORKSPACE_ID, message_id))
    delivered = on_claims.log_entry("one-1")
    assert delivered is not None and delivered["deliveries"][0]["rule_id"] == "rule-1"
    assert delivered["state"] == "done" and delivered["source_id"] == SOURCE_ID


def test_larger_or_eventful_messages_keep_their_records() -> None:
    five = source_message(make_events(*[track(messageId=f"five-{n}") for n in range(5)]), "ps-5")
    warned = source_message(make_events(track(messageId="warn-1")), "ps-warn")

    pipeline, store = plain_run(InMemoryClaims(), five, warned)

    documents = store.list_documents(event_log_collection(WORKSPACE_ID))
    assert {"ps-5", "ps-warn"} <= {d["pubsub_message_id"] for d in documents}
    held = pipeline.claims.get(WORKSPACE_ID, [event_key("five-0"), event_key("warn-1")])
    assert all(claim is not None and claim.outcome is None for claim in held.values())


def test_a_redelivered_message_whose_outcomes_are_on_its_claims_costs_no_read() -> None:
    message = source_message(make_events(track(messageId="again-1")), "ps-again")
    pipeline, store = plain_run(InMemoryClaims(), message)

    again = pipeline.process(message)

    assert (again.duplicates, again.stored, again.deliveries) == (1, 0, 0)
    assert (store.reads, store.writes, store.deletes) == (0, 0, 0)
    entry_1 = pipeline.log_entry("again-1")
    assert entry_1 is not None and (entry_1["state"], entry_1["duplicates"]) == ("done", 1)


def test_a_replayed_event_loses_its_outcome_with_its_claim() -> None:
    claims = InMemoryClaims()
    pipeline, _ = plain_run(claims, source_message(make_events(track(messageId="r-1")), "ps-r"))

    pipeline.event_log.release(WORKSPACE_ID, ["r-1"])
    assert pipeline.log_entry("r-1") is None
    claims.claim(WORKSPACE_ID, [event_key("r-1")], "ps-r2")
    claims.settle(WORKSPACE_ID, "ps-r", {event_key("r-1"): "stale"})  # not the owner any more

    replayed = pipeline.log_entry("r-1")
    assert replayed is not None and replayed["state"] == "claimed"


def test_compact_entries_give_back_what_they_shortened() -> None:
    entry_ = {
        "message_id": "m-1",
        "event_type": "identify",
        "received_at": "2026-12-03T10:00:00.123Z",
        "state": "done",
        "blocked": False,
        "violations": [],
        "stored_at": "2026-12-03T10:00:01.000Z",
        "routed_at": "2026-12-03T10:00:01.000Z",
        "deliveries": [
            {
                "delivery_id": delivery_id("m-1", "rule-1"),
                "rule_id": "rule-1",
                "destination_id": "dest-1",
                "batch_id": batch_id("ps-1", "rule-1", False, 0),
            },
            {
                "delivery_id": delivery_id("m-1", "rule-2"),
                "rule_id": "rule-2",
                "destination_id": "dest-2",
                "batch_id": batch_id("ps-1", "rule-2", False, 3),  # a later chunk's: kept
            },
        ],
        "skipped": [{"rule_id": "rule-3", "destination_id": "dest-3", "reason": "paused"}],
    }
    compact = compact_entry(entry_, "src-1", "ps-1")
    assert compact is not None and '"2026' not in compact  # times as milliseconds

    expanded = expand_entry(compact, WORKSPACE_ID, "m-1", "ps-1")

    assert expanded == {
        **entry_,
        "workspace_id": WORKSPACE_ID,
        "source_id": "src-1",
        "pubsub_message_id": "ps-1",
    }
    odd_time = {**entry_, "received_at": "2026-12-03T10:00:00.123456+00:00"}
    compact_odd = compact_entry(odd_time, "src-1", "ps-1")
    assert compact_odd is not None
    assert expand_entry(compact_odd, WORKSPACE_ID, "m-1", "ps-1")["received_at"] == (
        "2026-12-03T10:00:00.123456+00:00"
    )
    for unplain in (
        {**entry_, "blocked": True},
        {**entry_, "violations": [{"message": "x"}]},
        {**entry_, "suppressed": True},
        {**entry_, "stored_at": None, "routed_at": None},
    ):
        assert compact_entry(unplain, "src-1", "ps-1") is None


def test_valkey_failing_before_the_outcomes_are_kept_records_the_message_in_firestore() -> None:
    # The message must not fail after its events were stored and routed: its redelivery, once a
    # node without a replica restarts empty, would find no claim and store them again.
    claims = InMemoryClaims()
    claims.settle_fails = Unavailable("the deduplication store is unavailable")
    message = source_message(make_events(track(messageId="late-1")), "ps-late")

    pipeline, store = plain_run(claims, message)

    assert pipeline.events.rows[-1]["message_id"] == "late-1"
    assert (store.writes, store.deletes) == (1, 0)  # the record, instead of the outcome
    entry_1 = pipeline.log_entry("late-1")
    assert entry_1 is not None and entry_1["state"] == "done"
    assert entry_1["deliveries"][0]["rule_id"] == "rule-1"
