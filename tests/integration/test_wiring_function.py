"""The wiring function (issue 17 item 5) served by functions-framework on the real emulators,
called through `RemoteTopicAdmin` as event_keys, destinations and streams call it in production
(there with an ID token that Cloud Run checks; nothing checks identities locally)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator

import pytest
import requests

from emulators.dev import function_command
from emulators.processes import ManagedProcess, tcp_open
from emulators.stack import HOST, REPO_ROOT, EmulatorStack
from shared.adapters.wiring_client import RemoteTopicAdmin, WiringRefused
from shared.bootstrap import Services, process_push_policy
from shared.config import Settings
from shared.domain.ids import new_id
from shared.domain.routing import deliver_subscription_id, delivery_topic_id
from shared.domain.sources import process_subscription_id, source_topic_id
from tests.conftest import free_port

pytestmark = pytest.mark.integration

PUSH = {
    "STREAMS_PROCESS_PUSH_ENDPOINT": "http://127.0.0.1:9/process",
    "STREAMS_DELIVER_PUSH_ENDPOINT": "http://127.0.0.1:9/deliver",
}


@pytest.fixture(scope="module")
def served(
    emulator_stack: EmulatorStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, str]]]:
    """The function's URL and the exact environment it runs with: the session's (the e2e stack
    may have set fast delivery retries in it) with the emulators' and the push endpoints."""
    env = {**os.environ, **emulator_stack.env(), **PUSH}
    port = free_port()
    process = ManagedProcess(
        name="wiring",
        command=function_command("wiring", port),
        log_path=tmp_path_factory.mktemp("wiring") / "wiring.log",
        env=env,
        cwd=REPO_ROOT,
        health_check=lambda: tcp_open(HOST, port),
    )
    process.start()
    process.wait_healthy(60)
    yield f"http://{HOST}:{port}", env
    process.stop()


@pytest.fixture
def wiring_url(served: tuple[str, dict[str, str]]) -> str:
    return served[0]


@pytest.fixture
def settings(served: tuple[str, dict[str, str]]) -> Settings:
    # The caller's settings are the function's: the same deployment.
    settings = Settings.from_env(served[1])
    # Terraform's, in production: the subscriptions' dead-letter policy names it.
    direct(settings).pubsub_topics.ensure_topic(settings.dead_letters_topic)
    return settings


@pytest.fixture
def remote(settings: Settings, wiring_url: str) -> RemoteTopicAdmin:
    return RemoteTopicAdmin(settings.project_id, wiring_url, requests.Session())


def direct(settings: Settings) -> Services:
    return Services(settings)


def test_a_source_is_wired_through_the_function(
    settings: Settings, remote: RemoteTopicAdmin
) -> None:
    source_id = new_id()
    topic = remote.ensure_topic(source_topic_id(source_id))
    assert topic == remote.topic_path(source_topic_id(source_id))
    policy = process_push_policy(settings, remote)
    assert policy is not None
    remote.ensure_push_subscription(topic, process_subscription_id(source_id), policy)
    pubsub = direct(settings).pubsub_topics
    assert source_topic_id(source_id) in pubsub.topic_ids(source_topic_id(source_id))
    states = pubsub.subscription_states(process_subscription_id(source_id))
    assert (
        states[process_subscription_id(source_id)].push_endpoint
        == PUSH["STREAMS_PROCESS_PUSH_ENDPOINT"]
    )
    # Listed through the function, too (streams reconcile's view).
    assert source_topic_id(source_id) in remote.topic_ids("streams-source-")
    listed = remote.subscription_states(process_subscription_id(source_id))
    assert listed[process_subscription_id(source_id)].topic == topic


def test_what_wiring_never_needs_is_refused(settings: Settings, remote: RemoteTopicAdmin) -> None:
    source_id = new_id()
    topic = remote.ensure_topic(source_topic_id(source_id))
    policy = process_push_policy(settings, remote)
    assert policy is not None
    elsewhere = dataclasses.replace(policy, endpoint="https://attacker.example/collect")
    refusals = [
        lambda: remote.ensure_topic("streams-dead-letters"),
        lambda: remote.ensure_topic("customer-topic"),
        # A subscription pushing anywhere but the deployment's process function.
        lambda: remote.ensure_push_subscription(
            topic, process_subscription_id(source_id), elsewhere
        ),
        # A subscription on another resource's topic, or of another kind.
        lambda: remote.ensure_push_subscription(topic, process_subscription_id(new_id()), policy),
        lambda: remote.ensure_push_subscription(topic, deliver_subscription_id(source_id), policy),
        lambda: remote.delete_topic(remote.topic_path(settings.dead_letters_topic)),
        lambda: remote.retire_subscription("streams-dead-letters-record"),
        lambda: remote.topic_ids(""),
    ]
    for refused in refusals:
        with pytest.raises(WiringRefused, match="403"):
            refused()
    pubsub = direct(settings).pubsub_topics
    assert not pubsub.subscription_states(process_subscription_id(source_id))
    assert "customer-topic" not in pubsub.topic_ids("customer-")


def test_a_bad_body_is_a_400_naming_the_field(remote: RemoteTopicAdmin, wiring_url: str) -> None:
    answer = requests.post(f"{wiring_url}/internal/wiring/topics", json={"topic": "x"}, timeout=10)
    assert answer.status_code == 400
    assert "topic_id" in answer.text


def test_services_wire_through_the_function_when_it_is_configured(
    settings: Settings, wiring_url: str
) -> None:
    services = Services(dataclasses.replace(settings, wiring_url=wiring_url))
    assert isinstance(services.topics, RemoteTopicAdmin)
    destination_id = new_id()
    topic = services.delivery_topics.wire(destination_id)
    assert topic.endswith(delivery_topic_id(destination_id))
    states = direct(settings).pubsub_topics.subscription_states(
        deliver_subscription_id(destination_id)
    )
    assert (
        states[deliver_subscription_id(destination_id)].push_endpoint
        == PUSH["STREAMS_DELIVER_PUSH_ENDPOINT"]
    )
    services.delivery_topics.unwire(destination_id)
    assert delivery_topic_id(destination_id) not in direct(settings).pubsub_topics.topic_ids(
        delivery_topic_id(destination_id)
    )
