"""Fault injection runs on a stack of its own: real emulators and functions, never the fakes."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.reliability.faults.stack import FaultStack

StackFactory = Callable[..., FaultStack]


@pytest.fixture(autouse=True)
def _no_cloud() -> None:
    """Overrides the suite's: these tests talk to emulators of their own on purpose."""


@pytest.fixture(autouse=True)
def services() -> None:
    """Overrides the suite's in-memory services: each test builds its own on its stack."""


@pytest.fixture
def fault_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackFactory]:
    """Starts a FaultStack with extra environment for its functions; stopped after the test."""
    started: list[FaultStack] = []

    def start(**env: str) -> FaultStack:
        stack = FaultStack(root=tmp_path_factory.mktemp("faults"), env=env)
        stack.start()
        started.append(stack)
        return stack

    yield start
    for stack in reversed(started):
        stack.close()
