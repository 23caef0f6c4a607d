"""A short fuzz of the real local stack (`fuzz.py --target stack`): the emulators, every function a
process and the local gateway, on free ports of the test's own, started and stopped by the run.
Starting the stack and seeding its tenants take about a minute: marked `reliability`, it runs
under `make reliability` (which then runs the long stack fuzz), not in `make test`."""

from __future__ import annotations

import pytest
import requests

from tests.reliability.fuzz import MODES, Fuzzer
from tests.reliability.fuzz_stack import StackTarget

pytestmark = pytest.mark.reliability


@pytest.fixture(autouse=True)
def _no_cloud() -> None:
    """Overrides the suite's: this test talks to emulators of its own on purpose."""


@pytest.fixture(autouse=True)
def services() -> None:
    """Overrides the suite's in-memory services: the stack's functions have their own."""


def test_fuzz_the_stack_sources_api(tmp_path_factory: pytest.TempPathFactory) -> None:
    # The stream-sources operations: a collection, a document (GET, DELETE), a sub-resource
    # with a query, a body; and their paths' undeclared methods.
    target = StackTarget(tmp_path_factory.mktemp("fuzz-stack"))
    fuzzer = Fuzzer(2, 20261122, MODES, target)
    report = fuzzer.run(only=lambda label: "/v1/streams/sources" in label)

    assert report.target == "stack" and report.operations == 5 and report.method_paths == 3
    assert all(report.requests_by_mode[mode] > 0 for mode in (*MODES, "methods"))
    assert report.statuses["200"] > 0 and report.statuses["201"] > 0, report.statuses
    # Two seeded pairs: the shared one and the DELETE operation's own.
    assert report.target_details["seeded_tenant_pairs"] == 2
    assert report.server_errors == 0, [f for f in report.findings if f.status >= 500][:3]
    assert not report.findings, report.findings[:3]
    # The run stopped its stack: the gateway no longer answers.
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{target.base_url}/healthz", timeout=5)
