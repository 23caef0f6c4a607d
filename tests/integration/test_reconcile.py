"""`streams reconcile` against the real Pub/Sub and Firestore emulators: the run-time topics and
subscriptions of sources and destinations are recreated from Firestore, with their settings."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1

from emulators.stack import EmulatorStack
from shared.bootstrap import Services, set_services
from shared.cli import main
from shared.config import Settings
from shared.domain.routing import Destination, deliver_subscription_id, delivery_topic_id
from shared.domain.sources import EventSource, process_subscription_id, source_topic_id
from shared.ports import DELETED_TOPIC, PushPolicy
from shared.services.topology import DEAD_LETTERS_SUBSCRIPTION

pytestmark = pytest.mark.integration

# Where the functions would be: nothing is published in these tests, so nothing is pushed.
PROCESS_ENDPOINT = "http://127.0.0.1:9/process"
DELIVER_ENDPOINT = "http://127.0.0.1:9/deliver"


@pytest.fixture
def services(emulator_stack: EmulatorStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Services]:
    """Services wired as the HTTP functions are, in a project of this test's own: reconcile
    looks at every source and destination of a project, so no other test's may be there."""
    project_id = f"reconcile-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("STREAMS_PROJECT_ID", project_id)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", project_id)
    monkeypatch.setenv("STREAMS_PROCESS_PUSH_ENDPOINT", PROCESS_ENDPOINT)
    monkeypatch.setenv("STREAMS_DELIVER_PUSH_ENDPOINT", DELIVER_ENDPOINT)
    built = Services(Settings.from_env())
    # Terraform's part in production: the dead-letter topic the subscriptions forward to, and
    # its subscription.
    dead_letters = built.topics.ensure_topic(built.settings.dead_letters_topic)
    pubsub_v1.SubscriberClient().create_subscription(
        request={
            "name": subscription_path(built, DEAD_LETTERS_SUBSCRIPTION),
            "topic": dead_letters,
        }
    )
    set_services(built)
    yield built
    set_services(None)


@pytest.fixture
def publisher() -> pubsub_v1.PublisherClient:
    return pubsub_v1.PublisherClient()


@pytest.fixture
def subscriber() -> pubsub_v1.SubscriberClient:
    return pubsub_v1.SubscriberClient()


def reconcile(capsys: pytest.CaptureFixture[str], *flags: str) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["reconcile", *flags]) == 0
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return report


def create_source(services: Services, workspace_id: str, name: str) -> EventSource:
    return services.sources.create(workspace_id, name, created_by="test")


def create_destination(services: Services, workspace_id: str) -> Destination:
    return services.destinations.create(
        workspace_id,
        name="Orders hook",
        type="webhook",
        config={"url": "http://127.0.0.1:9000/hook", "secret": "s" * 16},
    )


def subscription_path(services: Services, subscription_id: str) -> str:
    return f"projects/{services.settings.project_id}/subscriptions/{subscription_id}"


def delete_topic_and_subscription(
    services: Services,
    publisher: pubsub_v1.PublisherClient,
    subscriber: pubsub_v1.SubscriberClient,
    topic_id: str,
    subscription_id: str,
) -> None:
    publisher.delete_topic(request={"topic": services.topics.topic_path(topic_id)})
    subscriber.delete_subscription(
        request={"subscription": subscription_path(services, subscription_id)}
    )


def test_deleted_topics_and_subscriptions_are_recreated_once_with_their_settings(
    services: Services,
    publisher: pubsub_v1.PublisherClient,
    subscriber: pubsub_v1.SubscriberClient,
    capsys: pytest.CaptureFixture[str],
) -> None:
    workspace = services.workspaces.create("Acme")
    lost = create_source(services, workspace.id, "Web")
    kept = create_source(services, workspace.id, "Server")
    services.sources.revoke(workspace.id, kept.id)  # revoked sources keep their topic
    destination = create_destination(services, workspace.id)
    lost_topics = {source_topic_id(lost.id), delivery_topic_id(destination.id)}
    lost_subscriptions = {process_subscription_id(lost.id), deliver_subscription_id(destination.id)}
    delete_topic_and_subscription(
        services, publisher, subscriber, source_topic_id(lost.id), process_subscription_id(lost.id)
    )
    delete_topic_and_subscription(
        services,
        publisher,
        subscriber,
        delivery_topic_id(destination.id),
        deliver_subscription_id(destination.id),
    )

    first = reconcile(capsys)

    assert (first["sources"], first["destinations"]) == (2, 1)
    assert set(first["topics"]["created"]) == lost_topics
    assert first["topics"]["existing"] == [source_topic_id(kept.id)]
    assert set(first["subscriptions"]["created"]) == lost_subscriptions
    assert first["subscriptions"]["existing"] == [process_subscription_id(kept.id)]
    assert first["unowned"] == {"topics": [], "subscriptions": []}
    dead_letters = services.topics.topic_path(services.settings.dead_letters_topic)
    recreated = (
        (source_topic_id(lost.id), process_subscription_id(lost.id), PROCESS_ENDPOINT),
        (
            delivery_topic_id(destination.id),
            deliver_subscription_id(destination.id),
            DELIVER_ENDPOINT,
        ),
    )
    for topic_id, subscription_id, endpoint in recreated:
        topic = services.topics.topic_path(topic_id)
        assert publisher.get_topic(request={"topic": topic}).name == topic
        subscription = subscriber.get_subscription(
            request={"subscription": subscription_path(services, subscription_id)}
        )
        assert subscription.topic == topic
        assert subscription.push_config.push_endpoint == endpoint
        assert subscription.ack_deadline_seconds == PushPolicy(endpoint).ack_deadline_seconds
        assert subscription.dead_letter_policy.dead_letter_topic == dead_letters

    second = reconcile(capsys)

    assert second["topics"]["created"] == [] and second["subscriptions"]["created"] == []
    assert set(second["topics"]["existing"]) == lost_topics | {source_topic_id(kept.id)}
    assert second["subscriptions"]["repointed"] == []
    assert second["subscriptions"]["detached"] == []


