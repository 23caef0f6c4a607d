"""`make bench`: ingest's /v1/track and /v1/batch against a no-op function, same server settings.

Starts (or reuses) the emulators, creates a workspace of its own (`bench ingest <UTC>`) and a
source (deleted when the run ends, however it ends), serves `functions/ingest` and `bench/noop`
with functions-framework's production server (gunicorn, WORKERS=2), drives each scenario with
wrk (or a Python fallback) after a warm-up, and writes
bench/results/ingest-<UTC timestamp>.json and bench/results/ingest-latest.json.
Exit status: 0, or 1 when any request failed (a non-200 answer or a connection error).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import (
    HOST,
    CpuMeter,
    Load,
    LoadGenerator,
    LoadResult,
    catch_interrupts,
    connections_by_process,
    free_port,
    function_server,
    ignore_interrupts,
    machine_info,
    package_versions,
    wait_serving,
)
from bench.workspace import own_workspace
from emulators.processes import ManagedProcess, recorded_group_alive
from emulators.stack import REPO_ROOT, EmulatorStack, default_state_dir, start_stack

RESULTS_DIR = REPO_ROOT / "bench" / "results"
NOOP_SOURCE = REPO_ROOT / "bench" / "noop" / "main.py"
INGEST_SOURCE = REPO_ROOT / "functions" / "ingest" / "main.py"

# Targets from the issue: ingest's single-event throughput against the no-op's, and batch volume.
TRACK_VS_NOOP_TARGET = 0.60
BATCH_EVENTS_TARGET = 20_000.0

SERVE_TIMEOUT = 60.0
# gunicorn's workers share one listening socket and a keep-alive connection stays with the worker
# that accepted it: wrk's burst of connects often lands (almost) all on one worker, which then
# runs on one core (one GIL) while the other idles. Such a run measures the accept race, not the
# function, so it is repeated (up to --attempts runs; every run is recorded in the JSON).
MAX_WORKER_SHARE = 2 / 3


@dataclass(frozen=True)
class Scenario:
    name: str
    function: str  # "noop" or "ingest"
    path: str
    body: bytes
    events_per_request: int


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def track_event(index: int, moment: datetime) -> dict[str, Any]:
    """A track call shaped like what segment-analytics-python sends."""
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": f"user-{index % 997}",
        "anonymousId": None,
        "messageId": str(uuid.uuid4()),
        "timestamp": _iso(moment - timedelta(milliseconds=index)),
        "properties": {
            "order_id": f"ORD-{100000 + index}",
            "total": 99.99,
            "currency": "USD",
            "products": [{"sku": "SKU-42", "name": "Widget", "quantity": 2, "price": 24.99}],
        },
        "context": {
            "library": {"name": "analytics-python", "version": "2.4.0"},
            "ip": "203.0.113.7",
        },
        "integrations": {},
    }


def bodies(write_key: str, batch_size: int) -> tuple[bytes, bytes]:
    """(single track body, batch body with `batch_size` track events), compact JSON."""
    now = datetime.now(UTC)
    single = track_event(0, now)
    single["sentAt"] = _iso(now)
    batch = {
        "batch": [track_event(i, now) for i in range(batch_size)],
        "sentAt": _iso(now),
        "context": {"library": {"name": "analytics-python", "version": "2.4.0"}},
        "writeKey": write_key,
    }

    def encode(value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":")).encode()

    return encode(single), encode(batch)


def _basic(write_key: str) -> str:
    return "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()


def _pubsub_group(stack: EmulatorStack, state_dir: Path) -> int | None:
    handle = stack.handles.get("pubsub")
    if handle is not None and handle.process is not None:
        return handle.process.pid
    return recorded_group_alive(state_dir / "run" / "pubsub.pid")


def run(args: argparse.Namespace) -> int:
    state_dir = default_state_dir()
    cpu_count = os.cpu_count() or 1
    threads_source = "set" if args.server_threads else "functions-framework default (4 x CPUs)"
    server_threads = args.server_threads or 4 * cpu_count
    generator = LoadGenerator.choose(args.load_generator)
    started_at = datetime.now(UTC)
    print(f"Load generator: {generator.name}", flush=True)

    stack: EmulatorStack | None = None
    servers: dict[str, ManagedProcess] = {}
    cleanup = ExitStack()
    try:
        print("Starting (or reusing) the emulators ...", flush=True)
        stack = start_stack(state_dir=state_dir)
        env = stack.env()
        os.environ.update(env)
        from shared.bootstrap import Services
        from shared.config import Settings

        services = Services(Settings.from_env())
        # A workspace of its own, dismantled (its source deleted) in the `finally` below.
        workspace = cleanup.enter_context(own_workspace(services, "ingest"))
        track_body, batch_body = bodies(workspace.write_key, args.batch_size)
        headers = {
            "Content-Type": "application/json",
            "Authorization": _basic(workspace.write_key),
        }

        server_env = {
            **env,
            "WORKERS": str(args.workers),
            "THREADS": str(server_threads),
            "GUNICORN_LOG_LEVEL": "error",
        }
        ports = {"noop": free_port(), "ingest": free_port()}
        servers["noop"] = function_server(
            "noop", "noop", NOOP_SOURCE, ports["noop"], server_env, state_dir, REPO_ROOT
        )
        servers["ingest"] = function_server(
            "ingest", "ingest", INGEST_SOURCE, ports["ingest"], server_env, state_dir, REPO_ROOT
        )
        for server in servers.values():
            server.start()
        for name, server in servers.items():
            url = f"http://{HOST}:{ports[name]}/v1/track"
            wait_serving(server, url, track_body, headers, SERVE_TIMEOUT)

        scenarios = [
            Scenario("noop_track", "noop", "/v1/track", track_body, 1),
            Scenario("track", "ingest", "/v1/track", track_body, 1),
            Scenario("noop_batch", "noop", "/v1/batch", batch_body, args.batch_size),
            Scenario("batch", "ingest", "/v1/batch", batch_body, args.batch_size),
        ]
        pubsub_group = _pubsub_group(stack, state_dir)
        results: dict[str, dict[str, Any]] = {}
        for scenario in scenarios:
            server = servers[scenario.function]
            load = Load(
                url=f"http://{HOST}:{ports[scenario.function]}{scenario.path}",
                body=scenario.body,
                headers=headers,
                connections=args.connections,
                threads=args.load_threads,
            )
            print(
                f"  {scenario.name}: warm-up {args.warmup:g}s, measure {args.duration:g}s",
                flush=True,
            )
            warmup = generator.run(load, args.warmup)
            groups = {"server": server.pid or -1}
            if pubsub_group is not None:
                groups["pubsub_emulator"] = pubsub_group
            attempts: list[Attempt] = []
            while True:
                attempts.append(
                    _measure(generator, load, args.duration, groups, ports[scenario.function])
                )
                if attempts[-1].balanced or len(attempts) >= args.attempts:
                    break
                print(
                    f"    connections skewed across workers ({attempts[-1].spread_text}): "
                    "measuring again",
                    flush=True,
                )
            chosen = attempts[-1]
            result = _scenario_result(scenario, warmup, chosen.load, chosen.cpu, len(load.body))
            result["server_processes"] = {
                "cores": chosen.per_process,
                "connections": chosen.connections,
                "balanced": chosen.balanced,
            }
            result["attempts"] = [
                {
                    "requests_per_second": round(a.load.requests_per_second, 1),
                    "connections": a.connections,
                    "server_cores": a.cpu.get("server"),
                    "error_count": a.load.error_count,
                }
                for a in attempts
            ]
            results[scenario.name] = result
            time.sleep(0.5)  # let in-flight publishes drain before the next scenario
    except KeyboardInterrupt:
        print("\nInterrupted; stopping everything started ...", file=sys.stderr, flush=True)
        return 130
    finally:
        ignore_interrupts()
        with ThreadPoolExecutor(max_workers=max(1, len(servers))) as pool:
            list(pool.map(ManagedProcess.stop, servers.values()))
        cleanup.close()  # the workspace, while the emulators still run
        if stack is not None:
            stack.stop()

    report = _report(
        args, generator, started_at, server_threads, threads_source, results, cpu_count
    )
    _write(report)
    _print_table(report)
    return 1 if report["errors_total"] else 0


@dataclass
class Attempt:
    """One measured run: the load result, CPU, and how the connections spread over workers."""

    load: LoadResult
    cpu: dict[str, float]
    per_process: list[float]
    connections: list[int]

    @property
    def balanced(self) -> bool:
        """No worker holds more than MAX_WORKER_SHARE of the connections (unknown counts pass)."""
        total = sum(self.connections)
        return total == 0 or max(self.connections) / total <= MAX_WORKER_SHARE

    @property
    def spread_text(self) -> str:
        return "/".join(str(n) for n in self.connections) or "unknown"


def _measure(
    generator: LoadGenerator, load: Load, seconds: float, groups: dict[str, int], port: int
) -> Attempt:
    """One measured run; counts each worker's connections once the load has connected."""
    meter = CpuMeter(groups)
    spread: list[list[int]] = []
    probe = threading.Timer(
        min(2.0, seconds / 2),
        lambda: spread.append(connections_by_process(groups["server"], port)),
    )
    meter.start()
    probe.start()
    try:
        result = generator.run(load, seconds)
    finally:
        probe.cancel()
    cpu = meter.stop()
    return Attempt(result, cpu, meter.per_process.get("server", []), spread[0] if spread else [])


