"""What every benchmark reports, written one way: the report's head (which benchmark, when, on
what machine), targets with whether they were `met`, the JSON files in bench/results, and the
text tables printed on stdout.

Reports are compared across runs and machines, so their keys never change meaning.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
REPO_ROOT = RESULTS_DIR.parent.parent


def iso(moment: datetime) -> str:
    """UTC, milliseconds and a `Z`: the form Streams itself writes timestamps in."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def report_head(benchmark: str, started_at: datetime, machine: dict[str, Any]) -> dict[str, Any]:
    """The first keys of every report; `finished_at` is now, so build it when the run is over."""
    return {
        "benchmark": benchmark,
        "started_at": iso(started_at),
        "finished_at": iso(datetime.now(UTC)),
        "machine": machine,
    }


def machine_summary(machine: Mapping[str, Any]) -> str:
    """The first words of a table's heading: the CPUs, and the pinned CPU and the load when
    the report has them."""
    text = f"{machine['cpu_count']} x {machine['cpu_model']}"
    if "pinned_cpu" in machine:
        text += f"; pinned to CPU {machine['pinned_cpu']}"
    if "load_average_1m_at_start" in machine:
        start, end = machine["load_average_1m_at_start"], machine["load_average_1m_at_end"]
        text += f"; load {start:g} -> {end:g}"
    return text


def at_least(target: float, measured: float | None, basis: str | None = None) -> dict[str, Any]:
    """A target the measurement meets when it is at least `target` (never when unmeasured).

    Targets are reported, never enforced: a missed one does not fail the run.
    """
    entry: dict[str, Any] = {"target": target, "measured": measured}
    if basis is not None:
        entry["basis"] = basis
    entry["met"] = measured is not None and measured >= target
    return entry


def print_targets(targets: Mapping[str, Mapping[str, Any]]) -> None:
    """One line per `at_least` target: what was measured against it, and met or MISSED."""
    for name, entry in targets.items():
        verdict = "met" if entry["met"] else "MISSED"
        measured = entry["measured"]
        shown = "none" if measured is None else f"{measured:,}"
        print(f"target {name}: {shown} (>= {entry['target']:,g}) {verdict}")


def write_report(name: str, report: dict[str, Any]) -> Path:
    """`<name>-<UTC start>.json`, kept, and `<name>-latest.json`, replaced, in bench/results."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = report["started_at"].replace("-", "").replace(":", "").split(".")[0] + "Z"
    text = json.dumps(report, indent=2) + "\n"
    path = RESULTS_DIR / f"{name}-{stamp}.json"
    path.write_text(text)
    (RESULTS_DIR / f"{name}-latest.json").write_text(text)
    print(f"\nResults: {path.relative_to(REPO_ROOT)} (and {name}-latest.json)")
    return path


@dataclass(frozen=True)
class Column:
    """One column of a text table: its title, width, how values are formatted and aligned."""

    title: str
    width: int
    format: str = ""  # a format spec for the values, e.g. ",.0f"
    align: str = ">"  # "<" for labels
    gap: int = 0  # spaces before the column


def print_table(columns: Sequence[Column], rows: Iterable[Sequence[Any]]) -> None:
    """A header, a rule as wide as it, and one line per row; a None cell is left blank."""
    header = "".join(" " * c.gap + f"{c.title:{c.align}{c.width}}" for c in columns)
    print(header)
    print("-" * len(header))
    for row in rows:
        cells = (
            " " * c.gap + f"{'' if value is None else format(value, c.format):{c.align}{c.width}}"
            for c, value in zip(columns, row, strict=True)
        )
        print("".join(cells))
