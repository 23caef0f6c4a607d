"""Soak: a steady rate of events through a whole local stack for many minutes.

    python -m tests.reliability.soak [--minutes 10] [--rate 20] [--output FILE]

Sends single calls and small batches at `--rate` events/s through the gateway to a webhook
destination, samples the resident memory of every function process every `--sample-seconds`,
then accounts for every acknowledged event (delivered exactly once, and stored exactly once in
BigQuery). Memory is "flat" when each function's median RSS over the last minute exceeds its
median over the second minute (after warm-up) by no more than the larger of `--rss-bound-mib`
and `--rss-bound-percent`. Writes bench/results/soak-<UTC>.json and soak-latest.json; exits 1
when an event is lost or duplicated or a function's memory is not flat.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.reliability.faults.accounting import RESULTS_DIR, Client, Ledger, account
from tests.reliability.faults.receiver import Destination
from tests.reliability.faults.stack import FaultStack

MIB = 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=20.0, help="events per second")
    parser.add_argument("--batch-share", type=float, default=0.5, help="requests that are batches")
    parser.add_argument("--max-batch", type=int, default=5)
    parser.add_argument("--sample-seconds", type=float, default=10.0)
    parser.add_argument("--rss-bound-mib", type=float, default=16.0)
    parser.add_argument("--rss-bound-percent", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="streams-soak-") as root:
        stack = FaultStack(root=Path(root))
        stack.start()
        try:
            report = soak(stack, args)
        finally:
            stack.close()
    _write(report, args.output)
    print(json.dumps(report["verdict"], indent=2))
    return 0 if report["verdict"]["passed"] else 1


def soak(stack: FaultStack, args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    with Destination() as destination:
        tenant = stack.tenant("soak")
        tenant.rule(tenant.webhook(destination.url))
        ledger = Ledger()
        client = Client(stack.gateway_url, ledger)
        samples: list[dict[str, Any]] = []
        stop = threading.Event()
        began = time.monotonic()

        def sample() -> None:
            while True:
                rss = stack.function_rss_kib()
                samples.append({"t": round(time.monotonic() - began, 1), "rss_kib": rss})
                if stop.wait(args.sample_seconds):
                    return

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        duration = args.minutes * 60
        events = 0
        requests_sent = 0
        # Several senders, so that one slow answer does not lower the rate: the schedule below
        # decides when each request leaves, the pool only carries it.
        with ThreadPoolExecutor(max_workers=8) as pool:
            while (elapsed := time.monotonic() - began) < duration:
                due = args.rate * elapsed
                if events >= due:
                    time.sleep(min(0.05, (events - due + 1) / args.rate))
                    continue
                n = requests_sent
                if rng.random() < args.batch_share:
                    size = rng.randint(2, args.max_batch)
                    ids = [f"soak-{n}-{k}" for k in range(size)]
                    pool.submit(client.batch, tenant.write_key, ids, n * args.max_batch)
                else:
                    size = 1
                    pool.submit(client.single, tenant.write_key, f"soak-{n}", n)
                events += size
                requests_sent += 1
        sent_for = time.monotonic() - began
        result = account(tenant, ledger, destination, timeout=600)
        stop.set()
        sampler.join()
    stored = stack.bigquery_rows(tenant.workspace_id)
    memory = _memory(samples, args)
    lost_rows = sorted(ledger.acked - set(stored))
    stored_twice = {m: n for m, n in stored.items() if n > 1}
    figures = {**ledger.figures(), **result.figures()}
    passed = (
        result.missing == []
        and result.duplicated == {}
        and result.unexpected == []
        and result.recorded == {}
        and lost_rows == []
        and stored_twice == {}
        and not ledger.server_errors
        and all(f["flat"] for f in memory.values())
    )
    return {
        "name": "soak",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": {
            "minutes": args.minutes,
            "rate_events_per_second": args.rate,
            "batch_share": args.batch_share,
            "max_batch": args.max_batch,
            "sample_seconds": args.sample_seconds,
            "seed": args.seed,
            "rss_criterion": (
                "median RSS of the last minute minus median RSS of the second minute <= "
                f"max({args.rss_bound_mib} MiB, {args.rss_bound_percent}% of the second minute)"
            ),
        },
        "requests": requests_sent,
        "seconds_sending": round(sent_for, 1),
        "events_per_second_achieved": round(events / sent_for, 2),
        "delivery": figures,
        "bigquery": {
            "rows": sum(stored.values()),
            "acknowledged_not_stored": len(lost_rows),
            "stored_more_than_once": len(stored_twice),
        },
        "memory": memory,
        "rss_samples": samples,
        "verdict": {
            "passed": passed,
            "events_acknowledged": figures["events_acknowledged"],
            "lost": figures["lost"],
            "duplicated": figures["delivered_more_than_once"],
            "not_stored": len(lost_rows),
            "stored_twice": len(stored_twice),
            "server_errors": len(ledger.server_errors),
            "memory_flat": {name: f["flat"] for name, f in memory.items()},
        },
    }


def _memory(samples: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Per function: RSS at the second minute, at the end, the growth and the verdict."""
    end = samples[-1]["t"] if samples else 0.0
    second_minute = [s for s in samples if 60 <= s["t"] < 120]
    last_minute = [s for s in samples if s["t"] >= end - 60]
    report: dict[str, dict[str, Any]] = {}
    for name in samples[0]["rss_kib"] if samples else []:
        early = statistics.median(s["rss_kib"].get(name, 0) for s in second_minute or samples)
        late = statistics.median(s["rss_kib"].get(name, 0) for s in last_minute)
        bound = max(args.rss_bound_mib * MIB, early * args.rss_bound_percent / 100)
        report[name] = {
            "second_minute_mib": round(early / MIB, 1),
            "last_minute_mib": round(late / MIB, 1),
            "peak_mib": round(max(s["rss_kib"].get(name, 0) for s in samples) / MIB, 1),
            "growth_mib": round((late - early) / MIB, 1),
            "bound_mib": round(bound / MIB, 1),
            "flat": late - early <= bound,
        }
    return report


def _write(report: dict[str, Any], output: Path | None) -> None:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(report, indent=2) + "\n"
    paths = [output] if output else [RESULTS_DIR / f"soak-{stamp}.json"]
    paths.append(RESULTS_DIR / "soak-latest.json")
    for path in paths:
        path.write_text(text)
    print(f"Results: {', '.join(str(p) for p in paths)}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
