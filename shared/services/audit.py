"""The audit log: one record per management change (who, with which token, what, before and
after, when), written by the HTTP layer for every mutating route (`shared/http/audit.py`) and
listed with filters. Secrets never enter it: snapshots are masked before they are stored."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.domain import ids
from shared.domain.sort_keys import sort_key, upper_bound
from shared.ports import ConfigStore, Document, Filter, Write

MASK = "***"
# Keys whose values are credentials wherever they appear in a snapshot. The API already leaves
# destination secrets and the PII hashing secret out of its answers; this is the second line:
# write keys (`key`, `writeKey`) are in the event-source answers.
SECRET_KEYS = frozenset(
    {
        "key",
        "writekey",
        "write_key",
        "token",
        "secret",
        "headers",
        "authorization",
        "password",
        "hashing_secret",
    }
)
# ...and any key that says it holds one (api_key, api_secret, project_token, gdpr_token, ...).
SECRET_KEY_PARTS = re.compile(r"secret|token|password|api_?key|credential", re.IGNORECASE)
# A snapshot is stored as JSON text (Firestore refuses nested arrays); past this it is cut.
MAX_SNAPSHOT_CHARS = 200_000


def audit_collection(workspace_id: str) -> str:
    return f"workspaces/{workspace_id}/audit_log"


def mask_secrets(value: Any) -> Any:
    """The value with every secret-looking key's value replaced by `***` (recursively)."""
    if isinstance(value, dict):
        return {
            key: MASK if _is_secret_key(key) and item not in (None, "", {}) else mask_secrets(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [mask_secrets(item) for item in value]
    return value


def _is_secret_key(key: Any) -> bool:
    return isinstance(key, str) and (
        key.lower() in SECRET_KEYS or SECRET_KEY_PARTS.search(key) is not None
    )


@dataclass(frozen=True)
class Change:
    """One management change, as the HTTP layer saw it."""

    workspace_id: str
    token_id: str
    token_name: str
    action: str
    operation_id: str
    method: str
    path: str
    status: int
    resource_type: str
    resource_id: str | None
    before: Any = None
    after: Any = None


@dataclass(frozen=True)
class AuditQuery:
    """Which entries to list, newest first; every field narrows the selection."""

    resource_type: str | None = None
    resource_id: str | None = None
    token_id: str | None = None
    since: str | None = None
    until: str | None = None
    limit: int = 100


class AuditLog:
    """Records changes and lists them."""

    def __init__(
        self,
        store: ConfigStore,
        clock: Callable[[], datetime] = ids.utcnow,
        new_id: Callable[[], str] = ids.new_id,
    ):
        self._store = store
        self._clock = clock
        self._new_id = new_id

    def record(self, change: Change) -> Document:
        entry_id = self._new_id()
        moment = self._clock()
        at = ids.isoformat(moment)
        document: Document = {
            "id": entry_id,
            "workspace_id": change.workspace_id,
            "at": at,
            "token_id": change.token_id,
            "token_name": change.token_name,
            "action": change.action,
            "operation_id": change.operation_id,
            "method": change.method,
            "path": change.path,
            "status": change.status,
            "resource_type": change.resource_type,
            "resource_id": change.resource_id,
            "before_json": _snapshot(change.before),
            "after_json": _snapshot(change.after),
            # Microseconds: changes made in the same millisecond still list in order.
            "sort_key": sort_key(_micros(moment), entry_id),
        }
        path = f"{audit_collection(change.workspace_id)}/{entry_id}"
        self._store.commit([Write("create", path, document)])
        return document

    def list(self, workspace_id: str, query: AuditQuery) -> list[dict[str, Any]]:
        where = [
            Filter(name, "==", value)
            for name, value in (
                ("resource_type", query.resource_type),
                ("resource_id", query.resource_id),
                ("token_id", query.token_id),
            )
            if value is not None
        ]
        if query.since:
            where.append(Filter("sort_key", ">=", _widen(query.since, "000")))
        if query.until:
            where.append(Filter("sort_key", "<=", upper_bound(_widen(query.until, "999"))))
        found = self._store.query(
            audit_collection(workspace_id),
            where,
            order_by="sort_key",
            descending=True,
            limit=query.limit,
        )
        return [_api_form(d) for d in found]


def _micros(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _widen(at: str, digits: str) -> str:
    """A millisecond ISO time (`ids.isoformat`) as the first or last microsecond of it."""
    return f"{at[:-1]}{digits}Z" if _MILLIS.search(at) else at


_MILLIS = re.compile(r"\.\d{3}Z$")


def _snapshot(value: Any) -> str | None:
    if value is None:
        return None
    text = json.dumps(mask_secrets(value), separators=(",", ":"), ensure_ascii=False, default=str)
    if len(text) > MAX_SNAPSHOT_CHARS:
        return json.dumps({"truncated": True, "chars": len(text)})
    return text


def _api_form(document: Document) -> dict[str, Any]:
    return {
        "id": document["id"],
        "at": document["at"],
        "actor": {"token_id": document["token_id"], "token_name": document["token_name"]},
        "action": document["action"],
        "operation_id": document["operation_id"],
        "method": document["method"],
        "path": document["path"],
        "status": document["status"],
        "resource_type": document["resource_type"],
        "resource_id": document["resource_id"],
        "before": json.loads(document["before_json"]) if document.get("before_json") else None,
        "after": json.loads(document["after_json"]) if document.get("after_json") else None,
    }
