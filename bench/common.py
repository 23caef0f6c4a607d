"""Benchmark plumbing: load generators (wrk, else Python), function servers, CPU accounting."""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import Any

from emulators.processes import ManagedProcess

HOST = "127.0.0.1"
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_CLK_TCK = os.sysconf("SC_CLK_TCK")


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


# --- what one load run measured ------------------------------------------------------------


@dataclass
class LoadResult:
    """Counts and latencies of one load run against one URL."""

    requests: int
    duration_s: float
    latency_ms: dict[str, float]
    errors: dict[str, int]
    error_sample: str | None = None

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


@dataclass(frozen=True)
class Load:
    """What to send: a POST of `body` to `url` with `headers`, over keep-alive connections."""

    url: str
    body: bytes
    headers: Mapping[str, str]
    connections: int
    threads: int
    timeout_s: float = 10.0


# --- wrk -------------------------------------------------------------------------------------

_WRK_SCRIPT = """
wrk.method = "POST"
local f = assert(io.open(%(body_path)s, "rb"))
wrk.body = f:read("*a")
f:close()
%(headers)s

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non200 = 0
end

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
    if sample == nil then
      sample = status .. " " .. string.sub(string.gsub(body or "", "[\\r\\n]", " "), 1, 300)
    end
  end
end

function done(summary, latency, requests)
  local bad = 0
  local first = nil
  for _, t in ipairs(threads) do
    bad = bad + (t:get("non200") or 0)
    first = first or t:get("sample")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%%d,"duration_us":%%d,"connect":%%d,"read":%%d,"write":%%d,' ..
    '"timeout":%%d,"non200":%%d,"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"max_us":%%d,' ..
    '"mean_us":%%.1f}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout, bad,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
  if first then io.write("BENCH_SAMPLE " .. first .. "\\n") end
end
"""


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string of ASCII text is a valid Lua string literal


def find_wrk(install: bool = True) -> str | None:
    """The wrk binary; installed with apt-get when missing and we are root (unless told not to)."""
    found = shutil.which("wrk")
    if found or not install or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    print("wrk not found; installing it with apt-get ...", file=sys.stderr, flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}

    def apt(*args: str) -> int:
        done = subprocess.run(
            ["apt-get", *args],
            env=env,
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return done.returncode

    if apt("install", "-y", "-qq", "wrk") != 0:
        apt("update", "-qq")
        apt("install", "-y", "-qq", "wrk")
    return shutil.which("wrk")


def wrk_version(wrk: str) -> str:
    out = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
    first = (out.stdout or out.stderr).splitlines()
    return first[0].split(" [")[0] if first else "wrk"


def run_wrk(wrk: str, load: Load, seconds: float) -> LoadResult:
    """Run wrk for `seconds` with a Lua script that POSTs the body and counts non-200 answers."""
    with tempfile.TemporaryDirectory(prefix="streams-bench-") as tmp:
        body_path = Path(tmp) / "body.json"
        body_path.write_bytes(load.body)
        headers = "\n".join(
            f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}" for k, v in load.headers.items()
        )
        script = Path(tmp) / "post.lua"
        script.write_text(
            _WRK_SCRIPT % {"body_path": _lua_string(str(body_path)), "headers": headers}
        )
        command = [
            wrk,
            f"-t{load.threads}",
            f"-c{load.connections}",
            f"-d{max(1, round(seconds))}s",
            f"--timeout={max(1, round(load.timeout_s))}s",
            "-s",
            str(script),
            load.url,
        ]
        out = subprocess.run(command, capture_output=True, text=True, check=False)
    result = sample = None
    for line in out.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            result = json.loads(line.removeprefix("BENCH_RESULT "))
        elif line.startswith("BENCH_SAMPLE "):
            sample = line.removeprefix("BENCH_SAMPLE ")
    if out.returncode != 0 or result is None:
        raise RuntimeError(f"wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return LoadResult(
        requests=result["requests"],
        duration_s=result["duration_us"] / 1e6,
        latency_ms={
            "p50": result["p50_us"] / 1000,
            "p90": result["p90_us"] / 1000,
            "p99": result["p99_us"] / 1000,
            "max": result["max_us"] / 1000,
            "mean": result["mean_us"] / 1000,
        },
        errors={k: result[k] for k in ("non200", "connect", "read", "write", "timeout")},
        error_sample=sample,
    )


