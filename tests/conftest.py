"""Fixtures shared by the integration and end-to-end tests: the real emulators."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator

import pytest

from emulators.dev import function_command
from emulators.processes import ManagedProcess, tcp_open
from emulators.stack import HOST, REPO_ROOT, EmulatorStack, start_stack
from shared.bootstrap import Services, set_services
from shared.config import Settings

TEST_PROJECT_ID = "streams-test"


@pytest.fixture(scope="session")
def emulator_stack() -> Iterator[EmulatorStack]:
    """The three emulators, reused when already running, stopped at the end if we started them.

    The tests use a project of their own: with `make dev` running on the same emulators, its
    subscriptions (project streams-local) and the tests' never re-point each other.
    """
    stack = start_stack(project_id=TEST_PROJECT_ID)
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


@pytest.fixture(scope="session")
def serve_function(
    emulator_stack: EmulatorStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str], str]]:
    """Start a function under functions-framework's production server; returns its base URL."""
    started: dict[str, tuple[ManagedProcess, str]] = {}
    logs = tmp_path_factory.mktemp("function-logs")

    def serve(name: str) -> str:
        if name not in started:
            port = free_port()
            process = ManagedProcess(
                name=name,
                command=function_command(name, port),
                log_path=logs / f"{name}.log",
                env={**emulator_stack.env(), "STREAMS_ALLOW_PRIVATE_DESTINATIONS": "1"},
                cwd=REPO_ROOT,
                health_check=lambda: tcp_open(HOST, port),
            )
            process.start()
            process.wait_healthy(60)
            started[name] = (process, f"http://{HOST}:{port}")
        return started[name][1]

    yield serve
    for process, _ in started.values():
        process.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])
