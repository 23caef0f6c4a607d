"""`make bench` (contracts): validation throughput of the seed's "Purchase Completed Schema".

The project's validator (the compact schema compiled by `CompiledContract` on jsonschema-rs,
judged through `ContractSet.check`, the call `process` makes per fresh event) against, on the
same canonical events, in the same run, pinned to one core:

- `baseline`: the validator it replaced (issue 21), frozen in `bench/baselines/` (closures and a
  generated predicate), judged through the same `ContractSet.check`; both must find exactly the
  same violations (type, field, message, expected, actual) on every event;
- `jsonschema`: the `jsonschema` library (`Draft202012Validator` on the equivalent JSON Schema,
  `iter_errors` collecting every violation).

Scenarios:

- `mix`: 80% valid purchase events, 20% with one missing or ill-typed field (the target).
- `mix_undeclared`: the same, each event also carrying two fields the contract does not declare
  (`products`, `coupon`). The contract's `undeclared_fields: allow` still records them (as
  `allowed`), which the plain JSON Schema does not do (the baseline does): no jsonschema target.
- `mix_pattern`: the `mix` events against the seed's contract with a `pattern` on `order_id`
  (`^ORD-[0-9]{8}$`): what matching a pattern costs (the Rust `regex` crate for the project, RE2
  for the baseline, Python's `re` for the library): informational, no target.

The validators take turns on chunks of events (`interleaved`: the machine is shared and its
speed drifts, so both see the same conditions); wall clock and the thread's CPU time are summed
per round and the medians over the rounds are reported. Writes
bench/results/contracts-<UTC>.json and contracts-latest.json. Exit status: 0, or 1 when the
validators disagree on an event.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from bench.baselines.contracts_v1 import BaselineContract
from bench.common import machine_info, package_versions
from shared.domain.contracts import CompiledContract, ContractSet, EventContract
from shared.domain.events import IngestContext, normalise_request
from shared.domain.schema_forms import to_json_schema

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "bench" / "results"

# Targets from the issues (5, item 8): on one core, and against jsonschema in the same run; (21):
# at least as fast as the validator it replaced, on the same events in the same run.
EVENTS_PER_SECOND_TARGET = 100_000.0
VS_JSONSCHEMA_TARGET = 10.0
VS_BASELINE_TARGET = 1.0

# The seed's contract, as sent to the API (docs/CONTRACTS.md, compact form).
SEED_CONTRACT = {
    "name": "Purchase Completed Schema",
    "event_type": "track",
    "event_name": "purchase_completed",
    "description": "Schema for purchase completion events",
    "schema_definition": {
        "properties": {
            "order_id": {"type": "string", "required": True},
            "total": {"type": "number", "required": True},
            "currency": {"type": "string", "required": True},
        }
    },
    "enforcement_mode": "warn",
    "undeclared_fields": "allow",
}
# The same schema written as JSON Schema (draft 2020-12) for the library.
EQUIVALENT_JSON_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "order_id": {"type": "string"},
        "total": {"type": "number"},
        "currency": {"type": "string"},
    },
    "required": ["order_id", "total", "currency"],
}
# The seed's contract with a pattern on `order_id`, and its JSON Schema twin.
ORDER_ID_PATTERN = "^ORD-[0-9]{8}$"
PATTERN_CONTRACT = {
    **SEED_CONTRACT,
    "schema_definition": {
        "properties": {
            "order_id": {"type": "string", "required": True, "pattern": ORDER_ID_PATTERN},
            "total": {"type": "number", "required": True},
            "currency": {"type": "string", "required": True},
        }
    },
}
PATTERN_JSON_SCHEMA = {
    **EQUIVALENT_JSON_SCHEMA,
    "properties": {
        "order_id": {"type": "string", "pattern": ORDER_ID_PATTERN},
        "total": {"type": "number"},
        "currency": {"type": "string"},
    },
}
# Scenario -> (events carry undeclared fields, the contract, its JSON Schema twin).
SCENARIOS: dict[str, tuple[bool, dict[str, Any], dict[str, Any]]] = {
    "mix": (False, SEED_CONTRACT, EQUIVALENT_JSON_SCHEMA),
    "mix_undeclared": (True, SEED_CONTRACT, EQUIVALENT_JSON_SCHEMA),
    "mix_pattern": (False, PATTERN_CONTRACT, PATTERN_JSON_SCHEMA),
}
# How an invalid event is broken (one way each, in turn).
FAULTS = ("total_missing", "total_string", "currency_missing", "order_id_number")
WORKSPACE_ID = "ws-bench"
SOURCE_ID = "src-bench"


# --- plumbing shared with bench/transform.py --------------------------------------------------


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def pin_to_one_core(cpu: int | None) -> int | None:
    """Pin this process to one CPU (default: the last one allowed); the CPU, or None if not."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    chosen = allowed[-1] if cpu is None else cpu
    os.sched_setaffinity(0, {chosen})
    return chosen


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
            order = names[turn % len(names) :] + names[: turn % len(names)]
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


