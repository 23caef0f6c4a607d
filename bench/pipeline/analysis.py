"""Collecting and analysing: which events the webhook received and when, their records in
Firestore (event log and delivery), and from these the latencies, losses, duplicates, stages,
latency over time and the target; also the error lines of the functions' logs.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.measuring import percentiles, rounded
from bench.pipeline.sending import Schedule, Sent
from tests.webhook_receiver import Received

if TYPE_CHECKING:
    from shared.bootstrap import Services

# Target from the issue: an event reaches its webhook within 1 s (p99) at 100 events/s.
P99_TARGET_MS = 1000.0
# Batch reads of the event log, this many entries at a time.
READ_CHUNK = 300
# Width of the windows of the latency-over-time series.
WINDOW_S = 5.0

STAGES = {
    "ingest": "receivedAt (ingest's clock) -> ingest's 200 at the client: publish to the "
    "source topic and answer",
    "source_push": "ingest's 200 -> process claims the event (event log claimed_at): Pub/Sub "
    "push of the source topic to `process`",
    "process": "claimed_at -> routed_at: Firestore claim, BigQuery insert, routing, publish to "
    "the deliveries topic",
    "delivery": "routed_at -> webhook receipt: Pub/Sub push of the deliveries topic to "
    "`deliver`, its Firestore read and the HTTP send",
    "record": "webhook receipt -> delivery record's delivered_at (after the send returned)",
}


# --- collecting ------------------------------------------------------------------------------


def first_receipts(received: Iterable[Received]) -> tuple[dict[str, Received], dict[str, int]]:
    """messageId -> first receipt, and messageId -> how many times it was received."""
    first: dict[str, Received] = {}
    counts: dict[str, int] = {}
    for item in received:
        key = next(
            (v for k, v in item.headers.items() if k.lower() == "idempotency-key"),
            next((v for k, v in item.headers.items() if k.lower() == "x-streams-message-id"), ""),
        )
        counts[key] = counts.get(key, 0) + 1
        if key not in first or item.at < first[key].at:
            first[key] = item
    return first, counts


def read_records(
    services: Services, workspace_id: str, rule_id: str, message_ids: list[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """messageId -> event log entry, messageId -> delivery record (from Firestore)."""
    from shared.domain.pipeline import delivery_batches_collection
    from shared.ports import Filter

    store = services.store
    logs: dict[str, Any] = {}
    deliveries: dict[str, Any] = {}
    for start in range(0, len(message_ids), READ_CHUNK):
        chunk = message_ids[start : start + READ_CHUNK]
        logs.update(services.event_log.entries(workspace_id, chunk))
    # Deliver keeps one record per deliveries-topic message: the rule's, in one query.
    wanted = set(message_ids)
    by_rule = [Filter("rule_id", "==", rule_id)]
    for record in store.query(delivery_batches_collection(workspace_id), by_rule):
        for entry in (record.get("deliveries") or {}).values():
            if entry.get("message_id") in wanted:
                deliveries[entry["message_id"]] = entry
    return logs, deliveries


def log_errors(state_dir: Path) -> dict[str, Any]:
    """Per function log: how many tracebacks and error lines, and the last error line."""
    found: dict[str, Any] = {}
    for path in sorted((state_dir / "logs").glob("function-*.log")):
        lines = path.read_text(errors="replace").splitlines()
        errors = [line for line in lines if "Error" in line or "ERROR" in line]
        tracebacks = sum(1 for line in lines if line.startswith("Traceback"))
        if errors or tracebacks:
            found[path.stem] = {
                "tracebacks": tracebacks,
                "error_lines": len(errors),
                "last_error": errors[-1][:300] if errors else None,
            }
    return found


# --- analysing -------------------------------------------------------------------------------


def _epoch(value: Any) -> float | None:
    """Unix seconds of an ISO-8601 string (Streams writes milliseconds and a `Z`), else None."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def stages(
    events: list[Sent],
    first: Mapping[str, Received],
    logs: Mapping[str, Any],
    deliveries: Mapping[str, Any],
    to_wall: float,
) -> dict[str, dict[str, float]]:
    """Per event, in ms: the stages of STAGES (None where a timestamp is missing)."""
    per_event: dict[str, dict[str, float]] = {}
    for event in events:
        receipt = first.get(event.message_id)
        if receipt is None:
            continue
        answered = event.answered + to_wall
        received_at = to_wall + receipt.at
        log = logs.get(event.message_id) or {}
        record = deliveries.get(event.message_id) or {}
        try:
            ingest_at = _epoch(json.loads(receipt.body).get("receivedAt"))
        except ValueError:
            ingest_at = None
        claimed = _epoch(log.get("claimed_at"))
        routed = _epoch(log.get("routed_at"))
        delivered = _epoch(record.get("delivered_at"))
        points = [ingest_at, answered, claimed, routed, received_at, delivered]
        values: dict[str, float] = {}
        for name, (a, b) in zip(STAGES, itertools.pairwise(points), strict=True):
            if a is not None and b is not None:
                values[name] = (b - a) * 1000
        per_event[event.message_id] = values
    return per_event


