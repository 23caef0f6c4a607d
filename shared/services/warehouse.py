"""The warehouse use cases: settings, the layout and its conflicts, and the sync that keeps each
workspace's views in step with its events (hourly from Cloud Scheduler, or on demand).

A sync costs one BigQuery query (the newest events of each type and name since the last sync),
a few Firestore reads and writes per workspace, and one DDL statement per view that changed;
nothing per event.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from shared import structured_log
from shared.domain import ids
from shared.domain.contracts import ANY_NAME, EventContract, contracts_collection
from shared.domain.errors import Conflict, InvalidRequest, Unavailable
from shared.domain.schema_forms import to_json_schema
from shared.domain.warehouse import (
    MAX_COLUMNS,
    MAX_EVENT_TABLES,
    MAX_RETENTION_DAYS,
    TRACK_PREFIX,
    ContractTyping,
    Layout,
    StreamSeen,
    Table,
    WarehouseSettings,
    conflicts,
    contract_typing,
    dataset_name,
    observe,
    plan_layout,
    stream_seen_path,
    streams_seen_collection,
    warehouse_lock_path,
    warehouse_settings_path,
    warehouse_state_path,
)
from shared.ports import AlreadyExists, ConfigStore, Document, WarehouseViews, Write
from shared.services.contract_validator import contract_from_document

log = logging.getLogger("streams.warehouse")

WORKSPACES = "workspaces"
# Events read per type and name and sync to infer types from (the JSON columns keep every value).
SAMPLE_PER_STREAM = 1000
# A first sync looks this far back; later ones from the last sync's end, less the overlap.
FIRST_SYNC_DAYS = 30
# Rows are inserted a little after their received_at (process, retries): re-read this much.
SYNC_OVERLAP = timedelta(minutes=15)
# Retention's DELETE runs at most this often per workspace (it scans the expired partitions).
RETENTION_EVERY = timedelta(hours=23)
# A sync's lock older than this was left by one that died (a sync takes seconds to minutes).
SYNC_LOCK_STALE = timedelta(minutes=15)
# Firestore takes at most 500 writes per commit.
WRITES_PER_COMMIT = 500


class Warehouse:
    """One workspace's warehouse at a time; `sync_all` walks every workspace."""

    def __init__(
        self,
        store: ConfigStore,
        views: WarehouseViews,
        dataset_prefix: str,
        clock: Callable[[], datetime] = ids.utcnow,
    ):
        self._store = store
        self._views = views
        self._prefix = dataset_prefix
        self._clock = clock

    def dataset(self, workspace_id: str) -> str:
        """The BigQuery dataset holding the workspace's views."""
        return dataset_name(self._prefix, workspace_id)

    def settings(self, workspace_id: str) -> WarehouseSettings:
        document = self._store.get(warehouse_settings_path(workspace_id))
        if document is None:
            return WarehouseSettings()
        fields = ("max_event_tables", "max_columns", "retention_days")
        return WarehouseSettings(**{name: document[name] for name in fields})

    def put_settings(
        self, workspace_id: str, settings: WarehouseSettings, updated_by: str
    ) -> dict[str, Any]:
        _check(settings)
        document: Document = {
            **asdict(settings),
            "updated_at": ids.isoformat(self._clock()),
            "updated_by": updated_by,
        }
        self._store.commit([Write("set", warehouse_settings_path(workspace_id), document)])
        return self.describe(workspace_id)

    def layout(self, workspace_id: str) -> Layout:
        """The tables as the settings, contracts and events seen make them now."""
        return self._plan(workspace_id, self._seen(workspace_id), self.settings(workspace_id))

    def describe(self, workspace_id: str) -> dict[str, Any]:
        """The layout as the settings and contracts make it now, what the last sync applied,
        and every conflict and fold."""
        settings = self.settings(workspace_id)
        layout = self._plan(workspace_id, self._seen(workspace_id), settings)
        state = self._store.get(warehouse_state_path(workspace_id)) or {}
        wanted = _digests(self._views.views(workspace_id, layout, settings.retention_days))
        in_step = state.get("views") == wanted
        return self._answer(workspace_id, settings, layout, state.get("synced_at"), in_step)

    def _answer(
        self,
        workspace_id: str,
        settings: WarehouseSettings,
        layout: Layout,
        synced_at: str | None,
        in_step: bool,
    ) -> dict[str, Any]:
        return {
            "dataset": self.dataset(workspace_id),
            "settings": asdict(settings),
            "synced_at": synced_at,
            "in_step": in_step,
            "tables": [_table_item(table) for table in layout.tables],
            "folded_events": list(layout.folded_events),
            "conflicts": conflicts(layout),
        }

    def sync(self, workspace_id: str) -> dict[str, Any]:
        """Observe the events since the last sync, then rewrite the views that changed; one
        sync of a workspace at a time (a second one meanwhile is a Conflict)."""
        now = self._clock()
        lock = warehouse_lock_path(workspace_id)
        self._lock(lock, now)
        try:
            return self._sync(workspace_id, now)
        finally:
            self._store.commit([Write("delete", lock)])

    def _lock(self, lock: str, now: datetime) -> None:
        # Two syncs at once would each write what they observed, and the later write would drop
        # the other's keys. A lock left by a sync that died is taken over once it is stale.
        try:
            self._store.create(lock, {"started_at": ids.isoformat(now)})
            return
        except AlreadyExists:
            held = self._store.get(lock) or {}
        started = held.get("started_at")
        if started is not None and now - datetime.fromisoformat(started) < SYNC_LOCK_STALE:
            raise Conflict(f"a sync of this workspace is running (since {started}); try later")
        self._store.commit([Write("set", lock, {"started_at": ids.isoformat(now)})])

    def _sync(self, workspace_id: str, now: datetime) -> dict[str, Any]:
        state = self._store.get(warehouse_state_path(workspace_id)) or {}
        since = (
            datetime.fromisoformat(state["synced_at"]) - SYNC_OVERLAP
            if state.get("synced_at")
            else now - timedelta(days=FIRST_SYNC_DAYS)
        )
        seen = self._seen(workspace_id)
        rows = self._views.sample(workspace_id, since, now, SAMPLE_PER_STREAM)
        changed = observe(seen, rows, ids.isoformat(now))
        self._commit(
            Write(
                "set", stream_seen_path(workspace_id, stream), _seen_document(stream, seen[stream])
            )
            for stream in sorted(changed)
        )
        settings = self.settings(workspace_id)
        layout = self._plan(workspace_id, seen, settings)
        views = self._views.views(workspace_id, layout, settings.retention_days)
        digests = _digests(views)
        applied: dict[str, str] = state.get("views") or {}
        rewrite = {name: sql for name, sql in views.items() if applied.get(name) != digests[name]}
        drop = set(applied) - set(views)
        dataset = self.dataset(workspace_id)
        if rewrite or drop:
            self._views.apply(workspace_id, dataset, rewrite, drop)
        expired = 0
        expired_at = state.get("expired_at")
        if settings.retention_days is not None and (
            expired_at is None or now - datetime.fromisoformat(expired_at) >= RETENTION_EVERY
        ):
            expired = self._views.delete_expired(
                workspace_id, now - timedelta(days=settings.retention_days)
            )
            expired_at = ids.isoformat(now)
        self._store.commit(
            [
                Write(
                    "set",
                    warehouse_state_path(workspace_id),
                    {
                        "dataset": dataset,
                        # Also where the next sync starts reading (less SYNC_OVERLAP).
                        "synced_at": ids.isoformat(now),
                        "views": digests,
                        "expired_at": expired_at,
                    },
                )
            ]
        )
        structured_log.emit(
            "warehouse synced",
            workspace_id=workspace_id,
            events_observed=len(rows),
            views_rewritten=len(rewrite),
            views_dropped=len(drop),
            events_expired=expired,
        )
        # What the views now are: the answer needs no second read of what this sync just used.
        return {
            **self._answer(workspace_id, settings, layout, ids.isoformat(now), in_step=True),
            "events_observed": len(rows),
            "views_rewritten": sorted(rewrite),
            "views_dropped": sorted(drop),
            "events_expired": expired,
        }

    def sync_all(self) -> dict[str, Any]:
        """Sync every workspace; one that fails is reported and the others still sync."""
        synced, failed = [], []
        for workspace in self._store.list_documents(WORKSPACES):
            workspace_id = workspace["id"]
            try:
                self.sync(workspace_id)
                synced.append(workspace_id)
            except (Unavailable, Conflict) as exc:
                structured_log.emit(
                    "warehouse sync failed",
                    logging.ERROR,
                    workspace_id=workspace_id,
                    reason=str(exc)[:500],
                )
                failed.append(workspace_id)
        return {"synced": synced, "failed": failed}

    def _seen(self, workspace_id: str) -> dict[str, StreamSeen]:
        return {
            document["stream"]: StreamSeen.from_document(document)
            for document in self._store.list_documents(streams_seen_collection(workspace_id))
        }

    def _plan(
        self, workspace_id: str, seen: dict[str, StreamSeen], settings: WarehouseSettings
    ) -> Layout:
        contracts = [
            contract_from_document(document)
            for document in self._store.list_documents(contracts_collection(workspace_id))
        ]
        return plan_layout(seen, stream_typings(contracts, seen), settings)

    def _commit(self, writes: Iterable[Write]) -> None:
        batch: list[Write] = []
        for write in writes:
            batch.append(write)
            if len(batch) == WRITES_PER_COMMIT:
                self._store.commit(batch)
                batch = []
        if batch:
            self._store.commit(batch)


