"""The adapters count what they do, on the real emulators: a known sequence of Firestore,
Pub/Sub and BigQuery operations gives known counts (shared/adapters/operation_counts.py). This
is what makes the cost inputs "counted at the adapter" (bench/pipeline/costs.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from bench.events import canonical_events, track_event
from emulators.stack import EmulatorStack
from shared.adapters import operation_counts
from shared.adapters.bigquery import BigQueryEventStore, ensure_tables
from shared.adapters.bigquery import new_client as new_bigquery_client
from shared.adapters.firestore import FirestoreConfigStore, FirestoreCounterStore, new_client
from shared.adapters.pubsub import PubSubPublisher, new_publisher_client
from shared.config import Settings
from shared.domain.storage import event_row
from shared.ports import AlreadyExists, Filter, Increment, Write

pytestmark = pytest.mark.integration


def counted(before: dict[str, int]) -> dict[str, int]:
    """What was counted since `before`, the zeros left out."""
    after = operation_counts.snapshot()
    return {name: after[name] - before[name] for name in after if after[name] != before[name]}


def test_firestore_counts_documents_written_deleted_and_read(
    emulator_stack: EmulatorStack,
) -> None:
    client = new_client(Settings.from_env())
    store, counters = FirestoreConfigStore(client), FirestoreCounterStore(client)
    collection = f"operation-counts-{uuid.uuid4().hex[:8]}"
    a, b, c = (f"{collection}/{name}" for name in "abc")
    before = operation_counts.snapshot()

    store.commit([Write("create", a, {"n": 1}), Write("set", b, {"n": 2}), Write("set", c, {})])
    store.commit([Write("update", a, {"n": Increment(1)}), Write("delete", b)])
    assert counted(before) == {
        "firestore_commits": 2,
        "firestore_writes": 4,  # create, set, set, update (the increment is part of its write)
        "firestore_deletes": 1,
    }

    before = operation_counts.snapshot()
    assert store.get(a) == {"n": 2}
    assert store.get(b) is None  # asked for: a read, found or not
    assert set(store.get_many([a, b, c])) == {a, b, c}
    assert len(store.query(collection)) == 2  # a and c
    assert store.query(collection, [Filter("n", "==", 99)]) == []  # billed one read
    assert len(store.list_documents(collection)) == 2
    assert counted(before) == {
        "firestore_lookups": 3,
        "firestore_queries": 3,
        "firestore_reads": 1 + 1 + 3 + 2 + 1 + 2,
    }

    before = operation_counts.snapshot()
    counters.increment(f"{collection}/counter", {"x": 1, "y": 2}, datetime.now(UTC))
    assert counted(before) == {"firestore_commits": 1, "firestore_writes": 1}

    before = operation_counts.snapshot()
    with pytest.raises(AlreadyExists):
        store.create(a, {"n": 0})  # refused: nothing written, nothing counted
    assert counted(before) == {}
    store.commit([Write("delete", path) for path in (a, c, f"{collection}/counter")])


def test_pubsub_counts_messages_and_the_bytes_of_each_publish_request(
    emulator_stack: EmulatorStack,
) -> None:
    from google.pubsub_v1 import types

    client = new_publisher_client()
    topic = client.create_topic(
        name=client.topic_path(emulator_stack.project_id, f"counts-{uuid.uuid4().hex[:8]}")
    ).name
    publisher = PubSubPublisher(client)
    messages = [(b"x" * 100, {"k": "v"}), (b"y" * 2000, {}), (b"", {"a": "b"})]
    before = operation_counts.snapshot()

    assert len(publisher.publish(topic, messages)) == 3

    # The request as the Publish RPC carried it: its messages, their framing and the topic.
    request = types.PublishRequest(
        topic=topic, messages=[types.PubsubMessage(data=d, attributes=a) for d, a in messages]
    )
    assert counted(before) == {
        "pubsub_publish_requests": 1,
        "pubsub_messages": 3,
        "pubsub_bytes": types.PublishRequest.pb(request).ByteSize(),
    }
    assert counted(before)["pubsub_bytes"] > 2100 + len(topic)


def test_bigquery_counts_rows_streamed(emulator_stack: EmulatorStack) -> None:
    settings = Settings.from_env()
    client = new_bigquery_client(settings)
    ensure_tables(client, settings.bigquery_dataset)
    now = datetime.now(UTC)
    events = canonical_events([track_event(i, now) for i in range(3)], now - timedelta(seconds=1))
    store = BigQueryEventStore(client, settings.bigquery_dataset)
    before = operation_counts.snapshot()

    store.insert([event_row(e) for e in events], [e["messageId"] for e in events])

    # This process exports nothing: the rows' bytes are summed only in one that does (the
    # unit tests check that sum).
    assert counted(before) == {"bigquery_insert_requests": 1, "bigquery_rows": 3}
