"""The fuzzer's real target: a whole local stack of its own (the Pub/Sub, Firestore and BigQuery
emulators, every function a process, the local gateway in front, on free ports), with tenants
seeded through its API and a webhook receiver that refuses every delivery, so that each tenant
gets a dead letter as in process. `fuzz.py --target stack` drives it."""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
import schemathesis

from shared.api.routes import ROUTES
from tests.reliability.faults.stack import FaultStack
from tests.reliability.harness import (
    ApiClient,
    HttpClient,
    Tenant,
    curl_command,
    route_for,
    schema_operations,
    seed_tenant,
)

# How long the seeding waits for its two events to be dead-lettered and quarantined.
SETTLE_SECONDS = 90.0
# Every request of the fuzz: far above any answer the stack gives, short enough that a hung
# function shows as a finding (a timeout) instead of stalling the run.
REQUEST_TIMEOUT = 30.0
# A live stream (text/event-stream) never ends by itself: schemathesis reads it for this long.
STREAM_SECONDS = 1.0
# Operations whose generated cases may remove what later operations address (the owner's
# token, key, destination...): each gets a pair of tenants of its own.
DESTRUCTIVE_METHODS = {"DELETE"}
TRACEBACK = "Traceback (most recent call last):"
# Seedings at once: each mostly waits for the pipeline, so a few overlap well on two cores.
SEEDING_THREADS = 4
# The fault runs' settings (fast retries, one-second caches, private destinations allowed, so
# the refusing receiver on 127.0.0.1 can be a destination), and room for the live streams the
# fuzz opens and cuts after a second: the server notices a cut stream only at its next
# heartbeats, and until then it holds one of the token's slots.
FUZZ_ENV = {"STREAMS_LIVE_STREAMS_PER_TOKEN": "1000"}


class RefusingReceiver:
    """A webhook endpoint that answers 400 to every delivery: the destination refuses, so the
    delivery is dead-lettered at once (a 4xx is not retried)."""

    def __init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Refuse)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/refuse"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _Refuse(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b'{"error":"refused by the fuzz receiver"}'
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per delivery would drown the fuzzer's progress


