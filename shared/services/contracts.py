"""Event contracts: create, list, get, update and delete (schemas checked on the way in, or on
their own), the violations recorded per contract, paged, with a summary and the shadow report,
and every contract's violation counts at once."""

from __future__ import annotations

import base64
import binascii
import builtins
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.domain import ids
from shared.domain.contracts import (
    ANY_NAME,
    NAMED_TYPES,
    EventContract,
    contract_path,
    contracts_collection,
    summarise,
    violations_collection,
)
from shared.domain.errors import InvalidRequest, NotFound
from shared.domain.schema_forms import InvalidSchema, SchemaForm, to_json_schema
from shared.domain.sort_keys import upper_bound
from shared.ports import ConfigStore, Document, Filter, Write
from shared.services.contract_validator import (
    RETENTION_DAYS,
    contract_document,
    contract_from_document,
)

# What an update may change; everything else (id, workspace, version, times) is the service's.
UPDATABLE = frozenset(
    {"name", "event_type", "event_name", "description", "schema_definition"}
    | {"enforcement_mode", "undeclared_fields", "status"}
)
# The summary reads at most this many records (newest first) and says when it stopped short.
SUMMARY_SCAN = 5000
# Violation counts read at most this many records (newest first) across every contract of the
# workspace, in one query; past it they say from when on they are complete.
COUNTS_SCAN = 20_000


@dataclass(frozen=True)
class ViolationQuery:
    """A page of a contract's violations: newest first, within [since, until]."""

    since: str | None = None
    until: str | None = None
    limit: int = 100
    cursor: str | None = None


