"""The group-commit publisher and the ingest function on the real Pub/Sub emulator."""

from __future__ import annotations

import asyncio
import base64
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from google.cloud import pubsub_v1

from emulators.stack import EmulatorStack
from shared.adapters.pubsub import PubSubPublisher, new_publisher_client
from shared.adapters.pubsub_rest import AsyncGroupPublisher
from shared.bootstrap import Services
from shared.config import Settings
from shared.domain.errors import Unavailable
from shared.ports import PushPolicy
from tests.pubsub_helpers import TopicReader

pytestmark = pytest.mark.integration


@pytest.fixture
def client(emulator_stack: EmulatorStack) -> pubsub_v1.PublisherClient:
    return new_publisher_client()


def new_topic(client: pubsub_v1.PublisherClient, project: str) -> tuple[str, str]:
    """A fresh topic and a pull subscription on it, created before anything is published."""
    topic = client.create_topic(name=client.topic_path(project, f"gc-{uuid.uuid4().hex[:8]}")).name
    subscription = topic.replace("/topics/", "/subscriptions/")
    pubsub_v1.SubscriberClient().create_subscription(request={"name": subscription, "topic": topic})
    return topic, subscription


def pull_all(subscription: str, expected: int) -> dict[str, tuple[bytes, dict[str, str]]]:
    """Messages by server id, until `expected` arrived or 20 empty-ish pulls passed."""
    subscriber = pubsub_v1.SubscriberClient()
    received: dict[str, tuple[bytes, dict[str, str]]] = {}
    for _ in range(40):
        if len(received) >= expected:
            break
        response = subscriber.pull(
            request={"subscription": subscription, "max_messages": 1000}, timeout=5
        )
        for item in response.received_messages:
            received[item.message.message_id] = (item.message.data, dict(item.message.attributes))
        if response.received_messages:
            subscriber.acknowledge(
                request={
                    "subscription": subscription,
                    "ack_ids": [item.ack_id for item in response.received_messages],
                }
            )
    return received


def test_concurrent_callers_each_get_the_ids_of_their_own_messages(
    client: pubsub_v1.PublisherClient, emulator_stack: EmulatorStack
) -> None:
    topic, subscription = new_topic(client, emulator_stack.project_id)
    publisher = PubSubPublisher(client)
    outcomes: dict[str, list[str]] = {}
    lock = threading.Lock()

    def send(n: int) -> None:
        messages = [
            (f"{n}-{k}".encode(), {"caller": str(n), "k": str(k)}) for k in range(1 + n % 3)
        ]
        ids = publisher.publish(topic, messages)
        with lock:
            outcomes[str(n)] = ids

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(send, range(300)))

    expected = sum(1 + n % 3 for n in range(300))
    received = pull_all(subscription, expected)
    assert len(received) == expected
    for caller, ids in outcomes.items():
        assert len(ids) == 1 + int(caller) % 3
        # Each id names the very message this caller sent, in the order it sent them.
        for k, message_id in enumerate(ids):
            assert received[message_id] == (
                f"{caller}-{k}".encode(),
                {"caller": caller, "k": str(k)},
            )


def test_more_messages_than_one_rpc_holds(
    client: pubsub_v1.PublisherClient, emulator_stack: EmulatorStack
) -> None:
    topic, subscription = new_topic(client, emulator_stack.project_id)
    messages = [(str(i).encode(), {"i": str(i)}) for i in range(2300)]
    ids = PubSubPublisher(client).publish(topic, messages)
    assert len(set(ids)) == 2300
    received = pull_all(subscription, 2300)
    assert [received[message_id][0] for message_id in ids] == [data for data, _ in messages]


def test_a_missing_topic_is_unavailable_and_fails_no_other_topic(
    client: pubsub_v1.PublisherClient, emulator_stack: EmulatorStack
) -> None:
    topic, subscription = new_topic(client, emulator_stack.project_id)
    missing = client.topic_path(emulator_stack.project_id, f"missing-{uuid.uuid4().hex[:8]}")
    publisher = PubSubPublisher(client)

    def publish(target: str) -> list[str] | Exception:
        try:
            return publisher.publish(target, [(b"x", {})])
        except Unavailable as exc:
            return exc

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(publish, [missing, topic] * 20))
    for target, outcome in zip([missing, topic] * 20, outcomes, strict=True):
        if target == missing:
            assert isinstance(outcome, Unavailable) and outcome.status == 503
            assert "does not exist" in outcome.message
        else:
            assert isinstance(outcome, list) and len(outcome) == 1
    assert len(pull_all(subscription, 20)) == 20


