"""The contract step of `process`: judge fresh events by the workspace's active contracts, record
their violations and quarantine the blocked ones (batched writes), and return one verdict each."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.domain import ids
from shared.domain.contracts import (
    CompiledContract,
    ContractFinding,
    ContractSet,
    EventContract,
    UnrunnableContract,
    compile_contract,
    contracts_collection,
    violations_collection,
)
from shared.domain.event import CanonicalEvent
from shared.domain.pipeline import event_key, quarantine_collection
from shared.domain.routing import event_name
from shared.domain.sort_keys import sort_key
from shared.ports import ConfigStore, Document, Filter, Write, commit_in_chunks
from shared.services.cache import TtlCache
from shared.services.process import Verdict

log = logging.getLogger("streams.contracts")

# A block is confirmed against contracts at most this old, so that fixing a contract and then
# replaying its quarantine works at once, not after the cache interval.
RECHECK_SECONDS = 1.0
# Violation records and quarantined events are kept this long (Firestore TTL on `expires_at`).
RETENTION_DAYS = 30
# Violations copied into the event's log entry (and so its trace); all are in the records.
LOGGED_VIOLATIONS = 20
# Compiled contracts kept per instance (contract versions, across workspaces).
COMPILED_LIMIT = 10_000


@dataclass(frozen=True)
class LoadedContracts:
    contracts: ContractSet
    loaded_at: float


class ContractValidator:
    """`Validator` of the process step; compiled contracts cached per instance and version."""

    def __init__(
        self,
        store: ConfigStore,
        ttl_seconds: float,
        clock: Callable[[], datetime] = ids.utcnow,
        monotonic: Callable[[], float] = time.monotonic,
        recheck_seconds: float = RECHECK_SECONDS,
    ):
        self._store = store
        self._clock = clock
        self._monotonic = monotonic
        self._recheck_seconds = recheck_seconds
        self._loaded: TtlCache[LoadedContracts] = TtlCache(ttl_seconds, monotonic=monotonic)
        self._compiled: dict[tuple[str, int, str], CompiledContract | None] = {}

    def contracts(self, workspace_id: str, fresh: bool = False) -> ContractSet:
        """The workspace's active contracts, compiled; `fresh` skips the cache."""
        return self._load(workspace_id, fresh).contracts

    def check(
        self, workspace_id: str, events: list[CanonicalEvent], fresh: bool = False
    ) -> list[list[ContractFinding]]:
        """Per event, the findings of its matching contracts; nothing is recorded."""
        contracts = self.contracts(workspace_id, fresh)
        return [contracts.check(event) if contracts else [] for event in events]

    def validate(self, workspace_id: str, events: list[CanonicalEvent]) -> list[Verdict]:
        loaded = self._load(workspace_id)
        if not loaded.contracts:
            return [Verdict() for _ in events]
        findings = [loaded.contracts.check(event) for event in events]
        stale = self._monotonic() - loaded.loaded_at > self._recheck_seconds
        if stale and any(f.blocked for found in findings for f in found):
            findings = self.check(workspace_id, events, fresh=True)
        for event, found in zip(events, findings, strict=True):
            for finding in found:
                if finding.error is not None:
                    log.warning(
                        "contract %s could not judge event %s: %s",
                        finding.contract.id,
                        event.get("messageId"),
                        finding.error,
                    )
        self._record(workspace_id, events, findings)
        return [_verdict(found) for found in findings]

    def _load(self, workspace_id: str, fresh: bool = False) -> LoadedContracts:
        if fresh:
            self._loaded.invalidate(workspace_id)
        return self._loaded.get(workspace_id, lambda: self._read(workspace_id))

    def _read(self, workspace_id: str) -> LoadedContracts:
        documents = self._store.query(
            contracts_collection(workspace_id), [Filter("status", "==", "active")]
        )
        compiled = [c for c in map(self._compiled_contract, documents) if c is not None]
        return LoadedContracts(ContractSet(compiled), self._monotonic())

    def _compiled_contract(self, document: Document) -> CompiledContract | None:
        """Compile once per contract version. A contract whose schema cannot compile judges
        every event it matches as unjudged (the reason in its violations); a document that is
        not a contract at all judges nothing. Either is logged once per version."""
        key = (
            str(document.get("id")),
            int(document.get("version", 0)),
            str(document.get("updated_at")),
        )
        if key in self._compiled:
            return self._compiled[key]
        compiled: CompiledContract | None
        try:
            compiled = compile_contract(contract_from_document(document))
        except Exception:
            # Contracts are checked when written, so this is a stored document gone bad: never
            # let it stop the pipeline.
            log.exception("contract %s cannot be read; it is ignored", key[0])
            compiled = None
        if isinstance(compiled, UnrunnableContract):
            log.error("contract %s version %s: %s", key[0], key[1], compiled.reason)
        if len(self._compiled) >= COMPILED_LIMIT:
            self._compiled.clear()
        self._compiled[key] = compiled
        return compiled

    def _record(
        self,
        workspace_id: str,
        events: list[CanonicalEvent],
        findings: list[list[ContractFinding]],
    ) -> None:
        now = self._clock()
        at = ids.isoformat(now)
        expires_at = now + timedelta(days=RETENTION_DAYS)
        writes: list[Write] = []
        blocked: list[tuple[CanonicalEvent, list[ContractFinding]]] = []
        for event, found in zip(events, findings, strict=True):
            for finding in found:
                record = violation_record(workspace_id, event, finding, at)
                path = f"{violations_collection(workspace_id, finding.contract.id)}/{record['id']}"
                writes.append(Write("set", path, {**record, "expires_at": expires_at}))
            if any(f.blocked for f in found):
                blocked.append((event, found))
        if blocked:
            paths = [quarantine_path(workspace_id, e["messageId"]) for e, _ in blocked]
            existing = self._store.get_many(paths)
            for path, (event, found) in zip(paths, blocked, strict=True):
                document = quarantine_record(workspace_id, event, found, existing[path], at)
                writes.append(Write("set", path, {**document, "expires_at": expires_at}))
        commit_in_chunks(self._store, writes)


