"""`make dev`'s stack as a user meets it: one gateway, bootstrap file, clean Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import valkey

from emulators.processes import group_alive, read_pid_file, tcp_open
from emulators.stack import REPO_ROOT
from tests.e2e.helpers import free_ports

pytestmark = pytest.mark.e2e


def own_ports() -> dict[str, str]:
    """Ports of its own, so this stack owns every process it starts (and must stop them all)."""
    ports = free_ports(functions=50)
    return {
        "STREAMS_GATEWAY_PORT": str(ports.gateway),
        "STREAMS_FUNCTIONS_PORT": str(ports.functions),
        "STREAMS_PUBSUB_PORT": str(ports.functions + 40),
        "STREAMS_FIRESTORE_PORT": str(ports.functions + 41),
        "STREAMS_BIGQUERY_PORT": str(ports.functions + 42),
        "STREAMS_BIGQUERY_GRPC_PORT": str(ports.functions + 43),
        "STREAMS_VALKEY_PORT": str(ports.functions + 44),
    }


DEV_KEYS = {
    "gateway_url",
    "workspace_id",
    "admin_token",
    "source_id",
    "write_key",
    "project_id",
    "pubsub_emulator_host",
    "firestore_emulator_host",
    "warehouse_dataset",
    "bigquery_emulator_url",
    "valkey_url",
}


def wait_for(path: Path, process: subprocess.Popen[bytes], timeout: float) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the dev stack exited early"
        if path.exists():
            return json.loads(path.read_text())
        time.sleep(0.5)
    raise AssertionError(f"{path} not written within {timeout} s")


def test_dev_stack_serves_bootstraps_and_stops_cleanly(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_EMULATOR_HOST")}
    ports = own_ports()
    env.update(ports, STREAMS_STATE_DIR=str(tmp_path))
    process = subprocess.Popen(
        [sys.executable, "-m", "emulators.dev"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        dev = wait_for(tmp_path / "dev.json", process, timeout=120)
        assert set(dev) == DEV_KEYS
        gateway = dev["gateway_url"]
        assert gateway == f"http://127.0.0.1:{ports['STREAMS_GATEWAY_PORT']}"

        assert requests.get(f"{gateway}/healthz", timeout=10).status_code == 200
        auth = {"Authorization": f"Bearer {dev['admin_token']}"}
        sources = requests.get(
            f"{gateway}/api/v1/workspaces/{dev['workspace_id']}/event-keys",
            headers=auth,
            timeout=10,
        )
        assert sources.status_code == 200
        [source] = sources.json()
        assert (source["id"], source["key"]) == (dev["source_id"], dev["write_key"])
        topic = requests.get(
            f"http://{dev['pubsub_emulator_host']}/v1/{source['pubsub_topic']}", timeout=10
        )
        assert topic.status_code == 200, "the bootstrap source's topic is missing from the emulator"

        assert (
            requests.get(
                f"{gateway}/api/v1/workspaces/{dev['workspace_id']}/event-keys", timeout=10
            ).status_code
            == 401
        )
        tracked = requests.post(
            f"{gateway}/v1/track",
            headers={"X-Write-Key": dev["write_key"]},
            data=json.dumps({"event": "Signed Up", "userId": "u1"}),
            timeout=10,
        )
        assert tracked.status_code == 200 and tracked.json()["accepted"] == 1
        # process claimed it in the stack's own Valkey (the deduplication window).
        claims = valkey.Valkey.from_url(dev["valkey_url"])
        deadline = time.monotonic() + 30
        while not list(claims.scan_iter(match=b"c:*")):
            assert time.monotonic() < deadline, "process claimed nothing in Valkey"
            time.sleep(0.2)
        assert requests.get(f"{gateway}/openapi.json", timeout=10).json()["openapi"] == "3.1.0"
        assert requests.get(f"{gateway}/no/such/path", timeout=10).status_code == 404

        groups = [read_pid_file(p) for p in (tmp_path / "run").glob("*.pid")]
        assert len(groups) >= 4, "expected pid files for the emulators and functions"
    finally:
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=60)[0].decode()
    assert process.returncode == 0, output
    leftovers = [pid for pid in groups if pid is not None and group_alive(pid)]
    assert leftovers == [], f"process groups still alive after Ctrl-C: {leftovers}"
    assert not any(tcp_open("127.0.0.1", int(port)) for port in ports.values())
