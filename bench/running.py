"""How the benchmarks run things: Ctrl-C and SIGTERM turned into an orderly stop, function
servers started and waited for, and the in-process timing loop in which engines take turns
on one pinned core.

Load generators (wrk, or the Python fallback) are in `bench.load_generators`.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import TypeVar

from bench.measuring import Sample
from emulators.processes import ManagedProcess

HOST = "127.0.0.1"
# Local servers only: a proxy from the environment must not see (or slow) the bench's requests.
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))

T = TypeVar("T")


# --- interrupts ------------------------------------------------------------------------------

INTERRUPTS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def catch_interrupts() -> None:
    """Turn Ctrl-C, SIGTERM and SIGHUP into KeyboardInterrupt, so that a bench's `finally` and
    ExitStack unwind (explicitly: a shell that starts us in the background may ignore SIGINT)."""
    for signum in INTERRUPTS:
        signal.signal(signum, _interrupt)


def ignore_interrupts() -> None:
    """From here on the run is cleaning up: a second Ctrl-C or a SIGTERM must not cut short the
    removal of what it created in its workspace or the stopping of its processes."""
    for signum in INTERRUPTS:
        signal.signal(signum, signal.SIG_IGN)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    ignore_interrupts()
    raise KeyboardInterrupt


# --- function servers ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def function_server(
    name: str,
    target: str,
    source: Path,
    port: int,
    env: Mapping[str, str],
    state_dir: Path,
    cwd: Path,
) -> ManagedProcess:
    """functions-framework's production server (gunicorn) for one function, not yet started."""
    command = [
        sys.executable,
        "-m",
        "functions_framework",
        "--target",
        target,
        "--source",
        str(source),
        "--host",
        HOST,
        "--port",
        str(port),
    ]
    return ManagedProcess(
        name=f"bench-{name}",
        command=command,
        log_path=state_dir / "logs" / f"bench-{name}.log",
        pid_path=state_dir / "run" / f"bench-{name}.pid",
        env=env,
        cwd=cwd,
    )


def post(
    url: str, body: bytes, headers: Mapping[str, str], timeout: float = 10.0
) -> tuple[int, str]:
    """One POST; (status, body text). Connection errors raise OSError."""
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with _LOCAL.open(request, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")


def wait_answering_200(
    url: str,
    body: Callable[[], bytes],
    headers: Mapping[str, str],
    timeout: float,
    process: ManagedProcess | None = None,
) -> None:
    """POST `body()` to `url` until it answers 200, or raise after `timeout` seconds.

    With `process` (a server the bench started itself), its exit or any other answer fails at
    once, with the server's log: a server of our own that answers 400 will not get better.
    Without it (a server behind the gateway, still loading), every failure is retried.
    """
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if process is not None and process.exited():
            raise RuntimeError(process.failure_message("exited before serving"))
        try:
            status, text = post(url, body(), headers)
        except OSError as exc:
            last = str(exc)
        else:
            if status == 200:
                return
            if process is not None:
                raise RuntimeError(f"{process.name}: {url} answered {status}: {text[:500]}")
            last = f"{status} {text[:300]}"
        time.sleep(0.2)
    problem = f"not answering 200 at {url} after {timeout:.0f}s ({last})"
    raise RuntimeError(process.failure_message(problem) if process is not None else problem)


# --- in-process timing on one core -----------------------------------------------------------


def pin_to_one_core(cpu: int | None) -> int | None:
    """Pin this process to one CPU (default: the last one allowed); the CPU, or None if not."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    chosen = allowed[-1] if cpu is None else cpu
    os.sched_setaffinity(0, {chosen})
    return chosen


def rotated(items: Sequence[T], turn: int) -> list[T]:
    """`items` starting at position `turn` (wrapping): who goes first changes every turn."""
    start = turn % len(items)
    return [*items[start:], *items[:start]]


# Engines take a range of event indices [start, stop) and handle each event once.
Engine = Callable[[int, int], None]


def interleaved(
    engines: Mapping[str, Engine],
    count: int,
    chunk: int,
    rounds: int,
    sample_seconds: float,
) -> tuple[dict[str, list[Sample]], dict[str, int]]:
    """Per engine, one `Sample` per round; and how many passes each makes over a chunk.

    The machine is shared and its speed drifts within seconds, so the engines take turns on
    small chunks of events (the order rotating each chunk) and every engine sees the same
    conditions; a faster engine makes more passes over a chunk, so each gets about
    `sample_seconds` of CPU per round. The first full pass of each is the warm-up and the
    calibration. A collection runs before each round; gc stays on.
    """
    cost: dict[str, float] = {}
    for name, engine in engines.items():
        gc.collect()
        began = time.thread_time()
        engine(0, count)
        cost[name] = max(time.thread_time() - began, 1e-9) / count
    slowest = max(cost.values())
    passes = {name: max(1, round(slowest / c)) for name, c in cost.items()}
    starts = list(range(0, count, chunk))
    per_round = max(1, round(sample_seconds / (slowest * chunk)))
    names = list(engines)
    samples: dict[str, list[Sample]] = {name: [] for name in names}
    turn = 0
    for _ in range(rounds):
        gc.collect()
        wall = dict.fromkeys(names, 0.0)
        cpu = dict.fromkeys(names, 0.0)
        handled = dict.fromkeys(names, 0)
        for _ in range(per_round):
            start = starts[turn % len(starts)]
            stop = min(start + chunk, count)
            order = rotated(names, turn)
            turn += 1
            for name in order:
                engine = engines[name]
                w, c = time.perf_counter(), time.thread_time()
                for _ in range(passes[name]):
                    engine(start, stop)
                cpu[name] += time.thread_time() - c
                wall[name] += time.perf_counter() - w
                handled[name] += (stop - start) * passes[name]
        for name in names:
            samples[name].append(Sample(handled[name], wall[name], cpu[name]))
    return samples, passes


def add_interleaving_options(parser: argparse.ArgumentParser, chunk: int) -> None:
    """The options of a bench timed by `interleaved` on one pinned core (`chunk`: its default
    events per turn); BENCH_ROUNDS and BENCH_SAMPLE_SECONDS set the first two from `make`."""
    env = os.environ.get
    parser.add_argument("--rounds", type=int, default=int(env("BENCH_ROUNDS", "7")))
    parser.add_argument(
        "--sample-seconds",
        type=float,
        default=float(env("BENCH_SAMPLE_SECONDS", "0.25")),
        help="CPU seconds per engine and round",
    )
    parser.add_argument("--chunk", type=int, default=chunk, help="events per interleaved turn")
    parser.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: the last)")
    parser.add_argument("--seed", type=int, default=1)
