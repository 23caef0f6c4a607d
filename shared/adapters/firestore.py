"""Firestore adapter for the `ConfigStore` port.

Documents go through `shared.domain.stored_documents` both ways: JSON Firestore cannot hold as a
map is kept as JSON text, and a path that cannot name a document is never sent (Firestore
would refuse the request, where the answer is simply that nothing is there).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from shared.adapters import operation_counts
from shared.adapters.errors import CALL_TIMEOUT_SECONDS, RETRY, transient_as_unavailable
from shared.config import Settings
from shared.domain.ids import is_collection_path, is_document_path
from shared.domain.stored_documents import (
    check_document_path,
    decode_document,
    encode_document,
    encode_fields,
    query_condition,
)
from shared.ports import COMMIT_TIME, AlreadyExists, Document, Filter, Increment, Write

# The port's operators the client spells otherwise.
CLIENT_OPERATORS = {"array-contains": "array_contains"}


def new_client(settings: Settings) -> firestore.Client:
    """A client for the project; against the emulator when FIRESTORE_EMULATOR_HOST is set (the
    client reads it itself)."""
    operation_counts.export_to(settings.operation_counts_dir)
    return firestore.Client(project=settings.project_id)


class FirestoreConfigStore:
    """Documents in Firestore (native mode), addressed by slash-separated paths."""

    def __init__(self, client: firestore.Client):
        self._client = client

    def get(self, path: str) -> Document | None:
        if not is_document_path(path):
            return None
        with transient_as_unavailable("Firestore"):
            snapshot = self._client.document(path).get(retry=RETRY, timeout=CALL_TIMEOUT_SECONDS)
        operation_counts.firestore_lookup(1)
        return decode_document(snapshot.to_dict() or {}) if snapshot.exists else None

    def list_documents(self, collection: str) -> list[Document]:
        if not is_collection_path(collection):
            return []
        with transient_as_unavailable("Firestore"):
            stream = self._client.collection(collection).stream(
                retry=RETRY, timeout=CALL_TIMEOUT_SECONDS
            )
            documents = [decode_document(doc.to_dict() or {}) for doc in stream]
        operation_counts.firestore_query(len(documents))
        return documents

    def get_many(self, paths: list[str]) -> dict[str, Document | None]:
        found: dict[str, Document | None] = dict.fromkeys(paths)
        if not paths:
            return found
        refs = [self._client.document(path) for path in paths if is_document_path(path)]
        if not refs:
            return found
        with transient_as_unavailable("Firestore"):
            for snapshot in self._client.get_all(refs, retry=RETRY, timeout=CALL_TIMEOUT_SECONDS):
                if snapshot.exists:
                    found[snapshot.reference.path] = decode_document(snapshot.to_dict() or {})
        operation_counts.firestore_lookup(len(refs))
        return found

    def query(
        self,
        collection: str,
        where: Iterable[Filter] = (),
        order_by: str | None = None,
        descending: bool = False,
        limit: int | None = None,
    ) -> list[Document]:
        if not is_collection_path(collection):
            return []  # no such collection can exist
        return self._run(self._client.collection(collection), where, order_by, descending, limit)

    def query_group(
        self,
        collection_id: str,
        where: Iterable[Filter] = (),
        order_by: str | None = None,
        descending: bool = False,
        limit: int | None = None,
    ) -> list[Document]:
        if not is_collection_path(collection_id) or "/" in collection_id:
            return []  # a group is named by one collection id, never a path
        group = self._client.collection_group(collection_id)
        return self._run(group, where, order_by, descending, limit)

    def _run(
        self,
        query: Any,
        where: Iterable[Filter],
        order_by: str | None,
        descending: bool,
        limit: int | None,
    ) -> list[Document]:
        conditions = [(c.field, query_condition(c.op, c.value)) for c in where]
        sendable = [(field, *sent) for field, sent in conditions if sent is not None]
        if len(sendable) < len(conditions):
            return []  # a condition can match nothing
        for field, op, value in sendable:
            query = query.where(filter=FieldFilter(field, CLIENT_OPERATORS.get(op, op), value))
        if order_by is not None:
            direction = firestore.Query.DESCENDING if descending else firestore.Query.ASCENDING
            query = query.order_by(order_by, direction=direction)
        if limit is not None:
            query = query.limit(limit)
        with transient_as_unavailable("Firestore"):
            stream = query.stream(retry=RETRY, timeout=CALL_TIMEOUT_SECONDS)
            documents = [decode_document(doc.to_dict() or {}) for doc in stream]
        operation_counts.firestore_query(len(documents))
        return documents

    def create(self, path: str, data: Document) -> None:
        self.commit([Write("create", path, data)])

    def commit(self, writes: Iterable[Write]) -> None:
        batch = self._client.batch()
        count = deletes = 0
        for write in writes:
            check_document_path(write.path)
            ref = self._client.document(write.path)
            _apply(batch, write.op, ref, _stored(write))
            count += 1
            deletes += write.op == "delete"
        with transient_as_unavailable("Firestore"):
            try:
                batch.commit(retry=RETRY, timeout=CALL_TIMEOUT_SECONDS)
            except (gexc.Conflict, gexc.AlreadyExists) as exc:
                raise AlreadyExists(str(exc)) from exc
        # Counted once committed: a refused commit writes nothing.
        operation_counts.firestore_commit(count - deletes, deletes)


def _stored(write: Write) -> Document:
    """A write's data as Firestore can hold it. An update's fields are only part of the
    document, so only a whole document (create, set) can be measured against the 1 MiB (a
    `COMMIT_TIME` counts as the 8 bytes of the timestamp Firestore puts in its place)."""
    if write.op == "update":
        encoded = encode_fields(write.data)
    else:
        encoded = encode_document(write.path, write.data)
    return {name: _server_value(value) for name, value in encoded.items()}


def _server_value(value: Any) -> Any:
    """A value the store fills in itself (`COMMIT_TIME`, `Increment`) as Firestore's transform."""
    if value is COMMIT_TIME:
        return firestore.SERVER_TIMESTAMP
    if isinstance(value, Increment):
        return firestore.Increment(value.amount)
    return value