def _scenario_result(
    scenario: Scenario,
    warmup: LoadResult,
    measured: LoadResult,
    cpu: dict[str, float],
    body_bytes: int,
) -> dict[str, Any]:
    rps = measured.requests_per_second
    return {
        "function": scenario.function,
        "path": scenario.path,
        "events_per_request": scenario.events_per_request,
        "body_bytes": body_bytes,
        "requests": measured.requests,
        "duration_s": round(measured.duration_s, 3),
        "requests_per_second": round(rps, 1),
        "events_per_second": round(rps * scenario.events_per_request, 1),
        "latency_ms": {k: round(v, 2) for k, v in measured.latency_ms.items()},
        "errors": measured.errors,
        "error_count": measured.error_count,
        "error_sample": measured.error_sample,
        "warmup": {
            "requests": warmup.requests,
            "requests_per_second": round(warmup.requests_per_second, 1),
            "error_count": warmup.error_count,
            "error_sample": warmup.error_sample,
        },
        # Cores busy during the measurement, and CPU milliseconds per request, by process group:
        # the function server, the Pub/Sub emulator's JVM, the load generator, the rest.
        "cpu_cores": cpu,
        "cpu_ms_per_request": {k: round(v / rps * 1000, 3) for k, v in cpu.items()} if rps else {},
    }


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def _cpu_ms(result: dict[str, Any]) -> float:
    """Server plus Pub/Sub emulator CPU milliseconds per request."""
    per = result["cpu_ms_per_request"]
    return float(per.get("server", 0.0) + per.get("pubsub_emulator", 0.0))


