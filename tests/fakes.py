"""In-memory fakes of the ports, for unit tests of services only (integration uses emulators)."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable, Mapping

from shared.ports import AlreadyExists, Document, Write


class InMemoryConfigStore:
    """`ConfigStore` over a dict, with the same all-or-nothing batch semantics as Firestore."""

    def __init__(self) -> None:
        self.documents: dict[str, Document] = {}

    def get(self, path: str) -> Document | None:
        document = self.documents.get(path)
        return copy.deepcopy(document) if document is not None else None

    def list(self, collection: str) -> list[Document]:
        depth = collection.count("/") + 1
        return [
            copy.deepcopy(doc)
            for path, doc in self.documents.items()
            if path.startswith(collection + "/") and path.count("/") == depth
        ]

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


class FakeTopicAdmin:
    """`TopicAdmin` that remembers which topics exist."""

    def __init__(self, project_id: str = "test-project") -> None:
        self.project_id = project_id
        self.topics: set[str] = set()

    def topic_path(self, topic_id: str) -> str:
        return f"projects/{self.project_id}/topics/{topic_id}"

    def ensure_topic(self, topic_id: str) -> str:
        path = self.topic_path(topic_id)
        self.topics.add(path)
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
