"""`make bench` (second part): latency from ingest's answer to the webhook's receipt.

Starts the local stack as `make dev` does (`emulators.dev.LocalStack`: every function its own
functions-framework process, Pub/Sub push wiring, the gateway) on its own ports, state dir,
project and (unless --emulators shared) emulators, creates a webhook destination pointing at
a local receiver and a forwarding rule for every event, then sends events through the gateway
on an open-loop schedule (100 events/s: 5 s warm-up, 30 s measured), as single `POST /v1/track`
calls or, with --batch-size N, as `POST /v1/batch` calls of N events, or, with --sdk, through
the real Segment SDK (segment-analytics-python with its default batching: a request every
0.5 s or 100 events). Each event's latency is the time from ingest's 200 to the receiver's
first receipt of its messageId (the `Idempotency-Key` header); with --sdk the time from the
app's `track()` call is reported too. Firestore's records of each event (event log, delivery)
split that time into stages. Writes bench/results/pipeline-<scenario>-<UTC>.json and
pipeline-<scenario>-latest.json (scenario `track`, `batch<N>` or `sdk`).
Exit status: 0, or 1 when a request to ingest failed (losses and the target are only reported).
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from segment.analytics.client import Client as SegmentClient

from bench.common import (
    HOST,
    CpuMeter,
    catch_interrupts,
    ignore_interrupts,
    machine_info,
    package_versions,
    percentiles,
    post,
)
from bench.ingest import RESULTS_DIR, track_event
from bench.workspace import BenchWorkspace, foreign_workspaces, own_workspace
from emulators.dev import DevPorts, LocalStack
from emulators.processes import http_ok, tcp_open
from emulators.stack import REPO_ROOT, EmulatorPorts, EmulatorStack
from tests.webhook_receiver import Received, webhook_receiver

if TYPE_CHECKING:
    from shared.bootstrap import Services

# Target from the issue: an event reaches its webhook within 1 s (p99) at 100 events/s.
P99_TARGET_MS = 1000.0
SECRET = "bench-pipeline-webhook-secret"
# Firestore batch reads of the event log and delivery records, this many documents at a time.
READ_CHUNK = 300
# Width of the windows of the latency-over-time series.
WINDOW_S = 5.0
# The bench's own emulators by default. Emulators shared with `make dev` or a test run are
# stopped by whichever run started them, under the other's feet. Every port sits below Linux's
# ephemeral range (32768-60999): a fixed port inside it can be taken by any outgoing connection
# (the Firestore emulator then fails with "Address already in use").
OWN_EMULATOR_PORTS = {
    "STREAMS_PUBSUB_PORT": 27085,
    "STREAMS_FIRESTORE_PORT": 27086,
    "STREAMS_BIGQUERY_PORT": 27050,
    "STREAMS_BIGQUERY_GRPC_PORT": 27060,
}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _epoch(value: Any) -> float | None:
    """Unix seconds of an ISO-8601 string (Streams writes milliseconds and a `Z`), else None."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


# --- the open-loop sender --------------------------------------------------------------------


@dataclass
class Sent:
    """One event: when it was due, sent and answered (monotonic seconds), and the answer."""

    message_id: str
    phase: str  # "warmup" or "measure"
    due: float
    sent: float = 0.0
    answered: float = 0.0
    status: int = 0
    error: str | None = None

    @property
    def accepted(self) -> bool:
        return self.status == 200


class Schedule:
    """Event i is due at start + i / rate, whoever sends it and however late earlier answers are.

    Events go out in requests of `batch_size` (a request is due when its first event is):
    single `/v1/track` calls, or `/v1/batch` calls as the Segment SDKs send them.
    """

    def __init__(
        self, start: float, rate: float, warmup_s: float, duration_s: float, batch_size: int = 1
    ):
        total = round(rate * (warmup_s + duration_s))
        warmup = round(rate * warmup_s)
        self.events = [
            Sent(str(uuid.uuid4()), "warmup" if i < warmup else "measure", start + i / rate)
            for i in range(total)
        ]
        self.requests = [
            self.events[i : i + batch_size] for i in range(0, len(self.events), batch_size)
        ]
        self._next = 0
        self._lock = threading.Lock()

    def take(self) -> list[Sent] | None:
        with self._lock:
            if self._next >= len(self.requests):
                return None
            self._next += 1
            return self.requests[self._next - 1]


