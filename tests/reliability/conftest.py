"""The reliability suite runs without any emulator, over the in-memory fakes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.bootstrap import set_services
from tests.fakes import FakeServices
from tests.reliability.harness import fake_services
from tests.unit.pipeline_fixtures import FakeSender


@pytest.fixture(autouse=True)
def _no_cloud(monkeypatch: pytest.MonkeyPatch) -> None:
    # An unroutable emulator host makes any accidental real client call fail fast.
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", ".")
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", ".")


@pytest.fixture
def sender() -> FakeSender:
    """The outbound sender under `services`: what deliveries sent, and the answers to script."""
    return FakeSender()


@pytest.fixture(autouse=True)
def services(sender: FakeSender) -> Iterator[FakeServices]:
    """Services over in-memory fakes, installed as the process-wide services for every test."""
    fake = fake_services(sender=sender)
    set_services(fake)
    yield fake
    set_services(None)
