"""`python -m bench.valkey_memory`: what each thing the deduplication window holds takes of a
valkey-server's memory, for the cost model's sizing of Memorystore (docs/COST.md, DEPLOY.md).

Starts a valkey-server of its own (the one `make dev` runs), then, with Streams' own adapters,
makes `--count` of each, reading `INFO memory`'s `used_memory` before and after:

- a claim (shared/adapters/valkey_claims.py), owned by a 16-digit Pub/Sub message id;
- an outcome kept on a claim (`Claims.settle`): the compact entry (shared/services/
  event_log.py `compact_entry`) of a plain event with UUID ids and one delivery, as process
  writes it for a single-event message;
- a deliver mark (shared/adapters/valkey_marks.py) of a message accepted at once, spread over
  `--destinations` destinations (their recent lists are bounded, so they weigh little).

Bytes per item = the growth / `--count`. bench.costrun stores the result in
bench/cost/inputs.json beside the items per event its runs counted at the adapters; writes
bench/results/valkey-memory-<UTC>.json and valkey-memory-latest.json too.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.measuring import machine_info
from bench.reporting import report_head, write_report
from bench.running import free_port
from emulators.stack import private_valkey
from shared.adapters.valkey_claims import ValkeyClaims, new_client
from shared.adapters.valkey_marks import ValkeyMarks
from shared.domain import ids
from shared.domain.pipeline import batch_id, delivery_id, event_key
from shared.ports import SettledBatch
from shared.services.event_log import compact_entry

WORKSPACE_ID = str(uuid.uuid4())
CHUNK = 1_000  # keys per adapter call


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.valkey_memory", description=__doc__)
    parser.add_argument("--count", type=int, default=100_000, help="items of each kind")
    parser.add_argument("--destinations", type=int, default=10)
    args = parser.parse_args(argv)
    started_at = datetime.now(UTC)
    measured = measure(args.count, args.destinations)
    write_report(
        "valkey-memory",
        {
            **report_head("valkey-memory", started_at, machine_info()),
            "count": args.count,
            "bytes": measured,
        },
    )
    print(", ".join(f"{kind} {size:g} B" for kind, size in measured.items()))
    return 0


def measure(count: int, destinations: int = 10) -> dict[str, float]:
    """Bytes of valkey-server memory per claim, per outcome on a claim and per deliver mark."""
    with tempfile.TemporaryDirectory() as state, private_valkey(free_port(), Path(state)) as url:
        client = new_client(url)
        client.flushall()
        claims, marks = ValkeyClaims(client), ValkeyMarks(client)
        owners = [f"{1_700_000_000_000_000 + n:d}" for n in range(count)]
        keys = [event_key(str(uuid.uuid4())) for _ in range(count)]

        def make_claims() -> None:
            for owner, key in zip(owners, keys, strict=True):
                claims.claim(WORKSPACE_ID, [key], owner)

        def keep_outcomes() -> None:
            for owner, key in zip(owners, keys, strict=True):
                claims.settle(WORKSPACE_ID, owner, {key: plain_outcome(owner)})

        destination_ids = [str(uuid.uuid4()) for _ in range(destinations)]
        settled = SettledBatch(ids.isoformat(ids.utcnow()), 200, "HTTP 200", "webhook")

        def set_marks() -> None:
            for n, owner in enumerate(owners):
                destination_id = destination_ids[n % destinations]
                recent = {
                    "batch_id": owner,
                    "deliveries": [{"delivery_id": key} for key in keys[n : n + 1]],
                }
                marks.settle(
                    WORKSPACE_ID, batch_id(owner, "r", False, 0), destination_id, settled, recent
                )

        measured = {
            "claim": growth(client, make_claims, count),
            "outcome": growth(client, keep_outcomes, count),
            "mark": growth(client, set_marks, count),
        }
        client.close()
    return measured


def plain_outcome(owner: str) -> str:
    """A single event's plain entry as its claim keeps it."""
    message_id, rule_id = str(uuid.uuid4()), str(uuid.uuid4())
    at = ids.isoformat(ids.utcnow())
    entry = {
        "message_id": message_id,
        "event_type": "track",
        "received_at": at,
        "state": "done",
        "blocked": False,
        "violations": [],
        "stored_at": at,
        "routed_at": at,
        "deliveries": [
            {
                "delivery_id": delivery_id(message_id, rule_id),
                "rule_id": rule_id,
                "destination_id": str(uuid.uuid4()),
                "batch_id": batch_id(owner, rule_id, False, 0),
            }
        ],
        "skipped": [],
    }
    outcome = compact_entry(entry, str(uuid.uuid4()), owner)
    assert outcome is not None
    return outcome


def growth(client: Any, make: Callable[[], None], count: int) -> float:
    before = int(client.info("memory")["used_memory"])
    make()
    return round((int(client.info("memory")["used_memory"]) - before) / count, 1)


if __name__ == "__main__":
    sys.exit(main())