def _body(events: list[Sent]) -> dict[str, Any]:
    """One track call, or a `/v1/batch` envelope of several (messageIds from the schedule)."""
    now = datetime.now(UTC)
    calls = [{**track_event(i, now), "messageId": e.message_id} for i, e in enumerate(events)]
    if len(calls) == 1:
        return {**calls[0], "sentAt": _iso(now)}
    return {"batch": calls, "sentAt": _iso(now)}


def _send_loop(
    url: str, headers: Mapping[str, str], schedule: Schedule, stop: threading.Event
) -> None:
    """A sender thread: a keep-alive connection, taking the next due request until none is left."""
    target = urlsplit(url)
    conn: http.client.HTTPConnection | None = None
    while not stop.is_set() and (events := schedule.take()) is not None:
        delay = events[0].due - time.monotonic()
        if delay > 0 and stop.wait(delay):
            break
        data = json.dumps(_body(events), separators=(",", ":")).encode()
        if conn is None:
            conn = http.client.HTTPConnection(target.hostname or HOST, target.port, timeout=10)
        sent = time.monotonic()
        status, error = 0, None
        try:
            conn.request("POST", target.path, body=data, headers=dict(headers))
            response = conn.getresponse()
            answer = response.read()
            status = response.status
            if response.status != 200:
                error = f"{response.status} {answer[:300].decode('utf-8', 'replace')}"
            if response.will_close:
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as exc:
            error = f"{type(exc).__name__}: {exc}"
            if conn is not None:
                conn.close()
            conn = None
        answered = time.monotonic()
        for event in events:
            event.sent, event.answered, event.status, event.error = sent, answered, status, error
    if conn is not None:
        conn.close()


def _sdk_loop(host: str, write_key: str, schedule: Schedule, stop: threading.Event) -> None:
    """Track each event when due through the real Segment SDK, then flush it.

    The SDK queues events and its consumer thread posts them to `/v1/batch` (every 0.5 s or
    100 events by default). Its upload call is wrapped only to note when each batch was
    answered, and how.
    """
    client = SegmentClient(write_key=write_key, host=host)
    events = {e.message_id: e for e in schedule.events}
    for consumer in client.consumers:
        consumer.request = _timed_upload(consumer.request, events)
    template = track_event(0, datetime.now(UTC))
    for event in schedule.events:
        delay = event.due - time.monotonic()
        if delay > 0 and stop.wait(delay):
            break
        event.sent = time.monotonic()
        client.track(
            user_id=template["userId"],
            event=template["event"],
            properties=template["properties"],
            message_id=event.message_id,
        )
    client.shutdown()  # uploads what is queued, then stops the consumer thread


Upload = Callable[[list[dict[str, Any]]], None]


def _timed_upload(upload: Upload, events: Mapping[str, Sent]) -> Upload:
    def timed(batch: list[dict[str, Any]]) -> None:
        status, error = 200, None
        try:
            upload(batch)
        except Exception as exc:
            status, error = int(getattr(exc, "status", 0) or 0), f"{type(exc).__name__}: {exc}"
            raise
        finally:
            answered = time.monotonic()
            for item in batch:
                if (event := events.get(item.get("messageId", ""))) is not None:
                    event.answered, event.status, event.error = answered, status, error

    return timed


# --- the stack -------------------------------------------------------------------------------


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
    return json.loads(text)  # type: ignore[no-any-return]


