"""Ports: the interfaces services depend on, implemented by adapters and by unit-test fakes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Document = dict[str, Any]


@dataclass(frozen=True)
class Write:
    """One document write inside an atomic batch."""

    op: Literal["create", "set", "update", "delete"]
    path: str
    data: Document = field(default_factory=dict)


class ConfigStore(Protocol):
    """Configuration and state documents addressed by slash-separated paths."""

    def get(self, path: str) -> Document | None:
        """The document at `path`, or None."""
        ...

    def list(self, collection: str) -> list[Document]:
        """Every document of a collection."""
        ...

    def create(self, path: str, data: Document) -> None:
        """Create a document; raise `AlreadyExists` when it exists."""
        ...

    def commit(self, writes: Iterable[Write]) -> None:
        """Apply writes atomically: all or none."""
        ...


class AlreadyExists(Exception):
    """A document that must be new already exists."""


class TopicAdmin(Protocol):
    """Creates Pub/Sub topics."""

    def topic_path(self, topic_id: str) -> str:
        """The full resource name of a topic."""
        ...

    def ensure_topic(self, topic_id: str) -> str:
        """Create the topic if it does not exist; return its full resource name."""
        ...


class Publisher(Protocol):
    """Publishes messages and waits for the broker's acknowledgement."""

    def publish(self, topic: str, messages: Iterable[tuple[bytes, Mapping[str, str]]]) -> list[str]:
        """Publish every message; return their server ids once all are acknowledged."""
        ...