def test_a_dry_run_reports_what_is_missing_and_creates_nothing(
    services: Services,
    publisher: pubsub_v1.PublisherClient,
    subscriber: pubsub_v1.SubscriberClient,
    capsys: pytest.CaptureFixture[str],
) -> None:
    workspace = services.workspaces.create("Acme")
    source = create_source(services, workspace.id, "Web")
    topic_id, subscription_id = source_topic_id(source.id), process_subscription_id(source.id)
    delete_topic_and_subscription(services, publisher, subscriber, topic_id, subscription_id)

    report = reconcile(capsys, "--dry-run")

    assert report["dry_run"] is True
    assert report["topics"]["missing"] == [topic_id] and report["topics"]["created"] == []
    assert report["subscriptions"]["missing"] == [subscription_id]
    assert report["subscriptions"]["created"] == []
    with pytest.raises(gexc.NotFound):
        publisher.get_topic(request={"topic": services.topics.topic_path(topic_id)})
    with pytest.raises(gexc.NotFound):
        subscriber.get_subscription(
            request={"subscription": subscription_path(services, subscription_id)}
        )


def test_moved_endpoints_are_repointed_and_detached_or_unowned_ones_only_reported(
    services: Services,
    publisher: pubsub_v1.PublisherClient,
    subscriber: pubsub_v1.SubscriberClient,
    capsys: pytest.CaptureFixture[str],
) -> None:
    workspace = services.workspaces.create("Acme")
    moved = create_source(services, workspace.id, "Moved")
    orphaned = create_source(services, workspace.id, "Orphaned")
    moved_subscription = subscription_path(services, process_subscription_id(moved.id))
    subscriber.modify_push_config(
        request={
            "subscription": moved_subscription,
            "push_config": {"push_endpoint": "http://127.0.0.1:9/old-process"},
        }
    )
    # Its topic deleted, the subscription stays, attached to no topic, and cannot be attached
    # to the topic created again.
    publisher.delete_topic(
        request={"topic": services.topics.topic_path(source_topic_id(orphaned.id))}
    )
    stray_topic = publisher.create_topic(
        request={"name": services.topics.topic_path("streams-source-stray")}
    ).name
    stray_subscription = subscriber.create_subscription(
        request={
            "name": subscription_path(services, "streams-process-stray"),
            "topic": stray_topic,
        }
    ).name

    report = reconcile(capsys)

    assert report["subscriptions"]["repointed"] == [process_subscription_id(moved.id)]
    pushed_to = subscriber.get_subscription(request={"subscription": moved_subscription})
    assert pushed_to.push_config.push_endpoint == PROCESS_ENDPOINT
    assert report["topics"]["created"] == [source_topic_id(orphaned.id)]
    assert report["subscriptions"]["detached"] == [process_subscription_id(orphaned.id)]
    detached = subscriber.get_subscription(
        request={"subscription": subscription_path(services, process_subscription_id(orphaned.id))}
    )
    assert detached.topic == DELETED_TOPIC
    # Terraform's dead-letter topic and subscription are not reported as unowned.
    assert report["unowned"] == {
        "topics": ["streams-source-stray"],
        "subscriptions": ["streams-process-stray"],
    }
    assert publisher.get_topic(request={"topic": stray_topic}).name == stray_topic
    assert subscriber.get_subscription(request={"subscription": stray_subscription})


def test_without_push_endpoints_nothing_is_created(
    services: Services,
    publisher: pubsub_v1.PublisherClient,
    subscriber: pubsub_v1.SubscriberClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    workspace = services.workspaces.create("Acme")
    source = create_source(services, workspace.id, "Web")
    topic_id, subscription_id = source_topic_id(source.id), process_subscription_id(source.id)
    delete_topic_and_subscription(services, publisher, subscriber, topic_id, subscription_id)
    monkeypatch.delenv("STREAMS_PROCESS_PUSH_ENDPOINT")
    set_services(Services(Settings.from_env()))

    assert main(["reconcile"]) == 1

    assert "STREAMS_PROCESS_PUSH_ENDPOINT" in capsys.readouterr().err
    with pytest.raises(gexc.NotFound):
        publisher.get_topic(request={"topic": services.topics.topic_path(topic_id)})
