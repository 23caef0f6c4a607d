"""Firestore adapter for the `ConfigStore` port."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from shared.adapters.errors import CALL_TIMEOUT_SECONDS, RETRY, transient_as_unavailable
from shared.ports import AlreadyExists, Document, Filter, Write


class FirestoreConfigStore:
    """Documents in Firestore (native mode), addressed by slash-separated paths."""

    def __init__(self, client: firestore.Client):
        self._client = client

    def get(self, path: str) -> Document | None:
        with transient_as_unavailable("Firestore"):
            snapshot = self._client.document(path).get(retry=RETRY, timeout=CALL_TIMEOUT_SECONDS)
        return snapshot.to_dict() if snapshot.exists else None

    def list_documents(self, collection: str) -> list[Document]:
        with transient_as_unavailable("Firestore"):
            stream = self._client.collection(collection).stream(
                retry=RETRY, timeout=CALL_TIMEOUT_SECONDS
            )
            return [doc.to_dict() or {} for doc in stream]

    def get_many(self, paths: list[str]) -> dict[str, Document | None]:
        found: dict[str, Document | None] = dict.fromkeys(paths)
        if not paths:
            return found
        refs = [self._client.document(path) for path in paths]
        with transient_as_unavailable("Firestore"):
            for snapshot in self._client.get_all(refs, retry=RETRY, timeout=CALL_TIMEOUT_SECONDS):
                if snapshot.exists:
                    found[snapshot.reference.path] = snapshot.to_dict()
        return found

    def query(
        self,
        collection: str,
        where: Iterable[Filter] = (),
        order_by: str | None = None,
        descending: bool = False,
        limit: int | None = None,
    ) -> list[Document]:
        query: Any = self._client.collection(collection)
        for condition in where:
            query = query.where(filter=FieldFilter(condition.field, condition.op, condition.value))
        if order_by is not None:
            direction = firestore.Query.DESCENDING if descending else firestore.Query.ASCENDING
            query = query.order_by(order_by, direction=direction)
        if limit is not None:
            query = query.limit(limit)
        with transient_as_unavailable("Firestore"):
            stream = query.stream(retry=RETRY, timeout=CALL_TIMEOUT_SECONDS)
            return [doc.to_dict() or {} for doc in stream]

    def create(self, path: str, data: Document) -> None:
        self.commit([Write("create", path, data)])

    def commit(self, writes: Iterable[Write]) -> None:
        batch = self._client.batch()
        for write in writes:
            ref = self._client.document(write.path)
            _apply(batch, write.op, ref, write.data)
        with transient_as_unavailable("Firestore"):
            try:
                batch.commit(retry=RETRY, timeout=CALL_TIMEOUT_SECONDS)
            except (gexc.Conflict, gexc.AlreadyExists) as exc:
                raise AlreadyExists(str(exc)) from exc


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
