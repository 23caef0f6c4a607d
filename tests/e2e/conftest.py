"""The local stack (every function a process, wired through the Pub/Sub emulator) for e2e tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from emulators.dev import LocalStack
from emulators.stack import EmulatorStack
from shared.bootstrap import Services
from shared.config import Settings
from tests.e2e.helpers import Tenant, free_ports

# Fast retries so that dead-lettering takes seconds, and short config caching so that a rule
# created by a test routes the test's events almost at once.
E2E_ENV = {
    "STREAMS_DELIVERY_MAX_ATTEMPTS": "3",
    "STREAMS_DELIVERY_MIN_BACKOFF": "0.2",
    "STREAMS_DELIVERY_MAX_BACKOFF": "1",
    "STREAMS_CONFIG_CACHE_SECONDS": "1",
    # Production's shape (`client, load balancer`): a test sends X-Forwarded-For with the
    # client's address, playing the load balancer, and the gateway appends its own entry.
    "STREAMS_TRUSTED_PROXY_HOPS": "2",
}


@pytest.fixture(scope="session")
def local_stack(
    emulator_stack: EmulatorStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalStack]:
    saved = dict(os.environ)
    os.environ.update(E2E_ENV)
    stack = LocalStack(ports=free_ports(), state_dir=tmp_path_factory.mktemp("stack"))
    stack.start()
    yield stack
    stack.stop()
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def tenant(local_stack: LocalStack) -> Tenant:
    services = Services(Settings.from_env())
    workspace = services.workspaces.create("e2e")
    token, record = services.workspaces.create_token(workspace.id, "e2e")
    source = services.sources.create(workspace.id, "e2e", created_by=record.id)
    return Tenant(local_stack.gateway_url, workspace.id, token, source.key, source.id, services)