def _report(
    args: argparse.Namespace,
    generator: LoadGenerator,
    started_at: datetime,
    server_threads: int,
    threads_source: str,
    results: dict[str, dict[str, Any]],
    cpu_count: int,
) -> dict[str, Any]:
    track_ratio = _ratio(
        results["track"]["requests_per_second"], results["noop_track"]["requests_per_second"]
    )
    batch_ratio = _ratio(
        results["batch"]["requests_per_second"], results["noop_batch"]["requests_per_second"]
    )
    batch_events = results["batch"]["events_per_second"]
    # The same comparison in CPU: what a request costs the server and the Pub/Sub emulator
    # (both on this machine's cores) against the no-op's. Throughput swings with whatever else
    # runs on the machine; CPU per request much less, so this ratio is the steadier one.
    cpu_ratios = {
        "track_vs_noop": _ratio(_cpu_ms(results["noop_track"]), _cpu_ms(results["track"])),
        "batch_vs_noop_batch": _ratio(_cpu_ms(results["noop_batch"]), _cpu_ms(results["batch"])),
    }
    return {
        "benchmark": "ingest",
        "started_at": _iso(started_at),
        "finished_at": _iso(datetime.now(UTC)),
        "machine": machine_info(),
        "settings": {
            "server": "functions-framework production server (gunicorn gthread)",
            "workers": args.workers,
            "threads": server_threads,
            "threads_source": threads_source,
            "load_generator": generator.name,
            "load_threads": args.load_threads,
            "connections": args.connections,
            "warmup_s": args.warmup,
            "duration_s": args.duration,
            "batch_size": args.batch_size,
            "max_attempts": args.attempts,
            "max_worker_connection_share": round(MAX_WORKER_SHARE, 3),
            "pubsub": "emulator (one message per request, group-commit publisher)",
            "cpu_count": cpu_count,
            "versions": package_versions(
                "functions-framework", "gunicorn", "flask", "google-cloud-pubsub", "pydantic"
            ),
        },
        "scenarios": results,
        "ratios": {"track_vs_noop": track_ratio, "batch_vs_noop_batch": batch_ratio},
        "cpu_ratios": cpu_ratios,
        "targets": {
            "track_vs_noop": {
                "target": TRACK_VS_NOOP_TARGET,
                "measured": track_ratio,
                "met": track_ratio is not None and track_ratio >= TRACK_VS_NOOP_TARGET,
            },
            "batch_events_per_second": {
                "target": BATCH_EVENTS_TARGET,
                "measured": batch_events,
                "met": batch_events >= BATCH_EVENTS_TARGET,
            },
        },
        "errors_total": sum(r["error_count"] for r in results.values()),
    }


