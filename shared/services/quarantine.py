"""Quarantine: events a contract blocked, listed with their reasons and replayed on demand.

A replay re-validates each event against the workspace's current contracts (uncached) and
republishes those that now pass to their source's topic, messageId unchanged, so they go through
`process` like any new event. Process drops a messageId it has already seen, and a blocked event
was seen: its log entry (done, blocked) is deleted first, then the event is published.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from shared.domain import ids
from shared.domain.contracts import ContractFinding
from shared.domain.event import CanonicalEvent
from shared.domain.pipeline import quarantine_collection
from shared.domain.sort_keys import upper_bound
from shared.domain.sources import source_path
from shared.ports import ConfigStore, Document, Filter, Publisher, Write, commit_in_chunks
from shared.services.contract_validator import RETENTION_DAYS, ContractValidator
from shared.services.dead_letters import ReplayReport
from shared.services.event_log import EventLog
from shared.services.ingest import MESSAGE_SCHEMA

# One replay call republishes at most this many events (their writes fit one Firestore batch).
REPLAY_LIMIT = 400
# Filtering by contract reads at most this many newest records: a record lists its contracts,
# and the store cannot query inside a list.
CONTRACT_SCAN = 5000


@dataclass(frozen=True)
class QuarantineQuery:
    """Which quarantined events to list or replay; every field narrows the selection."""

    ids: list[str] | None = None
    contract_id: str | None = None
    status: str | None = None
    since: str | None = None
    until: str | None = None
    limit: int = 100


class Quarantine:
    """Blocked events of a workspace, kept for inspection and replay."""

    def __init__(
        self,
        store: ConfigStore,
        publisher: Publisher,
        validator: ContractValidator,
        log: EventLog,
        clock: Callable[[], datetime] = ids.utcnow,
    ):
        self._store = store
        # Whether an event was processed since, and forgetting it before its replay.
        self._log = log
        self._publisher = publisher
        self._validator = validator
        self._clock = clock

    def list(self, workspace_id: str, query: QuarantineQuery) -> list[dict[str, Any]]:
        """Quarantined events matching the query, most recently quarantined first."""
        return [_api_form(d) for d in self._select(workspace_id, query)]

    def replay(self, workspace_id: str, query: QuarantineQuery, dry_run: bool) -> ReplayReport:
        """Republish the selected events that pass the current contracts; a dry run only says
        which would."""
        status = None if query.ids is not None else "quarantined"
        limit = min(query.limit, REPLAY_LIMIT)
        selection = self._select(workspace_id, replace(query, status=status, limit=limit))
        report = ReplayReport(
            dry_run=dry_run,
            matched=len(selection),
            message_ids={r["id"]: r["message_id"] for r in selection},
        )
        # Kept whole by `quarantine_record`, as JSON text.
        events: list[CanonicalEvent] = [json.loads(r["event_json"]) for r in selection]
        findings = self._validator.check(workspace_id, events, fresh=True)
        entries = self._log.entries(workspace_id, [e["messageId"] for e in events])
        source_ids = sorted({str(r.get("source_id")) for r in selection})
        sources = self._store.get_many([source_path(workspace_id, s) for s in source_ids])
        passing: list[tuple[Document, CanonicalEvent, Document]] = []
        for record, event, found in zip(selection, events, findings, strict=True):
            source = sources.get(source_path(workspace_id, str(record.get("source_id"))))
            reason = _refusal(record, found, entries[event["messageId"]], source)
            if reason is not None:
                report.skipped.append({"id": record["id"], "reason": reason})
                continue
            assert source is not None
            passing.append((record, event, source))
            report.replayed.append(record["id"])
        if dry_run or not passing:
            return report
        self._log.release(workspace_id, [event["messageId"] for _, event, _ in passing])
        by_topic: dict[str, list[tuple[bytes, dict[str, str]]]] = {}
        for record, event, source in passing:
            by_topic.setdefault(source["pubsub_topic"], []).append(
                _message(workspace_id, record, event, source)
            )
        for topic, messages in by_topic.items():
            self._publisher.publish(topic, messages)
        now = ids.isoformat(self._clock())
        commit_in_chunks(
            self._store,
            [
                Write(
                    "update",
                    f"{quarantine_collection(workspace_id)}/{record['id']}",
                    {
                        "status": "replayed",
                        "replayed_at": now,
                        "replay_count": int(record.get("replay_count", 0)) + 1,
                    },
                )
                for record, _, _ in passing
            ],
        )
        return report

    def _select(self, workspace_id: str, query: QuarantineQuery) -> builtins.list[Document]:
        collection = quarantine_collection(workspace_id)
        # Records past retention may outlive it a while (TTL lags; the emulator has none).
        oldest = ids.isoformat(self._clock() - timedelta(days=RETENTION_DAYS))
        lower = max(query.since or oldest, oldest)
        upper = upper_bound(query.until) if query.until else None
        if query.ids is not None:
            paths = [f"{collection}/{i}" for i in dict.fromkeys(query.ids) if ids.is_document_id(i)]
            found = [d for d in self._store.get_many(paths).values() if d is not None]
            found = [
                d
                for d in found
                if d["sort_key"] >= lower
                and (upper is None or d["sort_key"] <= upper)
                and (query.status is None or d.get("status") == query.status)
            ]
            found.sort(key=lambda d: str(d["sort_key"]), reverse=True)
        else:
            where = [Filter("sort_key", ">=", lower)]
            if upper is not None:
                where.append(Filter("sort_key", "<=", upper))
            if query.status is not None:
                where.append(Filter("status", "==", query.status))
            found = self._store.query(
                collection,
                where,
                order_by="sort_key",
                descending=True,
                limit=CONTRACT_SCAN if query.contract_id else query.limit,
            )
        if query.contract_id is not None:
            found = [d for d in found if query.contract_id in (d.get("contract_ids") or [])]
        return found[: query.limit]


def _refusal(
    record: Document,
    findings: list[ContractFinding],
    entry: Document | None,
    source: Document | None,
) -> str | None:
    """Why a quarantined event cannot be replayed now, or None when it can."""
    if record.get("status") != "quarantined":
        return f"already {record.get('status')}"
    blocking = [f for f in findings if f.blocked]
    if blocking:
        first = blocking[0]
        violation = next(
            v
            for v, action in zip(first.violations, first.actions, strict=True)
            if action == "blocked"
        )
        return (
            f"still blocked by contract {first.contract.id} ({first.contract.name}): "
            f"{violation.field} {violation.type}"
        )
    if entry is not None and not (entry.get("state") == "done" and entry.get("blocked")):
        # Another replay got there first: its event is being, or has been, processed.
        return "already processed"
    if source is None:
        return f"event source {record.get('source_id')} no longer exists"
    return None


def _message(
    workspace_id: str, record: Document, event: CanonicalEvent, source: Document
) -> tuple[bytes, dict[str, str]]:
    """The event as ingest publishes it: a one-event message of its source's topic, with the
    source's bot policy as it is now."""
    data = json.dumps([event], separators=(",", ":"), ensure_ascii=False).encode()
    return data, {
        "schema": MESSAGE_SCHEMA,
        "workspace_id": workspace_id,
        "source_id": str(record["source_id"]),
        "event_count": "1",
        "replay": "quarantine",
        "bot_policy": str(source.get("bot_policy", "keep")),
    }


def _api_form(record: Document) -> dict[str, Any]:
    hidden = {"event_json", "sort_key", "expires_at", "workspace_id"}
    return {
        **{k: v for k, v in record.items() if k not in hidden},
        "event": json.loads(record["event_json"]),
    }
