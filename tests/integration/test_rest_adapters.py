"""Ingest's REST adapters on the real emulators: the same documents, counters, messages and
operation counts as the official clients' adapters, and `Unavailable` when a service is down."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from google.cloud import pubsub_v1
from google.pubsub_v1 import types

from emulators.stack import EmulatorStack
from shared.adapters import firestore_rest, operation_counts, pubsub_rest
from shared.adapters.firestore import FirestoreConfigStore, FirestoreCounterStore, new_client
from shared.adapters.rest import Http, RestApi, RestError, RetryPolicy, new_pool
from shared.bootstrap import Services
from shared.config import Settings
from shared.domain.errors import Unavailable
from shared.ports import (
    COMMIT_TIME,
    AlreadyExists,
    CounterStore,
    DocumentStore,
    Increment,
    Write,
)
from tests.conftest import free_port
from tests.integration.test_pubsub_publisher import new_topic, pull_all

pytestmark = pytest.mark.integration

EXPIRES = datetime(2030, 1, 1, tzinfo=UTC)
# Values of every kind ingest's documents hold, and JSON Firestore cannot hold as a map (kept
# as marked JSON bytes by shared.domain.stored_documents).
DOCUMENT = {
    "text": "caf\u00e9 \U0001f600",
    "count": 2**62,
    "ratio": 0.25,
    "on": True,
    "off": False,
    "nothing": None,
    "at": datetime(2026, 12, 3, 16, 0, 0, 123456, tzinfo=UTC),
    "rate_limit": {"events_per_second": 50, "burst": 100},
    "allowed_origins": ["https://a.example", "https://b.example"],
    "empty_map": {},
    "empty_list": [],
    "nested": {"list": [{"deep": [1, "two", 3.5, None]}]},
    "unholdable": {"": "empty key", "matrix": [[1, 2], [3]]},
    "smallest": -(2**63),
}


@pytest.fixture
def settings(emulator_stack: EmulatorStack) -> Settings:
    return Settings.from_env()


@pytest.fixture
def official(settings: Settings) -> FirestoreConfigStore:
    return FirestoreConfigStore(new_client(settings))


@pytest.fixture
def rest(settings: Settings) -> firestore_rest.FirestoreRestStore:
    return firestore_rest.FirestoreRestStore(rest_api(settings), settings.project_id)


def rest_api(settings: Settings) -> RestApi:
    return firestore_rest.new_api(settings, no_credentials)


def no_credentials() -> Http:
    raise AssertionError("the emulators need no credentials")


def collection() -> str:
    return f"rest-{uuid.uuid4().hex[:10]}"


def test_each_reads_what_the_other_wrote(
    official: FirestoreConfigStore, rest: firestore_rest.FirestoreRestStore
) -> None:
    path = f"{collection()}/doc"
    official.commit([Write("create", path, DOCUMENT)])
    assert rest.get(path) == official.get(path) == DOCUMENT

    other = f"{collection()}/doc"
    rest.commit([Write("create", other, DOCUMENT)])
    assert official.get(other) == rest.get(other) == DOCUMENT


def test_writes_of_every_kind_land_as_the_official_adapter_lands_them(
    official: FirestoreConfigStore, rest: firestore_rest.FirestoreRestStore
) -> None:
    paths = {name: f"{collection()}/doc" for name in ("official", "rest")}
    stores: dict[str, DocumentStore] = {"official": official, "rest": rest}
    for name, store in stores.items():
        path = paths[name]
        store.commit([Write("create", path, {"n": 1, "keep": "x", "created": COMMIT_TIME})])
        store.commit([Write("update", path, {"n": Increment(4), "last_used_at": "t1"})])
        store.commit([Write("update", path, {"webhook_signature_failures": Increment(2)})])
        with pytest.raises(AlreadyExists):
            store.commit([Write("create", path, {"n": 0})])
    found = {name: official.get(path) for name, path in paths.items()}
    assert found == {name: rest.get(path) for name, path in paths.items()}
    for document in found.values():
        assert document is not None
        created = document.pop("created")
        assert isinstance(created, datetime) and created.tzinfo is not None
    assert found["official"] == found["rest"]
    assert found["rest"] == {
        "n": 5,
        "keep": "x",
        "last_used_at": "t1",
        "webhook_signature_failures": 2,
    }

    rest.commit([Write("set", paths["official"], {"replaced": True})])
    assert official.get(paths["official"]) == {"replaced": True}
    rest.commit([Write("delete", path) for path in paths.values()])
    assert official.get(paths["official"]) is None and official.get(paths["rest"]) is None


def test_missing_documents_and_unnamable_paths(
    rest: firestore_rest.FirestoreRestStore,
) -> None:
    assert rest.get(f"{collection()}/missing") is None
    assert rest.get("write_keys/a b (c)") is None  # an id the official client also accepts
    assert rest.get("not-a-document") is None  # an odd number of segments names a collection
    with pytest.raises(RestError) as refused:
        rest.commit([Write("update", f"{collection()}/missing", {"n": Increment(1)})])
    assert refused.value.code == "NOT_FOUND"


def test_the_ingest_services_resolve_keys_and_record_use_over_rest(
    live_services: Services,
) -> None:
    workspace = live_services.workspaces.create("REST")
    source = live_services.sources.create(workspace.id, "rest source", "t")
    ingest_services = Services(live_services.settings, rest_clients=True)
    key = ingest_services.ingest.authorize(source.key)
    assert key == live_services.sources.resolve_write_key(source.key)

    ids = ingest_services.ingest.accept(key, {"event": "E", "userId": "u"}, "track", None)
    assert len(ids.message_ids) == 1
    stored = live_services.sources.get(workspace.id, source.id)
    assert stored.last_used_at is not None


@pytest.mark.parametrize("variant", ["official", "rest"])
def test_concurrent_increments_each_see_a_distinct_total(settings: Settings, variant: str) -> None:
    counters: CounterStore
    if variant == "official":
        client = new_client(settings)
        FirestoreConfigStore(client).get("rate_windows/warm-up")  # opens the channel
        counters = FirestoreCounterStore(client)
    else:
        counters = firestore_rest.FirestoreRestCounterStore(rest_api(settings), settings.project_id)
    path = f"rate_windows/{uuid.uuid4().hex}-1"
    seen: list[int] = []

    def add() -> None:
        for _ in range(5):
            seen.append(
                counters.increment(path, {"admitted": 1, "requested": 2}, EXPIRES)["admitted"]
            )

    threads = [threading.Thread(target=add) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(seen) == list(range(1, 21))


def test_both_counter_stores_add_to_the_same_window(
    settings: Settings, official: FirestoreConfigStore
) -> None:
    rest = firestore_rest.FirestoreRestCounterStore(rest_api(settings), settings.project_id)
    grpc = FirestoreCounterStore(new_client(settings))
    path = f"rate_windows/{uuid.uuid4().hex}-1"
    assert rest.increment(path, {"requested": 7, "admitted": 5}, EXPIRES) == {
        "requested": 7,
        "admitted": 5,
    }
    assert grpc.increment(path, {"admitted": 2, "requested": 3}, EXPIRES) == {
        "admitted": 7,
        "requested": 10,
    }
    assert rest.increment(path, {"admitted": 1}, EXPIRES) == {"admitted": 8}
    assert official.get(path) == {"admitted": 8, "requested": 10, "expires_at": EXPIRES}


def test_operation_counts_are_those_of_the_official_adapters(
    settings: Settings, official: FirestoreConfigStore, rest: firestore_rest.FirestoreRestStore
) -> None:
    rest_counters = firestore_rest.FirestoreRestCounterStore(
        rest_api(settings), settings.project_id
    )
    grpc_counters = FirestoreCounterStore(new_client(settings))

    def operations(store: DocumentStore, counters: CounterStore) -> dict[str, int]:
        name = collection()
        a, b = f"{name}/a", f"{name}/b"
        before = operation_counts.snapshot()
        store.commit([Write("create", a, {"n": 1}), Write("set", b, {"n": 2})])
        store.commit([Write("update", a, {"n": Increment(1)}), Write("delete", b)])
        with pytest.raises(AlreadyExists):
            store.commit([Write("create", a, {})])  # refused: nothing counted
        store.get(a)
        store.get(b)
        counters.increment(f"{name}/counter", {"x": 1}, EXPIRES)
        after = operation_counts.snapshot()
        return {key: after[key] - before[key] for key in after}

    assert operations(rest, rest_counters) == operations(official, grpc_counters)


def test_published_messages_arrive_whole_and_each_caller_gets_its_own_ids(
    settings: Settings, emulator_stack: EmulatorStack
) -> None:
    topic, subscription = new_topic(pubsub_v1.PublisherClient(), emulator_stack.project_id)
    publisher = pubsub_rest.PubSubRestPublisher(pubsub_rest.new_api(settings, no_credentials))
    outcomes: dict[int, list[str]] = {}
    lock = threading.Lock()

    def send(n: int) -> None:
        messages = [
            (f"{n}-{k}".encode(), {"caller": str(n), "k": str(k), "n\u00e9": "\u00fc"})
            for k in range(1 + n % 3)
        ]
        ids = publisher.publish(topic, messages)
        with lock:
            outcomes[n] = ids

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(send, range(200)))

    expected = sum(1 + n % 3 for n in range(200))
    received = pull_all(subscription, expected)
    assert len(received) == expected
    for n, ids in outcomes.items():
        assert len(ids) == 1 + n % 3
        for k, message_id in enumerate(ids):
            assert received[message_id] == (
                f"{n}-{k}".encode(),
                {"caller": str(n), "k": str(k), "n\u00e9": "\u00fc"},
            )


def test_publishing_counts_the_bytes_the_official_publisher_counts(
    settings: Settings, emulator_stack: EmulatorStack
) -> None:
    topic, _ = new_topic(pubsub_v1.PublisherClient(), emulator_stack.project_id)
    publisher = pubsub_rest.PubSubRestPublisher(pubsub_rest.new_api(settings, no_credentials))
    messages = [
        (b"x" * 100, {"k": "v"}),
        (b"y" * 20_000, {}),
        (b"", {"a": "b", "": "", "k\u00e9" * 50: "v" * 200}),
    ]
    before = operation_counts.snapshot()
    assert len(publisher.publish(topic, messages)) == 3
    after = operation_counts.snapshot()
    request = types.PublishRequest(
        topic=topic, messages=[types.PubsubMessage(data=d, attributes=a) for d, a in messages]
    )
    assert {key: after[key] - before[key] for key in after if after[key] != before[key]} == {
        "pubsub_publish_requests": 1,
        "pubsub_messages": 3,
        "pubsub_bytes": types.PublishRequest.pb(request).ByteSize(),
    }


def test_a_missing_topic_is_unavailable(settings: Settings, emulator_stack: EmulatorStack) -> None:
    publisher = pubsub_rest.PubSubRestPublisher(pubsub_rest.new_api(settings, no_credentials))
    topic = f"projects/{emulator_stack.project_id}/topics/missing-{uuid.uuid4().hex[:8]}"
    with pytest.raises(Unavailable, match="does not exist"):
        publisher.publish(topic, [(b"x", {})])


SHORT = RetryPolicy(codes=frozenset({"UNAVAILABLE"}), deadline_seconds=0.5, attempt_seconds=0.2)


@pytest.mark.parametrize(
    "call",
    [
        lambda api: firestore_rest.FirestoreRestStore(api, "p", SHORT).get("a/b"),
        lambda api: firestore_rest.FirestoreRestStore(api, "p", SHORT).commit(
            [Write("update", "a/b", {"last_used_at": "t"})]
        ),
        lambda api: firestore_rest.FirestoreRestCounterStore(api, "p", SHORT).increment(
            "a/b", {"n": 1}, EXPIRES
        ),
        lambda api: pubsub_rest.PubSubRestPublisher(api, SHORT).publish(
            "projects/p/topics/t", [(b"x", {})]
        ),
    ],
    ids=["get", "commit", "increment", "publish"],
)
def test_a_stopped_service_is_unavailable(call: Callable[[RestApi], object]) -> None:
    # A port nothing listens on: the emulator stopped.
    api = RestApi("Service", f"http://127.0.0.1:{free_port()}/v1/", new_pool(), {})
    with pytest.raises(Unavailable, match="Service is unavailable"):
        call(api)
