"""Fixtures of the integration tests that need more than the shared emulator stack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from emulators.processes import ManagedProcess
from emulators.stack import EmulatorPorts, emulator_specs
from tests.e2e.helpers import free_ports


@pytest.fixture(scope="module")
def valkey_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A valkey-server of this module's own, on a free port."""
    port = free_ports(functions=1).functions
    spec = emulator_specs(EmulatorPorts(valkey=port), "claims-test")["valkey"]
    state = tmp_path_factory.mktemp("valkey")
    process = ManagedProcess(
        name="valkey",
        command=list(spec.command),
        log_path=Path(state) / "valkey.log",
        health_check=spec.health_check,
    )
    process.start()
    try:
        process.wait_healthy(30)
        yield f"valkey://127.0.0.1:{port}/0"
    finally:
        process.stop()