def summary(samples: Sequence[Sample]) -> dict[str, Any]:
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


def write_report(name: str, report: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = report["started_at"].replace("-", "").replace(":", "").split(".")[0] + "Z"
    text = json.dumps(report, indent=2) + "\n"
    path = RESULTS_DIR / f"{name}-{stamp}.json"
    path.write_text(text)
    (RESULTS_DIR / f"{name}-latest.json").write_text(text)
    print(f"\nResults: {path.relative_to(REPO_ROOT)} (and {name}-latest.json)")
    return path


def canonical_events(items: list[dict[str, Any]], received_at: datetime) -> list[dict[str, Any]]:
    """The calls as ingest normalises them (what process and deliver see)."""
    ctx = IngestContext(WORKSPACE_ID, SOURCE_ID, received_at, "203.0.113.7")
    events: list[dict[str, Any]] = []
    for start in range(0, len(items), 1000):
        batch = normalise_request({"batch": items[start : start + 1000]}, None, ctx)
        if batch.rejections:
            raise RuntimeError(f"ingest refused a bench event: {batch.rejections[0]}")
        events.extend(batch.events)
    return events


# --- the events -------------------------------------------------------------------------------


def purchase_call(index: int, rng: random.Random) -> dict[str, Any]:
    """A purchase_completed track call, as an SDK sends it."""
    return {
        "type": "track",
        "event": "purchase_completed",
        "userId": f"user-{index % 997}",
        "messageId": f"bench-{index:08d}",
        "timestamp": "2024-03-01T12:00:00.000Z",
        "properties": {
            "order_id": f"ORD-{index:08d}",
            "total": round(rng.uniform(5, 300), 2),
            "currency": rng.choice(("USD", "EUR", "GBP")),
        },
        "context": {
            "library": {"name": "analytics-python", "version": "2.4.0"},
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64)",
        },
    }


def break_properties(properties: dict[str, Any], fault: str) -> None:
    if fault == "total_missing":
        del properties["total"]
    elif fault == "total_string":
        properties["total"] = str(properties["total"])
    elif fault == "currency_missing":
        del properties["currency"]
    elif fault == "order_id_number":
        properties["order_id"] = int(properties["order_id"].removeprefix("ORD-"))


def build_events(
    count: int, invalid_share: float, undeclared: bool, seed: int
) -> tuple[list[dict[str, Any]], int]:
    """`count` canonical events, `invalid_share` of them broken (spread evenly); and how many."""
    rng = random.Random(seed)
    items = [purchase_call(i, rng) for i in range(count)]
    broken = 0
    for index, item in enumerate(items):
        # Spread the invalid events evenly: event i is broken when the running share falls short.
        if broken < round((index + 1) * invalid_share):
            break_properties(item["properties"], FAULTS[broken % len(FAULTS)])
            broken += 1
        if undeclared:
            item["properties"]["coupon"] = "SPRING10"
            item["properties"]["products"] = [
                {"sku": f"SKU-{index % 50:03d}", "price": 19.99, "quantity": 1 + index % 3}
            ]
    return canonical_events(items, datetime(2024, 3, 1, 12, 0, 0, 120000)), broken


# --- the validators ---------------------------------------------------------------------------


def seed_contract_set(
    contract_fields: dict[str, Any] = SEED_CONTRACT, baseline: bool = False
) -> ContractSet:
    """The workspace's active contracts as process holds them: the seed's, compiled (by the
    frozen baseline validator with `baseline`)."""
    stamp = "2024-03-01T00:00:00.000Z"
    contract = EventContract(
        id="contract-bench",
        workspace_id=WORKSPACE_ID,
        status="active",
        version=1,
        created_at=stamp,
        updated_at=stamp,
        **contract_fields,
    )
    compiled = BaselineContract(contract) if baseline else CompiledContract(contract)
    return ContractSet([compiled])


def library_validator(
    contract_fields: dict[str, Any] = SEED_CONTRACT,
    equivalent: dict[str, Any] = EQUIVALENT_JSON_SCHEMA,
) -> Draft202012Validator:
    """jsonschema on the equivalent JSON Schema (checked to be what the contract compiles to)."""
    compiled, form = to_json_schema(contract_fields["schema_definition"])
    plain = {k: v for k, v in equivalent.items() if k != "$schema"}
    if form != "compact" or compiled != plain:
        raise RuntimeError(f"the contract's schema compiles to {compiled}, not {plain}")
    Draft202012Validator.check_schema(equivalent)
    return Draft202012Validator(equivalent)


