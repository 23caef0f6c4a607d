"""Fixtures shared by the integration and end-to-end tests: the real emulators."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from emulators.stack import EmulatorStack, start_stack
from shared.bootstrap import Services, set_services
from shared.config import Settings


@pytest.fixture(scope="session")
def emulator_stack() -> Iterator[EmulatorStack]:
    """The three emulators, reused when already running, stopped at the end if we started them."""
    stack = start_stack()
    saved = dict(os.environ)
    os.environ.update(stack.env())
    os.environ["STREAMS_ALLOW_PRIVATE_DESTINATIONS"] = "1"
    yield stack
    os.environ.clear()
    os.environ.update(saved)
    stack.stop()


@pytest.fixture
def live_services(emulator_stack: EmulatorStack) -> Iterator[Services]:
    """Services on the real emulators, installed as the process-wide services."""
    services = Services(Settings.from_env())
    set_services(services)
    yield services
    set_services(None)
