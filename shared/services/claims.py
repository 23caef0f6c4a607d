"""The deduplication window in the configuration store (Firestore): one document per claimed
event, expired by TTL.

For deployments without Memorystore (terraform `dedup_store.kind = "firestore"`, the default):
no fixed cost, one write and one TTL delete per event (docs/COST.md). Memorystore's is
shared/adapters/valkey_claims.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Literal

from shared.domain import ids
from shared.domain.pipeline import DEDUP_HOURS
from shared.ports import (
    WRITES_PER_COMMIT,
    AlreadyExists,
    Claim,
    ConfigStore,
    Document,
    Increment,
    Write,
    commit_in_chunks,
)


def claim_path(workspace_id: str, key: str) -> str:
    return f"workspaces/{workspace_id}/event_claims/{key}"


class StoreClaims:
    """`Claims` as documents `workspaces/{ws}/event_claims/{key}` with `expires_at` for the TTL
    policy (terraform/modules/datastores); expiry is also checked here, since TTL deletes lag
    (and the emulator has none). Outcomes stay in the event log's records: one kept on a claim
    would be a write per event, where a record is one per message."""

    outcome_bytes = 0

    def __init__(self, store: ConfigStore, clock: Callable[[], datetime] = ids.utcnow):
        self._store = store
        self._clock = clock

    def claim(self, workspace_id: str, keys: Sequence[str], owner: str) -> dict[str, Claim]:
        """Created blind, without reading first: fresh events, the common case, cost one write.
        Only a chunk where some claim exists is read, to learn which."""
        now = self._clock()
        claims: dict[str, Claim] = {}
        unique = list(dict.fromkeys(keys))
        # Not `commit_in_chunks`: a chunk refused because some claim exists is claimed key by
        # key, and the chunks after it are still committed whole.
        for start in range(0, len(unique), WRITES_PER_COMMIT):
            chunk = unique[start : start + WRITES_PER_COMMIT]
            writes = [
                Write("create", claim_path(workspace_id, k), _claim(owner, now)) for k in chunk
            ]
            try:
                self._store.commit(writes)
                claims.update((k, Claim(owner, new=True)) for k in chunk)
            except AlreadyExists:
                claims.update(self._claim_contended(workspace_id, chunk, owner, now))
        return claims

    def _claim_contended(
        self, workspace_id: str, keys: list[str], owner: str, now: datetime
    ) -> dict[str, Claim]:
        paths = [claim_path(workspace_id, k) for k in keys]
        existing = self._store.get_many(paths)
        claims: dict[str, Claim] = {}
        for key, path in zip(keys, paths, strict=True):
            held = existing[path]
            if held is not None and not _expired(held, now):
                claims[key] = _held(held)
                continue
            op: Literal["create", "set"] = "set" if held else "create"
            try:
                self._store.commit([Write(op, path, _claim(owner, now))])
                claims[key] = Claim(owner, new=True)
            except AlreadyExists:
                # A concurrent copy claimed it between our read and our write.
                claims[key] = _held(self._store.get(path) or _claim("", now))
        return claims

    def get(self, workspace_id: str, keys: Sequence[str]) -> dict[str, Claim | None]:
        paths = {key: claim_path(workspace_id, key) for key in keys}
        found = self._store.get_many(list(paths.values()))
        now = self._clock()
        return {
            key: None if (held := found[path]) is None or _expired(held, now) else _held(held)
            for key, path in paths.items()
        }

    def count_duplicates(self, workspace_id: str, counts: Mapping[str, int], at: str) -> None:
        """Added by the store: copies turned away at once by several instances all count. The
        read skips a claim that has expired since (an update of a missing document fails the
        whole commit)."""
        if not counts:
            return
        held = self.get(workspace_id, list(counts))
        commit_in_chunks(
            self._store,
            [
                Write(
                    "update",
                    claim_path(workspace_id, key),
                    {"duplicates": Increment(n), "last_duplicate_at": at},
                )
                for key, n in counts.items()
                if held[key] is not None
            ],
        )

    def release(self, workspace_id: str, keys: Sequence[str]) -> None:
        commit_in_chunks(
            self._store, [Write("delete", claim_path(workspace_id, k)) for k in dict.fromkeys(keys)]
        )

    def settle(self, workspace_id: str, owner: str, outcomes: Mapping[str, str]) -> None:
        raise ValueError("Firestore claims keep no outcome (outcome_bytes is 0)")


def _claim(owner: str, now: datetime) -> Document:
    return {
        "owner": owner,
        "duplicates": 0,
        # A timestamp, not a string: Firestore TTL policies only expire on timestamp fields.
        "expires_at": now + timedelta(hours=DEDUP_HOURS),
    }


def _held(document: Document) -> Claim:
    return Claim(
        owner=str(document.get("owner", "")),
        duplicates=int(document.get("duplicates") or 0),
        last_duplicate_at=document.get("last_duplicate_at"),
    )


def _expired(document: Document, now: datetime) -> bool:
    expires_at = document.get("expires_at")
    return isinstance(expires_at, datetime) and expires_at <= now
