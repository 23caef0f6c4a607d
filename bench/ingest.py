"""`make bench`: ingest's /v1/track and /v1/batch, the asynchronous entry point against the
previous (WSGI) one and against a no-op function, in one run.

Starts (or reuses) the emulators, creates a workspace of its own (`bench ingest <UTC>`) and a
source (deleted when the run ends, however it ends), serves with functions-framework's
production server (gunicorn, WORKERS=2): `functions/ingest` (ASGI: uvicorn workers), its frozen
WSGI entry (`bench/baselines/ingest_wsgi_v1.py`: Flask on gunicorn's threads, as before issue 19
item 3), and the no-op of `bench/noop` on both server kinds; drives each scenario with wrk (or a
Python fallback) after a warm-up, and writes bench/results/ingest-<UTC timestamp>.json and
bench/results/ingest-latest.json. The comparison that counts is requests per CPU-second of the
server's processes (`requests_per_cpu_second`), new against before.
Exit status: 0, or 1 when any request failed (a non-200 answer or a connection error).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.events import track_event
from bench.load_generators import Load, LoadGenerator, LoadResult
from bench.measuring import (
    CpuMeter,
    connections_by_process,
    machine_info,
    package_versions,
    ratio,
    rounded,
)
from bench.reporting import (
    REPO_ROOT,
    Column,
    at_least,
    iso,
    machine_summary,
    print_table,
    print_targets,
    report_head,
    write_report,
)
from bench.running import (
    HOST,
    catch_interrupts,
    free_port,
    function_server,
    ignore_interrupts,
    wait_answering_200,
)
from bench.workspace import own_workspace
from emulators.processes import ManagedProcess, recorded_group_alive
from emulators.stack import EmulatorStack, default_state_dir, start_stack

NOOP_SOURCE = REPO_ROOT / "bench" / "noop" / "main.py"
INGEST_SOURCE = REPO_ROOT / "functions" / "ingest" / "main.py"
INGEST_WSGI_SOURCE = REPO_ROOT / "bench" / "baselines" / "ingest_wsgi_v1.py"
# The servers: (functions-framework target, source). `noop` and `ingest` are ASGI (uvicorn
# workers), `noop_wsgi` and `ingest_wsgi` Flask on gunicorn's threads.
SERVERS = {
    "noop": ("noop", NOOP_SOURCE),
    "noop_wsgi": ("noop_wsgi", NOOP_SOURCE),
    "ingest_wsgi": ("ingest", INGEST_WSGI_SOURCE),
    "ingest": ("ingest", INGEST_SOURCE),
}

# Targets from the issue: ingest's single-event throughput against the no-op's, and batch volume
# (issue 13); requests per CPU-second against the previous entry point (issue 19, item 3).
TRACK_VS_NOOP_TARGET = 0.60
BATCH_EVENTS_TARGET = 20_000.0
TRACK_VS_WSGI_TARGET = 2.0
BATCH_VS_WSGI_TARGET = 1.5

SERVE_TIMEOUT = 60.0
# gunicorn's workers share one listening socket and a keep-alive connection stays with the worker
# that accepted it: wrk's burst of connects often lands (almost) all on one worker, which then
# runs on one core (one GIL) while the other idles. Such a run measures the accept race, not the
# function, so it is repeated (up to --attempts runs; every run is recorded in the JSON).
MAX_WORKER_SHARE = 2 / 3


@dataclass(frozen=True)
class Scenario:
    name: str
    function: str  # a server of SERVERS
    path: str
    body: bytes
    events_per_request: int


def bodies(write_key: str, batch_size: int) -> tuple[bytes, bytes]:
    """(single track body, batch body with `batch_size` track events), compact JSON."""
    now = datetime.now(UTC)
    single = track_event(0, now)
    single["sentAt"] = iso(now)
    batch = {
        "batch": [track_event(i, now) for i in range(batch_size)],
        "sentAt": iso(now),
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
    server_threads = args.server_threads or 4 * (os.cpu_count() or 1)
    generator = LoadGenerator.choose(args.load_generator)
    started_at = datetime.now(UTC)
    print(f"Load generator: {generator.name}", flush=True)

    stack: EmulatorStack | None = None
    servers: dict[str, ManagedProcess] = {}
    cleanup = ExitStack()
    cleanup_error: Exception | None = None
    try:
        print("Starting (or reusing) the emulators ...", flush=True)
        stack = start_stack(state_dir=state_dir)
        rounds = measure_scenarios(
            args, generator, stack, state_dir, server_threads, servers, cleanup
        )
    except KeyboardInterrupt:
        print("\nInterrupted; stopping everything started ...", file=sys.stderr, flush=True)
        return 130
    finally:
        ignore_interrupts()
        with ThreadPoolExecutor(max_workers=max(1, len(servers))) as pool:
            list(pool.map(ManagedProcess.stop, servers.values()))
        try:
            cleanup.close()  # the workspace, while the emulators still run
        except Exception as error:
            # Reported once the figures are written: a failed clean-up must not lose a run.
            cleanup_error = error
        if stack is not None:
            stack.stop()

    report = {
        **report_head("ingest", started_at, machine_info()),
        "settings": settings(args, generator, server_threads),
        **comparisons(rounds),
        "errors_total": sum(r["error_count"] for results in rounds for r in results.values()),
    }
    write_report("ingest", report)
    print_results(report)
    if cleanup_error is not None:
        print(
            f"ERROR: the bench's workspace was not dismantled: {cleanup_error!r}",
            file=sys.stderr,
        )
        return 1
    return 1 if report["errors_total"] else 0


def measure_scenarios(
    args: argparse.Namespace,
    generator: LoadGenerator,
    stack: EmulatorStack,
    state_dir: Path,
    server_threads: int,
    servers: dict[str, ManagedProcess],
    cleanup: ExitStack,
) -> list[dict[str, dict[str, Any]]]:
    """The bench's workspace (on `cleanup`) and the servers (in `servers`, for the caller to
    stop), then `--rounds` rounds of every scenario; each round's figures by scenario."""
    env = stack.env()
    os.environ.update(env)
    from shared.bootstrap import Services
    from shared.config import Settings

    services = Services(Settings.from_env())
    # A workspace of its own, dismantled (its source deleted) when the caller closes `cleanup`.
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
    ports = start_servers(servers, server_env, state_dir, track_body, headers)
    scenarios = [
        Scenario("noop_track", "noop", "/v1/track", track_body, 1),
        Scenario("track_wsgi", "ingest_wsgi", "/v1/track", track_body, 1),
        Scenario("track", "ingest", "/v1/track", track_body, 1),
        Scenario("noop_batch", "noop", "/v1/batch", batch_body, args.batch_size),
        Scenario("batch_wsgi", "ingest_wsgi", "/v1/batch", batch_body, args.batch_size),
        Scenario("batch", "ingest", "/v1/batch", batch_body, args.batch_size),
        Scenario("noop_wsgi_track", "noop_wsgi", "/v1/track", track_body, 1),
        Scenario("noop_wsgi_batch", "noop_wsgi", "/v1/batch", batch_body, args.batch_size),
    ]
    pubsub_group = _pubsub_group(stack, state_dir)
    rounds: list[dict[str, dict[str, Any]]] = []
    for index in range(args.rounds):
        # Every other round in the reverse order: a drift of the machine's other load over a
        # round then weighs on both sides of each comparison alike.
        order = scenarios if index % 2 == 0 else scenarios[::-1]
        warmup = args.warmup if index == 0 else args.round_warmup
        print(f"Round {index + 1} of {args.rounds}", flush=True)
        results: dict[str, dict[str, Any]] = {}
        for scenario in order:
            load = Load(
                url=f"http://{HOST}:{ports[scenario.function]}{scenario.path}",
                body=scenario.body,
                headers=headers,
                connections=args.connections,
                threads=args.load_threads,
            )
            server = servers[scenario.function]
            results[scenario.name] = measure_scenario(
                args,
                generator,
                scenario,
                load,
                server,
                ports[scenario.function],
                pubsub_group,
                warmup,
            )
            time.sleep(0.5)  # let in-flight publishes drain before the next scenario
        rounds.append({scenario.name: results[scenario.name] for scenario in scenarios})
    return rounds


