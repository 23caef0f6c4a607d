"""The pipeline bench's report: its settings, the run's figures, and the table on stdout."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bench.measuring import machine_under_load, package_versions
from bench.reporting import Column, machine_summary, print_table, report_head

if TYPE_CHECKING:
    from bench.pipeline.run import Measured
    from bench.pipeline.stack import Plan


def scenario(args: argparse.Namespace) -> str:
    """`track`, `batch<N>` or `sdk`: the report's name is `pipeline-<scenario>`."""
    if args.sdk:
        return "sdk"
    return "track" if args.batch_size == 1 else f"batch{args.batch_size}"


def path_text(args: argparse.Namespace) -> str:
    if args.sdk:
        path = "segment-analytics-python's track(), POST /v1/batch every 0.5 s or 100 events, "
    elif args.batch_size == 1:
        path = "POST /v1/track, one event per request, "
    else:
        path = f"POST /v1/batch, {args.batch_size} events per request, "
    return path + ("through the local gateway" if args.via == "gateway" else "straight to ingest")


def pipeline_report(
    args: argparse.Namespace, plan: Plan, started_at: datetime, measured: Measured
) -> dict[str, Any]:
    machine = machine_under_load(None)
    return {
        **report_head("pipeline", started_at, machine),
        "settings": settings(args, plan, measured.emulators_reused),
        "timings_s": {k: round(v, 1) for k, v in measured.timings.items()},
        **measured.results,
        "cpu_cores_while_measuring": measured.cpu,
        "costs": measured.costs,
        "function_log_errors": measured.log_errors,
    }


def settings(args: argparse.Namespace, plan: Plan, emulators_reused: list[str]) -> dict[str, Any]:
    return {
        "path": path_text(args),
        "scenario": scenario(args),
        "batch_size": None if args.sdk else args.batch_size,
        "url": plan.target_url,
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
        "emulators_reused": emulators_reused,
        "project_id": args.project,
        "ports": {"gateway": plan.ports.gateway, "functions": plan.ports.functions},
        "versions": package_versions(
            "functions-framework",
            "gunicorn",
            "flask",
            "google-cloud-pubsub",
            "google-cloud-firestore",
            "google-cloud-bigquery",
        ),
    }


def print_results(report: dict[str, Any]) -> None:
    s, send, d = report["settings"], report["sending"], report["delivery"]
    m = report["machine"]
    print(
        f"{machine_summary(m)}; {s['path']}; {s['rate_per_s']:g} events/s "
        f"offered, {send['achieved_rate']:g} achieved; {s['duration_s']:g}s measured"
    )
    print(
        f"sent {send['sent']}, accepted {send['accepted']}, failed {send['failed']}; "
        f"received {d['received']}, lost {d['lost']}, duplicated {d['duplicated']}"
    )
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
    columns = [Column("ms", 34, align="<")]
    columns += [Column(p, 10, ".1f") for p in ("p50", "p90", "p99", "max")]
    print_table(columns, [[label, v["p50"], v["p90"], v["p99"], v["max"]] for label, v in rows])
    slow = ", ".join(f"{k} {v:g}" for k, v in report["slowest_1pct_mean_stage_ms"].items())
    print(f"slowest 1% of events, mean ms per stage: {slow}")
    cores = ", ".join(
        f"{k.split(':')[-1].split(' ')[0]} {v:g}"
        for k, v in sorted(report["cpu_cores_while_measuring"].items(), key=lambda kv: -kv[1])
        if v >= 0.05
    )
    print(f"CPU cores while measuring: {cores}")
    c = report["costs"]
    per_event = c["per_event"]
    print(
        f"per event: Firestore {c['firestore_operations_per_event']:g} operations "
        f"({per_event['firestore_reads']:g} reads, {per_event['firestore_writes']:g} writes, "
        f"{per_event['firestore_deletes']:g} deletes), Pub/Sub {per_event['pubsub_messages']:g} "
        f"messages, BigQuery {per_event['bigquery_rows']:g} rows, "
        f"{c['deliveries_per_event']:g} deliveries; CPU ms "
        + ", ".join(f"{k} {v:g}" for k, v in c["cpu_ms_per_event"].items() if v >= 0.01)
    )
    t = report["target"]
    verdict = "met" if t["met"] else "MISSED"
    print(f"target p99 < {t['p99_ms_below']:g} ms: {t['measured_p99_ms']:g} ms {verdict}")
    if send["failed"]:
        print(f"FAILED requests: {send['failed']} ({send['failure_sample']})")
    if d["lost"]:
        print(f"LOST events: {d['lost']} (e.g. {d['lost_sample'][:2]})")
