"""`make bench`: the measured inputs of the cost model (issue 19), in bench/cost/inputs.json.

Runs `bench.pipeline` four times at the same steady rate (30 events/s by default), each on a
fresh stack with one webhook destination and one forwarding rule for every event: `batched` (POST
/v1/batch of 10 events, as the Segment SDKs send them) and `single` (POST /v1/track, one event a
request) with the deduplication window in Valkey (a local valkey-server, as with terraform's
`dedup_store.kind = "valkey"`), and `batched_firestore_claims` and `single_firestore_claims` (the
same, the window in Firestore documents, `dedup_store.kind = "firestore"`: the stack runs without
STREAMS_VALKEY_URL). From each
run's `costs` (bench/pipeline/costs.py) it writes, per event: CPU milliseconds and requests of
ingest, process and deliver, Firestore reads, writes and deletes, Pub/Sub messages and bytes
published, BigQuery rows and bytes streamed (all counted by the adapters in the function
processes), deliveries, and what is left in the Valkey window (claims, outcomes on claims,
deliver's marks) with its bytes at what `bench.valkey_memory` measures of each (run once, after
the mixes). The runs' reports go to bench/results/pipeline-{batch10,track}-*.json
as usual, and their cost sections to bench/results/costrun-<UTC>.json.

Nothing is written to inputs.json from a run where a request failed or an event was lost: its
counts would describe a pipeline that did not do all its work.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import valkey_memory
from bench.pipeline.__main__ import add_sending_options, add_stack_options
from bench.pipeline.run import run_with_report
from bench.reporting import REPO_ROOT, iso, machine_summary, report_head, write_report
from bench.running import catch_interrupts

MIXES = {"batched": 10, "single": 1, "batched_firestore_claims": 10, "single_firestore_claims": 1}
# Where each mix keeps the deduplication window (STREAMS_DEDUP_STORE, read by EmulatorStack.env).
DEDUP_STORES = {
    "batched": "valkey",
    "single": "valkey",
    "batched_firestore_claims": "firestore",
    "single_firestore_claims": "firestore",
}
FUNCTIONS = ("ingest", "process", "deliver")
INPUTS = REPO_ROOT / "bench" / "cost" / "inputs.json"
# Field of the run's per-event counts -> (group, key) in inputs.json.
COUNTED = {
    "firestore_reads": ("firestore", "reads"),
    "firestore_writes": ("firestore", "writes"),
    "firestore_deletes": ("firestore", "deletes"),
    "pubsub_messages": ("pubsub", "messages"),
    "pubsub_bytes": ("pubsub", "bytes"),
    "bigquery_rows": ("bigquery", "rows"),
    "bigquery_bytes": ("bigquery", "bytes"),
    "valkey_claims": ("valkey", "claims"),
    "valkey_outcomes": ("valkey", "outcomes"),
    "valkey_marks": ("valkey", "marks"),
}
# What the Valkey window holds of each kind, per item counted (bench.valkey_memory's `measure`).
VALKEY_ITEMS = {"claims": "claim", "outcomes": "outcome", "marks": "mark"}
VALKEY_MEMORY_COUNT = 100_000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.costrun", description=__doc__)
    parser.add_argument(
        "--out", type=Path, default=INPUTS, help="where the inputs go (bench/cost/inputs.json)"
    )
    parser.add_argument(
        "--mixes", nargs="+", choices=list(MIXES), default=list(MIXES), help="which runs to make"
    )
    # The pipeline bench's own flags (rate, duration, warm-up, drain, ports, emulators, ...);
    # --batch-size and --sdk are set per mix.
    add_sending_options(parser)
    add_stack_options(parser)
    # A rate this machine's emulators keep up with in both mixes (2 cores: single events at
    # 50/s saturate them, and a growing backlog measures the emulators, not Streams).
    parser.set_defaults(rate=float(os.environ.get("BENCH_COST_RATE", "30")))
    args = parser.parse_args(argv)
    catch_interrupts()
    started_at = datetime.now(UTC)
    reports: dict[str, dict[str, Any]] = {}
    for mix in args.mixes:
        run_args = argparse.Namespace(**{**vars(args), "batch_size": MIXES[mix], "sdk": False})
        use_dedup_store(DEDUP_STORES[mix])
        print(
            f"\n=== {mix}: {MIXES[mix]} event(s) per request at {args.rate:g} events/s, "
            f"claims in {DEDUP_STORES[mix]} ==="
        )
        status, report = run_with_report(run_args)
        if report is None:
            return status or 1
        reports[mix] = report
    print(f"\n=== Valkey memory: {VALKEY_MEMORY_COUNT:,} claims, outcomes and marks ===")
    item_bytes = valkey_memory.measure(VALKEY_MEMORY_COUNT)
    mixes = {
        mix: mix_inputs(MIXES[mix], report, DEDUP_STORES[mix], item_bytes)
        for mix, report in reports.items()
    }
    summary = {
        **report_head("costrun", started_at, next(iter(reports.values()))["machine"]),
        "command": command_line(argv),
        "mixes": mixes,
        "valkey_item_bytes": item_bytes,
        "costs": {mix: report["costs"] for mix, report in reports.items()},
        "runs": {mix: pipeline_outcome(report) for mix, report in reports.items()},
    }
    results = write_report("costrun", summary)
    print_mixes(mixes)
    refused = [mix for mix, report in reports.items() if not complete(report)]
    if refused:
        print(f"NOT written to {args.out}: failed requests or lost events in {refused}")
        return 1
    inputs = {
        "measured_at": iso(started_at),
        "source": f"{summary['command']} -> {results.relative_to(REPO_ROOT)}",
        "machine": machine_summary(summary["machine"]),
        "mixes": mixes,
        "valkey_item_bytes": item_bytes,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(inputs, indent=2) + "\n")
    print(f"Cost inputs: {args.out}")
    return 0


def use_dedup_store(store: str) -> None:
    """Point the next run's functions at `store` for the deduplication window. The previous
    run's STREAMS_VALKEY_URL stays in this process's environment (the functions inherit it), so
    it is removed here; the stack puts it back unless STREAMS_DEDUP_STORE is "firestore"."""
    os.environ["STREAMS_DEDUP_STORE"] = store
    if store == "firestore":
        os.environ.pop("STREAMS_VALKEY_URL", None)


def mix_inputs(
    events_per_request: int,
    report: dict[str, Any],
    dedup_store: str,
    valkey_item_bytes: dict[str, float],
) -> dict[str, Any]:
    """One mix in inputs.json's shape, from a pipeline report's `costs` (and the bytes of
    Valkey memory each item of the window takes)."""
    costs = report["costs"]
    by_function = costs["per_event_by_function"]
    requests = {f: by_function.get(f, {}).get("requests", 0.0) for f in FUNCTIONS}
    mix: dict[str, Any] = {
        "events_per_request": events_per_request,
        "dedup_store": dedup_store,
        "cpu_ms": {f: costs["cpu_ms_per_event"].get(f, 0.0) for f in FUNCTIONS},
        "requests": requests,
    }
    for field, (group, key) in COUNTED.items():
        mix.setdefault(group, {})[key] = costs["per_event"][field]
    mix["deliveries"] = costs["deliveries_per_event"]
    kept = mix["valkey"]
    kept["bytes"] = round(
        sum(kept[items] * valkey_item_bytes[item] for items, item in VALKEY_ITEMS.items()), 1
    )
    return mix


def complete(report: dict[str, Any]) -> bool:
    return not report["sending"]["failed"] and not report["delivery"]["lost"]


def pipeline_outcome(report: dict[str, Any]) -> dict[str, Any]:
    sending, delivery = report["sending"], report["delivery"]
    return {
        "rate_per_s": report["settings"]["rate_per_s"],
        "achieved_rate": sending["achieved_rate"],
        "duration_s": report["settings"]["duration_s"],
        "accepted": sending["accepted"],
        "failed": sending["failed"],
        "lost": delivery["lost"],
        "duplicated": delivery["duplicated"],
        "latency_p99_ms": delivery["latency_ms"]["p99"],
    }


def command_line(argv: list[str] | None) -> str:
    words = sys.argv[1:] if argv is None else argv
    return " ".join([f"{Path(sys.executable).name} -m bench.costrun", *words])


def print_mixes(mixes: dict[str, dict[str, Any]]) -> None:
    for mix, values in mixes.items():
        fs = values["firestore"]
        print(
            f"{mix}: Firestore {fs['reads']:g} reads + {fs['writes']:g} writes + "
            f"{fs['deletes']:g} deletes = {fs['reads'] + fs['writes'] + fs['deletes']:.3g} per "
            f"event; Pub/Sub {values['pubsub']['messages']:g} messages, "
            f"{values['pubsub']['bytes']:g} bytes; BigQuery {values['bigquery']['rows']:g} rows, "
            f"{values['bigquery']['bytes']:g} bytes; CPU ms "
            + ", ".join(f"{f} {values['cpu_ms'][f]:g}" for f in FUNCTIONS)
            + "; requests "
            + ", ".join(f"{f} {values['requests'][f]:g}" for f in FUNCTIONS)
            + f"; deliveries {values['deliveries']:g}"
        )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
