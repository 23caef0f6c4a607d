"""User regulations: suppress, unsuppress and delete one user's data, each with a status and a
completion report. They run inline in the creating request (bounded: one BigQuery DML statement,
scans of three retention-bounded Firestore collections, one request per destination, sent in
parallel with the sender's timeout); docs/PRIVACY.md explains what is and is not covered."""

from __future__ import annotations

import builtins
import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.destinations import connector_for
from shared.destinations.deletion import DeletionSubject, deletion_request
from shared.domain import ids
from shared.domain.errors import InvalidRequest, NotFound, StreamsError
from shared.domain.event import EventKey
from shared.domain.pipeline import dead_letters_collection, quarantine_collection
from shared.domain.regulations import (
    SUBJECT_FIELDS,
    Regulation,
    RegulationStatus,
    RegulationType,
    SubjectKind,
    regulation_path,
    regulations_collection,
    suppression_path,
)
from shared.domain.routing import destinations_collection
from shared.domain.sources import ApiToken
from shared.ports import (
    ConfigStore,
    Document,
    EventStore,
    Filter,
    OutboundRequest,
    Sender,
    Write,
    commit_in_chunks,
)
from shared.services.live import live_events_collection
from shared.services.outlets import send_http

log = logging.getLogger("streams.regulations")

MAX_ID_CHARS = 256
# Deletion requests to destinations go out in parallel, at most this many at a time.
DESTINATION_WORKERS = 4


@dataclass(frozen=True)
class RegulationQuery:
    """Which regulations to list, newest first."""

    type: RegulationType | None = None
    status: RegulationStatus | None = None
    limit: int = 100


