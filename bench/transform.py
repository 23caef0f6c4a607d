"""`make bench` (transform): events/s of the seed's "Enrich Purchase Events" transformation.

The project's engine (quickjs-ng in `shared/transform`) as deliver uses it, against `js2py` (the
original design's engine, a baseline only: it needs the `bench` extra, `pip install -e
'.[bench]'`), on the same canonical events in the same run, pinned to one core. Every engine
gets each event as a Python dict and gives back a Python dict (a list of them), compiles the
code once and calls it once per event:

- `deliver_hook`: `SandboxTransformer.transform(message, destination)`, the call deliver makes
  per delivery (cached transformation document, `Transformation` model, `ProgramCache.run`,
  `valid_events`), with the default limits (100 ms CPU, 64 MB, 32 KB output). The target. The
  metadata's JSON is cached per (workspace, source, destination, rule), as in production.
- `runtime`: `ProgramCache.run(key, code, event, metadata)` + `valid_events`, the runtime alone,
  with the metadata as a dict on every call (exactly the inputs js2py gets).
- `js2py`: `js2py.eval_js(code)` once, then per event `transform(event, metadata).to_dict()`:
  js2py converts both dicts into JS objects on the call and the result back with `to_dict()`.
- `quickjs_bare` (reference, not the project's API): a plain quickjs-ng context with the same
  CPU and memory limits, no hardening harness, no console, no checks: `orjson.loads(f(event
  JSON, metadata JSON))` with both serialised by `orjson.dumps`, where `f` parses, calls
  `transform` and stringifies. What the engine and the JSON boundary cost without the sandbox.

The engines take turns on small chunks of the events (`bench.running.interleaved`: the
machine is shared and its speed drifts, so all see the same conditions); wall clock and the
thread's CPU time (QuickJS runs on it) are summed per round and the medians over the rounds are
reported, with each engine's compile time. Every output is checked to be the same for all. Writes
bench/results/transform-<UTC>.json and transform-latest.json. Exit status: 0, or 1 when the
outputs differ or a call fails.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import quickjs

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
from bench.running import Engine, add_interleaving_options, interleaved, pin_to_one_core
from shared.domain.event import CanonicalEvent
from shared.domain.pipeline import DeliveryMessage
from shared.domain.routing import Destination
from shared.services.delivery_transformer import SandboxTransformer
from shared.transform import Limits, Program, ProgramCache, valid_events

# Targets from the issue (6, item 8): on one core, and against js2py in the same run.
EVENTS_PER_SECOND_TARGET = 20_000.0
VS_JS2PY_TARGET = 5.0

# The seed's transformation, verbatim (ES5, so js2py runs it too).
SEED_CODE = (
    "function transform(event) {\n if (event.properties.total > 100) {\n"
    " event.properties.tier = 'high_value';\n }\n return event;\n}"
)
TRANSFORMATION_ID = "transformation-bench"
STAMP = "2024-03-01T00:00:00.000Z"
TRANSFORMATION = {
    "id": TRANSFORMATION_ID,
    "workspace_id": WORKSPACE_ID,
    "name": "Enrich Purchase Events",
    "description": "Add computed fields to purchase events",
    "source_code": SEED_CODE,
    "test_input": {"event": "purchase_completed", "properties": {"total": 150}},
    "test_output": {
        "event": "purchase_completed",
        "properties": {"total": 150, "tier": "high_value"},
    },
    "status": "active",
    "version": 1,
    "created_at": STAMP,
    "updated_at": STAMP,
}
DESTINATION = Destination(
    id="destination-bench",
    workspace_id=WORKSPACE_ID,
    name="Webhook",
    type="webhook",
    config={"url": "http://127.0.0.1:9/hook"},
    created_at=STAMP,
    updated_at=STAMP,
)
RULE_ID = "rule-bench"
# How deliver caches configuration (Settings.config_cache_seconds' default).
CONFIG_CACHE_SECONDS = 5.0


class OneTransformationStore:
    """The part of `ConfigStore` the deliver hook reads: the one transformation document."""

    def __init__(self) -> None:
        self.reads = 0

    def get(self, path: str) -> dict[str, Any] | None:
        self.reads += 1
        return dict(TRANSFORMATION) if path.endswith(f"/{TRANSFORMATION_ID}") else None

    def commit(self, writes: Any) -> None:
        raise RuntimeError(f"the bench's transformation was marked as failing: {writes}")


def purchase_events(count: int, seed: int) -> list[CanonicalEvent]:
    """Canonical purchase_completed events; totals 5-300, so about two thirds get a tier."""
    rng = random.Random(seed)
    items = [purchase_call(index, rng) for index in range(count)]
    return canonical_events(items, datetime(2024, 3, 1, 12, 0, 0, 120000))


def metadata_for(event: CanonicalEvent) -> dict[str, Any]:
    return {
        "workspace_id": WORKSPACE_ID,
        "source_id": event.get("sourceId"),
        "destination_id": DESTINATION.id,
        "destination_type": DESTINATION.type,
        "rule_id": RULE_ID,
    }


def load_js2py() -> Any:
    try:
        import js2py
    except ImportError:
        raise SystemExit(
            "js2py is not installed: it is the baseline only, in the `bench` extra "
            "(.venv/bin/pip install -e '.[dev,bench]', or `make bench`)"
        ) from None
    return js2py


def bare_quickjs(limits: Limits) -> Any:
    """The seed code in a plain context (same CPU and memory limits): JSON text in and out."""
    context = quickjs.Context()
    context.set_memory_limit(limits.memory_bytes)
    context.set_time_limit(limits.cpu_ms / 1000)
    return context.eval(
        "(function () {" + SEED_CODE + "\nreturn function (e, m) { "
        "return JSON.stringify(transform(JSON.parse(e), JSON.parse(m))); }; })()"
    )


def compile_times(js2py: Any, limits: Limits, repeats: int) -> dict[str, Any]:
    """Median milliseconds to compile the code: a hardened QuickJS program, a js2py function."""

    def times_ms(make: Callable[[], Any], n: int) -> list[float]:
        times = []
        for _ in range(n):
            began = time.perf_counter()
            make()
            times.append(round((time.perf_counter() - began) * 1000, 2))
        return times

    quickjs_ms = times_ms(lambda: Program(SEED_CODE, limits), repeats)
    js2py_ms = times_ms(lambda: js2py.eval_js(SEED_CODE), repeats)
    return {
        "quickjs_program_ms": statistics.median(quickjs_ms),
        "js2py_eval_js_ms": statistics.median(js2py_ms),
        "quickjs_program_first_ms": quickjs_ms[0],
        "js2py_eval_js_first_ms": js2py_ms[0],
        "basis": "wall ms, median of the repeats and the first (cold) one; QuickJS: a new "
        "context, the hardening harness, the compile and the probe",
    }


def delivery_messages(events: list[CanonicalEvent]) -> list[DeliveryMessage]:
    """What deliver receives for each event: a delivery of it through the seed transformation."""
    return [
        DeliveryMessage(
            delivery_id=f"delivery-{index}",
            workspace_id=WORKSPACE_ID,
            message_id=event["messageId"],
            rule_id=RULE_ID,
            destination_id=DESTINATION.id,
            transformation_id=TRANSFORMATION_ID,
            event=event,
        )
        for index, event in enumerate(events)
    ]


def engines_for(
    events: list[CanonicalEvent],
    store: OneTransformationStore,
    limits: Limits,
    js2py: Any,
    outputs: dict[str, list[Any]],
) -> dict[str, Engine]:
    """The four engines on the same events, each keeping its latest output per event in
    `outputs[name]` (a list store, the same for all engines) for the comparison afterwards."""
    metadata = [metadata_for(event) for event in events]
    messages = delivery_messages(events)
    # The store implements only the reads and the commit the hook makes, not all of ConfigStore.
    transformer = SandboxTransformer(store, ProgramCache(limits), CONFIG_CACHE_SECONDS)  # type: ignore[arg-type]
    programs = ProgramCache(limits)
    key = (WORKSPACE_ID, TRANSFORMATION_ID, 1)
    js_transform = js2py.eval_js(SEED_CODE)
    bare_function = bare_quickjs(limits)
    dumps, loads = orjson.dumps, orjson.loads

    def deliver_hook(start: int, stop: int) -> None:
        for index in range(start, stop):
            outcome = transformer.transform(messages[index], DESTINATION)
            if outcome.error is not None:
                raise RuntimeError(f"deliver hook: {outcome.error}")
            outputs["deliver_hook"][index] = outcome.events

    def runtime(start: int, stop: int) -> None:
        for index in range(start, stop):
            result = programs.run(key, SEED_CODE, events[index], metadata[index])
            if result.error is not None:
                raise RuntimeError(f"runtime: {result.error}")
            outputs["runtime"][index] = valid_events(result.output)

    def baseline(start: int, stop: int) -> None:
        for index in range(start, stop):
            outputs["js2py"][index] = [js_transform(events[index], metadata[index]).to_dict()]

    def bare(start: int, stop: int) -> None:
        for index in range(start, stop):
            event_json = dumps(events[index]).decode()
            answer = bare_function(event_json, dumps(metadata[index]).decode())
            outputs["quickjs_bare"][index] = [loads(answer)]

    return {
        "deliver_hook": deliver_hook,
        "runtime": runtime,
        "js2py": baseline,
        "quickjs_bare": bare,
    }


ENGINES = ("deliver_hook", "runtime", "js2py", "quickjs_bare")
# (ours, theirs): the per-round throughput ratios reported, as `<ours>_vs_<theirs>`.
RATIOS = (
    ("deliver_hook", "js2py"),
    ("runtime", "js2py"),
    ("quickjs_bare", "js2py"),
    ("deliver_hook", "runtime"),
)


def run(args: argparse.Namespace) -> int:
    started_at = datetime.now(UTC)
    cpu = pin_to_one_core(args.cpu)
    load_before = one_minute_load()
    js2py = load_js2py()
    limits = Limits()
    events = purchase_events(args.events, args.seed)
    print(f"  {len(events)} events, {args.rounds} rounds; compiling ...", flush=True)
    compiled = compile_times(js2py, limits, args.compile_repeats)

    store = OneTransformationStore()
    outputs: dict[str, list[Any]] = {name: [None] * len(events) for name in ENGINES}
    engines = engines_for(events, store, limits, js2py, outputs)
    samples, passes = interleaved(
        engines, len(events), args.chunk, args.rounds, args.sample_seconds
    )
    mismatches = [
        i
        for i in range(len(events))
        if any(outputs[name][i] != outputs["runtime"][i] for name in ENGINES)
    ]
    tiered = sum(1 for out in outputs["runtime"] if out[0]["properties"].get("tier"))

    results = {
        name: {"passes_per_chunk": passes[name], **events_summary(samples[name])}
        for name in ENGINES
    }
    ratios = {
        f"{ours}_vs_{theirs}": round_ratios(samples[ours], samples[theirs])
        for ours, theirs in RATIOS
    }
    machine = machine_under_load(load_before, pinned_cpu=cpu)
    report = {
        **report_head("transform", started_at, machine),
        "settings": settings(args, len(events), tiered, limits),
        "compile": compiled,
        "engines": results,
        "ratios": ratios,
        "outputs": {
            "mismatches": len(mismatches),
            "mismatch_sample": (
                {name: outputs[name][mismatches[0]] for name in ENGINES} if mismatches else None
            ),
        },
        "store_reads": store.reads,
        "targets": targets(results, ratios),
    }
    write_report("transform", report)
    print_results(report)
    return 1 if mismatches else 0


def targets(results: dict[str, Any], ratios: dict[str, Any]) -> dict[str, Any]:
    return {
        "events_per_second_one_core": at_least(
            EVENTS_PER_SECOND_TARGET,
            results["deliver_hook"]["events_per_second_cpu"],
            "deliver_hook, events per CPU-second of one core (median)",
        ),
        "vs_js2py": at_least(
            VS_JS2PY_TARGET,
            ratios["deliver_hook_vs_js2py"]["cpu"],
            "deliver_hook vs js2py, median per-round ratio of CPU-time throughput",
        ),
    }


def settings(args: argparse.Namespace, events: int, tiered: int, limits: Limits) -> dict[str, Any]:
    return {
        "source_code": SEED_CODE,
        "events": events,
        "events_tiered": tiered,
        "limits": {
            "cpu_ms": limits.cpu_ms,
            "memory_bytes": limits.memory_bytes,
            "output_bytes": limits.output_bytes,
        },
        "rounds": args.rounds,
        "sample_seconds": args.sample_seconds,
        "seed": args.seed,
        "chunk": args.chunk,
        "timing": "interleaved: the engines take turns on chunks of events (order rotating), "
        "the faster repeating each chunk to balance CPU; medians over rounds; cpu = this "
        "thread's CPU time (QuickJS runs on it), wall = perf_counter",
        "versions": package_versions("quickjs-ng", "orjson", "js2py", "pyjsparser", "pydantic"),
    }


def print_results(report: dict[str, Any]) -> None:
    m, s, c = report["machine"], report["settings"], report["compile"]
    print(
        f"{machine_summary(m)}; {s['events']} events ({s['events_tiered']} tiered); "
        f"median of {s['rounds']} rounds"
    )
    print(
        f"compile (median; first): QuickJS program {c['quickjs_program_ms']:g} ms; "
        f"{c['quickjs_program_first_ms']:g} ms, js2py eval_js {c['js2py_eval_js_ms']:g} ms; "
        f"{c['js2py_eval_js_first_ms']:g} ms"
    )
    columns = [
        Column("engine", 14, align="<"),
        Column("ev/s cpu", 11, ",.0f"),
        Column("ev/s wall", 11, ",.0f"),
        Column("us/ev", 9, ".2f"),
        Column("x js2py (cpu, wall)", 0, align="<", gap=2),
    ]
    rows = []
    for name, r in report["engines"].items():
        ratio = report["ratios"].get(f"{name}_vs_js2py")
        times = f"{ratio['cpu']:.2f}, {ratio['wall']:.2f}" if ratio else None
        rows.append(
            [
                name,
                r["events_per_second_cpu"],
                r["events_per_second_wall"],
                r["us_per_event_cpu"],
                times,
            ]
        )
    print_table(columns, rows)
    print_targets(report["targets"])
    if report["outputs"]["mismatches"]:
        print(f"MISMATCHES: {report['outputs']['mismatches']} events differ (see the JSON)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.transform", description=__doc__)
    env = os.environ.get
    parser.add_argument("--events", type=int, default=int(env("BENCH_TRANSFORM_EVENTS", "1000")))
    parser.add_argument("--compile-repeats", type=int, default=5)
    add_interleaving_options(parser, chunk=50)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
