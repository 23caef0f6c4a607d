"""The run: start the stack and the receiver, make the bench's workspace and route, send the
schedule while measuring CPU, wait for the last deliveries, collect and analyse; and however it
ends, stop the senders, dismantle the workspace and stop the stack, in that order.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bench.measuring import CpuMeter
from bench.pipeline import costs
from bench.pipeline.analysis import analyse, first_receipts, log_errors, read_records
from bench.pipeline.report import pipeline_report, print_results, scenario
from bench.pipeline.sending import Schedule, Senders
from bench.pipeline.stack import Plan, cpu_groups, prepare, route_every_event, wait_for_ingest
from bench.reporting import write_report
from bench.running import ignore_interrupts
from bench.workspace import BenchWorkspace, own_workspace
from emulators.dev import LocalStack
from tests.webhook_receiver import WebhookReceiver, webhook_receiver

if TYPE_CHECKING:
    from shared.bootstrap import Services


@dataclass(frozen=True)
class Records:
    """Where the run's event log and delivery records are: its workspace and rule."""

    services: Services
    workspace_id: str
    rule_id: str


@dataclass
class Measured:
    """What a completed run found, for the report."""

    timings: dict[str, float] = field(default_factory=dict)
    emulators_reused: list[str] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    # From the first reading of the operation counts to the last: every event's whole work.
    span_cpu_seconds: dict[str, float] = field(default_factory=dict)
    costs: dict[str, Any] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    log_errors: dict[str, Any] = field(default_factory=dict)


def run(args: argparse.Namespace) -> int:
    status, _ = run_with_report(args)
    return status


def run_with_report(args: argparse.Namespace) -> tuple[int, dict[str, Any] | None]:
    """The run's exit status, and its report when it completed (bench.costrun reads it)."""
    started_at = datetime.now(UTC)
    plan = prepare(args)
    if plan is None:
        return 2, None
    stack = LocalStack(ports=plan.ports, state_dir=plan.state_dir)
    senders = Senders()
    measured: Measured | None = None
    try:
        measured = measure(args, plan, stack, senders)
    except KeyboardInterrupt:
        print("\nInterrupted; stopping everything started ...", file=sys.stderr, flush=True)
        return 130, None
    finally:
        ignore_interrupts()
        senders.stop()
        stack.stop()  # already done unless measure() never got that far
        if measured is None or args.keep_state:
            print(f"Logs kept in {plan.state_dir / 'logs'}", file=sys.stderr, flush=True)
        else:
            shutil.rmtree(plan.state_dir, ignore_errors=True)

    report = pipeline_report(args, plan, started_at, measured)
    write_report(f"pipeline-{scenario(args)}", report)
    print_results(report)
    # Like bench.ingest: failed requests fail the run; latency, losses and duplicates are
    # reported (an event late beyond the drain window is indistinguishable from a lost one).
    return (1 if report["sending"]["failed"] else 0), report


def measure(args: argparse.Namespace, plan: Plan, stack: LocalStack, senders: Senders) -> Measured:
    measured = Measured()
    to_wall = time.time() - time.monotonic()
    with ExitStack() as cleanup:
        receiver = cleanup.enter_context(webhook_receiver())
        # Unwound before the receiver closes: the functions stop before the receiver they
        # deliver to.
        cleanup.callback(stack.stop)
        print(f"Starting the local stack (state dir {plan.state_dir}) ...", flush=True)
        began = time.monotonic()
        stack.start()
        measured.timings["stack_start_s"] = time.monotonic() - began
        handles = stack.emulators.handles if stack.emulators else {}
        measured.emulators_reused = [n for n, h in handles.items() if not h.started_by_us]
        from shared.bootstrap import Services
        from shared.config import Settings

        services = Services(Settings.from_env())
        # A workspace of the bench's own, never `make dev`'s (LocalStack.bootstrap would
        # reuse the one in a dev.json): its rules, destinations and source are deleted and
        # its token revoked when this block exits, before the stack stops.
        workspace: BenchWorkspace = cleanup.enter_context(own_workspace(services, "pipeline"))
        # Unwound in reverse: interrupts ignored, the senders stopped (no event is sent
        # while the workspace is taken apart), the workspace dismantled, the stack stopped.
        cleanup.callback(senders.stop)
        cleanup.callback(ignore_interrupts)
        print(f"Workspace {workspace.name!r} ({workspace.workspace_id})", flush=True)
        rule_id = route_every_event(stack, workspace, receiver.url)
        settle(args, plan, workspace, rule_id)
        counted_from = costs.read_counts(costs.counts_dir(plan.state_dir), cpu_groups(stack))
        span = CpuMeter(cpu_groups(stack))
        span.start()
        schedule, send_began = send(args, plan, stack, workspace, senders, measured)
        drain(args, receiver, schedule, measured)
        counted = costs.difference(
            costs.read_counts(costs.counts_dir(plan.state_dir), cpu_groups(stack)), counted_from
        )
        span.stop()
        measured.span_cpu_seconds = span.seconds
        measured.costs = costs_of(counted, receiver, schedule, measured)
        records = Records(services, workspace.workspace_id, rule_id)
        measured.results = collect(args, receiver, records, schedule, to_wall, send_began)
        measured.log_errors = log_errors(plan.state_dir)
    return measured


