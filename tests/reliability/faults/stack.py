"""A whole Streams stack of its own for one fault-injection run: emulators that the run may stop
and restart, functions that it may kill, on free ports no other test uses."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from emulators.dev import LocalStack
from emulators.processes import ManagedProcess
from emulators.stack import (
    HOST,
    NAMES,
    REPO_ROOT,
    EmulatorPorts,
    emulator_specs,
    ensure_bq_venv,
)
from shared.bootstrap import Services
from shared.config import Settings
from tests.e2e.helpers import Tenant, free_ports

EMULATOR_START_TIMEOUT = 90.0
FUNCTION_START_TIMEOUT = 90.0
# LocalStack gives each function one port after the gateway's; the emulators take the ports
# after these, inside the same block of free ports.
FUNCTION_PORTS = 40

# Fast retries and short caches, as in the e2e suite, so that a run takes minutes, not hours.
# More attempts than the e2e suite: a fault lasts long enough to exhaust three.
FAULT_ENV = {
    "STREAMS_ALLOW_PRIVATE_DESTINATIONS": "1",
    "STREAMS_DELIVERY_MAX_ATTEMPTS": "8",
    "STREAMS_DELIVERY_MIN_BACKOFF": "0.5",
    "STREAMS_DELIVERY_MAX_BACKOFF": "4",
    "STREAMS_CONFIG_CACHE_SECONDS": "1",
}


@dataclass
class FaultStack:
    """Emulators started by this run (never reused), every function, and the gateway."""

    root: Path
    env: Mapping[str, str] = field(default_factory=dict)
    project_id: str = field(default_factory=lambda: f"streams-faults-{uuid.uuid4().hex[:8]}")
    ports: EmulatorPorts = field(default_factory=EmulatorPorts)
    emulators: dict[str, ManagedProcess] = field(default_factory=dict)
    local: LocalStack | None = None
    _saved_env: dict[str, str] = field(default_factory=dict)
    _firestore_snapshots: int = 0
    _restarts: dict[str, int] = field(default_factory=dict)

    # --- the stack ---------------------------------------------------------------------------

    def start(self) -> None:
        """Launch emulators of our own (and Valkey), then the functions and gateway on top."""
        self._saved_env = dict(os.environ)
        dev_ports = free_ports(functions=FUNCTION_PORTS + 5)
        first = dev_ports.functions + FUNCTION_PORTS
        self.ports = EmulatorPorts(
            pubsub=first,
            firestore=first + 1,
            bigquery=first + 2,
            bigquery_grpc=first + 3,
            valkey=first + 4,
        )
        os.environ.update(
            {
                **FAULT_ENV,
                **self.env,
                "STREAMS_PROJECT_ID": self.project_id,
                "STREAMS_PUBSUB_PORT": str(self.ports.pubsub),
                "STREAMS_FIRESTORE_PORT": str(self.ports.firestore),
                "STREAMS_BIGQUERY_PORT": str(self.ports.bigquery),
                "STREAMS_BIGQUERY_GRPC_PORT": str(self.ports.bigquery_grpc),
                "STREAMS_VALKEY_PORT": str(self.ports.valkey),
            }
        )
        try:
            ensure_bq_venv()
            for name in NAMES:
                self.emulators[name] = self._emulator(name)
                self.emulators[name].start()
            with ThreadPoolExecutor(max_workers=len(NAMES)) as pool:
                list(pool.map(_wait_healthy, self.emulators.values()))
            # Our emulators answer their health checks, so LocalStack reuses them (and leaves
            # stopping them to us) instead of starting its own.
            self.local = LocalStack(ports=dev_ports, state_dir=self.root)
            self.local.start()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop everything this run started and give the test process its environment back."""
        if self.local is not None:
            self.local.stop()
            self.local = None
        with ThreadPoolExecutor(max_workers=len(NAMES)) as pool:
            list(pool.map(ManagedProcess.stop, self.emulators.values()))
        self.emulators.clear()
        if self._saved_env:
            os.environ.clear()
            os.environ.update(self._saved_env)

    @property
    def gateway_url(self) -> str:
        assert self.local is not None
        return self.local.gateway_url

    def services(self) -> Services:
        """Services of the test process on this stack's emulators."""
        return Services(Settings.from_env())

    def tenant(self, name: str = "faults") -> Tenant:
        """A workspace with a token and one source, made directly on the stores (as e2e does)."""
        services = self.services()
        workspace = services.workspaces.create(name)
        token, record = services.workspaces.create_token(workspace.id, name)
        source = services.sources.create(workspace.id, name, created_by=record.id)
        return Tenant(self.gateway_url, workspace.id, token, source.key, source.id, services)

    def another_write_key(self, tenant: Tenant, name: str) -> str:
        """A second source of the tenant: a write key that no ingest instance has cached."""
        token = tenant.services.workspaces.authenticate(tenant.token)
        source = tenant.services.sources.create(tenant.workspace_id, name, created_by=token.id)
        return source.key

    # --- faults ------------------------------------------------------------------------------

    def stop_emulator(self, name: str) -> None:
        """Stop one emulator (its whole process group): its port refuses connections."""
        if name == "firestore":
            # The Firestore emulator keeps its documents in memory only, and its
            # `--export-on-exit` does not fire on a signal: snapshot them first, so that the
            # emulator comes back with its data, as Firestore does after an outage.
            self._export_firestore()
        self.emulators[name].stop()

    def start_emulator(self, name: str) -> None:
        """Start a stopped emulator again on the same port, with the data it had."""
        self._restarts[name] = self._restarts.get(name, 0) + 1
        self.emulators[name] = self._emulator(name)
        self.emulators[name].start()
        _wait_healthy(self.emulators[name])

    def kill_function(self, name: str) -> None:
        """SIGKILL a function's process group: no graceful shutdown, requests cut mid-way."""
        assert self.local is not None
        process = self.local.functions[name]
        assert process.pid is not None
        os.killpg(process.pid, signal.SIGKILL)
        process.stop()  # reaps it and removes its pid file

    def start_function(self, name: str) -> None:
        """Start a killed function again on the same port."""
        assert self.local is not None
        process = self.local.functions[name]
        self._restarts[name] = self._restarts.get(name, 0) + 1
        # start() truncates the log: keep the killed instance's for the post-mortem.
        if process.log_path.exists():
            process.log_path.rename(process.log_path.with_suffix(f".{self._restarts[name]}.log"))
        process.start()
        process.wait_healthy(FUNCTION_START_TIMEOUT)

    # --- what the run observes ---------------------------------------------------------------

    def function_rss_kib(self) -> dict[str, int]:
        """Resident memory of each function: the sum over its process group (gunicorn's
        arbiter and workers)."""
        assert self.local is not None
        by_group = _rss_by_process_group()
        return {
            name: by_group.get(process.pid, 0)
            for name, process in self.local.functions.items()
            if process.pid is not None
        }

    def bigquery_rows(self, workspace_id: str) -> dict[str, int]:
        """How many rows of the workspace's events table each messageId has."""
        client = bigquery.Client(
            project=self.project_id,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=f"http://{HOST}:{self.ports.bigquery}"),
        )
        workspace = bigquery.ScalarQueryParameter("workspace", "STRING", workspace_id)
        job = client.query(
            "SELECT message_id, COUNT(*) AS copies FROM streams.events "
            "WHERE workspace_id = @workspace GROUP BY message_id",
            job_config=bigquery.QueryJobConfig(query_parameters=[workspace]),
        )
        return {row["message_id"]: int(row["copies"]) for row in job.result(timeout=60)}

    def wait_for_rows(
        self, workspace_id: str, message_ids: set[str], timeout: float
    ) -> dict[str, int]:
        """`bigquery_rows` once every one of `message_ids` has a row, or after `timeout`: storage
        is retried by Pub/Sub's redelivery of process, up to a minute apart."""
        rows = wait_for(
            lambda: (found := self.bigquery_rows(workspace_id)).keys() >= message_ids and found,
            timeout,
            interval=5,
        )
        return rows or self.bigquery_rows(workspace_id)

    # --- internals ---------------------------------------------------------------------------

    def _emulator(self, name: str) -> ManagedProcess:
        spec = emulator_specs(self.ports, self.project_id)[name]
        command = list(spec.command)
        env = dict(spec.env)
        if name == "firestore" and self._firestore_snapshots:
            command.append(f"--import-data={self._firestore_snapshot_file()}")
        if name == "bigquery":
            # DuckDB on disk: the emulator's tables and rows survive a restart.
            env["BQEMU_PERSISTENCE_MODE"] = "persistent"
            env["BQEMU_DATA_DIR"] = str(self.root / "bigquery-data")
            (self.root / "bigquery-data").mkdir(parents=True, exist_ok=True)
        restarts = self._restarts.get(name, 0)
        return ManagedProcess(
            name=name,
            command=command,
            log_path=self.root / "logs" / f"{name}.{restarts}.log",
            env=env,
            cwd=REPO_ROOT,
            health_check=spec.health_check,
        )

    def _export_firestore(self) -> None:
        self._firestore_snapshots += 1
        directory = self.root / "firestore-export"
        directory.mkdir(parents=True, exist_ok=True)
        body = {
            "database": f"projects/{self.project_id}/databases/(default)",
            "export_directory": str(directory),
            "export_name": f"snapshot-{self._firestore_snapshots}",
        }
        request = urllib.request.Request(
            f"http://{HOST}:{self.ports.firestore}/emulator/v1/projects/{self.project_id}:export",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=60) as response:
            assert response.status == 200, response.read()
        assert self._firestore_snapshot_file().exists(), "the Firestore export wrote nothing"

    def _firestore_snapshot_file(self) -> Path:
        name = f"snapshot-{self._firestore_snapshots}"
        return self.root / "firestore-export" / name / f"{name}.overall_export_metadata"


def _wait_healthy(process: ManagedProcess) -> None:
    process.wait_healthy(EMULATOR_START_TIMEOUT)


def _rss_by_process_group() -> dict[int, int]:
    """KiB resident, summed by process group, over every live process."""
    page_kib = os.sysconf("SC_PAGE_SIZE") // 1024
    totals: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # the process ended while we looked
        # After the command name: state, ppid, pgrp, ... and rss (pages) is the 22nd field.
        if fields[0] == "Z":
            continue
        group, rss_pages = int(fields[2]), int(fields[21])
        totals[group] = totals.get(group, 0) + rss_pages * page_kib
    return totals


def wait_for(predicate: Any, timeout: float, interval: float = 0.5) -> Any:
    """Poll until `predicate()` is truthy or `timeout` seconds pass; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
