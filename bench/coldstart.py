"""`make bench` (coldstart): how long a new instance of ingest, process and deliver takes to be
ready and to answer a first request (issue 19, item 4).

Each measurement is a fresh interpreter running bench/coldstart_probe.py, which times from its
first line: creating the function's app as functions-framework does (importing its main.py) and,
on the emulators, answering one request: for ingest a `POST /v1/track` (the write key read from
Firestore, the event published to Pub/Sub), for process a pushed, signed source message of one
new event (deduplicated, checked against contracts, stored in BigQuery, routed), for deliver a
pushed, signed deliveries message of one delivery to a webhook (a local receiver: the destination
read from Firestore, the request sent and answered, the record written). In the same
run, in turns, the same probe with `--preload` first imports the modules each function imported
before imports were made lazy (bench/baselines/coldstart_v1.json) and answers with Google's
official clients, as that code did (ingest's own answer on the REST clients): the `baseline`.
Medians over `--rounds`. Writes bench/results/coldstart-<UTC>.json and coldstart-latest.json.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import TYPE_CHECKING, Any

from bench.measuring import machine_under_load, one_minute_load, ratio
from bench.reporting import (
    REPO_ROOT,
    Column,
    at_least,
    iso,
    print_table,
    print_targets,
    report_head,
    write_report,
)
from bench.running import catch_interrupts, ignore_interrupts
from bench.workspace import BenchWorkspace, own_workspace
from emulators.stack import EmulatorStack, default_state_dir, start_stack
from shared.domain.event import CanonicalEvent
from shared.domain.events import IngestContext, normalise_request
from shared.domain.ids import new_id, utcnow
from shared.domain.pipeline import DeliveryMessage, delivery_id, encode_deliveries
from tests.webhook_receiver import webhook_receiver

if TYPE_CHECKING:
    from shared.bootstrap import Services

FUNCTIONS = ("ingest", "process", "deliver")
VARIANTS = ("project", "baseline")
# Issue 19: ingest's cold first answer takes at most half of what it took before.
FIRST_ANSWER_TARGET = 0.5


def probe(function: str, variant: str, request: list[str], env: dict[str, str]) -> dict[str, Any]:
    """One cold start of `function` in a fresh interpreter; its times and module counts."""
    command = [sys.executable, "-m", "bench.coldstart_probe", function]
    if variant == "baseline":
        command.append("--preload")
    command += request
    done = subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[2:])} failed: {done.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def measure(stack: EmulatorStack, rounds: int, cleanup: ExitStack) -> dict[str, Any]:
    """Per function and variant: every round's probe, in turns (the variants' order rotating)."""
    # The webhook deliver sends to listens on this machine.
    local = {**stack.env(), "STREAMS_ALLOW_PRIVATE_DESTINATIONS": "1"}
    env = {**os.environ, **local}
    os.environ.update(local)
    from shared.adapters.bigquery import ensure_tables, new_client
    from shared.bootstrap import Services
    from shared.config import Settings

    settings = Settings.from_env()
    services = Services(settings)
    ensure_tables(new_client(settings), settings.bigquery_dataset)  # where process stores
    workspace = cleanup.enter_context(own_workspace(services, "coldstart"))
    receiver = cleanup.enter_context(webhook_receiver())
    destination = services.destinations.create(
        workspace.workspace_id,
        name="coldstart webhook",
        type="webhook",
        config={"url": receiver.url, "secret": "coldstart-signing-secret"},
    )
    pushes = Path(cleanup.enter_context(TemporaryDirectory(prefix="coldstart-")))
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        function: {variant: [] for variant in VARIANTS} for function in FUNCTIONS
    }
    for turn in range(rounds):
        for function in FUNCTIONS:
            order = VARIANTS if turn % 2 == 0 else VARIANTS[::-1]
            for variant in order:
                request: list[str] = []
                if function == "ingest":
                    request = ["--write-key", workspace.write_key]
                else:
                    push = pushes / f"{function}-{turn}-{variant}.json"
                    body = (
                        source_push(services, workspace)
                        if function == "process"
                        else deliveries_push(services, workspace, destination.id)
                    )
                    push.write_text(json.dumps(body))
                    request = ["--push", str(push)]
                runs[function][variant].append(probe(function, variant, request, env))
        print(f"  round {turn + 1}/{rounds} done", flush=True)
    return runs


def one_event(workspace: BenchWorkspace) -> CanonicalEvent:
    ctx = IngestContext(workspace.workspace_id, workspace.source_id, utcnow(), None)
    call = {"event": "Cold Start", "userId": "bench-user", "messageId": f"coldstart-{new_id()}"}
    [event] = normalise_request(call, "track", ctx).events
    return event


def source_push(services: Services, workspace: BenchWorkspace) -> dict[str, Any]:
    """A source topic's message of one new track event, signed, as the emulator pushes it."""
    attributes = {"workspace_id": workspace.workspace_id, "source_id": workspace.source_id}
    return signed_push(services, json.dumps([one_event(workspace)]).encode(), attributes)


