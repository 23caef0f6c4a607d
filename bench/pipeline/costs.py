"""What the run cost, per event: the billed operations each function process counted itself
(shared/adapters/operation_counts.py: Firestore documents read, written and deleted, Pub/Sub
messages and bytes published, BigQuery rows and bytes streamed, requests served) and the CPU
each function used.

The stack's functions export their counts under `STREAMS_OPERATION_COUNTS_DIR` (set by
`stack.prepare`), each process to a file of its own, at most `EXPORT_INTERVAL_S` stale. The run
reads them once the route is settled and once every event was delivered: the difference, over
every event the schedule had accepted (warm-up included, as each was processed whole within the
two readings), is what an event costs. CPU is taken over the same span: a backlog still being
worked off after sending stopped is counted with the events it belongs to (the measured
window's CPU, as the rest of the report gives it, is under `measured_window`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from shared.adapters.operation_counts import EXPORT_INTERVAL_S, FIELDS, read_exports

FUNCTION_PREFIX = "function:"


def counts_dir(state_dir: Path) -> Path:
    return state_dir / "operation-counts"


def read_counts(directory: Path, groups: Mapping[str, int]) -> dict[str, dict[str, int]]:
    """function name -> its processes' counts summed, once every file is fresher than the
    operations made before this call (the bench's own process, which exports too, is left out)."""
    time.sleep(EXPORT_INTERVAL_S + 0.5)
    functions = {
        pgid: name.removeprefix(FUNCTION_PREFIX)
        for name, pgid in groups.items()
        if name.startswith(FUNCTION_PREFIX)
    }
    totals: dict[str, dict[str, int]] = {}
    for export in read_exports(directory):
        name = functions.get(export.get("pgid", -1))
        if name is None:
            continue
        summed = totals.setdefault(name, dict.fromkeys(FIELDS, 0))
        for field, value in export["counts"].items():
            summed[field] = summed.get(field, 0) + int(value)
    return totals


def difference(
    after: Mapping[str, Mapping[str, int]], before: Mapping[str, Mapping[str, int]]
) -> dict[str, dict[str, int]]:
    """Per function, what was counted between the two readings (a function whose processes
    first exported in between started from zero)."""
    return {
        name: {field: value - before.get(name, {}).get(field, 0) for field, value in counts.items()}
        for name, counts in after.items()
    }


def per_event(
    counted: Mapping[str, Mapping[str, int]],
    events: int,
    deliveries: int,
    cpu_seconds: Mapping[str, float],
    window_cpu_seconds: Mapping[str, float],
    window_events: int,
) -> dict[str, Any]:
    """The report's `costs`: per function and in total, per event. `cpu_seconds` span the same
    time as `counted`; `window_cpu_seconds` only the measured window (`window_events` sent)."""

    def share(value: float, over: int) -> float:
        return round(value / over, 4) if over else 0.0

    totals = {field: sum(c.get(field, 0) for c in counted.values()) for field in FIELDS}
    firestore = totals["firestore_reads"] + totals["firestore_writes"] + totals["firestore_deletes"]
    return {
        "counted_from": "each function process's own counters (shared/adapters/operation_counts"
        ".py), read after the route settled and after the last delivery",
        "events": events,
        "deliveries": deliveries,
        "deliveries_per_event": share(deliveries, events),
        "firestore_operations_per_event": share(firestore, events),
        "per_event": {field: share(value, events) for field, value in totals.items()},
        "per_event_by_function": {
            name: {field: share(value, events) for field, value in counts.items() if value}
            for name, counts in sorted(counted.items())
        },
        "counted_by_function": {name: dict(c) for name, c in sorted(counted.items())},
        "cpu_ms_per_event": cpu_ms(cpu_seconds, events),
        "measured_window": {
            "events_sent": window_events,
            "cpu_ms_per_event": cpu_ms(window_cpu_seconds, window_events),
        },
    }


def cpu_ms(seconds: Mapping[str, float], events: int) -> dict[str, float]:
    """Each function's CPU milliseconds per event."""
    return {
        name.removeprefix(FUNCTION_PREFIX): round(spent * 1000 / events, 4) if events else 0.0
        for name, spent in sorted(seconds.items())
        if name.startswith(FUNCTION_PREFIX) and spent > 0
    }


def receipts_of(counts: Mapping[str, int], message_ids: Iterable[str]) -> int:
    """Webhook requests carrying these events (a duplicate counts: it was a delivery)."""
    return sum(counts.get(m, 0) for m in message_ids)
