"""The event log: claims in the deduplication window plus one record per processed message, and
what process costs Firestore per event with its claims elsewhere (Valkey's, in production)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from shared.domain.pipeline import event_key
from shared.ports import Document, Write
from shared.services.claims import StoreClaims
from shared.services.event_log import RECORD_ENTRIES, EventLog, event_log_collection
from tests.fakes import InMemoryConfigStore
from tests.unit.pipeline_fixtures import (
    WORKSPACE_ID,
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