def quarantine_path(workspace_id: str, message_id: str) -> str:
    return f"{quarantine_collection(workspace_id)}/{event_key(message_id)}"


def violation_record(
    workspace_id: str, event: CanonicalEvent, finding: ContractFinding, at: str
) -> Document:
    """One event's violations of one contract; its id makes a redelivery rewrite, not add."""
    record_id = event_key(event["messageId"])
    return {
        "id": record_id,
        "workspace_id": workspace_id,
        "contract_id": finding.contract.id,
        "contract_version": finding.contract.version,
        "message_id": event["messageId"],
        "event_type": event.get("type"),
        "event_name": event_name(event),
        "source_id": event.get("sourceId"),
        "blocked": finding.blocked,
        "violations": [
            {
                "type": v.type,
                "field": v.field,
                "message": v.message,
                "expected": v.expected,
                "actual": v.actual,
                "action": action,
            }
            for v, action in zip(finding.violations, finding.actions, strict=True)
        ],
        "created_at": at,
        "sort_key": sort_key(at, record_id),
    }


def quarantine_record(
    workspace_id: str,
    event: CanonicalEvent,
    findings: list[ContractFinding],
    previous: Document | None,
    at: str,
) -> Document:
    """A blocked event, kept whole (as JSON text: events may hold what Firestore cannot) with the
    violations that blocked it; counters survive a replay that was blocked again."""
    record_id = event_key(event["messageId"])
    previous = previous or {}
    requarantined = previous.get("status") not in (None, "quarantined")
    blocking = [f for f in findings if f.blocked]
    return {
        "id": record_id,
        "workspace_id": workspace_id,
        "message_id": event["messageId"],
        "source_id": event.get("sourceId"),
        "event_type": event.get("type"),
        "event_name": event_name(event),
        "received_at": event.get("receivedAt"),
        "contract_ids": [f.contract.id for f in blocking],
        "reasons": [
            {
                "contract_id": f.contract.id,
                "contract_version": f.contract.version,
                "type": v.type,
                "field": v.field,
                "message": v.message,
                "expected": v.expected,
                "actual": v.actual,
            }
            for f in blocking
            for v, action in zip(f.violations, f.actions, strict=True)
            if action == "blocked"
        ],
        "event_json": json.dumps(event, separators=(",", ":"), ensure_ascii=False),
        "status": "quarantined",
        "times_quarantined": int(previous.get("times_quarantined", 0))
        + (1 if requarantined or not previous else 0),
        "replay_count": int(previous.get("replay_count", 0)),
        "created_at": previous.get("created_at", at),
        "quarantined_at": at,
        "replayed_at": previous.get("replayed_at"),
        "sort_key": sort_key(at, record_id),
    }


def contract_from_document(document: Document) -> EventContract:
    """A stored contract (its schema kept as JSON text: Firestore rejects some JSON shapes)."""
    fields = {k: v for k, v in document.items() if k != "schema_definition_json"}
    fields["schema_definition"] = json.loads(document["schema_definition_json"])
    return EventContract.model_validate(fields)


def contract_document(contract: EventContract) -> Document:
    document = contract.model_dump(exclude={"schema_definition"})
    document["schema_definition_json"] = json.dumps(
        contract.schema_definition, separators=(",", ":"), ensure_ascii=False
    )
    return document


def _verdict(findings: list[ContractFinding]) -> Verdict:
    if not findings:
        return Verdict()
    logged = [
        {
            "contract_id": f.contract.id,
            "type": v.type,
            "field": v.field,
            "message": v.message,
            "action": action,
        }
        for f in findings
        for v, action in zip(f.violations, f.actions, strict=True)
    ]
    return Verdict(blocked=any(f.blocked for f in findings), violations=logged[:LOGGED_VIOLATIONS])