def findings_text(contracts: ContractSet, event: dict[str, Any]) -> list[list[tuple[Any, ...]]]:
    """Every field of every violation and action the contracts find, comparable across
    validators."""
    return [
        [
            (v.type, v.field, v.message, v.expected, v.actual, action)
            for v, action in zip(f.violations, f.actions, strict=True)
        ]
        for f in contracts.check(event)
    ]


def agreement(
    contracts: ContractSet,
    baseline: ContractSet,
    validator: Draft202012Validator,
    events: list[dict[str, Any]],
) -> dict[str, Any]:
    """The project and the baseline find exactly the same violations; the project and
    jsonschema flag the same events with the same number of schema violations."""
    ours_invalid = theirs_invalid = disagreements = undeclared = 0
    baseline_disagreements = 0
    sample = baseline_sample = None
    for event in events:
        ours, old = findings_text(contracts, event), findings_text(baseline, event)
        if ours != old:
            baseline_disagreements += 1
            baseline_sample = baseline_sample or {
                "properties": event["properties"],
                "project": ours,
                "baseline": old,
            }
        findings = contracts.check(event)
        violations = [v for f in findings for v in f.violations]
        schema_violations = [v for v in violations if v.type != "Undeclared-Field"]
        undeclared += len(violations) - len(schema_violations)
        errors = list(validator.iter_errors(event["properties"]))
        ours_invalid += bool(schema_violations)
        theirs_invalid += bool(errors)
        if len(schema_violations) != len(errors):
            disagreements += 1
            sample = sample or {
                "properties": event["properties"],
                "project": [f"{v.field} {v.type}" for v in schema_violations],
                "jsonschema": [e.message for e in errors],
            }
    return {
        "invalid_events_project": ours_invalid,
        "invalid_events_jsonschema": theirs_invalid,
        "undeclared_field_violations_project": undeclared,
        "disagreements": disagreements,
        "disagreement_sample": sample,
        "baseline_disagreements": baseline_disagreements,
        "baseline_disagreement_sample": baseline_sample,
    }


def run_scenario(
    events: list[dict[str, Any]],
    broken: int,
    contracts: ContractSet,
    baseline_contracts: ContractSet,
    validator: Draft202012Validator,
    rounds: int,
    chunk: int,
    sample_seconds: float,
) -> dict[str, Any]:
    check = contracts.check
    baseline_check = baseline_contracts.check
    iter_errors = validator.iter_errors

    def project(start: int, stop: int) -> None:
        for index in range(start, stop):
            check(events[index])

    def baseline(start: int, stop: int) -> None:
        for index in range(start, stop):
            baseline_check(events[index])

    def library(start: int, stop: int) -> None:
        for index in range(start, stop):
            list(iter_errors(events[index]["properties"]))

    agreed = agreement(contracts, baseline_contracts, validator, events)
    samples, passes = interleaved(
        {"project": project, "baseline": baseline, "jsonschema": library},
        len(events),
        chunk,
        rounds,
        sample_seconds,
    )
    ours, old, theirs = samples["project"], samples["baseline"], samples["jsonschema"]
    return {
        "events": len(events),
        "invalid_events": broken,
        "passes_per_chunk": passes,
        "agreement": agreed,
        "project": summary(ours),
        "baseline": summary(old),
        "jsonschema": summary(theirs),
        "ratio_project_vs_baseline": round_ratios(ours, old),
        "ratio_project_vs_jsonschema": round_ratios(ours, theirs),
    }