def test_async_callers_on_one_loop_each_get_the_ids_of_their_own_messages(
    client: pubsub_v1.PublisherClient, emulator_stack: EmulatorStack
) -> None:
    """Ingest's event loop: 300 concurrent requests share RPCs of the real publisher, each gets
    its own messages' ids, and a missing topic fails only its own requests."""
    topic, subscription = new_topic(client, emulator_stack.project_id)
    missing = client.topic_path(emulator_stack.project_id, f"missing-{uuid.uuid4().hex[:8]}")
    publisher = AsyncGroupPublisher(PubSubPublisher(client))

    async def send(n: int) -> list[str] | Exception:
        target = missing if n % 10 == 0 else topic
        messages = [
            (f"{n}-{k}".encode(), {"caller": str(n), "k": str(k)}) for k in range(1 + n % 3)
        ]
        try:
            return await publisher.publish(target, messages)
        except Unavailable as exc:
            return exc

    async def everyone() -> list[list[str] | Exception]:
        return await asyncio.gather(*(send(n) for n in range(300)))

    outcomes = asyncio.run(everyone())
    expected = sum(1 + n % 3 for n in range(300) if n % 10)
    received = pull_all(subscription, expected)
    assert len(received) == expected
    for n, outcome in enumerate(outcomes):
        if n % 10 == 0:
            assert isinstance(outcome, Unavailable) and "does not exist" in outcome.message
            continue
        assert isinstance(outcome, list) and len(outcome) == 1 + n % 3
        for k, message_id in enumerate(outcome):
            assert received[message_id] == (f"{n}-{k}".encode(), {"caller": str(n), "k": str(k)})


def test_concurrent_track_requests_through_the_production_server(
    live_services: Services, serve_function: Callable[[str], str]
) -> None:
    """The asynchronous server's requests share Publish RPCs, and those that reach the topic
    together share a message; every 200 is an event on the topic, once."""
    url = serve_function("ingest")
    workspace = live_services.workspaces.create("Group commit")
    source = live_services.sources.create(workspace.id, "concurrent", "t")
    reader = TopicReader(source.pubsub_topic, "gc")
    auth = {"Authorization": "Basic " + base64.b64encode(f"{source.key}:".encode()).decode()}

    def track(i: int) -> tuple[int, str]:
        body = {"event": "Concurrent", "userId": f"u{i}", "messageId": f"gc-{i}"}
        with requests.Session() as session:
            response = session.post(f"{url}/v1/track", json=body, headers=auth, timeout=30)
        return response.status_code, response.json()["messageId"]

    with ThreadPoolExecutor(max_workers=24) as pool:
        answers = list(pool.map(track, range(200)))
    assert answers == [(200, f"gc-{i}") for i in range(200)]
    events = reader.events(200)
    assert sorted(event["messageId"] for event in events) == sorted(f"gc-{i}" for i in range(200))
    # 24 clients at once: requests meet behind an RPC in flight and share a message.
    assert reader.messages < 200


def test_push_subscriptions_on_the_emulator_have_no_retry_policy(
    emulator_stack: EmulatorStack,
) -> None:
    """Under a retry policy the emulator stops pushing messages that failed for a while (B8)."""
    services = Services(Settings.from_env())
    topic = services.topics.ensure_topic(f"b8-{uuid.uuid4().hex[:8]}")
    dead_letters = services.topics.ensure_topic(f"b8-dead-{uuid.uuid4().hex[:8]}")
    policy = PushPolicy(
        endpoint="http://127.0.0.1:9/", dead_letter_topic=dead_letters, max_delivery_attempts=10
    )

    path = services.topics.ensure_push_subscription(topic, f"b8-{uuid.uuid4().hex[:8]}", policy)

    subscription = pubsub_v1.SubscriberClient().get_subscription(subscription=path)
    assert subscription.push_config.push_endpoint == policy.endpoint
    assert not type(subscription).pb(subscription).HasField("retry_policy")
    # Retried every second, 10 attempts would dead-letter after a 10 s outage of the function.
    assert subscription.dead_letter_policy.max_delivery_attempts == 100