class Outcome:
    """The measured phase's events sorted by what happened to them, with their receipts."""

    def __init__(self, schedule: Schedule, received: Iterable[Received]):
        self.first, self.counts = first_receipts(received)
        self.known = {e.message_id for e in schedule.events}
        self.measured = [e for e in schedule.events if e.phase == "measure"]
        self.sent = [e for e in self.measured if e.sent]
        self.accepted = [e for e in self.measured if e.accepted]
        self.failed = [e for e in self.sent if not e.accepted]
        # ms from ingest's 200 at the client to the webhook's first receipt, per received event
        self.latencies = {
            e.message_id: (self.first[e.message_id].at - e.answered) * 1000
            for e in self.accepted
            if e.message_id in self.first
        }
        self.lost = [e.message_id for e in self.accepted if e.message_id not in self.first]
        self.duplicated = {m: n for m, n in self.counts.items() if m in self.known and n > 1}


def analyse(
    schedule: Schedule,
    received: list[Received],
    logs: Mapping[str, Any],
    deliveries: Mapping[str, Any],
    to_wall: float,
    send_began: float,
) -> dict[str, Any]:
    """The report's figures of the run; `_events` holds each measured event's own timings."""
    outcome = Outcome(schedule, received)
    first = outcome.first
    stage_values = stages(outcome.accepted, first, logs, deliveries, to_wall)
    latency = rounded(percentiles(list(outcome.latencies.values())))
    warmup = [e for e in schedule.events if e.phase == "warmup"]
    return {
        "_events": event_rows(outcome, stage_values, send_began),
        "sending": sending_summary(outcome, send_began),
        "delivery": delivery_summary(outcome, deliveries, latency),
        "stages_ms": {
            name: rounded(percentiles([v[name] for v in stage_values.values() if name in v]))
            for name in STAGES
        },
        "stage_definitions": STAGES,
        "slowest_1pct_mean_stage_ms": slowest_stages(outcome.latencies, stage_values),
        "latency_over_time": latency_over_time(outcome),
        "warmup": {
            "sent": sum(1 for e in warmup if e.sent),
            "accepted": sum(1 for e in warmup if e.accepted),
            "received": sum(1 for e in warmup if e.message_id in first),
        },
        "target": {
            "p99_ms_below": P99_TARGET_MS,
            "measured_p99_ms": latency["p99"],
            "met": bool(outcome.latencies) and not outcome.lost and latency["p99"] < P99_TARGET_MS,
        },
    }