def run(args: argparse.Namespace) -> int:
    started_at = datetime.now(UTC)
    cpu = pin_to_one_core(args.cpu)
    load_before = os.getloadavg()[0]
    scenarios: dict[str, dict[str, Any]] = {}
    for name, (undeclared, contract_fields, equivalent) in SCENARIOS.items():
        contracts = seed_contract_set(contract_fields)
        baseline = seed_contract_set(contract_fields, baseline=True)
        validator = library_validator(contract_fields, equivalent)
        events, broken = build_events(args.events, args.invalid_share, undeclared, args.seed)
        print(f"  {name}: {len(events)} events, {broken} invalid, {args.rounds} rounds", flush=True)
        scenarios[name] = run_scenario(
            events,
            broken,
            contracts,
            baseline,
            validator,
            args.rounds,
            args.chunk,
            args.sample_seconds,
        )
    mix = scenarios["mix"]
    rate = mix["project"]["events_per_second_cpu"]
    ratio = mix["ratio_project_vs_jsonschema"]["cpu"]
    vs_baseline = {
        name: scenario["ratio_project_vs_baseline"]["cpu"] for name, scenario in scenarios.items()
    }
    report = {
        "benchmark": "contracts",
        "started_at": iso(started_at),
        "finished_at": iso(datetime.now(UTC)),
        "machine": {
            **machine_info(),
            "pinned_cpu": cpu,
            "load_average_1m_at_start": round(load_before, 2),
            "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        },
        "settings": {
            "contract": SEED_CONTRACT,
            "equivalent_json_schema": EQUIVALENT_JSON_SCHEMA,
            "pattern_json_schema": PATTERN_JSON_SCHEMA,
            "project": "ContractSet.check (CompiledContract of the compact schema; process's call)",
            "baseline": "ContractSet.check of bench/baselines/contracts_v1.BaselineContract (the "
            "validator before issue 21: closures and a generated predicate, patterns on RE2)",
            "jsonschema": "Draft202012Validator(schema).iter_errors(event['properties']), listed",
            "events": args.events,
            "invalid_share": args.invalid_share,
            "faults": list(FAULTS),
            "rounds": args.rounds,
            "sample_seconds": args.sample_seconds,
            "seed": args.seed,
            "chunk": args.chunk,
            "timing": "interleaved: the validators take turns on chunks of events (order "
            "rotating), the faster repeating each chunk to balance CPU; medians over rounds; "
            "cpu = this thread's CPU time, wall = perf_counter",
            "versions": package_versions("jsonschema-rs", "jsonschema", "google-re2", "pydantic"),
        },
        "scenarios": scenarios,
        "targets": {
            "events_per_second_one_core": {
                "target": EVENTS_PER_SECOND_TARGET,
                "measured": rate,
                "basis": "mix, project, events per CPU-second of one core (median)",
                "met": rate >= EVENTS_PER_SECOND_TARGET,
            },
            "vs_jsonschema": {
                "target": VS_JSONSCHEMA_TARGET,
                "measured": ratio,
                "basis": "mix, median per-round ratio of CPU-time throughput",
                "met": ratio >= VS_JSONSCHEMA_TARGET,
            },
            **{
                f"vs_baseline_{name}": {
                    "target": VS_BASELINE_TARGET,
                    "measured": measured,
                    "basis": f"{name}, median per-round ratio of CPU-time throughput",
                    "met": measured >= VS_BASELINE_TARGET,
                }
                for name, measured in vs_baseline.items()
            },
        },
        "disagreements_total": sum(
            s["agreement"]["disagreements"] + s["agreement"]["baseline_disagreements"]
            for s in scenarios.values()
        ),
    }
    write_report("contracts", report)
    print_table(report)
    return 1 if report["disagreements_total"] else 0


def print_table(report: dict[str, Any]) -> None:
    m, s = report["machine"], report["settings"]
    print(
        f"{m['cpu_count']} x {m['cpu_model']}; pinned to CPU {m['pinned_cpu']}; load "
        f"{m['load_average_1m_at_start']:g} -> {m['load_average_1m_at_end']:g}; "
        f"{s['events']} events, {s['invalid_share']:.0%} invalid; median of {s['rounds']} rounds"
    )
    header = (
        f"{'scenario':<16}{'validator':<12}{'ev/s cpu':>11}{'ev/s wall':>11}{'us/ev':>8}"
        f"  {'x baseline':>10}  {'x jsonschema':>12}  (cpu)"
    )
    print(header)
    print("-" * len(header))
    for name, r in report["scenarios"].items():
        old, library = r["ratio_project_vs_baseline"], r["ratio_project_vs_jsonschema"]
        for who in ("project", "baseline", "jsonschema"):
            x = r[who]
            times = f"  {old['cpu']:>10.2f}  {library['cpu']:>12.2f}" if who == "project" else ""
            print(
                f"{name:<16}{who:<12}{x['events_per_second_cpu']:>11,.0f}"
                f"{x['events_per_second_wall']:>11,.0f}{x['us_per_event_cpu']:>8.2f}{times}"
            )
    for name, t in report["targets"].items():
        verdict = "met" if t["met"] else "MISSED"
        print(f"target {name}: {t['measured']:,} (>= {t['target']:,g}) {verdict}")
    if report["disagreements_total"]:
        print(f"DISAGREEMENTS: {report['disagreements_total']} events (see the JSON)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.contracts", description=__doc__)
    env = os.environ.get
    parser.add_argument("--events", type=int, default=int(env("BENCH_CONTRACT_EVENTS", "10000")))
    parser.add_argument("--rounds", type=int, default=int(env("BENCH_ROUNDS", "7")))
    parser.add_argument("--invalid-share", type=float, default=0.2)
    parser.add_argument("--chunk", type=int, default=500, help="events per interleaved turn")
    parser.add_argument(
        "--sample-seconds",
        type=float,
        default=float(env("BENCH_SAMPLE_SECONDS", "0.25")),
        help="CPU seconds per engine and round",
    )
    parser.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: the last)")
    parser.add_argument("--seed", type=int, default=1)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
