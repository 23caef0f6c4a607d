"""Load generators for HTTP benchmarks: wrk when it is there, else a Python fallback (processes
of keep-alive `http.client` threads). Both POST one body to one URL for a given time and report
the same `LoadResult`: requests, latency percentiles, and errors by kind with a sample answer.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.measuring import percentiles
from bench.running import HOST

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
    latencies = [ms for part in parts for ms in part[0]]
    errors: dict[str, int] = {}
    for part in parts:
        for key, value in part[1].items():
            errors[key] = errors.get(key, 0) + value
    sample = next((part[2] for part in parts if part[2]), None)
    return LoadResult(
        requests=len(latencies),
        duration_s=duration,
        latency_ms=percentiles(latencies),
        errors=errors,
        error_sample=sample,
    )


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