def start_servers(
    servers: dict[str, ManagedProcess],
    env: dict[str, str],
    state_dir: Path,
    probe_body: bytes,
    headers: dict[str, str],
) -> dict[str, int]:
    """Start the servers of SERVERS (each added to `servers` as soon as it exists, for the
    caller to stop) and wait until each answers a real request; their ports."""
    ports = {name: free_port() for name in SERVERS}
    for name, (target, source) in SERVERS.items():
        servers[name] = function_server(
            name, target, source, ports[name], env, state_dir, REPO_ROOT
        )
    for server in servers.values():
        server.start()
    for name, server in servers.items():
        url = f"http://{HOST}:{ports[name]}/v1/track"
        wait_answering_200(url, lambda: probe_body, headers, SERVE_TIMEOUT, process=server)
    return ports


def measure_scenario(
    args: argparse.Namespace,
    generator: LoadGenerator,
    scenario: Scenario,
    load: Load,
    server: ManagedProcess,
    port: int,
    pubsub_group: int | None,
    warmup_s: float,
) -> dict[str, Any]:
    """A warm-up, then measured runs until one has its connections spread across the workers
    (or --attempts runs were made); the last run's figures, and every run's."""
    print(f"  {scenario.name}: warm-up {warmup_s:g}s, measure {args.duration:g}s", flush=True)
    warmup = generator.run(load, warmup_s)
    groups = {"server": server.pid or -1}
    if pubsub_group is not None:
        groups["pubsub_emulator"] = pubsub_group
    attempts: list[Attempt] = []
    while True:
        attempts.append(_measure(generator, load, args.duration, groups, port))
        if attempts[-1].balanced or len(attempts) >= args.attempts:
            break
        print(
            f"    connections skewed across workers ({attempts[-1].spread_text}): measuring again",
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
    return result


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
        "latency_ms": rounded(measured.latency_ms, 2),
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
        # Requests answered per second of CPU: the server's processes alone (what an instance
        # pays), and with the Pub/Sub emulator's (which shares this machine's cores).
        "requests_per_cpu_second": {
            "server": _per_cpu_second(rps, cpu.get("server", 0.0)),
            "server_and_emulator": _per_cpu_second(
                rps, cpu.get("server", 0.0) + cpu.get("pubsub_emulator", 0.0)
            ),
        },
    }


