"""The stack a pipeline bench runs on: its own ports, state dir, project and (by default)
emulators, the checks that it may start there, and the route it measures (a webhook destination
and a forwarding rule for every event) created through the gateway's management API.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.events import track_event
from bench.pipeline.costs import counts_dir
from bench.running import HOST, post, wait_answering_200
from bench.workspace import BenchWorkspace, foreign_workspaces
from emulators.dev import DevPorts, LocalStack
from emulators.processes import http_ok, tcp_open
from emulators.stack import EmulatorPorts, EmulatorStack

SECRET = "bench-pipeline-webhook-secret"
# The bench's own emulators by default. Emulators shared with `make dev` or a test run are
# stopped by whichever run started them, under the other's feet. Every port sits below Linux's
# ephemeral range (32768-60999): a fixed port inside it can be taken by any outgoing connection
# (the Firestore emulator then fails with "Address already in use").
OWN_EMULATOR_PORTS = {
    "STREAMS_PUBSUB_PORT": 27085,
    "STREAMS_FIRESTORE_PORT": 27086,
    "STREAMS_BIGQUERY_PORT": 27050,
    "STREAMS_BIGQUERY_GRPC_PORT": 27060,
    "STREAMS_VALKEY_PORT": 27089,
}


@dataclass(frozen=True)
class Plan:
    """Where the run's stack lives and where its events go."""

    state_dir: Path
    ports: DevPorts
    target_url: str


def prepare(args: argparse.Namespace) -> Plan | None:
    """Point this process's environment at the bench's stack; None (the reason printed) when
    the project belongs to another stack or a port is taken."""
    state_dir = Path(tempfile.mkdtemp(prefix="streams-bench-pipeline-"))
    ports = DevPorts(gateway=args.gateway_port, functions=args.functions_port)
    env = {
        "STREAMS_STATE_DIR": str(state_dir),
        "STREAMS_GATEWAY_PORT": str(ports.gateway),
        "STREAMS_FUNCTIONS_PORT": str(ports.functions),
        # Our own Pub/Sub and Firestore namespace, even on shared emulators: another stack's
        # prepare_pipeline re-points the push subscriptions of its project to its own ports.
        "STREAMS_PROJECT_ID": args.project,
        "GOOGLE_CLOUD_PROJECT": args.project,
        # Each function process writes its counts of billed operations there (bench/pipeline
        # /costs.py reads them).
        "STREAMS_OPERATION_COUNTS_DIR": str(counts_dir(state_dir)),
    }
    if args.emulators == "own":
        env.update({k: str(v) for k, v in OWN_EMULATOR_PORTS.items()})
    os.environ.update(env)
    # The emulators the stack will use, whatever the caller's environment pointed at.
    os.environ.update(EmulatorStack(EmulatorPorts.from_env(), args.project, {}).env())
    foreign = _foreign_workspaces()
    if foreign:
        print(
            f"project {args.project} on these emulators holds workspaces that no bench created "
            f"({', '.join(foreign[:3])}{' ...' if len(foreign) > 3 else ''}): starting the bench "
            "there would re-point their push subscriptions to the bench's functions, which stop "
            "with it. Pick a project of the bench's own with --project (default streams-bench).",
            file=sys.stderr,
        )
        return None
    urls = _function_urls(ports)
    busy = _ports_in_use(ports, len(urls))
    if busy:
        print(
            f"ports in use: {busy}; pick others with --gateway-port/--functions-port",
            file=sys.stderr,
        )
        return None
    call = "track" if args.batch_size == 1 and not args.sdk else "batch"
    target_url = (
        f"http://{HOST}:{ports.gateway}/v1/{call}"
        if args.via == "gateway"
        else f"{urls['ingest']}/v1/{call}"
    )
    return Plan(state_dir, ports, target_url)


def _ports_in_use(ports: DevPorts, functions: int) -> list[int]:
    wanted = [ports.gateway, *range(ports.functions, ports.functions + functions)]
    return [port for port in wanted if tcp_open(HOST, port, timeout=0.2)]


def _foreign_workspaces() -> list[str]:
    """Workspaces no bench created in the project of the environment, on its Firestore emulator
    if that is already running (one this run starts is empty)."""
    host = os.environ["FIRESTORE_EMULATOR_HOST"]
    if not http_ok(f"http://{host}/", "Ok"):
        return []
    from shared.bootstrap import Services
    from shared.config import Settings

    return foreign_workspaces(Services(Settings.from_env()))


def _function_urls(ports: DevPorts) -> dict[str, str]:
    """Each function's base URL, in the order `LocalStack.start` assigns ports."""
    from shared.api.routes import PUBSUB_FUNCTIONS, http_functions

    names = [*http_functions(), *PUBSUB_FUNCTIONS]
    return {name: f"http://{HOST}:{ports.functions + i}" for i, name in enumerate(names)}


def _api(url: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
    status, text = post(
        url,
        json.dumps(body).encode(),
        {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    if status not in (200, 201):
        raise RuntimeError(f"POST {url} answered {status}: {text[:500]}")
    answer: dict[str, Any] = json.loads(text)
    return answer


def route_every_event(stack: LocalStack, workspace: BenchWorkspace, receiver_url: str) -> str:
    """A webhook destination pointing at the receiver and a rule forwarding every event to it,
    created through the gateway as a user would; the rule's id."""
    api = f"{stack.gateway_url}/api/v1/workspaces/{workspace.workspace_id}"
    destination = _api(
        f"{api}/destinations",
        workspace.admin_token,
        {
            "name": "bench webhook",
            "type": "webhook",
            "config": {"url": receiver_url, "secret": SECRET},
        },
    )
    rule = _api(
        f"{api}/event-forwarding-rules",
        workspace.admin_token,
        {
            "name": "bench: every event",
            "destination_id": destination["id"],
            "event_types": [],
            "event_names": [],
        },
    )
    return str(rule["id"])


def wait_for_ingest(url: str, headers: dict[str, str], timeout: float = 30.0) -> None:
    """Until ingest answers 200 through `url` (its first request loads the Google clients)."""

    def probe() -> bytes:
        body: dict[str, Any] = {
            **track_event(0, datetime.now(UTC)),
            "messageId": f"bench-probe-{uuid.uuid4()}",
        }
        if url.endswith("/batch"):
            body = {"batch": [body]}
        return json.dumps(body).encode()

    wait_answering_200(url, probe, headers, timeout)


def cpu_groups(stack: LocalStack) -> dict[str, int]:
    """The process groups whose CPU the bench measures: each function, each emulator, and the
    bench's own (senders, receiver and the gateway, which runs in this process)."""
    groups = {f"function:{name}": p.pid for name, p in stack.functions.items() if p.pid}
    handles = stack.emulators.handles if stack.emulators else {}
    groups.update(
        {
            f"emulator:{name}": h.process.pid
            for name, h in handles.items()
            if h.process is not None and h.process.pid
        }
    )
    groups["bench (senders, receiver, gateway)"] = os.getpgid(0)
    return groups
