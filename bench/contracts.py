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
import os
import random
import sys
from datetime import UTC, datetime
from typing import Any

from jsonschema import Draft202012Validator

from bench.baselines.contracts_v1 import BaselineContract
from bench.events import WORKSPACE_ID, canonical_events, purchase_call
from bench.measuring import (
    events_summary,
    machine_under_load,
    one_minute_load,
    package_versions,
    round_ratios,
)
from bench.reporting import (
    Column,
    at_least,
    machine_summary,
    print_table,
    print_targets,
    report_head,
    write_report,
)
from bench.running import add_interleaving_options, interleaved, pin_to_one_core
from shared.domain.contracts import CompiledContract, ContractSet, EventContract
from shared.domain.event import CanonicalEvent
from shared.domain.schema_forms import to_json_schema

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


# --- the events -------------------------------------------------------------------------------


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
) -> tuple[list[CanonicalEvent], int]:
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


def findings_text(contracts: ContractSet, event: CanonicalEvent) -> list[list[tuple[Any, ...]]]:
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
    events: list[CanonicalEvent],
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
    events: list[CanonicalEvent],
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
        "project": events_summary(ours),
        "baseline": events_summary(old),
        "jsonschema": events_summary(theirs),
        "ratio_project_vs_baseline": round_ratios(ours, old),
        "ratio_project_vs_jsonschema": round_ratios(ours, theirs),
    }


def run(args: argparse.Namespace) -> int:
    started_at = datetime.now(UTC)
    cpu = pin_to_one_core(args.cpu)
    load_before = one_minute_load()
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
    machine = machine_under_load(load_before, pinned_cpu=cpu)
    report = {
        **report_head("contracts", started_at, machine),
        "settings": settings(args),
        "scenarios": scenarios,
        "targets": targets(scenarios),
        "disagreements_total": sum(
            s["agreement"]["disagreements"] + s["agreement"]["baseline_disagreements"]
            for s in scenarios.values()
        ),
    }
    write_report("contracts", report)
    print_results(report)
    return 1 if report["disagreements_total"] else 0


def settings(args: argparse.Namespace) -> dict[str, Any]:
    return {
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
    }


def targets(scenarios: dict[str, dict[str, Any]]) -> dict[str, Any]:
    mix = scenarios["mix"]
    return {
        "events_per_second_one_core": at_least(
            EVENTS_PER_SECOND_TARGET,
            mix["project"]["events_per_second_cpu"],
            "mix, project, events per CPU-second of one core (median)",
        ),
        "vs_jsonschema": at_least(
            VS_JSONSCHEMA_TARGET,
            mix["ratio_project_vs_jsonschema"]["cpu"],
            "mix, median per-round ratio of CPU-time throughput",
        ),
        **{
            f"vs_baseline_{name}": at_least(
                VS_BASELINE_TARGET,
                scenario["ratio_project_vs_baseline"]["cpu"],
                f"{name}, median per-round ratio of CPU-time throughput",
            )
            for name, scenario in scenarios.items()
        },
    }


def print_results(report: dict[str, Any]) -> None:
    m, s = report["machine"], report["settings"]
    print(
        f"{machine_summary(m)}; {s['events']} events, {s['invalid_share']:.0%} invalid; "
        f"median of {s['rounds']} rounds"
    )
    columns = [
        Column("scenario", 16, align="<"),
        Column("validator", 12, align="<"),
        Column("ev/s cpu", 11, ",.0f"),
        Column("ev/s wall", 11, ",.0f"),
        Column("us/ev", 8, ".2f"),
        Column("x baseline cpu", 16, ".2f", gap=2),
        Column("x jsonschema cpu", 18, ".2f", gap=2),
    ]
    rows = []
    for name, r in report["scenarios"].items():
        for who in ("project", "baseline", "jsonschema"):
            x, ours = r[who], who == "project"
            rows.append(
                [
                    name,
                    who,
                    x["events_per_second_cpu"],
                    x["events_per_second_wall"],
                    x["us_per_event_cpu"],
                    r["ratio_project_vs_baseline"]["cpu"] if ours else None,
                    r["ratio_project_vs_jsonschema"]["cpu"] if ours else None,
                ]
            )
    print_table(columns, rows)
    print_targets(report["targets"])
    if report["disagreements_total"]:
        print(f"DISAGREEMENTS: {report['disagreements_total']} events (see the JSON)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.contracts", description=__doc__)
    env = os.environ.get
    parser.add_argument("--events", type=int, default=int(env("BENCH_CONTRACT_EVENTS", "10000")))
    parser.add_argument("--invalid-share", type=float, default=0.2)
    add_interleaving_options(parser, chunk=500)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
