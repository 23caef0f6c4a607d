"""In-memory fakes of the ports, for unit tests of services only (integration uses emulators)."""

from __future__ import annotations

import copy
import itertools
import operator
from collections.abc import Iterable, Mapping

from shared.ports import AlreadyExists, Document, Filter, PushPolicy, Write


class InMemoryConfigStore:
    """`ConfigStore` over a dict, with the same all-or-nothing batch semantics as Firestore."""

    def __init__(self) -> None:
        self.documents: dict[str, Document] = {}

    def get(self, path: str) -> Document | None:
        document = self.documents.get(path)
        return copy.deepcopy(document) if document is not None else None

    def list_documents(self, collection: str) -> list[Document]:
        depth = collection.count("/") + 1
        return [
            copy.deepcopy(doc)
            for path, doc in self.documents.items()
            if path.startswith(collection + "/") and path.count("/") == depth
        ]

    def get_many(self, paths: list[str]) -> dict[str, Document | None]:
        return {path: self.get(path) for path in paths}

    def query(
        self,
        collection: str,
        where: Iterable[Filter] = (),
        order_by: str | None = None,
        descending: bool = False,
        limit: int | None = None,
    ) -> list[Document]:
        found = [d for d in self.list_documents(collection) if all(_holds(d, f) for f in where)]
        if order_by is not None:
            found.sort(key=lambda d: d[order_by], reverse=descending)
        return found[:limit] if limit is not None else found

    def create(self, path: str, data: Document) -> None:
        self.commit([Write("create", path, data)])

    def commit(self, writes: Iterable[Write]) -> None:
        staged = dict(self.documents)
        for write in writes:
            if write.op == "create":
                if write.path in staged:
                    raise AlreadyExists(write.path)
                staged[write.path] = copy.deepcopy(write.data)
            elif write.op == "set":
                staged[write.path] = copy.deepcopy(write.data)
            elif write.op == "update":
                if write.path not in staged:
                    raise KeyError(write.path)
                staged[write.path] = {**staged[write.path], **copy.deepcopy(write.data)}
            elif write.op == "delete":
                staged.pop(write.path, None)
        self.documents = staged


def _holds(document: Document, condition: Filter) -> bool:
    value = document.get(condition.field)
    if condition.op == "in":
        return value in condition.value
    if condition.op == "==":
        return bool(value == condition.value)
    if value is None:
        return False
    return bool(OPERATORS[condition.op](value, condition.value))


OPERATORS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


class FakeTopicAdmin:
    """`TopicAdmin` that remembers which topics exist."""

    def __init__(self, project_id: str = "test-project") -> None:
        self.project_id = project_id
        self.topics: set[str] = set()
        self.subscriptions: dict[str, tuple[str, PushPolicy]] = {}

    def topic_path(self, topic_id: str) -> str:
        return f"projects/{self.project_id}/topics/{topic_id}"

    def ensure_topic(self, topic_id: str) -> str:
        path = self.topic_path(topic_id)
        self.topics.add(path)
        return path

    def ensure_push_subscription(self, topic: str, subscription_id: str, policy: PushPolicy) -> str:
        path = f"projects/{self.project_id}/subscriptions/{subscription_id}"
        self.subscriptions[path] = (topic, policy)
        return path


class FakePublisher:
    """`Publisher` that records what was published, per topic."""

    def __init__(self) -> None:
        self.published: dict[str, list[tuple[bytes, dict[str, str]]]] = {}
        self._ids = itertools.count(1)

    def publish(self, topic: str, messages: Iterable[tuple[bytes, Mapping[str, str]]]) -> list[str]:
        batch = [(data, dict(attrs)) for data, attrs in messages]
        self.published.setdefault(topic, []).extend(batch)
        return [str(next(self._ids)) for _ in batch]


class FakeEventStore:
    """`EventStore` keeping rows in a list; `fail` makes the next inserts raise like an outage."""

    def __init__(self) -> None:
        self.rows: list[Document] = []
        self.fail: Exception | None = None

    def insert(self, rows: list[Document], row_ids: list[str]) -> None:
        if self.fail is not None:
            raise self.fail
        self.rows.extend(copy.deepcopy(rows))