class Regulations:
    """Creates regulations and runs them at once; lists and reads them."""

    def __init__(
        self,
        store: ConfigStore,
        event_store: Callable[[], EventStore],
        sender: Callable[[], Sender],
        clock: Callable[[], datetime] = ids.utcnow,
        new_id: Callable[[], str] = ids.new_id,
    ):
        self._store = store
        # Built on first use: suppressions need neither BigQuery nor an HTTP client.
        self._event_store = event_store
        self._sender = sender
        self._clock = clock
        self._new_id = new_id

    def create(
        self,
        workspace_id: str,
        type: RegulationType,
        token: ApiToken,
        user_id: str | None = None,
        anonymous_id: str | None = None,
    ) -> Regulation:
        """Record the regulation (pending), run it (running), and record how it ended."""
        if (user_id is None) == (anonymous_id is None):
            raise InvalidRequest("give exactly one of user_id and anonymous_id", field="user_id")
        for name, value in (("user_id", user_id), ("anonymous_id", anonymous_id)):
            if value is not None and not (0 < len(value) <= MAX_ID_CHARS):
                raise InvalidRequest(f"{name} must be 1-{MAX_ID_CHARS} characters", field=name)
        now = ids.isoformat(self._clock())
        regulation = Regulation(
            id=self._new_id(),
            workspace_id=workspace_id,
            type=type,
            user_id=user_id,
            anonymous_id=anonymous_id,
            status="pending",
            created_by=token.id,
            created_by_name=token.name,
            created_at=now,
            updated_at=now,
        )
        path = regulation_path(workspace_id, regulation.id)
        self._store.commit([Write("create", path, regulation.model_dump())])
        regulation = self._save(regulation, status="running")
        try:
            report, failed = self._run(regulation)
        except StreamsError as exc:
            log.warning("regulation %s failed: %s", regulation.id, exc.message)
            return self._save(regulation, status="failed", error=exc.message, finished=True)
        return self._save(
            regulation,
            status="failed" if failed else "completed",
            report=report,
            error="some parts failed: see the report" if failed else None,
            finished=True,
        )

    def get(self, workspace_id: str, regulation_id: str) -> Regulation:
        document = None
        if ids.is_document_id(regulation_id):
            document = self._store.get(regulation_path(workspace_id, regulation_id))
        if document is None:
            raise NotFound(f"regulation {regulation_id} not found", field="regulationId")
        return Regulation.model_validate(document)

    def list(self, workspace_id: str, query: RegulationQuery) -> builtins.list[Regulation]:
        where = [
            Filter(name, "==", value)
            for name, value in (("type", query.type), ("status", query.status))
            if value is not None
        ]
        found = self._store.query(
            regulations_collection(workspace_id),
            where,
            order_by="created_at",
            descending=True,
            limit=query.limit,
        )
        return [Regulation.model_validate(d) for d in found]

    # --- running ------------------------------------------------------------------------

    def _run(self, regulation: Regulation) -> tuple[dict[str, Any], bool]:
        """The report, and whether any part failed."""
        kind, value = regulation.subject
        path = suppression_path(regulation.workspace_id, kind, value)
        if regulation.type == "suppress":
            existed = self._store.get(path) is not None
            record = {
                "kind": kind,
                "value": value,
                "regulation_id": regulation.id,
                "created_at": ids.isoformat(self._clock()),
            }
            self._store.commit([Write("set", path, record)])
            return {"suppression": "already_active" if existed else "added"}, False
        if regulation.type == "unsuppress":
            existed = self._store.get(path) is not None
            if existed:
                self._store.commit([Write("delete", path)])
            return {"suppression": "removed" if existed else "not_active"}, False
        return self._delete(regulation, kind, value)

    def _delete(
        self, regulation: Regulation, kind: SubjectKind, value: str
    ) -> tuple[dict[str, Any], bool]:
        workspace_id = regulation.workspace_id
        event_field = SUBJECT_FIELDS[kind]
        stores = {
            "bigquery": self._step(
                lambda: self._event_store().delete_user(workspace_id, kind, value)
            ),
            "quarantine": self._step(
                lambda: self._delete_matching(
                    quarantine_collection(workspace_id),
                    "id",
                    lambda d: _field(_parsed(d.get("event_json")), event_field) == value,
                )
            ),
            "dead_letters": self._step(
                lambda: self._delete_matching(
                    dead_letters_collection(workspace_id),
                    "id",
                    # Events that no map can hold are kept as JSON text (event dead letters).
                    lambda d: (
                        _field(
                            _dig(d, "delivery", "event") or _parsed(d.get("event_json")),
                            event_field,
                        )
                        == value
                    ),
                )
            ),
            "live_buffer": self._step(
                lambda: self._delete_matching(
                    live_events_collection(workspace_id),
                    "key",
                    lambda d: _field(_parsed(d.get("event")), event_field) == value,
                )
            ),
        }
        subject = DeletionSubject(kind, value, f"Streams regulation {regulation.id}")
        destinations = self._request_deletions(workspace_id, subject)
        failed = any(s["status"] == "failed" for s in stores.values()) or any(
            d["status"] == "failed" for d in destinations["requested"]
        )
        return {"stores": stores, "destinations": destinations}, failed

    def _step(self, run: Callable[[], int]) -> dict[str, Any]:
        try:
            return {"status": "completed", "deleted": run()}
        except StreamsError as exc:
            return {"status": "failed", "deleted": 0, "error": exc.message}

    def _delete_matching(
        self, collection: str, id_field: str, matches: Callable[[Document], bool]
    ) -> int:
        """Delete the collection's documents that hold the user's events. A full scan: these
        collections are bounded by their retention, and the events sit inside JSON text."""
        doomed = [
            f"{collection}/{d[id_field]}"
            for d in self._store.list_documents(collection)
            if d.get(id_field) and matches(d)
        ]
        commit_in_chunks(self._store, [Write("delete", path) for path in doomed])
        return len(doomed)

    def _request_deletions(
        self, workspace_id: str, subject: DeletionSubject
    ) -> dict[str, builtins.list[dict[str, Any]]]:
        """Ask every destination with a deletion API; list the others for manual action."""
        destinations = sorted(
            self._store.list_documents(destinations_collection(workspace_id)),
            key=lambda d: (d.get("created_at", ""), d.get("id", "")),
        )
        manual: builtins.list[dict[str, Any]] = []
        requests: builtins.list[tuple[Document, OutboundRequest]] = []
        for destination in destinations:
            described = {
                "destination_id": destination["id"],
                "name": destination.get("name"),
                "type": destination.get("type"),
            }
            try:
                built = deletion_request(destination["type"], destination["config"], subject)
            except StreamsError as exc:
                built = f"its config is not valid: {exc.message}"
            if isinstance(built, str):
                manual.append({**described, "reason": built})
            else:
                requests.append((described, built))
        requested: builtins.list[dict[str, Any]] = []
        if requests:
            sender = self._sender()
            with ThreadPoolExecutor(max_workers=min(DESTINATION_WORKERS, len(requests))) as pool:
                results = list(
                    pool.map(
                        lambda pair: send_http(connector_for(pair[0]["type"]), sender, pair[1]),
                        requests,
                    )
                )
            for (described, _), (status, result) in zip(requests, results, strict=True):
                requested.append(
                    {
                        **described,
                        "status": "requested" if status == "delivered" else "failed",
                        "http_status": result.http_status,
                        "detail": result.detail,
                    }
                )
        return {"requested": requested, "manual": manual}

    def _save(
        self,
        regulation: Regulation,
        *,
        status: RegulationStatus,
        report: dict[str, Any] | None = None,
        error: str | None = None,
        finished: bool = False,
    ) -> Regulation:
        now = ids.isoformat(self._clock())
        changed = regulation.model_copy(
            update={
                "status": status,
                "report": report,
                "error": error,
                "updated_at": now,
                "completed_at": now if finished else None,
            }
        )
        path = regulation_path(regulation.workspace_id, regulation.id)
        self._store.commit([Write("set", path, changed.model_dump())])
        return changed


def _parsed(text: Any) -> Any:
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _dig(document: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(document, dict):
            return None
        document = document.get(key)
    return document


def _field(event: Any, name: EventKey) -> Any:
    return event.get(name) if isinstance(event, dict) else None
