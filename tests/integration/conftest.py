"""Fixtures of the integration tests that need more than the shared emulator stack."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from emulators.stack import private_valkey
from tests.e2e.helpers import free_ports


@pytest.fixture(scope="module")
def valkey_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A valkey-server of this module's own, on a free port."""
    port = free_ports(functions=1).functions
    with private_valkey(port, tmp_path_factory.mktemp("valkey")) as url:
        yield url