class EventContracts:
    """The contract use cases; every call is scoped to one workspace."""

    def __init__(self, store: ConfigStore, clock: Callable[[], datetime] = ids.utcnow):
        self._store = store
        self._clock = clock

    def list(self, workspace_id: str) -> list[EventContract]:
        documents = self._store.list_documents(contracts_collection(workspace_id))
        contracts = [contract_from_document(d) for d in documents]
        return sorted(contracts, key=lambda c: (c.created_at, c.id))

    def get(self, workspace_id: str, contract_id: str) -> EventContract:
        document = (
            self._store.get(contract_path(workspace_id, contract_id))
            if ids.is_document_id(contract_id)
            else None
        )
        if document is None:
            raise NotFound(f"contract {contract_id} not found", field="contractId")
        return contract_from_document(document)

    def create(self, workspace_id: str, **fields: Any) -> EventContract:
        now = ids.isoformat(self._clock())
        contract = checked(
            {
                "description": None,
                "enforcement_mode": "warn",
                "undeclared_fields": "allow",
                "status": "active",
                **fields,
                "id": ids.new_id(),
                "workspace_id": workspace_id,
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
        )
        path = contract_path(workspace_id, contract.id)
        self._store.commit([Write("create", path, contract_document(contract))])
        return contract

    def update(self, workspace_id: str, contract_id: str, changes: dict[str, Any]) -> EventContract:
        """Apply a partial update; every change makes a new version (validators recompile)."""
        unknown = set(changes) - UPDATABLE
        if unknown:
            raise InvalidRequest(f"{min(unknown)} cannot be updated", field=min(unknown))
        contract = self.get(workspace_id, contract_id)
        updated = checked(
            {
                **contract.model_dump(),
                **changes,
                "version": contract.version + 1,
                "updated_at": ids.isoformat(self._clock()),
            }
        )
        path = contract_path(workspace_id, contract_id)
        self._store.commit([Write("set", path, contract_document(updated))])
        return updated

    def delete(self, workspace_id: str, contract_id: str) -> None:
        """Delete the contract; its violation records stay until they expire."""
        self.get(workspace_id, contract_id)
        self._store.commit([Write("delete", contract_path(workspace_id, contract_id))])

    def violations(
        self, workspace_id: str, contract_id: str, query: ViolationQuery
    ) -> dict[str, Any]:
        """A page of violations, newest first, a cursor to the next, and (on the first page) the
        summary of the whole range."""
        self.get(workspace_id, contract_id)
        collection = violations_collection(workspace_id, contract_id)
        position = _decode_cursor(query.cursor) if query.cursor else None
        upper = upper_bound(query.until) if query.until else None
        if position is not None:
            upper = min(upper, position[0]) if upper else position[0]
        documents = self._store.query(
            collection,
            self._range(query.since, upper),
            order_by="sort_key",
            descending=True,
            limit=query.limit + 1,
        )
        items: builtins.list[dict[str, Any]] = []
        for document in documents:
            start = position[1] if position and document["sort_key"] == position[0] else 0
            for index in range(start, len(document.get("violations") or [])):
                items.append(_violation_item(document, index))
            if len(items) > query.limit:
                break
        summary = None
        if position is None:
            scanned = self._store.query(
                collection,
                self._range(query.since, upper),
                order_by="sort_key",
                descending=True,
                limit=SUMMARY_SCAN,
            )
            summary = {
                **summarise(scanned),
                "scanned": len(scanned),
                "truncated": len(scanned) >= SUMMARY_SCAN,
            }
        following = items[query.limit] if len(items) > query.limit else None
        return {
            "data": [
                {k: v for k, v in i.items() if k != "_position"} for i in items[: query.limit]
            ],
            "next_cursor": _encode_cursor(following["_position"]) if following else None,
            "summary": summary,
        }

    def violation_counts(self, workspace_id: str, hours: int) -> dict[str, Any]:
        """Per contract, events with violations, violations and blocked events of the last
        `hours`: one query over every contract's records (a collection group), newest first."""
        now = self._clock()
        since = ids.isoformat(now - timedelta(hours=hours))
        records = self._store.query_group(
            "violations",
            [Filter("workspace_id", "==", workspace_id), *self._range(since, None)],
            order_by="sort_key",
            descending=True,
            limit=COUNTS_SCAN,
        )
        counts: dict[str, dict[str, int]] = {}
        for record in records:
            items = record.get("violations") or []
            count = counts.setdefault(
                record["contract_id"], {"events": 0, "violations": 0, "blocked_events": 0}
            )
            count["events"] += 1
            count["violations"] += len(items)
            count["blocked_events"] += any(v.get("action") == "blocked" for v in items)
        truncated = len(records) >= COUNTS_SCAN
        return {
            "since": since,
            "until": ids.isoformat(now),
            # When the scan stopped short, the counts cover only its newest records.
            "complete_since": records[-1]["created_at"] if truncated else since,
            "truncated": truncated,
            "scanned": len(records),
            "counts": counts,
        }

    def _range(self, since: str | None, upper: str | None) -> builtins.list[Filter]:
        # Records past retention may outlive it a while (TTL lags; the emulator has none).
        oldest = ids.isoformat(self._clock() - timedelta(days=RETENTION_DAYS))
        where = [Filter("sort_key", ">=", max(since or oldest, oldest))]
        if upper is not None:
            where.append(Filter("sort_key", "<=", upper))
        return where


def checked(fields: dict[str, Any]) -> EventContract:
    """A contract whose name matching and schema are valid; `InvalidRequest` naming the field."""
    name = fields.get("event_name")
    if name is None or name == ANY_NAME:
        fields["event_name"] = ANY_NAME
    elif fields["event_type"] not in NAMED_TYPES:
        raise InvalidRequest(
            f'event_name: {fields["event_type"]} events have no name; use "*" or null',
            field="event_name",
        )
    check_schema(fields["schema_definition"])
    return EventContract.model_validate(fields)


def check_schema(definition: Any) -> tuple[dict[str, Any], SchemaForm]:
    """The definition as JSON Schema and its form, or the `InvalidRequest` that creating or
    updating a contract with it answers (the field is `schema_definition.<path inside>`)."""
    try:
        return to_json_schema(definition)
    except InvalidSchema as error:
        field = "schema_definition" + (f".{error.path}" if error.path else "")
        raise InvalidRequest(f"{field}: {error.message}", field=field) from None


def _violation_item(document: Document, index: int) -> dict[str, Any]:
    violation = document["violations"][index]
    return {
        "id": f"{document['id']}-{index}",
        "contract_id": document["contract_id"],
        "contract_version": document.get("contract_version"),
        "message_id": document["message_id"],
        "event_type": document.get("event_type"),
        "event_name": document.get("event_name"),
        "source_id": document.get("source_id"),
        "field": violation["field"],
        "type": violation["type"],
        "message": violation.get("message"),
        "expected": violation.get("expected"),
        "actual": violation.get("actual"),
        "action": violation["action"],
        "created_at": document["created_at"],
        "_position": (document["sort_key"], index),
    }


def _encode_cursor(position: tuple[str, int]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(position)).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[str, int]:
    try:
        key, index = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if isinstance(key, str) and isinstance(index, int) and index >= 0:
            return key, index
    except (ValueError, TypeError, binascii.Error):
        pass
    raise InvalidRequest("cursor: not a cursor this endpoint returned", field="cursor")
