"""Ports: the interfaces services depend on, implemented by adapters and by unit-test fakes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, Final, Literal, Protocol
from urllib.parse import urlsplit

from shared.domain.event import CanonicalEvent
from shared.domain.geo import Location
from shared.domain.warehouse import Layout

Document = dict[str, Any]


class StoreValue(Enum):
    """Values a `ConfigStore` fills in itself when it applies a write."""

    # The time the store applies the commit: every write of one commit gets the same time, and
    # a later commit never an earlier one, so readers can order by it (no caller's clock can).
    COMMIT_TIME = "commit_time"


# Only as the value of a top-level field of a create, set or update.
COMMIT_TIME: Final = StoreValue.COMMIT_TIME


@dataclass(frozen=True)
class Increment:
    """Only as the value of a top-level field of an update: the store adds `amount` to the
    field's number as it applies the write (0 when missing), so concurrent updates all count,
    where reading a count and writing it back loses all but one."""

    amount: int


@dataclass(frozen=True)
class Write:
    """One document write inside an atomic batch."""

    op: Literal["create", "set", "update", "delete"]
    path: str
    data: Document = field(default_factory=dict)


@dataclass(frozen=True)
class Filter:
    """One condition of a query: `field op value`, op one of == < <= > >= in, or
    array-contains (the field is an array holding `value`)."""

    field: str
    op: Literal["==", "<", "<=", ">", ">=", "in", "array-contains"]
    value: Any


class DocumentStore(Protocol):
    """Documents addressed by slash-separated paths, one read or one atomic commit at a time:
    all ingest needs of the configuration store (shared/adapters/firestore_rest.py)."""

    def get(self, path: str) -> Document | None:
        """The document at `path`, or None."""
        ...

    def commit(self, writes: Iterable[Write]) -> None:
        """Apply writes atomically: all or none. A top-level field whose value is
        `COMMIT_TIME` is stored as the time the commit is applied (an aware datetime)."""
        ...


class ConfigStore(DocumentStore, Protocol):
    """Configuration and state documents addressed by slash-separated paths."""

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

    def query_group(
        self,
        collection_id: str,
        where: Iterable[Filter] = (),
        order_by: str | None = None,
        descending: bool = False,
        limit: int | None = None,
    ) -> list[Document]:
        """As `query`, over every collection named `collection_id` wherever it is (Firestore's
        collection group query: one query across, say, every contract's `violations`)."""
        ...

    def create(self, path: str, data: Document) -> None:
        """Create a document; raise `AlreadyExists` when it exists."""
        ...


# Firestore commits at most 500 writes at once; longer lists are committed in chunks of this many.
# Each chunk is atomic on its own, but chunks are not atomic together: a failure midway leaves the
# earlier chunks applied.
WRITES_PER_COMMIT = 400


def commit_in_chunks(store: ConfigStore, writes: Sequence[Write]) -> None:
    """Commit `writes` in order, `WRITES_PER_COMMIT` at a time (none when there are no writes)."""
    for start in range(0, len(writes), WRITES_PER_COMMIT):
        store.commit(writes[start : start + WRITES_PER_COMMIT])


class AlreadyExists(Exception):
    """A document that must be new already exists."""


class CounterStore(Protocol):
    """Counters every instance adds to, each addition answering the totals in the same write."""

    def increment(
        self, path: str, amounts: Mapping[str, int], expires_at: datetime
    ) -> dict[str, int]:
        """Add `amounts` to the integer fields of the document at `path` (created when missing,
        `expires_at` set for the TTL policy) and return those fields' totals after the addition,
        in one write. Raise `Unavailable` when the store cannot take it now. Never retried: an
        addition applied twice counts twice."""
        ...


@dataclass(frozen=True)
class Claim:
    """Who processes an event inside the deduplication window (`Claims`)."""

    # The Pub/Sub message id of the source-topic message that claimed the event.
    owner: str
    # True when this call made the claim; False when it was held already (by `owner`).
    new: bool = False
    # Copies of the event turned away as duplicates, and when the last one was.
    duplicates: int = 0
    last_duplicate_at: str | None = None
    # What became of the event, once its message was done, where the store keeps it on the
    # claim (`Claims.settle`; shared/services/event_log.py writes and reads it).
    outcome: str | None = None


class Claims(Protocol):
    """The deduplication window: one claim per event (a workspace's event key, `event_key`),
    held for `DEDUP_HOURS` by the message that processes it. Memorystore for Valkey
    (shared/adapters/valkey_claims.py) or Firestore (shared/services/claims.py)."""

    def claim(self, workspace_id: str, keys: Sequence[str], owner: str) -> dict[str, Claim]:
        """Claim every key not held for `owner`, each atomically (of two racing claims, one
        wins); answer each key's claim after the call. Raise `Unavailable` when the store
        cannot answer now."""
        ...

    def get(self, workspace_id: str, keys: Sequence[str]) -> dict[str, Claim | None]:
        """Each key's claim, or None when no claim holds it."""
        ...

    def count_duplicates(self, workspace_id: str, counts: Mapping[str, int], at: str) -> None:
        """Add turned-away copies to held claims (keys no longer held are passed over)."""
        ...

    def release(self, workspace_id: str, keys: Sequence[str]) -> None:
        """Drop the claims, so that the next copy of each event is processed (a replay)."""
        ...

    # The longest outcome (UTF-8 bytes) `settle` keeps on a claim; 0 when the store keeps none
    # (Firestore's: an outcome there would cost the very write the event log's record costs).
    outcome_bytes: int

    def settle(self, workspace_id: str, owner: str, outcomes: Mapping[str, str]) -> None:
        """Keep each key's outcome on its claim, if `owner` still holds it (a claim released
        or expired meanwhile is not made again), all in one atomic call."""
        ...


@dataclass(frozen=True)
class SettledBatch:
    """A deliveries-topic message whose deliveries were all accepted at their first attempt,
    alike: the one answer that settled them (`DeliveryMarks`)."""

    at: str  # ISO time of the attempt
    http_status: int | None
    detail: str
    destination_type: str


# A batch's mark: settled (`SettledBatch`), RECORDED (deliver's record in Firestore holds it),
# or None (never attempted, or out of the window).
RECORDED: Final = "recorded"
BatchMark = SettledBatch | Literal["recorded"] | None


class DeliveryMarks(Protocol):
    """What deliver keeps in the deduplication store (Memorystore for Valkey) instead of a
    Firestore record when every delivery of a message was accepted at its first attempt, the
    common case: a mark per deliveries-topic message for the window (`DEDUP_HOURS`), and the
    destination's most recent such messages for the console (shared/adapters/valkey_marks.py).
    A message with anything else (a retry, a dead letter, a skip, a transformation, a replay)
    has its Firestore record, and the mark RECORDED says so before it is written."""

    def get(self, workspace_id: str, batch_ids: Sequence[str]) -> dict[str, BatchMark]:
        """Each message's mark. Raise `Unavailable` when the store cannot answer now."""
        ...

    def mark_recorded(self, workspace_id: str, batch_id: str) -> None:
        """Say that the message's record is in Firestore (before it is written)."""
        ...

    def settle(
        self,
        workspace_id: str,
        batch_id: str,
        destination_id: str,
        settled: SettledBatch,
        recent: Document,
    ) -> None:
        """Mark the message settled, and add `recent` (its deliveries, as the console lists
        them) to the head of its destination's recent list, in one call."""
        ...

    def recent(self, workspace_id: str, destination_id: str, limit: int) -> list[Document]:
        """The destination's most recently settled messages (as given to `settle`), newest
        first, at most `limit`."""
        ...


# The topic Pub/Sub reports for a subscription whose topic was deleted. The subscription stays
# detached even when a topic of the same name is created again: only a new subscription
# receives that topic's messages.
DELETED_TOPIC: Final = "_deleted-topic_"


@dataclass(frozen=True)
class SubscriptionState:
    """A subscription as Pub/Sub holds it."""

    topic: str  # full resource name, or DELETED_TOPIC
    push_endpoint: str | None  # None for a pull subscription


class TopicAdmin(Protocol):
    """Creates Pub/Sub topics, and lists them for `streams reconcile`."""

    def topic_path(self, topic_id: str) -> str:
        """The full resource name of a topic."""
        ...

    def ensure_topic(self, topic_id: str) -> str:
        """Create the topic if it does not exist; return its full resource name."""
        ...

    def ensure_push_subscription(self, topic: str, subscription_id: str, policy: PushPolicy) -> str:
        """Create (or update) a push subscription on `topic`; return its full resource name."""
        ...

    def delete_topic(self, topic: str) -> None:
        """Delete a topic (idempotent). Its subscriptions stay, detached from it, until deleted."""
        ...

    def retire_subscription(self, subscription_id: str) -> None:
        """Have Pub/Sub delete a subscription once it has been idle for a day (idempotent): what
        it still holds is pushed first, so nothing already accepted is dropped."""
        ...

    def topic_ids(self, prefix: str) -> set[str]:
        """The ids of the project's topics that start with `prefix`."""
        ...

    def subscription_states(self, prefix: str) -> dict[str, SubscriptionState]:
        """The project's subscriptions whose id starts with `prefix`, by id."""
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


# One event as a warehouse sync observes it: type, name, and its properties (or traits).
ObservedRow = tuple[str, str | None, Mapping[str, Any] | None]


class WarehouseViews(Protocol):
    """Each workspace's warehouse: views over the events table, in a dataset of its own."""

    def sample(
        self, workspace_id: str, since: datetime, until: datetime, per_stream: int
    ) -> list[ObservedRow]:
        """The newest `per_stream` events of each type and name received in [since, until)."""
        ...

    def views(
        self, workspace_id: str, layout: Layout, retention_days: int | None
    ) -> dict[str, str]:
        """Each view of the layout, by table name, as the SELECT it runs."""
        ...

    def apply(
        self, workspace_id: str, dataset: str, views: Mapping[str, str], drop: Iterable[str]
    ) -> None:
        """Create the dataset if missing, (re)write `views`, drop the views named in `drop`;
        raise `Unavailable` when BigQuery cannot."""
        ...

    def delete_expired(self, workspace_id: str, before: datetime) -> int:
        """Delete the workspace's events received before `before`; how many."""
        ...


class EventStore(Protocol):
    """The analytical store of events (BigQuery)."""

    def insert(self, rows: list[Document], row_ids: list[str]) -> None:
        """Insert rows; raise `Unavailable` when the store cannot take them now."""
        ...

    def volume(
        self,
        workspace_id: str,
        since: datetime,
        *,
        granularity: Literal["hour", "day"] = "hour",
        time_zone: str = "UTC",
        source_id: str | None = None,
    ) -> list[Document]:
        """Counts per event_type, event_name and `bucket` (an aware datetime: the start of the
        event's hour, or of its day in the IANA `time_zone`) of the events received since
        `since`, optionally of one source, oldest bucket first."""
        ...

    def counts_by_source(self, workspace_id: str, since: datetime) -> dict[str, int]:
        """Events received since `since`, per source_id (sources without any are absent)."""
        ...

    def consent_denials(
        self, workspace_id: str, since: datetime, destination_id: str | None = None
    ) -> list[Document]:
        """Per destination_id and `bucket` (the start of the hour): how many events received
        since `since` routing held back from it for consent (`event_count`), oldest first."""
        ...

    def find(self, query: EventQuery) -> list[Document]:
        """Matching rows, newest `received_at` first, at most `query.limit`; JSON columns parsed
        and TIMESTAMP columns as aware datetimes."""
        ...

    def summarise(self, query: EventQuery) -> EventSummary:
        """How many events match `query` (ignoring its limit), and how many distinct types."""
        ...

    def recent(
        self,
        workspace_id: str,
        limit: int,
        *,
        source_id: str | None = None,
        event_name: str | None = None,
        since: datetime | None = None,
    ) -> list[CanonicalEvent]:
        """The workspace's `limit` most recently received events, newest first, as canonical
        events (`shared.domain.storage.row_event`), optionally only of one source and of one
        event name (a track's event, a page's or screen's name), and received since `since`
        (else within the store's own bound)."""
        ...

    def delete_user(
        self, workspace_id: str, column: Literal["user_id", "anonymous_id"], value: str
    ) -> int:
        """Delete every stored event of the workspace whose `column` equals `value`; return how
        many rows went. Raise `Unavailable` when the store cannot delete them now (BigQuery
        refuses DML on rows still in its streaming buffer)."""
        ...


@dataclass(frozen=True)
class EventQuery:
    """Stored events of a workspace received in [since, until), optionally of one source and of
    one stream type (/v1/streams' `Event.type`: a track's event name, else the call type)."""

    workspace_id: str
    since: datetime
    until: datetime | None = None
    source_id: str | None = None
    stream_type: str | None = None
    limit: int = 100


@dataclass(frozen=True)
class EventSummary:
    total_events: int
    unique_event_types: int


class Publisher(Protocol):
    """Publishes messages and waits for the broker's acknowledgement."""

    def publish(self, topic: str, messages: Iterable[tuple[bytes, Mapping[str, str]]]) -> list[str]:
        """Publish every message; return their server ids once all are acknowledged."""
        ...


@dataclass(frozen=True, repr=False)
class OutboundRequest:
    """One HTTP request to a destination; its URL and headers may hold secrets (see __repr__)."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    # The connector's own timeout (webhook config); None lets the sender use its default.
    timeout_seconds: float | None = None
    # Secret values the sender scrubs from any detail it reports (a response may echo them).
    redact: tuple[str, ...] = field(default=(), compare=False)

    def __repr__(self) -> str:
        # Only scheme, host and path: the query (GA4's api_secret) and headers are never shown,
        # nor a path holding a secret (a Slack webhook's path is its token).
        parts = urlsplit(self.url)
        secret_path = any(len(secret) >= 4 and secret in parts.path for secret in self.redact)
        path = "/[redacted]" if secret_path else parts.path
        return f"OutboundRequest({self.method} {parts.scheme}://{parts.netloc}{path})"


@dataclass(frozen=True)
class OutboundFile:
    """One object for a customer's Cloud Storage bucket (a `FileWriter` writes it, then records
    it in the manifest named here; both idempotent: a redelivery rewrites the same object)."""

    bucket: str
    name: str
    data: bytes
    content_type: str
    manifest: str
    # What the manifest says of the object (counts, time span); JSON values.
    summary: dict[str, Any] = field(default_factory=dict)
    content_encoding: str | None = None


# delivered (2xx), retry (transient: worth sending again later), failed (permanent).
SendStatus = Literal["delivered", "retry", "failed"]


@dataclass(frozen=True)
class SendResult:
    """The outcome of one send."""

    status: SendStatus
    http_status: int | None
    detail: str
    duration_ms: float
    retry_after_seconds: float | None = None
    # The answer's body (at most 64 KB, raw): connectors read vendors' error codes from it. It
    # may echo what was sent, so it is never logged or stored; `detail` is the scrubbed excerpt.
    body: bytes = field(default=b"", repr=False)


class Sender(Protocol):
    """Sends HTTP requests to destinations (`shared.destinations.outbound.HttpSender`)."""

    def send(self, request: OutboundRequest, timeout: float | None = None) -> SendResult:
        """Send once and classify the outcome; never raises for network or destination
        problems. `timeout` (seconds) overrides the request's own and the sender's default.
        Every value of `request.redact` is scrubbed from the result's detail."""
        ...


class FileWriter(Protocol):
    """Writes files to customers' Cloud Storage buckets (`shared.adapters.gcs_files`)."""

    def write(self, file: OutboundFile) -> str:
        """Write the object, then record it in its manifest; answers where it was written.
        Raises `StreamsError` when worth retrying, `InvalidRequest` when refused for good
        (no such bucket, no permission)."""
        ...


class GeoLocator(Protocol):
    """Places a public IP address (`shared.adapters.geoip.MaxMindGeoLocator`)."""

    def locate(self, ip: str) -> Location | None:
        """Segment's `context.location` of the address, or None when the database does not
        place it. Called on ingest's hot path: answers from memory, never raises."""
        ...