def deliveries_push(
    services: Services, workspace: BenchWorkspace, destination_id: str
) -> dict[str, Any]:
    """A deliveries topic's message of one new delivery to the webhook, signed, as pushed."""
    event = one_event(workspace)
    message_id = str(event["messageId"])
    delivery = DeliveryMessage(
        delivery_id=delivery_id(message_id, "coldstart-rule"),
        workspace_id=workspace.workspace_id,
        message_id=message_id,
        rule_id="coldstart-rule",
        destination_id=destination_id,
        transformation_id=None,
        event=event,
    )
    [(_, data, attributes)] = encode_deliveries([delivery])
    return signed_push(services, data, attributes)


def signed_push(services: Services, data: bytes, attributes: dict[str, str]) -> dict[str, Any]:
    [(signed_data, signed)] = services.signer.sign([(data, attributes)])
    message = {"data": base64.b64encode(signed_data).decode(), "attributes": signed}
    return {
        "subscription": "projects/bench/subscriptions/coldstart",
        "message": {**message, "messageId": new_id(), "publishTime": iso(utcnow())},
    }


def summary(probes: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians (seconds, module counts) over the rounds, and every round."""
    keys = [k for k in probes[0] if k.endswith("_s") or k.startswith("modules")]
    return {
        **{k: round(statistics.median(p[k] for p in probes), 4) for k in keys},
        "rounds": probes,
    }


def run(args: argparse.Namespace) -> int:
    started_at = datetime.now(UTC)
    load_before = one_minute_load()
    catch_interrupts()
    stack: EmulatorStack | None = None
    cleanup = ExitStack()
    try:
        print("Starting (or reusing) the emulators ...", flush=True)
        stack = start_stack(state_dir=default_state_dir())
        runs = measure(stack, args.rounds, cleanup)
    except KeyboardInterrupt:
        print("\nInterrupted; stopping everything started ...", file=sys.stderr, flush=True)
        return 130
    finally:
        ignore_interrupts()
        cleanup.close()  # the workspace, while the emulators still run
        if stack is not None:
            stack.stop()
    functions: dict[str, dict[str, Any]] = {
        function: {variant: summary(probes) for variant, probes in by_variant.items()}
        for function, by_variant in runs.items()
    }
    for figures in functions.values():
        figures["ready_project_vs_baseline"] = ratio(
            figures["project"]["ready_s"], figures["baseline"]["ready_s"]
        )
    for function in FUNCTIONS:
        figures = functions[function]
        figures["first_answer_project_vs_baseline"] = ratio(
            figures["project"]["first_answer_s"], figures["baseline"]["first_answer_s"]
        )
    first_answer = functions["ingest"]["first_answer_project_vs_baseline"]
    report = {
        **report_head("coldstart", started_at, machine_under_load(load_before)),
        "settings": {
            "rounds": args.rounds,
            "probe": "bench/coldstart_probe.py in a fresh interpreter, timed from its first line",
            "baseline": "the same probe importing bench/baselines/coldstart_v1.json first, "
            "answering with the official Google clients",
            "first_answer": "on the emulators; ingest: POST /v1/track with the write key; "
            "process: a pushed, signed source message of one new track event; deliver: a "
            "pushed, signed deliveries message of one delivery to a local webhook",
        },
        "functions": functions,
        "targets": {
            # A time: the target is met when the project's is at most half the baseline's,
            # i.e. when the baseline's is at least twice the project's.
            "ingest_first_answer_at_most_half": at_least(
                1 / FIRST_ANSWER_TARGET,
                None if not first_answer else round(1 / first_answer, 2),
                "ingest, baseline first answer / project first answer (medians)",
            ),
        },
    }
    write_report("coldstart", report)
    print_results(report)
    return 0


def print_results(report: dict[str, Any]) -> None:
    columns = [
        Column("function", 9, align="<"),
        Column("variant", 9, align="<"),
        Column("ready s", 9, ".3f"),
        Column("modules", 9),
        Column("first answer s", 16, ".3f"),
    ]
    rows = [
        [
            function,
            variant,
            figures[variant]["ready_s"],
            figures[variant]["modules_at_ready"],
            figures[variant].get("first_answer_s"),
        ]
        for function, figures in report["functions"].items()
        for variant in VARIANTS
    ]
    print_table(columns, rows)
    print_targets(report["targets"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "7")))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
