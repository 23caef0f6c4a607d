"""bench/cost/inputs.json, the measured inputs of the cost model, read into typed values.

The file's shape is shared with the benchmark that measures it (`make bench`): per traffic mix,
quantities per event. Only the shape is relied on, never how the figures were produced.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INPUTS_PATH = Path(__file__).resolve().parent / "inputs.json"
FUNCTIONS = ("ingest", "process", "deliver")  # the functions on the path of every event
# batched and single keep the deduplication window in Valkey; the *_firestore_claims mixes are
# the same traffic again with the window in Firestore documents (`dedup_store.kind`).
MIXES = ("batched", "single", "batched_firestore_claims", "single_firestore_claims")
DEDUP_STORES = ("valkey", "firestore")


@dataclass(frozen=True)
class PerFunction:
    ingest: float
    process: float
    deliver: float

    def get(self, function: str) -> float:
        value: float = getattr(self, function)
        return value


@dataclass(frozen=True)
class Mix:
    """One traffic mix, every figure per event (requests and CPU per event, not per request)."""

    events_per_request: float
    dedup_store: str  # where the run kept the deduplication window: "valkey" or "firestore"
    cpu_ms: PerFunction
    requests: PerFunction
    firestore_reads: float
    firestore_writes: float
    firestore_deletes: float  # counted at the adapter: TTL expiry is added by the model
    pubsub_messages: float
    pubsub_bytes: float  # published
    bigquery_rows: float
    bigquery_bytes: float
    deliveries: float
    # What the mix leaves in the Valkey window for its 48 hours, counted at the adapters (none
    # with Firestore claims): claims, outcomes kept on claims, deliver's marks; and their bytes
    # (at what `bench.valkey_memory` measured of each).
    valkey_claims: float
    valkey_outcomes: float
    valkey_marks: float
    valkey_bytes: float


@dataclass(frozen=True)
class Inputs:
    measured_at: str
    source: str
    machine: str
    mixes: dict[str, Mix]
    # Bytes of valkey-server memory per claim, outcome and mark (`bench.valkey_memory`).
    valkey_item_bytes: dict[str, float]


def _per_function(raw: dict[str, Any]) -> PerFunction:
    return PerFunction(*(float(raw[name]) for name in FUNCTIONS))


def mix_from_json(raw: dict[str, Any]) -> Mix:
    dedup_store = str(raw["dedup_store"])
    if dedup_store not in DEDUP_STORES:
        raise ValueError(f"dedup_store {dedup_store!r} is none of {', '.join(DEDUP_STORES)}")
    return Mix(
        events_per_request=float(raw["events_per_request"]),
        dedup_store=dedup_store,
        cpu_ms=_per_function(raw["cpu_ms"]),
        requests=_per_function(raw["requests"]),
        firestore_reads=float(raw["firestore"]["reads"]),
        firestore_writes=float(raw["firestore"]["writes"]),
        firestore_deletes=float(raw["firestore"]["deletes"]),
        pubsub_messages=float(raw["pubsub"]["messages"]),
        pubsub_bytes=float(raw["pubsub"]["bytes"]),
        bigquery_rows=float(raw["bigquery"]["rows"]),
        bigquery_bytes=float(raw["bigquery"]["bytes"]),
        deliveries=float(raw["deliveries"]),
        valkey_claims=float(raw["valkey"]["claims"]),
        valkey_outcomes=float(raw["valkey"]["outcomes"]),
        valkey_marks=float(raw["valkey"]["marks"]),
        valkey_bytes=float(raw["valkey"]["bytes"]),
    )


def inputs_from_json(raw: dict[str, Any]) -> Inputs:
    """The inputs; a KeyError names the first missing field (the shape is the contract)."""
    return Inputs(
        measured_at=str(raw["measured_at"]),
        source=str(raw["source"]),
        machine=str(raw["machine"]),
        mixes={name: mix_from_json(raw["mixes"][name]) for name in MIXES},
        valkey_item_bytes={k: float(v) for k, v in raw["valkey_item_bytes"].items()},
    )


def load_inputs(path: Path = INPUTS_PATH) -> Inputs:
    return inputs_from_json(json.loads(path.read_text()))
