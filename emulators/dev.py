"""`make dev`: the whole of Streams on this machine, behind one gateway, until Ctrl-C."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulators.gateway import Gateway, serve
from emulators.processes import ManagedProcess, tcp_open
from emulators.stack import (
    HOST,
    REPO_ROOT,
    EmulatorStack,
    default_state_dir,
    stack_status,
    start_stack,
)

log = logging.getLogger("streams.dev")

FUNCTION_START_TIMEOUT = 60.0
# Cloud Storage destinations write here locally: a bucket of this name exists from the start.
LOCAL_BUCKET = "streams-local-files"
# Local development: destinations on this machine are allowed, and failing deliveries retry
# quickly and dead-letter after a few attempts. Each is overridable from the environment.
LOCAL_DEFAULTS = {
    "STREAMS_ALLOW_PRIVATE_DESTINATIONS": "1",
    # The gateway is the one proxy in front of the functions: its X-Forwarded-For entry is trusted.
    "STREAMS_TRUSTED_PROXY_HOPS": "1",
    "STREAMS_DELIVERY_MAX_ATTEMPTS": "5",
    "STREAMS_DELIVERY_MIN_BACKOFF": "1",
    "STREAMS_DELIVERY_MAX_BACKOFF": "10",
}


# Production syncs every workspace's warehouse views hourly (Cloud Scheduler, the private
# `warehouse` function); `make dev` does it this often, from its own process.
WAREHOUSE_SYNC_SECONDS = 300.0


class WarehouseScheduler:
    """The local stand-in for Cloud Scheduler's warehouse job: `sync_all` at start, then every
    `interval` seconds until stopped; a failed round is logged and the next one still runs."""

    def __init__(self, sync_all: Callable[[], Any], interval: float):
        self._sync_all = sync_all
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="warehouse-sync", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                log.info("warehouse sync: %s", self._sync_all())
            except Exception:
                log.exception("warehouse sync failed; the next round retries")
            self._stop.wait(self._interval)


def prepare_pipeline(dead_letters_url: str) -> None:
    """Create what Terraform creates in production: BigQuery tables, topics, subscriptions."""
    from shared.adapters.bigquery import ensure_tables, new_client
    from shared.bootstrap import Services
    from shared.config import Settings
    from shared.services.topology import ensure_pipeline

    settings = Settings.from_env()
    services = Services(settings)
    ensure_tables(new_client(settings), settings.bigquery_dataset)
    ensure_pipeline(
        settings,
        services.store,
        services.topics,
        services.sources,
        services.delivery_topics,
        dead_letters_url,
    )


@dataclass(frozen=True)
class DevPorts:
    """The gateway's port and the first of the consecutive ports the functions listen on."""

    gateway: int = 8080
    functions: int = 8100

    @classmethod
    def from_env(cls) -> DevPorts:
        return cls(
            gateway=int(os.environ.get("STREAMS_GATEWAY_PORT") or cls.gateway),
            functions=int(os.environ.get("STREAMS_FUNCTIONS_PORT") or cls.functions),
        )