def _apply(batch: Any, op: str, ref: Any, data: Document) -> None:
    if op == "create":
        batch.create(ref, data)
    elif op == "set":
        batch.set(ref, data)
    elif op == "update":
        batch.update(ref, data)
    elif op == "delete":
        batch.delete(ref)
    else:
        raise ValueError(f"unknown write op {op!r}")


# A counter's write is waited for by the request that makes it: a short deadline, and no retry
# (an increment applied twice counts twice; the caller counts locally when one fails).
COUNTER_TIMEOUT_SECONDS = 2.0


class FirestoreCounterStore:
    """`CounterStore` on Firestore: an increment transform per field, in one commit, whose answer
    carries each field's value after the increment."""

    def __init__(self, client: firestore.Client):
        self._client = client

    def increment(
        self, path: str, amounts: Mapping[str, int], expires_at: datetime
    ) -> dict[str, int]:
        # The client sends a document's transforms sorted by field path, and the commit answers
        # their results in that order (`expires_at` is a plain value, not a transform).
        fields = sorted(amounts)
        data: dict[str, Any] = {name: firestore.Increment(amounts[name]) for name in fields}
        batch = self._client.batch()
        batch.set(self._client.document(path), {**data, "expires_at": expires_at}, merge=True)
        with transient_as_unavailable("Firestore"):
            (result,) = batch.commit(retry=None, timeout=COUNTER_TIMEOUT_SECONDS)
        operation_counts.firestore_commit(1, 0)
        totals = zip(fields, result.transform_results, strict=True)
        return {name: int(value.integer_value) for name, value in totals}
