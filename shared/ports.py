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


@dataclass(frozen=True)
class Filter:
    """One condition of a query: `field op value`, op one of == < <= > >= in."""

    field: str
    op: Literal["==", "<", "<=", ">", ">=", "in"]
    value: Any


class ConfigStore(Protocol):
    """Configuration and state documents addressed by slash-separated paths."""

    def get(self, path: str) -> Document | None:
        """The document at `path`, or None."""
        ...

    def list_documents(self, collection: str) -> list[Document]:
        """Every document of a collection."""
        ...

    def get_many(self, paths: list[str]) -> dict[str, Document | None]:
        """Several documents in one round trip: path -> document or None."""
        ...

    def query(
        self,
        collection: str,
        where: Iterable[Filter] = (),
        order_by: str | None = None,
        descending: bool = False,
        limit: int | None = None,
    ) -> list[Document]:
        """Documents of a collection matching every filter, ordered and limited."""
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

    def ensure_push_subscription(self, topic: str, subscription_id: str, policy: PushPolicy) -> str:
        """Create (or update) a push subscription on `topic`; return its full resource name."""
        ...


@dataclass(frozen=True)
class PushPolicy:
    """How Pub/Sub pushes a subscription's messages and retries failed ones."""

    endpoint: str
    min_backoff_seconds: float = 1.0
    max_backoff_seconds: float = 60.0
    ack_deadline_seconds: int = 60
    # Pub/Sub's own dead-lettering, for messages the function itself keeps failing on.
    dead_letter_topic: str | None = None
    max_delivery_attempts: int | None = None
    # Production: Pub/Sub signs pushes with an OIDC token of this service account.
    service_account: str | None = None


class EventStore(Protocol):
    """The analytical store of events (BigQuery)."""

    def insert(self, rows: list[Document], row_ids: list[str]) -> None:
        """Insert rows; raise `Unavailable` when the store cannot take them now."""
        ...


class Publisher(Protocol):
    """Publishes messages and waits for the broker's acknowledgement."""

    def publish(self, topic: str, messages: Iterable[tuple[bytes, Mapping[str, str]]]) -> list[str]:
        """Publish every message; return their server ids once all are acknowledged."""
        ...