@dataclass
class LocalStack:
    """Emulators, one functions-framework server per function, and the gateway in front."""

    ports: DevPorts = field(default_factory=DevPorts.from_env)
    state_dir: Path = field(default_factory=default_state_dir)
    emulators: EmulatorStack | None = None
    functions: dict[str, ManagedProcess] = field(default_factory=dict)
    storage: ManagedProcess | None = None
    _gateway: Any = None

    @property
    def gateway_url(self) -> str:
        return f"http://{HOST}:{self.ports.gateway}"

    def start(self) -> None:
        """Start everything, or stop whatever started and raise."""
        from shared.api.routes import PUBSUB_FUNCTIONS, ROUTES, http_functions

        try:
            self.emulators = start_stack(state_dir=self.state_dir)
            kinds = {name: "http" for name in http_functions()}
            kinds.update(dict.fromkeys(PUBSUB_FUNCTIONS, "cloudevent"))
            urls = {
                name: f"http://{HOST}:{self.ports.functions + offset}"
                for offset, name in enumerate(kinds)
            }
            # Cloud Storage destinations' files, on the port after the functions' (in memory:
            # gone with the stack).
            storage_port = self.ports.functions + len(kinds)
            self.storage = self._storage_emulator(storage_port)
            self.storage.start()
            env = {
                **LOCAL_DEFAULTS,
                **{k: v for k, v in os.environ.items() if k in LOCAL_DEFAULTS},
                **self.emulators.env(),
                "STORAGE_EMULATOR_HOST": f"http://{HOST}:{storage_port}",
                "STREAMS_PROCESS_PUSH_ENDPOINT": urls["process"] + "/",
                "STREAMS_DELIVER_PUSH_ENDPOINT": urls["deliver"] + "/",
            }
            os.environ.update(env)
            for offset, (name, kind) in enumerate(kinds.items()):
                port = self.ports.functions + offset
                if tcp_open(HOST, port):
                    # Else the health check would pass on another process's port and the
                    # gateway would route this function's paths there.
                    raise RuntimeError(
                        f"port {port} (function {name}) is in use: set STREAMS_FUNCTIONS_PORT"
                    )
                self.functions[name] = self._function(name, port, kind, env)
            for process in self.functions.values():
                process.start()
            self.storage.wait_healthy(FUNCTION_START_TIMEOUT)
            with ThreadPoolExecutor(max_workers=len(self.functions)) as pool:
                list(
                    pool.map(
                        lambda p: p.wait_healthy(FUNCTION_START_TIMEOUT), self.functions.values()
                    )
                )
            prepare_pipeline(urls["dead_letters"] + "/")
            upstreams = {name: urls[name] for name in http_functions()}
            self._gateway = serve(Gateway(ROUTES, upstreams, self.health), HOST, self.ports.gateway)
        except BaseException:
            self.stop()
            raise

    def health(self) -> dict[str, bool]:
        """Whether each emulator and function answers."""
        checks = (
            stack_status(self.emulators.ports, self.emulators.project_id) if self.emulators else {}
        )
        checks.update({f"function:{name}": p.is_healthy() for name, p in self.functions.items()})
        if self.storage is not None:
            checks["emulator:storage"] = self.storage.is_healthy()
        return checks

    def stop(self) -> None:
        """Stop everything this stack started, functions before the emulators they use."""
        if self._gateway is not None:
            self._gateway.shutdown()
            self._gateway.server_close()
            self._gateway = None
        with ThreadPoolExecutor(max_workers=max(len(self.functions), 1)) as pool:
            list(pool.map(ManagedProcess.stop, self.functions.values()))
        self.functions.clear()
        if self.storage is not None:
            self.storage.stop()
            self.storage = None
        if self.emulators is not None:
            self.emulators.stop()
            self.emulators = None

    def _storage_emulator(self, port: int) -> ManagedProcess:
        if tcp_open(HOST, port):
            raise RuntimeError(f"port {port} (Cloud Storage emulator) is in use")
        return ManagedProcess(
            name="storage-emulator",
            command=[
                sys.executable,
                "-m",
                "gcp_storage_emulator",
                "start",
                f"--host={HOST}",
                f"--port={port}",
                "--in-memory",
                f"--default-bucket={LOCAL_BUCKET}",
                "--quiet",
            ],
            log_path=self.state_dir / "logs" / "storage-emulator.log",
            pid_path=self.state_dir / "run" / "storage-emulator.pid",
            health_check=lambda: tcp_open(HOST, port),
        )

    def _function(self, name: str, port: int, kind: str, env: dict[str, str]) -> ManagedProcess:
        return ManagedProcess(
            name=f"function-{name}",
            command=function_command(name, port, kind),
            log_path=self.state_dir / "logs" / f"function-{name}.log",
            pid_path=self.state_dir / "run" / f"function-{name}.pid",
            env=env,
            cwd=REPO_ROOT,
            health_check=lambda: tcp_open(HOST, port),
        )

    def bootstrap(self) -> dict[str, str]:
        """A workspace, an admin token and one source; reused while the emulators keep them."""
        assert self.emulators is not None
        from shared.bootstrap import Services
        from shared.config import Settings
        from shared.domain.errors import StreamsError

        services = Services(Settings.from_env())
        dev_file = self.state_dir / "dev.json"
        previous = _read_json(dev_file)
        try:
            token = services.workspaces.authenticate(previous["admin_token"])
            source = services.sources.get(token.workspace_id, previous["source_id"])
            workspace_id, admin_token = token.workspace_id, previous["admin_token"]
        except (KeyError, TypeError, StreamsError):
            workspace_id = services.workspaces.create("Local development").id
            admin_token, record = services.workspaces.create_token(workspace_id, "dev admin")
            source = services.sources.create(workspace_id, "Local app", created_by=record.id)
        settings = {
            "gateway_url": self.gateway_url,
            "workspace_id": workspace_id,
            "admin_token": admin_token,
            "source_id": source.id,
            "write_key": source.key,
            "project_id": self.emulators.project_id,
            "pubsub_emulator_host": self.emulators.pubsub_host,
            "firestore_emulator_host": self.emulators.firestore_host,
            "bigquery_emulator_url": self.emulators.bigquery_url,
            "valkey_url": self.emulators.valkey_url,
            "warehouse_dataset": services.warehouse.dataset(workspace_id),
        }
        dev_file.parent.mkdir(parents=True, exist_ok=True)
        dev_file.write_text(json.dumps(settings, indent=2) + "\n")
        return settings