class StackTarget:
    """Starts the stack on `open()`, stops it on `close()`; between them, the fuzzer's calls."""

    name = "stack"

    def __init__(self, root: Path | None = None) -> None:
        self._temporary: tempfile.TemporaryDirectory[str] | None = None
        if root is None:
            self._temporary = tempfile.TemporaryDirectory(prefix="streams-fuzz-")
            root = Path(self._temporary.name)
        self.root = root
        self.stack = FaultStack(root=root, env=FUZZ_ENV)
        self.receiver: RefusingReceiver | None = None
        self.base_url = ""  # the gateway's, once started (kept after the stop, for reports)
        self.session = requests.Session()
        # A proxy from the environment must not stand between the fuzzer and 127.0.0.1.
        self.session.trust_env = False
        self._shared: tuple[Tenant, Tenant] | None = None
        self._own: list[tuple[Tenant, Tenant]] = []
        self._seedings = 0
        self._seeding_lock = threading.Lock()
        self.seconds_starting = 0.0
        self.seconds_seeding = 0.0

    # --- lifetime ---------------------------------------------------------------------------

    def open(self) -> None:
        started = time.monotonic()
        self.stack.start()
        self.base_url = self.stack.gateway_url
        self.receiver = RefusingReceiver()
        self.seconds_starting = time.monotonic() - started

    def close(self) -> None:
        if self.receiver is not None:
            self.receiver.close()
            self.receiver = None
        self.session.close()
        self.stack.close()
        if self._temporary is not None:
            self._temporary.cleanup()

    # --- what the fuzzer asks ---------------------------------------------------------------

    def operations(self) -> list[Any]:
        """Every operation of the document the stack's gateway serves."""
        url = f"{self.base_url}/openapi.json"
        return schema_operations(schemathesis.openapi.from_url(url, timeout=30))

    def prepare(self, operations: list[Any]) -> None:
        """Seed, all at once, the pair every operation shares (seeding takes many seconds on a
        stack) and one pair for each destructive operation."""
        own = sum(_destructive(operation) for operation in operations)
        started = time.monotonic()
        with ThreadPoolExecutor(SEEDING_THREADS) as pool:
            pairs = list(pool.map(lambda _: self._seed_pair(), range(1 + own)))
        self.seconds_seeding += time.monotonic() - started
        self._shared, self._own = pairs[0], pairs[1:]

    @contextmanager
    def tenants(self, operation: Any) -> Iterator[tuple[Tenant, Tenant]]:
        """The owner and the other tenant: the shared pair, or a destructive operation's own
        (the method sweep, `operation` None, sends no declared method: it destroys nothing)."""
        if operation is not None and _destructive(operation) and self._own:
            yield self._own.pop()
            return
        if self._shared is None:
            started = time.monotonic()
            self._shared = self._seed_pair()
            self.seconds_seeding += time.monotonic() - started
        yield self._shared
        if operation is not None and _destructive(operation):
            self._shared = None  # `prepare` was not asked for this one: the next reseeds

    def call(self, case: Any, headers: dict[str, str]) -> Any:
        kwargs: dict[str, Any] = {"timeout": REQUEST_TIMEOUT}
        if _is_event_stream(case.operation):
            kwargs["timeout"] = STREAM_SECONDS
        return case.call(base_url=self.base_url, session=self.session, headers=headers, **kwargs)

    def send(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, str, str]:
        """One request by method and raw path: its status, Content-Type and body."""
        response = self.session.request(
            method,
            self.base_url + path,
            headers=headers,
            timeout=REQUEST_TIMEOUT,
            allow_redirects=False,
        )
        return response.status_code, response.headers.get("Content-Type", ""), response.text

    def curl(self, method: str, path: str, headers: dict[str, str]) -> str:
        return curl_command(self.base_url, method, path, headers)

    def explain(self, path: str) -> str:
        """The end of the log of the function serving `path`: a 5xx's traceback is there."""
        route = route_for(path.split("?")[0], ROUTES)
        if route is None:
            return ""
        log = self.root / "logs" / f"function-{route.function}.log"
        try:
            return log.read_text(errors="replace")[-1500:]
        except OSError:
            return ""

    def details(self) -> dict[str, Any]:
        return {
            "stack_start_seconds": round(self.seconds_starting, 1),
            "seeding_seconds": round(self.seconds_seeding, 1),
            "seeded_tenant_pairs": self._seedings,
            "logs": str(self.root / "logs") if self._temporary is None else "(removed)",
        }

    def function_tracebacks(self) -> dict[str, dict[str, Any]]:
        """How many tracebacks each function logged during the run, and the first one."""
        found: dict[str, dict[str, Any]] = {}
        for log in sorted((self.root / "logs").glob("function-*.log")):
            text = log.read_text(errors="replace")
            count = text.count(TRACEBACK)
            if count:
                # From the line before it: the message the function logged with it.
                start = text.rfind("\n", 0, text.index(TRACEBACK) - 1) + 1
                end = text.find(TRACEBACK, text.index(TRACEBACK) + 1)
                first = text[start : end if end > 0 else None]
                name = log.stem.removeprefix("function-")
                found[name] = {"count": count, "first": first[-1500:]}
        return found

    # --- seeding ----------------------------------------------------------------------------

    def _seed_pair(self) -> tuple[Tenant, Tenant]:
        assert self.receiver is not None
        with self._seeding_lock:
            self._seedings += 1
            number = self._seedings
        services = self.stack.services()
        client = HttpClient(self.base_url, timeout=REQUEST_TIMEOUT)
        owner, other = (
            seed_tenant(
                services,
                client,
                f"{name}{number}",
                hook_url=self.receiver.url,
                settle=_wait_for_dead_letter_and_quarantine,
            )
            for name in ("Alpha", "Beta")
        )
        return owner, other


def _wait_for_dead_letter_and_quarantine(tenant: Tenant, client: ApiClient) -> None:
    """Until the tenant's refused delivery is a dead letter and its blocked event quarantined:
    process, deliver and dead_letters run on Pub/Sub pushes, seconds after ingest answers."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        found = [
            client.get(f"{tenant.base}/{kind}", headers=tenant.auth)
            for kind in ("dead-letters", "quarantine")
        ]
        if all(r.status_code == 200 and _items(r) for r in found):
            return
        assert time.monotonic() < deadline, "the seeded events never reached every stage"
        time.sleep(0.5)


def _destructive(operation: Any) -> bool:
    return str(operation.method).upper() in DESTRUCTIVE_METHODS


def _items(response: Any) -> list[Any]:
    body = response.json() if isinstance(response, requests.Response) else response.get_json()
    return list(body) if isinstance(body, list) else []


def _is_event_stream(operation: Any) -> bool:
    responses = operation.definition.raw.get("responses", {})
    return any(
        "text/event-stream" in (answer.get("content") or {})
        for answer in responses.values()
        if isinstance(answer, dict)
    )