# --- the Python fallback ---------------------------------------------------------------------


def _python_worker(args: tuple[Load, float, int]) -> tuple[list[float], dict[str, int], str | None]:
    """One process: `connections` threads, each a keep-alive client looping until the deadline."""
    load, deadline, connections = args
    parsed = urllib.parse.urlsplit(load.url)
    path = parsed.path or "/"
    latencies: list[float] = []
    errors = {"non200": 0, "connect": 0, "read": 0, "write": 0, "timeout": 0}
    samples: list[str] = []
    lock = threading.Lock()

    def client() -> None:
        conn: http.client.HTTPConnection | None = None
        mine: list[float] = []
        while time.monotonic() < deadline:
            if conn is None:
                conn = http.client.HTTPConnection(
                    parsed.hostname or HOST, parsed.port, timeout=load.timeout_s
                )
            began = time.perf_counter()
            try:
                conn.request("POST", path, body=load.body, headers=dict(load.headers))
                response = conn.getresponse()
                data = response.read()
            except TimeoutError:
                kind = "timeout"
            except ConnectionRefusedError:
                kind = "connect"
            except (OSError, http.client.HTTPException):
                kind = "read"
            else:
                mine.append((time.perf_counter() - began) * 1000)
                if response.status != 200:
                    with lock:
                        errors["non200"] += 1
                        if not samples:
                            samples.append(
                                f"{response.status} {data[:300].decode('utf-8', 'replace')}"
                            )
                continue
            with lock:
                errors[kind] += 1
            conn.close()
            conn = None
        if conn is not None:
            conn.close()
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=client) for _ in range(connections)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return latencies, errors, samples[0] if samples else None


def _worker_signals() -> None:
    """A forked worker drops the bench's handlers: Ctrl-C is the parent's to handle, and the
    pool's SIGTERM at its end must stop the worker quietly, not raise KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


def run_python(load: Load, seconds: float) -> LoadResult:
    """A keep-alive load generator in Python: `load.threads` processes sharing the connections."""
    processes = max(1, load.threads)
    per_process = [load.connections // processes] * processes
    for i in range(load.connections % processes):
        per_process[i] += 1
    began = time.monotonic()
    deadline = began + seconds
    with multiprocessing.get_context("fork").Pool(processes, _worker_signals) as pool:
        parts = pool.map(_python_worker, [(load, deadline, n) for n in per_process if n])
    duration = time.monotonic() - began
    latencies = sorted(ms for part in parts for ms in part[0])
    errors: dict[str, int] = {}
    for part in parts:
        for key, value in part[1].items():
            errors[key] = errors.get(key, 0) + value
    sample = next((part[2] for part in parts if part[2]), None)
    return LoadResult(
        requests=len(latencies),
        duration_s=duration,
        latency_ms=_percentiles(latencies),
        errors=errors,
        error_sample=sample,
    )


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50, p90, p99, max and mean of unsorted values (all 0.0 when there are none)."""
    return _percentiles(sorted(values))