def _per_cpu_second(rps: float, cores: float) -> float | None:
    return round(rps / cores, 1) if cores > 0 else None


def _cpu_ms(result: dict[str, Any]) -> float:
    """Server plus Pub/Sub emulator CPU milliseconds per request."""
    per = result["cpu_ms_per_request"]
    return float(per.get("server", 0.0) + per.get("pubsub_emulator", 0.0))


def settings(
    args: argparse.Namespace, generator: LoadGenerator, server_threads: int
) -> dict[str, Any]:
    return {
        "server": (
            "functions-framework production server: ingest and noop ASGI (gunicorn with uvicorn "
            "workers), ingest_wsgi and noop_wsgi Flask on gunicorn gthread"
        ),
        "workers": args.workers,
        "threads": server_threads,
        "threads_apply_to": "the WSGI servers (ingest_wsgi, noop_wsgi)",
        "threads_source": (
            "set" if args.server_threads else "functions-framework default (4 x CPUs)"
        ),
        "load_generator": generator.name,
        "load_threads": args.load_threads,
        "connections": args.connections,
        "warmup_s": args.warmup,
        "duration_s": args.duration,
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "round_warmup_s": args.round_warmup,
        "max_attempts": args.attempts,
        "max_worker_connection_share": round(MAX_WORKER_SHARE, 3),
        "pubsub": (
            "emulator, group-commit publisher (one message per request; the ASGI entry merges "
            "requests that meet in an RPC, which at the emulator's latency is rare)"
        ),
        "cpu_count": os.cpu_count() or 1,
        "versions": package_versions(
            "functions-framework",
            "gunicorn",
            "flask",
            "uvicorn",
            "uvicorn-worker",
            "starlette",
            "httptools",
            "uvloop",
            "google-cloud-pubsub",
            "pydantic",
        ),
    }


