"""What a client was promised, and whether the pipeline kept the promise.

The client sends through the gateway as an SDK would: it resends a request answered 503 after
the Retry-After it was given (same messageIds), and counts an event acknowledged once it got a
200. The accounting then asks the destination and the API what became of each acknowledged event.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from emulators.stack import REPO_ROOT
from tests.e2e.helpers import Tenant
from tests.reliability.faults.receiver import Destination

RESULTS_DIR = REPO_ROOT / "bench" / "results"
# Trace stages that end an event's road without a delivery, each with its reason.
NOT_DELIVERED_STAGES = ("blocked", "suppressed", "dropped", "dead_lettered", "skipped", "failed")
REQUEST_TIMEOUT = 60.0


def track(message_id: str, index: int) -> dict[str, Any]:
    return {
        "event": "Order Completed",
        "userId": f"user-{index % 50}",
        "messageId": message_id,
        "properties": {"order": index, "total": round(index * 1.5, 2)},
    }


@dataclass
class Ledger:
    """Every answer the client got, and the messageIds acknowledged with a 200."""

    sent: set[str] = field(default_factory=set)
    acked: set[str] = field(default_factory=set)
    statuses: Counter[int] = field(default_factory=Counter)
    unavailable_without_retry_after: int = 0
    unavailable_not_json: int = 0
    transport_errors: int = 0
    server_errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def figures(self) -> dict[str, Any]:
        with self.lock:
            return {
                "events_sent": len(self.sent),
                "events_acknowledged": len(self.acked),
                "answers": {str(k): v for k, v in sorted(self.statuses.items())},
                "unavailable_without_retry_after": self.unavailable_without_retry_after,
                "transport_errors": self.transport_errors,
            }


@dataclass
class Client:
    """Sends events to ingest and keeps the ledger; 503s are retried as Retry-After says."""

    gateway: str
    ledger: Ledger
    # Give up on one request after this long (an event never acknowledged is not promised).
    give_up_seconds: float = 300.0
    # Honour Retry-After, but never sleep longer than this (the tests have a clock too).
    max_wait_seconds: float = 5.0

    def single(self, write_key: str, message_id: str, index: int) -> int:
        return self.send(write_key, "track", track(message_id, index), [message_id])

    def batch(self, write_key: str, message_ids: list[str], first_index: int) -> int:
        items = [
            {"type": "track", **track(message_id, first_index + n)}
            for n, message_id in enumerate(message_ids)
        ]
        return self.send(write_key, "batch", {"batch": items}, message_ids)

    def send(self, write_key: str, call: str, body: dict[str, Any], message_ids: list[str]) -> int:
        """POST until a 200, a 4xx or 5xx other than 503, or `give_up_seconds`."""
        with self.ledger.lock:
            self.ledger.sent.update(message_ids)
        deadline = time.monotonic() + self.give_up_seconds
        while True:
            try:
                response = requests.post(
                    f"{self.gateway}/v1/{call}",
                    json=body,
                    headers={"X-Write-Key": write_key},
                    timeout=REQUEST_TIMEOUT,
                )
            except requests.RequestException:
                # Unknown outcome: the events may have been published. Resending the same
                # messageIds is safe, since process deduplicates them.
                with self.ledger.lock:
                    self.ledger.transport_errors += 1
                wait = 1.0
            else:
                status = response.status_code
                self._note(response)
                if status == 200:
                    accepted = response.json().get("accepted")
                    assert accepted == len(message_ids), response.text
                    with self.ledger.lock:
                        self.ledger.acked.update(message_ids)
                    return status
                if status != 503:
                    return status
                wait = float(response.headers.get("Retry-After") or 1)
            if time.monotonic() + wait > deadline:
                return 0
            time.sleep(min(wait, self.max_wait_seconds))

    def _note(self, response: requests.Response) -> None:
        with self.ledger.lock:
            self.ledger.statuses[response.status_code] += 1
            if response.status_code == 503:
                if not response.headers.get("Retry-After"):
                    self.ledger.unavailable_without_retry_after += 1
                if not response.headers.get("Content-Type", "").startswith("application/json"):
                    self.ledger.unavailable_not_json += 1
            elif response.status_code >= 500:
                self.ledger.server_errors.append(f"{response.status_code} {response.text[:300]}")


@dataclass
class Accounting:
    """What became of every acknowledged event."""

    acknowledged: int
    delivered_once: int
    duplicated: dict[str, int]
    recorded: dict[str, str]  # messageId -> "stage: reason", for events not delivered
    missing: list[str]
    unexpected: list[str]  # delivered, but never sent by the client
    seconds_to_settle: float

    def figures(self) -> dict[str, Any]:
        return {
            "acknowledged": self.acknowledged,
            "delivered_exactly_once": self.delivered_once,
            "delivered_more_than_once": len(self.duplicated),
            "extra_copies": sum(n - 1 for n in self.duplicated.values()),
            "recorded_not_delivered": len(self.recorded),
            "recorded_reasons": dict(Counter(r.split(":")[0] for r in self.recorded.values())),
            "lost": len(self.missing),
            "lost_sample": self.missing[:10],
            "unexpected": len(self.unexpected),
            "seconds_to_settle": round(self.seconds_to_settle, 1),
        }


def account(
    tenant: Tenant,
    ledger: Ledger,
    destination: Destination,
    timeout: float = 300.0,
    quiet_seconds: float = 5.0,
) -> Accounting:
    """Wait until every acknowledged event is delivered or recorded as not delivered (or until
    `timeout`), then count. `quiet_seconds` after the last arrival lets late copies show."""
    began = time.monotonic()
    deadline = began + timeout
    recorded: dict[str, str] = {}
    last_progress, last_count = began, -1
    while True:
        delivered = destination.delivered()
        pending = ledger.acked - set(delivered) - set(recorded)
        if len(delivered) != last_count:
            last_progress, last_count = time.monotonic(), len(delivered)
        stalled = time.monotonic() - last_progress > 15
        if pending and (stalled or time.monotonic() > deadline):
            # Deliveries have stopped coming: ask the API why the rest did not arrive.
            recorded.update(_not_delivered(tenant, pending))
            pending -= set(recorded)
            last_progress = time.monotonic()
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    settled = time.monotonic() - began
    while time.monotonic() - _last_arrival(destination) < quiet_seconds:
        time.sleep(0.5)
    delivered = destination.delivered()
    return Accounting(
        acknowledged=len(ledger.acked),
        delivered_once=sum(1 for m in ledger.acked if delivered[m] == 1),
        duplicated={m: n for m, n in delivered.items() if n > 1},
        recorded={m: r for m, r in recorded.items() if m not in delivered},
        missing=sorted(ledger.acked - set(delivered) - set(recorded)),
        unexpected=sorted(set(delivered) - ledger.sent),
        seconds_to_settle=settled,
    )


def _last_arrival(destination: Destination) -> float:
    return max((r.arrived for r in destination.received()), default=0.0)


def _not_delivered(tenant: Tenant, message_ids: set[str]) -> dict[str, str]:
    """messageId -> "stage: reason" for those whose trace ends without a delivery."""
    found: dict[str, str] = {}
    for message_id in sorted(message_ids):
        response = tenant.api("GET", f"/events/{message_id}/trace")
        if response.status_code != 200:
            continue  # not processed yet: no log entry
        trace = response.json()
        stages = trace["stages"]
        if any(stage["stage"] == "delivered" for stage in stages):
            continue  # delivered, its receipt just not seen yet
        for stage in reversed(stages):
            if stage["stage"] in NOT_DELIVERED_STAGES and stage.get("reason"):
                found[message_id] = f"{stage['stage']}: {stage['reason']}"
                break
        else:
            routed = [stage for stage in stages if stage["stage"] == "routed"]
            if routed and routed[0].get("reason") == "no matching enabled rule":
                found[message_id] = "routed: no matching enabled rule"
    return found


def dead_letters(tenant: Tenant, destination_id: str) -> list[dict[str, Any]]:
    response = tenant.api(
        "GET", "/dead-letters", params={"destination_id": destination_id, "limit": 1000}
    )
    assert response.status_code == 200, response.text
    return list(response.json())


def replay_dead_letters(tenant: Tenant, destination_id: str) -> dict[str, Any]:
    response = tenant.api("POST", "/dead-letters/replay", json={"destination_id": destination_id})
    assert response.status_code == 200, response.text
    return dict(response.json())


def record(name: str, figures: dict[str, Any], results: Path = RESULTS_DIR) -> None:
    """Merge one run's figures into bench/results/faults-latest.json (git-ignored)."""
    results.mkdir(parents=True, exist_ok=True)
    path = results / "faults-latest.json"
    try:
        everything = json.loads(path.read_text())
    except (OSError, ValueError):
        everything = {}
    everything[name] = {"at": datetime.now(UTC).isoformat(timespec="seconds"), **figures}
    path.write_text(json.dumps(everything, indent=2, sort_keys=True) + "\n")