def function_command(name: str, port: int, signature_type: str = "http") -> list[str]:
    """functions-framework serving `functions/<name>/main.py` with its production server."""
    source = REPO_ROOT / "functions" / name / "main.py"
    return [
        sys.executable,
        "-m",
        "functions_framework",
        "--target",
        name,
        "--source",
        str(source),
        "--signature-type",
        signature_type,
        "--host",
        HOST,
        "--port",
        str(port),
    ]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stack = LocalStack()
    print("Starting the emulators and functions ...", flush=True)
    stack.start()
    scheduler = None
    try:
        settings = stack.bootstrap()
        interval = float(os.environ.get("STREAMS_WAREHOUSE_SYNC_SECONDS") or WAREHOUSE_SYNC_SECONDS)
        if interval > 0:
            from shared.bootstrap import Services
            from shared.config import Settings

            scheduler = WarehouseScheduler(
                Services(Settings.from_env()).warehouse.sync_all, interval
            )
            scheduler.start()
        print(_banner(settings, stack), flush=True)
        stop.wait()
    finally:
        print("Stopping ...", flush=True)
        if scheduler is not None:
            scheduler.stop()
        stack.stop()
    return 0


def _banner(settings: dict[str, str], stack: LocalStack) -> str:
    lines = [
        "",
        f"Streams is running at {settings['gateway_url']} (health: /healthz)",
        f"  console       {settings['gateway_url']}/console/ (sign in with the admin token)",
        f"  workspace_id  {settings['workspace_id']}",
        f"  admin_token   {settings['admin_token']}",
        f"  source_id     {settings['source_id']}",
        f"  write_key     {settings['write_key']}",
        f"  warehouse     {settings['project_id']}.{settings['warehouse_dataset']} in BigQuery,"
        " synced every 5 minutes (STREAMS_WAREHOUSE_SYNC_SECONDS)",
        f"Written to {stack.state_dir / 'dev.json'}; logs in {stack.state_dir / 'logs'}.",
        "Press Ctrl-C to stop everything.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
