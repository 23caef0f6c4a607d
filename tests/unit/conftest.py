"""Unit tests run without any emulator: stray network calls must fail, not hang."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from shared.bootstrap import set_services
from shared.domain.sources import EventSource
from tests.fakes import FakeServices
from tests.tenants import Tenant, tenant_of


@pytest.fixture(autouse=True)
def _no_cloud(monkeypatch: pytest.MonkeyPatch) -> None:
    # An unroutable emulator host makes any accidental real client call fail fast.
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", ".")
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", ".")


@pytest.fixture(autouse=True)
def services() -> Iterator[FakeServices]:
    """Services over in-memory fakes, installed as the process-wide services for every test."""
    fake = FakeServices()
    set_services(fake)
    yield fake
    set_services(None)


@pytest.fixture
def source(services: FakeServices) -> EventSource:
    """A source of the workspace "Acme", for the tests that send events."""
    workspace = services.workspaces.create("Acme")
    return services.sources.create(workspace.id, "Web", "t")


def published(services: FakeServices, source: EventSource) -> list[dict[str, Any]]:
    """The events published to `source`'s topic, in order."""
    messages = services.publisher.published.get(source.pubsub_topic, [])
    return [event for data, _ in messages for event in json.loads(data)]


@pytest.fixture
def tenant(services: FakeServices) -> Tenant:
    """The workspace "Acme" and its admin token, for the tests that call the API."""
    return tenant_of(services)