def costs_of(
    counted: dict[str, dict[str, int]],
    receiver: WebhookReceiver,
    schedule: Schedule,
    measured: Measured,
) -> dict[str, Any]:
    """Operations and CPU over every accepted event of the schedule (CPU also over the
    measured window's events, as the rest of the report measures it)."""
    accepted = [e.message_id for e in schedule.events if e.accepted]
    _, receipts = first_receipts(receiver.delivered())
    measured_sent = sum(1 for e in schedule.events if e.phase == "measure" and e.sent)
    return costs.per_event(
        counted,
        len(accepted),
        costs.receipts_of(receipts, accepted),
        measured.span_cpu_seconds,
        measured.cpu_seconds,
        measured_sent,
    )


def _headers(workspace: BenchWorkspace) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Write-Key": workspace.write_key}


def settle(args: argparse.Namespace, plan: Plan, workspace: BenchWorkspace, rule_id: str) -> None:
    """Until ingest answers and --settle seconds have passed since the rule was made (the
    functions cache routing up to 5 s: earlier events might not be routed)."""
    settle_until = time.monotonic() + args.settle
    print(f"Rule {rule_id} created; waiting {args.settle:g}s for the routing cache ...", flush=True)
    wait_for_ingest(plan.target_url, _headers(workspace))  # its first request loads the clients
    time.sleep(max(0.0, settle_until - time.monotonic()))


def send(
    args: argparse.Namespace,
    plan: Plan,
    stack: LocalStack,
    workspace: BenchWorkspace,
    senders: Senders,
    measured: Measured,
) -> tuple[Schedule, float]:
    """The warm-up, then the measured sending with CPU metered; the schedule and its start."""
    meter = CpuMeter(cpu_groups(stack))
    print(
        f"Sending {args.rate:g} events/s to {plan.target_url}: warm-up {args.warmup:g}s, "
        f"measure {args.duration:g}s ...",
        flush=True,
    )
    send_began = time.monotonic() + 0.2
    schedule = Schedule(send_began, args.rate, args.warmup, args.duration, args.batch_size)
    if args.sdk:
        sdk_host = plan.target_url.removesuffix("/v1/batch")
        senders.start_sdk(sdk_host, workspace.write_key, schedule)
    else:
        senders.start_raw(plan.target_url, _headers(workspace), schedule, args.senders)
    time.sleep(max(0.0, send_began + args.warmup - time.monotonic()))
    meter.start()
    senders.join()
    measured.cpu = meter.stop()
    measured.cpu_seconds = meter.seconds
    measured.cpu.pop("load_generator", None)  # our children are the functions: counted above
    return schedule, send_began


def drain(
    args: argparse.Namespace, receiver: WebhookReceiver, schedule: Schedule, measured: Measured
) -> None:
    """Until every accepted event was received, or --drain seconds after sending stopped."""
    sending_done = time.monotonic()
    expected = {e.message_id for e in schedule.events if e.accepted}
    print(f"Sent; waiting up to {args.drain:g}s for the last deliveries ...", flush=True)
    while time.monotonic() - sending_done < args.drain:
        first, _ = first_receipts(receiver.delivered())
        if expected <= first.keys():
            break
        time.sleep(0.2)
    measured.timings["drain_s"] = time.monotonic() - sending_done
    time.sleep(0.5)  # a duplicate, if any, usually follows its original closely


def collect(
    args: argparse.Namespace,
    receiver: WebhookReceiver,
    records: Records,
    schedule: Schedule,
    to_wall: float,
    send_began: float,
) -> dict[str, Any]:
    """The receipts, then each accepted event's records, analysed; every measured event's
    timings go to --events-out when asked."""
    # Receipts first: the backlog keeps flowing meanwhile, and an event received after
    # its records were read would lack them.
    received = receiver.delivered()
    accepted_ids = [e.message_id for e in schedule.events if e.accepted]
    logs, deliveries = read_records(
        records.services, records.workspace_id, records.rule_id, accepted_ids
    )
    results = analyse(schedule, received, logs, deliveries, to_wall, send_began)
    rows = results.pop("_events")
    if args.events_out:
        args.events_out.write_text(json.dumps(rows, indent=1) + "\n")
    return results