def stream_typings(
    contracts: Iterable[EventContract], seen: Iterable[str]
) -> dict[str, ContractTyping]:
    """The contract typing each stream's columns: a track name's own contract, else the track
    contract for every name; for pages, screens, identifies and groups, their type's contract
    for every name. The newest version wins when several match (archived ones never do)."""
    by_target: dict[tuple[str, str], ContractTyping] = {}
    for contract in sorted(contracts, key=lambda c: c.updated_at):
        if contract.status != "active":
            continue
        schema, _ = to_json_schema(contract.schema_definition, meta_check=False)
        by_target[(contract.event_type, contract.event_name)] = contract_typing(contract.id, schema)
    typings: dict[str, ContractTyping] = {}
    for stream in seen:
        if stream.startswith(TRACK_PREFIX):
            name = stream[len(TRACK_PREFIX) :]
            typing = by_target.get(("track", name)) or by_target.get(("track", ANY_NAME))
        else:
            typing = by_target.get((stream, ANY_NAME))
        if typing is not None:
            typings[stream] = typing
    return typings


def _check(settings: WarehouseSettings) -> None:
    bounds = {
        "max_event_tables": (settings.max_event_tables, 0, MAX_EVENT_TABLES),
        "max_columns": (settings.max_columns, 0, MAX_COLUMNS),
    }
    if settings.retention_days is not None:
        bounds["retention_days"] = (settings.retention_days, 1, MAX_RETENTION_DAYS)
    for name, (value, low, high) in bounds.items():
        if not low <= value <= high:
            raise InvalidRequest(f"{name} must be between {low} and {high}", field=name)


def _digests(views: dict[str, str]) -> dict[str, str]:
    return {name: hashlib.sha256(sql.encode()).hexdigest()[:16] for name, sql in views.items()}


def _seen_document(stream: str, seen: StreamSeen) -> Document:
    return {"stream": stream, **seen.to_document()}


def _table_item(table: Table) -> dict[str, Any]:
    return {
        "name": table.name,
        "kind": table.kind,
        "event_text": table.event_text,
        "contract_id": table.contract_id,
        "columns": [
            {
                "name": column.name,
                "key": column.key,
                "type": column.type,
                "typed_by": column.typed_by,
                "seen_types": list(column.seen),
                "conflict": column.conflict,
            }
            for column in table.columns
        ],
        "folded": list(table.folded),
    }
