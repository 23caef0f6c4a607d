"""Unit tests run without any emulator: stray network calls must fail, not hang."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from shared.bootstrap import Services, set_services
from shared.config import Settings
from shared.domain.sources import EventSource
from tests.fakes import FakeEventStore, FakePublisher, FakeTopicAdmin, InMemoryConfigStore
from tests.tenants import Tenant, tenant_of


@pytest.fixture(autouse=True)
def _no_cloud(monkeypatch: pytest.MonkeyPatch) -> None:
    # An unroutable emulator host makes any accidental real client call fail fast.
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", ".")
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", ".")


@pytest.fixture(autouse=True)
def services() -> Iterator[Services]:
    """Services over in-memory fakes, installed as the process-wide services for every test."""
    fake = Services(
        Settings(project_id="test-project"),
        store=InMemoryConfigStore(),
        topics=FakeTopicAdmin(),
        publisher=FakePublisher(),
        event_store=FakeEventStore(),
    )
    set_services(fake)
    yield fake
    set_services(None)


@pytest.fixture
def source(services: Services) -> EventSource:
    """A source of the workspace "Acme", for the tests that send events."""
    workspace = services.workspaces.create("Acme")
    return services.sources.create(workspace.id, "Web", "t")


def published(services: Services, source: EventSource) -> list[dict[str, Any]]:
    """The events published to `source`'s topic, in order (the publisher is a fake)."""
    messages = services.publisher.published.get(source.pubsub_topic, [])  # type: ignore[attr-defined]
    return [event for data, _ in messages for event in json.loads(data)]


@pytest.fixture
def tenant(services: Services) -> Tenant:
    """The workspace "Acme" and its admin token, for the tests that call the API."""
    return tenant_of(services)
