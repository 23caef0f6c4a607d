"""Deliver's marks in Valkey (`DeliveryMarks`): the deliveries-topic messages whose deliveries
were all accepted at their first attempt, held for the window instead of a Firestore record
each, and each destination's most recent ones for the console.

A mark is one string per message, named like a claim by a hash (workspace and batch id): about
90 bytes of the instance's memory for the window, where a Firestore record cost a read, a write
and a TTL delete. A destination's recent list holds the last `RECENT_BATCHES` settled messages'
deliveries, refreshed for the window on every push.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import valkey

from shared.adapters import operation_counts
from shared.adapters.valkey_claims import call
from shared.domain.pipeline import DEDUP_HOURS
from shared.ports import RECORDED, BatchMark, Document, SettledBatch

# As many messages as the console's longest list has deliveries: each holds one at least.
RECENT_BATCHES = 200
# KEYS: the mark, the destination's recent list; ARGV: the mark, seconds to keep both, the
# recent entry, how many entries to keep.
SETTLE = """
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('LPUSH', KEYS[2], ARGV[3])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[4]) - 1)
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 0
"""
RECORDED_VALUE = b"r"


class ValkeyMarks:
    """`DeliveryMarks` as Valkey strings and lists."""

    def __init__(self, client: valkey.Valkey):
        self._client = client
        self._settle = client.register_script(SETTLE)
        self._seconds = DEDUP_HOURS * 3600

    def get(self, workspace_id: str, batch_ids: Sequence[str]) -> dict[str, BatchMark]:
        unique = list(dict.fromkeys(batch_ids))
        if not unique:
            return {}
        values = call(lambda: self._client.mget([_mark(workspace_id, b) for b in unique]))
        return {batch: _decoded(value) for batch, value in zip(unique, values, strict=True)}

    def mark_recorded(self, workspace_id: str, batch_id: str) -> None:
        call(
            lambda: self._client.set(
                _mark(workspace_id, batch_id), RECORDED_VALUE, ex=self._seconds
            )
        )
        operation_counts.valkey_kept(marks=1)

    def settle(
        self,
        workspace_id: str,
        batch_id: str,
        destination_id: str,
        settled: SettledBatch,
        recent: Document,
    ) -> None:
        value = _json([settled.at, settled.http_status, settled.detail, settled.destination_type])
        call(
            lambda: self._settle(
                keys=[_mark(workspace_id, batch_id), _recent(workspace_id, destination_id)],
                args=[value, self._seconds, _json(recent), RECENT_BATCHES],
            )
        )
        operation_counts.valkey_kept(marks=1)

    def recent(self, workspace_id: str, destination_id: str, limit: int) -> list[Document]:
        key = _recent(workspace_id, destination_id)
        values = call(lambda: self._client.lrange(key, 0, limit - 1))  # type: ignore[arg-type]
        return [json.loads(value) for value in values]


def _decoded(value: bytes | None) -> BatchMark:
    if value is None:
        return None
    if value == RECORDED_VALUE:
        return RECORDED
    at, http_status, detail, destination_type = json.loads(value)
    return SettledBatch(at, http_status, detail, destination_type)


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _mark(workspace_id: str, batch_id: str) -> bytes:
    return b"d:" + hashlib.blake2b(f"{workspace_id}:{batch_id}".encode(), digest_size=16).digest()


def _recent(workspace_id: str, destination_id: str) -> bytes:
    digest = hashlib.blake2b(f"{workspace_id}:{destination_id}".encode(), digest_size=16)
    return b"r:" + digest.digest()