def sending_summary(outcome: Outcome, send_began: float) -> dict[str, Any]:
    sent, failed = outcome.sent, outcome.failed
    span = max(e.sent for e in sent) - min(e.sent for e in sent) if len(sent) > 1 else 0.0
    return {
        "scheduled": len(outcome.measured),
        "sent": len(sent),
        "accepted": len(outcome.accepted),
        "failed": len(failed),
        "failure_sample": failed[0].error if failed else None,
        "achieved_rate": round((len(sent) - 1) / span, 1) if span else 0.0,
        "send_lag_ms": rounded(percentiles([(e.sent - e.due) * 1000 for e in sent])),
        "ingest_response_ms": rounded(
            percentiles([(e.answered - e.sent) * 1000 for e in outcome.accepted])
        ),
        "measured_from_s": round(min((e.sent for e in sent), default=send_began) - send_began, 3),
    }


def delivery_summary(
    outcome: Outcome, deliveries: Mapping[str, Any], latency: dict[str, float]
) -> dict[str, Any]:
    first, counts, latencies = outcome.first, outcome.counts, outcome.latencies
    attempts = [int(d.get("attempts", 0)) for m, d in deliveries.items() if d and m in latencies]
    statuses: dict[str, int] = {}
    for doc in deliveries.values():
        status = doc.get("status") if doc else "missing"
        statuses[status] = statuses.get(status, 0) + 1
    send_to_receipt = [
        (first[e.message_id].at - e.sent) * 1000 for e in outcome.accepted if e.message_id in first
    ]
    return {
        "received": len(latencies),
        "lost": len(outcome.lost),
        "lost_sample": outcome.lost[:5],
        "duplicated": len(outcome.duplicated),
        "duplicate_receipts": sum(n - 1 for n in outcome.duplicated.values()),
        "unknown_receipts": sum(n for m, n in counts.items() if m not in outcome.known),
        "latency_ms": latency,
        "send_to_receipt_ms": rounded(percentiles(send_to_receipt)),
        "delivery_attempts": {str(n): attempts.count(n) for n in sorted(set(attempts))},
        "delivery_statuses": statuses,
    }


def slowest_stages(
    latencies: Mapping[str, float], stage_values: Mapping[str, dict[str, float]]
) -> dict[str, float]:
    """Mean ms per stage of the slowest 1% of the received events (at least one)."""
    ordered = sorted(latencies, key=latencies.__getitem__)
    slowest = ordered[-max(1, len(ordered) // 100) :] if ordered else []
    return {
        name: round(sum(vals) / len(vals), 1)
        for name in STAGES
        if (vals := [stage_values[m][name] for m in slowest if name in stage_values.get(m, {})])
    }


def latency_over_time(outcome: Outcome) -> list[dict[str, Any]]:
    """p50, p99 and max latency per WINDOW_S of send time, from the first accepted send."""
    if not outcome.accepted:
        return []
    base = min(e.sent for e in outcome.accepted)
    buckets: dict[int, list[float]] = {}
    for e in outcome.accepted:
        if e.message_id in outcome.latencies:
            buckets.setdefault(int((e.sent - base) // WINDOW_S), []).append(
                outcome.latencies[e.message_id]
            )
    windows = []
    for index in sorted(buckets):
        p = percentiles(buckets[index])
        windows.append(
            {
                "from_s": index * WINDOW_S,
                "events": len(buckets[index]),
                "p50_ms": round(p["p50"], 1),
                "p99_ms": round(p["p99"], 1),
                "max_ms": round(p["max"], 1),
            }
        )
    return windows


def event_rows(
    outcome: Outcome, stage_values: Mapping[str, dict[str, float]], send_began: float
) -> list[dict[str, Any]]:
    """Every accepted measured event's timings (for --events-out)."""
    latencies = outcome.latencies
    return [
        {
            "message_id": e.message_id,
            "sent_s": round(e.sent - send_began, 3),
            "latency_ms": round(latencies[e.message_id], 1) if e.message_id in latencies else None,
            "receipts": outcome.counts.get(e.message_id, 0),
            **rounded(stage_values.get(e.message_id, {})),
        }
        for e in outcome.accepted
    ]