def comparisons(rounds: list[dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """The scenarios (each round's figures; the summary is the round of the median server CPU
    per request), ingest against the no-op and the new entry point against the previous one
    (medians of the per-round ratios, with their range), and the targets."""
    results = {name: _median_round(rounds, name) for name in rounds[0]}
    track_ratio = ratio(
        results["track"]["requests_per_second"], results["noop_track"]["requests_per_second"]
    )
    batch_ratio = ratio(
        results["batch"]["requests_per_second"], results["noop_batch"]["requests_per_second"]
    )
    # The same comparison in CPU: what a request costs the server and the Pub/Sub emulator
    # (both on this machine's cores) against the no-op's. Throughput swings with whatever else
    # runs on the machine; CPU per request much less, so this ratio is the steadier one.
    cpu_ratios = {
        "track_vs_noop": _median_ratio(
            rounds, lambda r: ratio(_cpu_ms(r["noop_track"]), _cpu_ms(r["track"]))
        ),
        "batch_vs_noop_batch": _median_ratio(
            rounds, lambda r: ratio(_cpu_ms(r["noop_batch"]), _cpu_ms(r["batch"]))
        ),
    }
    # The new entry point against the previous one, measured side by side in each round:
    # requests per CPU-second of the server's processes (and with the emulator's), throughput.
    versus_wsgi = {
        name: {
            "requests_per_cpu_second": _versus(rounds, name, "server"),
            "requests_per_cpu_second_with_emulator": _versus(rounds, name, "server_and_emulator"),
            "requests_per_second": _median_ratio(
                rounds,
                lambda r, n=name: ratio(  # type: ignore[misc]
                    r[n]["requests_per_second"], r[f"{n}_wsgi"]["requests_per_second"]
                ),
            ),
        }
        for name in ("track", "batch")
    }
    noop_asgi_vs_wsgi = {
        name: _median_ratio(
            rounds,
            lambda r, n=name: ratio(  # type: ignore[misc]
                _per_cpu(r[f"noop_{n}"], "server"), _per_cpu(r[f"noop_wsgi_{n}"], "server")
            ),
        )
        for name in ("track", "batch")
    }
    return {
        "scenarios": results,
        "rounds": rounds,
        "ratios": {"track_vs_noop": track_ratio, "batch_vs_noop_batch": batch_ratio},
        "cpu_ratios": cpu_ratios,
        "versus_wsgi": versus_wsgi,
        "noop_asgi_vs_wsgi": noop_asgi_vs_wsgi,
        "targets": {
            "track_vs_noop": at_least(TRACK_VS_NOOP_TARGET, track_ratio),
            "batch_events_per_second": at_least(
                BATCH_EVENTS_TARGET, results["batch"]["events_per_second"]
            ),
            "track_requests_per_cpu_second_vs_wsgi": at_least(
                TRACK_VS_WSGI_TARGET,
                versus_wsgi["track"]["requests_per_cpu_second"]["median"],
                basis="median over the rounds of the per-round ratio, server processes",
            ),
            "batch_requests_per_cpu_second_vs_wsgi": at_least(
                BATCH_VS_WSGI_TARGET,
                versus_wsgi["batch"]["requests_per_cpu_second"]["median"],
                basis="median over the rounds of the per-round ratio, server processes",
            ),
        },
    }


def _median_round(rounds: list[dict[str, dict[str, Any]]], name: str) -> dict[str, Any]:
    """The scenario's figures in the round of the median server CPU per request."""
    ordered = sorted(
        (r[name] for r in rounds), key=lambda result: _per_cpu(result, "server") or 0.0
    )
    return ordered[(len(ordered) - 1) // 2]


def _median_ratio(
    rounds: list[dict[str, dict[str, Any]]],
    of: Callable[[dict[str, dict[str, Any]]], float | None],
) -> dict[str, Any]:
    """The median over the rounds of a per-round ratio, with each round's."""
    values = [value for value in map(of, rounds) if value is not None]
    return {
        "median": round(statistics.median(values), 3) if values else None,
        "rounds": values,
    }


def _versus(rounds: list[dict[str, dict[str, Any]]], name: str, basis: str) -> dict[str, Any]:
    return _median_ratio(
        rounds, lambda r: ratio(_per_cpu(r[name], basis), _per_cpu(r[f"{name}_wsgi"], basis))
    )


def _per_cpu(result: dict[str, Any], basis: str) -> float:
    return float(result["requests_per_cpu_second"][basis] or 0.0)


def print_results(report: dict[str, Any]) -> None:
    s = report["settings"]
    m = report["machine"]
    print(
        f"{machine_summary(m)}; WORKERS={s['workers']} THREADS={s['threads']}; "
        f"{s['load_generator']}, {s['load_threads']} threads, {s['connections']} connections, "
        f"{s['duration_s']:g}s per scenario"
    )
    columns = [
        Column("scenario", 11, align="<"),
        Column("req/s", 8, ".0f"),
        Column("events/s", 10, ".0f"),
        Column("p50 ms", 8, ".1f"),
        Column("p99 ms", 8, ".1f"),
        Column("errors", 7),
        Column("srv cores", 10, ".2f"),
        Column("psub cores", 11, ".2f"),
        Column("srv ms/req", 11, ".2f"),
        Column("req/cpu-s", 10, ".0f"),
        Column("conns/worker", 0, align="<", gap=2),
    ]
    rows = [
        [
            name,
            r["requests_per_second"],
            r["events_per_second"],
            r["latency_ms"]["p50"],
            r["latency_ms"]["p99"],
            r["error_count"],
            r["cpu_cores"].get("server", 0),
            r["cpu_cores"].get("pubsub_emulator", 0),
            r["cpu_ms_per_request"].get("server", 0),
            r["requests_per_cpu_second"]["server"] or 0,
            "/".join(str(n) for n in r["server_processes"]["connections"]),
        ]
        for name, r in report["scenarios"].items()
    ]
    print_table(columns, rows)
    ratios, cpu_ratios = report["ratios"], report["cpu_ratios"]
    print(
        f"ratios (median round): track/noop {ratios['track_vs_noop']}, batch/noop_batch "
        f"{ratios['batch_vs_noop_batch']}; in CPU per request (server + emulator, median of "
        f"the rounds): track/noop {cpu_ratios['track_vs_noop']['median']}, batch/noop_batch "
        f"{cpu_ratios['batch_vs_noop_batch']['median']}"
    )
    versus, noop = report["versus_wsgi"], report["noop_asgi_vs_wsgi"]

    def median(entry: dict[str, Any]) -> str:
        return f"{entry['median']} ({', '.join(f'{v:g}' for v in entry['rounds'])})"

    print(
        "ASGI entry vs WSGI entry, requests per CPU-second of the server, median (rounds): "
        f"track {median(versus['track']['requests_per_cpu_second'])}, batch "
        f"{median(versus['batch']['requests_per_cpu_second'])}; with the emulator: track "
        f"{median(versus['track']['requests_per_cpu_second_with_emulator'])}, batch "
        f"{median(versus['batch']['requests_per_cpu_second_with_emulator'])}; no-op ASGI vs "
        f"WSGI: track {median(noop['track'])}, batch {median(noop['batch'])}"
    )
    print_targets(report["targets"])
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
        "--rounds",
        type=int,
        default=int(env("BENCH_ROUNDS", "3")),
        help="rounds of every scenario (ratios are the medians of the per-round ratios)",
    )
    parser.add_argument(
        "--round-warmup",
        type=float,
        default=float(env("BENCH_ROUND_WARMUP", "3")),
        help="warm-up of each scenario after the first round (servers and emulator are warm)",
    )
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
