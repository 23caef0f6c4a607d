"""What the benchmarks measure with and how they summarise it: samples of timed work and their
medians and per-round ratios, percentiles, CPU used by process groups, how a server's
connections spread over its workers, and the machine and package versions a run happened on.
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

_CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- timed samples ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One engine in one round: events handled, wall seconds, this thread's CPU seconds."""

    events: int
    wall_s: float
    cpu_s: float

    @property
    def wall_rate(self) -> float:
        return self.events / self.wall_s if self.wall_s else 0.0

    @property
    def cpu_rate(self) -> float:
        return self.events / self.cpu_s if self.cpu_s else 0.0


def events_summary(samples: Sequence[Sample]) -> dict[str, Any]:
    """Medians (and spread) of events/s by wall clock and by CPU time over the rounds."""
    wall = [s.wall_rate for s in samples]
    cpu = [s.cpu_rate for s in samples]
    return {
        "events_per_second_cpu": round(statistics.median(cpu), 1),
        "events_per_second_wall": round(statistics.median(wall), 1),
        "us_per_event_cpu": round(1e6 / statistics.median(cpu), 3) if any(cpu) else None,
        "cpu_share_of_wall": round(
            sum(s.cpu_s for s in samples) / sum(s.wall_s for s in samples), 3
        ),
        "rounds": [
            {"events": s.events, "wall_s": round(s.wall_s, 4), "cpu_s": round(s.cpu_s, 4)}
            for s in samples
        ],
        "cpu_rate_min_max": [round(min(cpu), 1), round(max(cpu), 1)],
    }


def round_ratios(ours: Sequence[Sample], theirs: Sequence[Sample]) -> dict[str, Any]:
    """Median over the rounds of the per-round ratio (the engines interleaved in each round)."""
    cpu = [a.cpu_rate / b.cpu_rate for a, b in zip(ours, theirs, strict=True) if b.cpu_rate]
    wall = [a.wall_rate / b.wall_rate for a, b in zip(ours, theirs, strict=True) if b.wall_rate]
    return {
        "cpu": round(statistics.median(cpu), 2) if cpu else 0.0,
        "wall": round(statistics.median(wall), 2) if wall else 0.0,
        "cpu_min_max": [round(min(cpu), 2), round(max(cpu), 2)] if cpu else [],
    }


def ratio(a: float, b: float) -> float | None:
    """a / b to three decimals; None when b is zero (nothing to compare with)."""
    return round(a / b, 3) if b else None


# --- distributions ---------------------------------------------------------------------------


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50, p90, p99, max and mean of unsorted values (all 0.0 when there are none)."""
    ordered = sorted(values)
    if not ordered:
        return {"p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0, "mean": 0.0}

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {
        "p50": at(0.50),
        "p90": at(0.90),
        "p99": at(0.99),
        "max": ordered[-1],
        "mean": sum(ordered) / len(ordered),
    }


def rounded(values: dict[str, float], digits: int = 1) -> dict[str, float]:
    return {k: round(v, digits) for k, v in values.items()}


# --- CPU used by process groups --------------------------------------------------------------


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
    # After stop(): CPU seconds of each group over the interval, unrounded (per-event costs).
    seconds: dict[str, float] = field(default_factory=dict)

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
        self.seconds = dict(used)
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


# --- the machine and the software ------------------------------------------------------------


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


def one_minute_load() -> float:
    """The machine's 1-minute load average: how much other work shared the cores."""
    return round(os.getloadavg()[0], 2)


def machine_under_load(load_at_start: float | None, **facts: Any) -> dict[str, Any]:
    """`machine_info()`, the run's own `facts` (e.g. the pinned CPU), and the 1-minute load
    average at the start (when given) and now, at the end of the run."""
    machine = {**machine_info(), **facts}
    if load_at_start is not None:
        machine["load_average_1m_at_start"] = load_at_start
    machine["load_average_1m_at_end"] = one_minute_load()
    return machine


def package_versions(*names: str) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
