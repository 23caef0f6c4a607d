"""Streams' own topics are out of every tenant's reach: a `pubsub` destination may not name
one (refused at create, update and send), and every message Streams publishes to its own
topics is signed, with a key of the deployment's."""

from __future__ import annotations

from typing import Any

import pytest

from shared.bootstrap import Services
from shared.destinations.pubsub import InternalTopic, TopicGuard
from shared.domain.signing import SIGNATURE_ATTRIBUTE, MessageSigner, SignedPublisher
from tests.fakes import FakePublisher, InMemoryConfigStore
from tests.functions import function_client
from tests.tenants import Tenant
from tests.unit.pipeline_fixtures import (
    DEAD_LETTERS_TOPIC,
    PROJECT_ID,
    add_destination,
    delivery_message,
    make_pipeline,
)

KEY = "a-deployment-signing-key-of-40-characters"
OWN_TOPICS = [
    f"projects/{PROJECT_ID}/topics/streams-dead-letters",
    f"projects/{PROJECT_ID}/topics/streams-deliveries-d-victim",
    f"projects/{PROJECT_ID}/topics/streams-source-s-victim",
    f"projects/{PROJECT_ID}/topics/custom-dead-letters",  # the dead-letter topic, renamed
]


@pytest.mark.parametrize("topic", OWN_TOPICS)
def test_the_guard_refuses_streams_own_topics(topic: str) -> None:
    guard = TopicGuard(PROJECT_ID, frozenset({"custom-dead-letters"}))
    with pytest.raises(InternalTopic) as refused:
        guard.check(topic)
    assert refused.value.field == "config.topic"
    assert "Streams' own topics" in refused.value.message


@pytest.mark.parametrize(
    "topic",
    [
        "projects/customer-project/topics/streams-source-anything",  # another project
        f"projects/{PROJECT_ID}/topics/orders-out",  # the operator's own topic, granted apart
    ],
)
def test_the_guard_allows_other_topics(topic: str) -> None:
    TopicGuard(PROJECT_ID, frozenset({"custom-dead-letters"})).check(topic)


def pubsub_destination(topic: str) -> dict[str, Any]:
    return {"name": "Out", "type": "pubsub", "config": {"topic": topic}}


@pytest.mark.parametrize("topic", OWN_TOPICS[:3])
def test_the_api_refuses_a_destination_on_streams_own_topics(tenant: Tenant, topic: str) -> None:
    workspace_id, auth = tenant
    client = function_client("destinations")
    base = f"/api/v1/workspaces/{workspace_id}/destinations"
    refused = client.post(base, json=pubsub_destination(topic), headers=auth)
    assert refused.status_code == 400
    assert refused.get_json()["field"] == "config.topic"

    allowed = pubsub_destination("projects/customer-project/topics/events")
    created = client.post(base, json=allowed, headers=auth)
    assert created.status_code == 201
    moved = client.put(
        f"{base}/{created.get_json()['id']}",
        json={"config": {"topic": topic}},
        headers=auth,
    )
    assert (moved.status_code, moved.get_json()["field"]) == (400, "config.topic")


def test_a_stored_destination_on_an_own_topic_is_refused_at_send() -> None:
    """A config saved before the check (or written around the API) never publishes."""
    pipeline = make_pipeline()
    add_destination(pipeline.store, "dest-1", type_="pubsub", config={"topic": OWN_TOPICS[0]})

    outcome = pipeline.deliverer.deliver(delivery_message())

    assert outcome.status == "dead_lettered"
    assert "Streams' own topics" in outcome.detail
    # The only message on the dead-letter topic is deliver's own record of this refusal.
    [(data, _)] = pipeline.published(DEAD_LETTERS_TOPIC)
    assert b'"reason_code":"unsafe_destination"' in data


def test_customer_topics_get_the_customer_publisher_and_no_signature(
    services: Services,
) -> None:
    """deliver signs what it puts on Streams' topics and nothing it gives a customer."""
    internal, customer = FakePublisher(), FakePublisher()
    services.publisher = SignedPublisher(internal, MessageSigner(KEY))
    services.customer_publisher = customer
    tenant_topic = "projects/customer-project/topics/events"
    store = services.store
    assert isinstance(store, InMemoryConfigStore)
    add_destination(store, "dest-1", type_="pubsub", config={"topic": tenant_topic})

    assert services.deliverer.deliver(delivery_message()).status == "delivered"

    [(_, attributes)] = customer.published[tenant_topic]
    assert SIGNATURE_ATTRIBUTE not in attributes
    assert internal.published == {}


def test_signed_messages_verify_and_tampering_does_not() -> None:
    signer = MessageSigner(KEY)
    publisher = FakePublisher()
    SignedPublisher(publisher, signer).publish(
        "t", [(b"data", {"a": "1", SIGNATURE_ATTRIBUTE: "forged"})]
    )
    [(data, attributes)] = publisher.published["t"]
    assert signer.refusal(data, attributes) is None
    assert attributes["a"] == "1" and attributes[SIGNATURE_ATTRIBUTE] != "forged"
    assert signer.refusal(b"datA", attributes) == "the message's signature does not verify"
    assert signer.refusal(data, {}) == "the message is not signed"
    assert MessageSigner(KEY, accept_unsigned=True).refusal(data, {}) is None
    with pytest.raises(ValueError, match="at least 32"):
        MessageSigner("short")