def _wait_ingest(url: str, headers: Mapping[str, str], timeout: float = 30.0) -> None:
    """Until ingest answers 200 through `url` (its first request loads the Google clients)."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        body = {**track_event(0, datetime.now(UTC)), "messageId": f"bench-probe-{uuid.uuid4()}"}
        if url.endswith("/batch"):
            body = {"batch": [body]}
        try:
            status, text = post(url, json.dumps(body).encode(), headers)
        except OSError as exc:
            last = str(exc)
        else:
            if status == 200:
                return
            last = f"{status} {text[:300]}"
        time.sleep(0.2)
    raise RuntimeError(f"ingest not answering 200 at {url} after {timeout:.0f}s: {last}")


# --- analysis --------------------------------------------------------------------------------


def _first_receipts(received: Iterable[Received]) -> tuple[dict[str, Received], dict[str, int]]:
    """messageId -> first receipt, and messageId -> how many times it was received."""
    first: dict[str, Received] = {}
    counts: dict[str, int] = {}
    for item in received:
        key = next(
            (v for k, v in item.headers.items() if k.lower() == "idempotency-key"),
            next((v for k, v in item.headers.items() if k.lower() == "x-streams-message-id"), ""),
        )
        counts[key] = counts.get(key, 0) + 1
        if key not in first or item.at < first[key].at:
            first[key] = item
    return first, counts


def _read_records(
    services: Services, workspace_id: str, rule_id: str, message_ids: list[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """messageId -> event log entry, messageId -> delivery record (from Firestore)."""
    from shared.domain.pipeline import delivery_id, delivery_path, event_log_path

    store = services.store
    logs: dict[str, Any] = {}
    deliveries: dict[str, Any] = {}
    for start in range(0, len(message_ids), READ_CHUNK):
        chunk = message_ids[start : start + READ_CHUNK]
        log_paths = {event_log_path(workspace_id, m): m for m in chunk}
        for path, doc in store.get_many(list(log_paths)).items():
            logs[log_paths[path]] = doc
        delivery_paths = {delivery_path(workspace_id, delivery_id(m, rule_id)): m for m in chunk}
        for path, doc in store.get_many(list(delivery_paths)).items():
            deliveries[delivery_paths[path]] = doc
    return logs, deliveries


def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 1) for k, v in values.items()}


STAGES = {
    "ingest": "receivedAt (ingest's clock) -> ingest's 200 at the client: publish to the "
    "source topic and answer",
    "source_push": "ingest's 200 -> process claims the event (event log claimed_at): Pub/Sub "
    "push of the source topic to `process`",
    "process": "claimed_at -> routed_at: Firestore claim, BigQuery insert, routing, publish to "
    "the deliveries topic",
    "delivery": "routed_at -> webhook receipt: Pub/Sub push of the deliveries topic to "
    "`deliver`, its Firestore read and the HTTP send",
    "record": "webhook receipt -> delivery record's delivered_at (after the send returned)",
}


def _stages(
    events: list[Sent],
    first: Mapping[str, Received],
    logs: Mapping[str, Any],
    deliveries: Mapping[str, Any],
    to_wall: float,
) -> dict[str, dict[str, float]]:
    """Per event, in ms: the stages of STAGES (None where a timestamp is missing)."""
    per_event: dict[str, dict[str, float]] = {}
    for event in events:
        receipt = first.get(event.message_id)
        if receipt is None:
            continue
        answered = event.answered + to_wall
        received_at = to_wall + receipt.at
        log = logs.get(event.message_id) or {}
        record = deliveries.get(event.message_id) or {}
        try:
            ingest_at = _epoch(json.loads(receipt.body).get("receivedAt"))
        except ValueError:
            ingest_at = None
        claimed = _epoch(log.get("claimed_at"))
        routed = _epoch(log.get("routed_at"))
        delivered = _epoch(record.get("delivered_at"))
        points = [ingest_at, answered, claimed, routed, received_at, delivered]
        values: dict[str, float] = {}
        for name, (a, b) in zip(STAGES, itertools.pairwise(points), strict=True):
            if a is not None and b is not None:
                values[name] = (b - a) * 1000
        per_event[event.message_id] = values
    return per_event


def _analyse(
    schedule: Schedule,
    received: list[Received],
    logs: Mapping[str, Any],
    deliveries: Mapping[str, Any],
    to_wall: float,
    send_began: float,
) -> dict[str, Any]:
    first, counts = _first_receipts(received)
    known = {e.message_id for e in schedule.events}
    measured = [e for e in schedule.events if e.phase == "measure"]
    warmup = [e for e in schedule.events if e.phase == "warmup"]
    accepted = [e for e in measured if e.accepted]
    sent = [e for e in measured if e.sent]
    failed = [e for e in sent if not e.accepted]
    latencies = {
        e.message_id: (first[e.message_id].at - e.answered) * 1000
        for e in accepted
        if e.message_id in first
    }
    lost = [e.message_id for e in accepted if e.message_id not in first]
    duplicated = {m: n for m, n in counts.items() if m in known and n > 1}
    span = max(e.sent for e in sent) - min(e.sent for e in sent) if len(sent) > 1 else 0.0
    stage_values = _stages(accepted, first, logs, deliveries, to_wall)
    stages = {
        name: _rounded(percentiles([v[name] for v in stage_values.values() if name in v]))
        for name in STAGES
    }
    ordered = sorted(latencies, key=latencies.__getitem__)
    slowest = ordered[-max(1, len(ordered) // 100) :] if ordered else []
    slow_stages = {
        name: round(sum(vals) / len(vals), 1)
        for name in STAGES
        if (vals := [stage_values[m][name] for m in slowest if name in stage_values.get(m, {})])
    }
    windows: list[dict[str, Any]] = []
    if accepted:
        base = min(e.sent for e in accepted)
        buckets: dict[int, list[float]] = {}
        for e in accepted:
            if e.message_id in latencies:
                buckets.setdefault(int((e.sent - base) // WINDOW_S), []).append(
                    latencies[e.message_id]
                )
        for index in sorted(buckets):
            p = percentiles(buckets[index])
            windows.append(
                {
                    "from_s": index * WINDOW_S,
                    "events": len(buckets[index]),
                    "p50_ms": round(p["p50"], 1),
                    "p99_ms": round(p["p99"], 1),
                    "max_ms": round(p["max"], 1),
                }
            )
    attempts = [int(d.get("attempts", 0)) for m, d in deliveries.items() if d and m in latencies]
    statuses: dict[str, int] = {}
    for doc in deliveries.values():
        status = doc.get("status") if doc else "missing"
        statuses[status] = statuses.get(status, 0) + 1
    latency = _rounded(percentiles(list(latencies.values())))
    rows = [
        {
            "message_id": e.message_id,
            "sent_s": round(e.sent - send_began, 3),
            "latency_ms": round(latencies[e.message_id], 1) if e.message_id in latencies else None,
            "receipts": counts.get(e.message_id, 0),
            **_rounded(stage_values.get(e.message_id, {})),
        }
        for e in accepted
    ]
    return {
        "_events": rows,
        "sending": {
            "scheduled": len(measured),
            "sent": len(sent),
            "accepted": len(accepted),
            "failed": len(failed),
            "failure_sample": failed[0].error if failed else None,
            "achieved_rate": round((len(sent) - 1) / span, 1) if span else 0.0,
            "send_lag_ms": _rounded(percentiles([(e.sent - e.due) * 1000 for e in sent])),
            "ingest_response_ms": _rounded(
                percentiles([(e.answered - e.sent) * 1000 for e in accepted])
            ),
            "measured_from_s": round(
                min((e.sent for e in sent), default=send_began) - send_began, 3
            ),
        },
        "delivery": {
            "received": len(latencies),
            "lost": len(lost),
            "lost_sample": lost[:5],
            "duplicated": len(duplicated),
            "duplicate_receipts": sum(n - 1 for n in duplicated.values()),
            "unknown_receipts": sum(n for m, n in counts.items() if m not in known),
            "latency_ms": latency,
            "send_to_receipt_ms": _rounded(
                percentiles(
                    [
                        (first[e.message_id].at - e.sent) * 1000
                        for e in accepted
                        if e.message_id in first
                    ]
                )
            ),
            "delivery_attempts": {str(n): attempts.count(n) for n in sorted(set(attempts))},
            "delivery_statuses": statuses,
        },
        "stages_ms": stages,
        "stage_definitions": STAGES,
        "slowest_1pct_mean_stage_ms": slow_stages,
        "latency_over_time": windows,
        "warmup": {
            "sent": sum(1 for e in warmup if e.sent),
            "accepted": sum(1 for e in warmup if e.accepted),
            "received": sum(1 for e in warmup if e.message_id in first),
        },
        "target": {
            "p99_ms_below": P99_TARGET_MS,
            "measured_p99_ms": latency["p99"],
            "met": bool(latencies) and not lost and latency["p99"] < P99_TARGET_MS,
        },
    }


def _log_errors(state_dir: Path) -> dict[str, Any]:
    """Per function log: how many tracebacks and error lines, and the last error line."""
    found: dict[str, Any] = {}
    for path in sorted((state_dir / "logs").glob("function-*.log")):
        lines = path.read_text(errors="replace").splitlines()
        errors = [line for line in lines if "Error" in line or "ERROR" in line]
        tracebacks = sum(1 for line in lines if line.startswith("Traceback"))
        if errors or tracebacks:
            found[path.stem] = {
                "tracebacks": tracebacks,
                "error_lines": len(errors),
                "last_error": errors[-1][:300] if errors else None,
            }
    return found


# --- the run ---------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    started_at = datetime.now(UTC)
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
        return 2
    urls = _function_urls(ports)
    busy = _ports_in_use(ports, len(urls))
    if busy:
        print(
            f"ports in use: {busy}; pick others with --gateway-port/--functions-port",
            file=sys.stderr,
        )
        return 2
    call = "track" if args.batch_size == 1 and not args.sdk else "batch"
    target_url = (
        f"http://{HOST}:{ports.gateway}/v1/{call}"
        if args.via == "gateway"
        else f"{urls['ingest']}/v1/{call}"
    )

    stack = LocalStack(ports=ports, state_dir=state_dir)
    stop = threading.Event()
    senders: list[threading.Thread] = []

    def stop_senders() -> None:
        stop.set()
        for thread in senders:
            thread.join(timeout=15)

    finished = False
    timings: dict[str, float] = {}
    to_wall = time.time() - time.monotonic()
    try:
        with ExitStack() as cleanup:
            receiver = cleanup.enter_context(webhook_receiver())
            # Unwound before the receiver closes: the functions stop before the receiver they
            # deliver to.
            cleanup.callback(stack.stop)
            print(f"Starting the local stack (state dir {state_dir}) ...", flush=True)
            began = time.monotonic()
            stack.start()
            timings["stack_start_s"] = time.monotonic() - began
            handles = stack.emulators.handles if stack.emulators else {}
            reused = [name for name, handle in handles.items() if not handle.started_by_us]
            from shared.bootstrap import Services
            from shared.config import Settings

            services = Services(Settings.from_env())
            # A workspace of the bench's own, never `make dev`'s (LocalStack.bootstrap would
            # reuse the one in a dev.json): its rules, destinations and source are deleted and
            # its token revoked when this block exits, before the stack stops.
            setup: BenchWorkspace = cleanup.enter_context(own_workspace(services, "pipeline"))
            # Unwound in reverse: interrupts ignored, the senders stopped (no event is sent
            # while the workspace is taken apart), the workspace dismantled, the stack stopped.
            cleanup.callback(stop_senders)
            cleanup.callback(ignore_interrupts)
            print(f"Workspace {setup.name!r} ({setup.workspace_id})", flush=True)
            api = f"{stack.gateway_url}/api/v1/workspaces/{setup.workspace_id}"
            destination = _api(
                f"{api}/destinations",
                setup.admin_token,
                {
                    "name": "bench webhook",
                    "type": "webhook",
                    "config": {"url": receiver.url, "secret": SECRET},
                },
            )
            rule = _api(
                f"{api}/event-forwarding-rules",
                setup.admin_token,
                {
                    "name": "bench: every event",
                    "destination_id": destination["id"],
                    "event_types": [],
                    "event_names": [],
                },
            )
            headers = {"Content-Type": "application/json", "X-Write-Key": setup.write_key}
            settle_until = time.monotonic() + args.settle
            print(
                f"Rule {rule['id']} created; waiting {args.settle:g}s for the routing cache ...",
                flush=True,
            )
            _wait_ingest(target_url, headers)  # its first request loads the Google clients
            time.sleep(max(0.0, settle_until - time.monotonic()))

            groups = {f"function:{name}": p.pid for name, p in stack.functions.items() if p.pid}
            groups.update(
                {
                    f"emulator:{name}": h.process.pid
                    for name, h in handles.items()
                    if h.process is not None and h.process.pid
                }
            )
            groups["bench (senders, receiver, gateway)"] = os.getpgid(0)
            meter = CpuMeter(groups)

            print(
                f"Sending {args.rate:g} events/s to {target_url}: warm-up {args.warmup:g}s, "
                f"measure {args.duration:g}s ...",
                flush=True,
            )
            send_began = time.monotonic() + 0.2
            schedule = Schedule(send_began, args.rate, args.warmup, args.duration, args.batch_size)
            if args.sdk:
                sdk_host = target_url.removesuffix("/v1/batch")
                loops = [(_sdk_loop, (sdk_host, setup.write_key, schedule, stop))]
            else:
                loops = [(_send_loop, (target_url, headers, schedule, stop))] * args.senders
            senders = [
                threading.Thread(target=loop, args=loop_args, name=f"sender-{i}", daemon=True)
                for i, (loop, loop_args) in enumerate(loops)
            ]
            for thread in senders:
                thread.start()
            time.sleep(max(0.0, send_began + args.warmup - time.monotonic()))
            meter.start()
            for thread in senders:
                thread.join()
            cpu = meter.stop()
            cpu.pop("load_generator", None)  # our children are the functions: counted above
            sending_done = time.monotonic()

            expected = {e.message_id for e in schedule.events if e.accepted}
            print(f"Sent; waiting up to {args.drain:g}s for the last deliveries ...", flush=True)
            while time.monotonic() - sending_done < args.drain:
                first, _ = _first_receipts(receiver.delivered())
                if expected <= first.keys():
                    break
                time.sleep(0.2)
            timings["drain_s"] = time.monotonic() - sending_done
            time.sleep(0.5)  # a duplicate, if any, usually follows its original closely

            # Receipts first: the backlog keeps flowing meanwhile, and an event received after
            # its records were read would lack them.
            received = receiver.delivered()
            accepted_ids = [e.message_id for e in schedule.events if e.accepted]
            logs, deliveries = _read_records(services, setup.workspace_id, rule["id"], accepted_ids)
            results = _analyse(schedule, received, logs, deliveries, to_wall, send_began)
            rows = results.pop("_events")
            if args.events_out:
                args.events_out.write_text(json.dumps(rows, indent=1) + "\n")
            log_errors = _log_errors(state_dir)
            finished = True
    except KeyboardInterrupt:
        print("\nInterrupted; stopping everything started ...", file=sys.stderr, flush=True)
        return 130
    finally:
        ignore_interrupts()
        stop_senders()
        stack.stop()  # already done unless the ExitStack was never entered
        if not finished or args.keep_state:
            print(f"Logs kept in {state_dir / 'logs'}", file=sys.stderr, flush=True)
        else:
            shutil.rmtree(state_dir, ignore_errors=True)

    report = {
        "benchmark": "pipeline",
        "started_at": _iso(started_at),
        "finished_at": _iso(datetime.now(UTC)),
        "machine": {**machine_info(), "load_average_1m_at_end": round(os.getloadavg()[0], 2)},
        "settings": {
            "path": _path_text(args),
            "scenario": _scenario(args),
            "batch_size": None if args.sdk else args.batch_size,
            "url": target_url,
            "rate_per_s": args.rate,
            "warmup_s": args.warmup,
            "duration_s": args.duration,
            "drain_s": args.drain,
            "settle_s": args.settle,
            "senders": args.senders,
            "schedule": "open loop: event i due at start + i/rate, "
            + (
                "each tracked through one Segment SDK client (default settings)"
                if args.sdk
                else "keep-alive connections"
            ),
            "destination": "webhook to tests/webhook_receiver.py (ThreadingHTTPServer, 200)",
            "functions": "emulators.dev.LocalStack: one functions-framework production server "
            "(gunicorn gthread, WORKERS/THREADS from the environment, default 1 worker and "
            "4 x CPUs threads) per function, Pub/Sub emulator push subscriptions",
            "emulators": args.emulators,
            "emulators_reused": reused,
            "project_id": args.project,
            "ports": {"gateway": ports.gateway, "functions": ports.functions},
            "versions": package_versions(
                "functions-framework",
                "gunicorn",
                "flask",
                "google-cloud-pubsub",
                "google-cloud-firestore",
                "google-cloud-bigquery",
            ),
        },
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
        **results,
        "cpu_cores_while_measuring": cpu,
        "function_log_errors": log_errors,
    }
    _write(report)
    _print_table(report)
    # Like bench.ingest: failed requests fail the run; latency, losses and duplicates are
    # reported (an event late beyond the drain window is indistinguishable from a lost one).
    return 1 if results["sending"]["failed"] else 0


def _scenario(args: argparse.Namespace) -> str:
    if args.sdk:
        return "sdk"
    return "track" if args.batch_size == 1 else f"batch{args.batch_size}"


def _path_text(args: argparse.Namespace) -> str:
    if args.sdk:
        path = "segment-analytics-python's track(), POST /v1/batch every 0.5 s or 100 events, "
    elif args.batch_size == 1:
        path = "POST /v1/track, one event per request, "
    else:
        path = f"POST /v1/batch, {args.batch_size} events per request, "
    return path + ("through the local gateway" if args.via == "gateway" else "straight to ingest")


def _write(report: dict[str, Any]) -> None:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = report["started_at"].replace("-", "").replace(":", "").split(".")[0] + "Z"
    name = f"pipeline-{report['settings']['scenario']}"
    text = json.dumps(report, indent=2) + "\n"
    path = RESULTS_DIR / f"{name}-{stamp}.json"
    path.write_text(text)
    (RESULTS_DIR / f"{name}-latest.json").write_text(text)
    print(f"\nResults: {path.relative_to(REPO_ROOT)} (and {name}-latest.json)")


def _print_table(report: dict[str, Any]) -> None:
    s, send, d = report["settings"], report["sending"], report["delivery"]
    m = report["machine"]
    print(
        f"{m['cpu_count']} x {m['cpu_model']}; {s['path']}; {s['rate_per_s']:g} events/s "
        f"offered, {send['achieved_rate']:g} achieved; {s['duration_s']:g}s measured"
    )
    print(
        f"sent {send['sent']}, accepted {send['accepted']}, failed {send['failed']}; "
        f"received {d['received']}, lost {d['lost']}, duplicated {d['duplicated']}"
    )
    header = f"{'ms':<34}{'p50':>10}{'p90':>10}{'p99':>10}{'max':>10}"
    print(header)
    print("-" * len(header))
    sdk = s["scenario"] == "sdk"
    rows = [
        ("ingest answer -> webhook receipt", d["latency_ms"]),
        *((("track() call -> webhook receipt", d["send_to_receipt_ms"]),) if sdk else ()),
        (
            "track() call -> ingest answer" if sdk else "ingest request (client)",
            send["ingest_response_ms"],
        ),
        *((f"  stage {name}", values) for name, values in report["stages_ms"].items()),
        ("send lag behind schedule", send["send_lag_ms"]),
    ]
    for label, v in rows:
        print(f"{label:<34}{v['p50']:>10.1f}{v['p90']:>10.1f}{v['p99']:>10.1f}{v['max']:>10.1f}")
    slow = ", ".join(f"{k} {v:g}" for k, v in report["slowest_1pct_mean_stage_ms"].items())
    print(f"slowest 1% of events, mean ms per stage: {slow}")
    cores = ", ".join(
        f"{k.split(':')[-1].split(' ')[0]} {v:g}"
        for k, v in sorted(report["cpu_cores_while_measuring"].items(), key=lambda kv: -kv[1])
        if v >= 0.05
    )
    print(f"CPU cores while measuring: {cores}")
    t = report["target"]
    verdict = "met" if t["met"] else "MISSED"
    print(f"target p99 < {t['p99_ms_below']:g} ms: {t['measured_p99_ms']:g} ms {verdict}")
    if send["failed"]:
        print(f"FAILED requests: {send['failed']} ({send['failure_sample']})")
    if d["lost"]:
        print(f"LOST events: {d['lost']} (e.g. {d['lost_sample'][:2]})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline", description=__doc__)
    env = os.environ.get
    parser.add_argument("--rate", type=float, default=float(env("BENCH_RATE", "100")))
    parser.add_argument(
        "--duration", type=float, default=float(env("BENCH_PIPELINE_DURATION", "30"))
    )
    parser.add_argument("--warmup", type=float, default=float(env("BENCH_PIPELINE_WARMUP", "5")))
    parser.add_argument(
        "--drain",
        type=float,
        default=float(env("BENCH_DRAIN", "30")),
        help="seconds to wait for deliveries after sending stops; later ones count as lost",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=float(env("BENCH_SETTLE", "6")),
        help="seconds between creating the rule and sending (routing is cached up to 5 s)",
    )
    parser.add_argument("--senders", type=int, default=int(env("BENCH_SENDERS", "8")))
    parser.add_argument(
        "--batch-size",
        type=int,
        default=int(env("BENCH_PIPELINE_BATCH_SIZE", "1")),
        help="events per request: 1 sends POST /v1/track, more send POST /v1/batch",
    )
    parser.add_argument(
        "--sdk",
        action="store_true",
        default=env("BENCH_SDK", "") == "1",
        help="send through the real Segment SDK (its default batching) instead of raw requests",
    )
    parser.add_argument(
        "--via",
        choices=("gateway", "ingest"),
        default=env("BENCH_VIA", "gateway"),
        help="send through the local gateway (default) or straight to the ingest function",
    )
    parser.add_argument("--gateway-port", type=int, default=int(env("BENCH_GATEWAY_PORT", "27080")))
    parser.add_argument(
        "--functions-port",
        type=int,
        default=int(env("BENCH_FUNCTIONS_PORT", "27100")),
        help="first of the consecutive ports of the functions",
    )
    parser.add_argument(
        "--project",
        default=env("BENCH_PROJECT_ID", "streams-bench"),
        help="Pub/Sub and Firestore project on the emulators (kept apart from make dev's)",
    )
    parser.add_argument(
        "--emulators",
        choices=("own", "shared"),
        default=env("BENCH_EMULATORS", "own"),
        help="own: start emulators on the bench's ports (27085, 27086, 27050, 27060); "
        "shared: reuse those at STREAMS_*_PORT (default ports) if running",
    )
    parser.add_argument(
        "--events-out", type=Path, help="also write every measured event's timings to this file"
    )
    parser.add_argument(
        "--keep-state", action="store_true", help="keep the temporary state dir (function logs)"
    )
    args = parser.parse_args(argv)
    catch_interrupts()
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