def _percentiles(sorted_ms: Sequence[float]) -> dict[str, float]:
    if not sorted_ms:
        return {"p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0, "mean": 0.0}

    def at(q: float) -> float:
        return sorted_ms[min(len(sorted_ms) - 1, int(q * len(sorted_ms)))]

    return {
        "p50": at(0.50),
        "p90": at(0.90),
        "p99": at(0.99),
        "max": sorted_ms[-1],
        "mean": sum(sorted_ms) / len(sorted_ms),
    }


@dataclass(frozen=True)
class LoadGenerator:
    """wrk when available, else the Python fallback; `name` is recorded in the results."""

    name: str
    wrk: str | None

    @classmethod
    def choose(cls, prefer: str = "wrk") -> LoadGenerator:
        wrk = find_wrk(install=prefer == "wrk") if prefer != "python" else None
        if wrk is not None:
            return cls(wrk_version(wrk), wrk)
        return cls("python (multiprocessing + http.client keep-alive)", None)

    def run(self, load: Load, seconds: float) -> LoadResult:
        if self.wrk is not None:
            return run_wrk(self.wrk, load, seconds)
        return run_python(load, seconds)


# --- CPU accounting --------------------------------------------------------------------------


def _process_times() -> dict[int, tuple[int, float]]:
    """pid -> (process group, CPU seconds) of every process we can read."""
    times: dict[int, tuple[int, float]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
            times[int(stat.parent.name)] = (
                int(fields[2]),
                (int(fields[11]) + int(fields[12])) / _CLK_TCK,
            )
        except (OSError, ValueError, IndexError):
            continue
    return times


def _machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = sum(values[:8])
    return (total - idle) / _CLK_TCK, total / _CLK_TCK


def _children_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class CpuMeter:
    """CPU used during an interval, in cores, by named process groups and the load generator."""

    groups: dict[str, int]
    _start: dict[int, tuple[int, float]] = field(default_factory=dict)
    _busy: float = 0.0
    _children: float = 0.0
    _began: float = 0.0
    # After stop(): cores used by each process of each group, busiest first.
    per_process: dict[str, list[float]] = field(default_factory=dict)

    def start(self) -> None:
        self._start = _process_times()
        self._busy, _ = _machine_busy()
        self._children = _children_seconds()
        self._began = time.monotonic()

    def stop(self) -> dict[str, float]:
        elapsed = time.monotonic() - self._began
        end = _process_times()
        busy, _ = _machine_busy()
        used: dict[str, float] = {}
        for name, pgid in self.groups.items():
            spent = [
                cpu - self._start.get(pid, (group, 0.0))[1]
                for pid, (group, cpu) in end.items()
                if group == pgid
            ]
            used[name] = sum(spent)
            if elapsed:
                self.per_process[name] = sorted(
                    (round(v / elapsed, 2) for v in spent), reverse=True
                )
        # The load generator's processes are our children reaped during the interval.
        used["load_generator"] = _children_seconds() - self._children
        used["machine_total"] = busy - self._busy
        used["other"] = used["machine_total"] - sum(
            v for k, v in used.items() if k != "machine_total"
        )
        return {k: round(v / elapsed, 2) for k, v in used.items()} if elapsed else {}


def connections_by_process(pgid: int, port: int) -> list[int]:
    """Established TCP connections to `port` held by each process of a group, most first.

    gunicorn's workers share one listening socket and keep-alive connections stay with the worker
    that accepted them, so this shows how evenly the load generator's connections were spread.
    """
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01":  # ESTABLISHED
                inodes.add(fields[9])
    counts: list[int] = []
    for pid, (group, _) in _process_times().items():
        if group != pgid:
            continue
        n = 0
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    n += 1
        except OSError:
            continue
        if n:
            counts.append(n)
    return sorted(counts, reverse=True)


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


def wait_serving(
    process: ManagedProcess, url: str, body: bytes, headers: Mapping[str, str], timeout: float
) -> None:
    """Until one real request answers 200; raise with the answer or the server's log if not."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if process.exited():
            raise RuntimeError(process.failure_message("exited before serving"))
        try:
            status, text = post(url, body, headers)
        except OSError as exc:
            last = str(exc)
        else:
            if status == 200:
                return
            raise RuntimeError(f"{process.name}: {url} answered {status}: {text[:500]}")
        time.sleep(0.2)
    raise RuntimeError(process.failure_message(f"not serving after {timeout:.0f}s ({last})"))


# --- the machine -----------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "hostname": platform.node(),
        "system": f"{platform.system()} {platform.release()}",
        "architecture": platform.machine(),
        "cpu_model": model or platform.processor(),
        "cpu_count": os.cpu_count(),
        "memory_gib": round(memory_gib, 1),
        "python": platform.python_version(),
    }


def package_versions(*names: str) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