def _write(report: dict[str, Any]) -> None:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = report["started_at"].replace("-", "").replace(":", "").split(".")[0] + "Z"
    text = json.dumps(report, indent=2) + "\n"
    path = RESULTS_DIR / f"ingest-{stamp}.json"
    path.write_text(text)
    (RESULTS_DIR / "ingest-latest.json").write_text(text)
    print(f"\nResults: {path.relative_to(REPO_ROOT)} (and ingest-latest.json)")


def _print_table(report: dict[str, Any]) -> None:
    s = report["settings"]
    m = report["machine"]
    print(
        f"{m['cpu_count']} x {m['cpu_model']}; WORKERS={s['workers']} THREADS={s['threads']}; "
        f"{s['load_generator']}, {s['load_threads']} threads, {s['connections']} connections, "
        f"{s['duration_s']:g}s per scenario"
    )
    header = (
        f"{'scenario':<11}{'req/s':>8}{'events/s':>10}{'p50 ms':>8}{'p99 ms':>8}{'errors':>7}"
        f"{'srv cores':>10}{'psub cores':>11}{'srv ms/req':>11}  conns/worker"
    )
    print(header)
    print("-" * len(header))
    for name, r in report["scenarios"].items():
        cpu, per = r["cpu_cores"], r["cpu_ms_per_request"]
        print(
            f"{name:<11}{r['requests_per_second']:>8.0f}{r['events_per_second']:>10.0f}"
            f"{r['latency_ms']['p50']:>8.1f}{r['latency_ms']['p99']:>8.1f}{r['error_count']:>7}"
            f"{cpu.get('server', 0):>10.2f}{cpu.get('pubsub_emulator', 0):>11.2f}"
            f"{per.get('server', 0):>11.2f}  "
            + "/".join(str(n) for n in r["server_processes"]["connections"])
        )
    ratios, cpu_ratios = report["ratios"], report["cpu_ratios"]
    print(
        f"ratios: track/noop {ratios['track_vs_noop']}, batch/noop_batch "
        f"{ratios['batch_vs_noop_batch']}; in CPU per request (server + emulator): "
        f"track/noop {cpu_ratios['track_vs_noop']}, batch/noop_batch "
        f"{cpu_ratios['batch_vs_noop_batch']}"
    )
    for name, t in report["targets"].items():
        verdict = "met" if t["met"] else "MISSED"
        print(f"target {name}: {t['measured']} (>= {t['target']:g}) {verdict}")
    if report["errors_total"]:
        print(f"ERRORS: {report['errors_total']} failed requests (see error_sample in the JSON)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    env = os.environ.get
    parser.add_argument("--duration", type=float, default=float(env("BENCH_DURATION", "8")))
    # A fresh Pub/Sub emulator is a JVM still compiling its publish path: after 3 s of load it
    # served ingest at 60-70% of its warm rate (docs/INGEST.md); 10 s is past that.
    parser.add_argument("--warmup", type=float, default=float(env("BENCH_WARMUP", "10")))
    parser.add_argument("--connections", type=int, default=int(env("BENCH_CONNECTIONS", "32")))
    parser.add_argument("--load-threads", type=int, default=int(env("BENCH_LOAD_THREADS", "2")))
    parser.add_argument("--workers", type=int, default=int(env("BENCH_WORKERS", "2")))
    parser.add_argument(
        "--server-threads",
        type=int,
        default=int(env("BENCH_THREADS", "0")) or None,
        help="gunicorn THREADS per worker (default: functions-framework's 4 x CPUs)",
    )
    parser.add_argument(
        "--attempts",
        type=int,
        default=int(env("BENCH_ATTEMPTS", "5")),
        help="measured runs per scenario at most, while connections are skewed across workers",
    )
    parser.add_argument("--batch-size", type=int, default=int(env("BENCH_BATCH_SIZE", "100")))
    parser.add_argument(
        "--load-generator",
        choices=("wrk", "python"),
        default=env("BENCH_LOAD_GENERATOR", "wrk"),
        help="wrk (installed with apt-get when missing and root), else the Python fallback",
    )
    args = parser.parse_args(argv)
    catch_interrupts()
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
