"""In-memory fakes of the ports, for unit tests of services only (integration uses emulators)."""

from __future__ import annotations

import collections
import copy
import itertools
import json
import operator
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, time
from functools import cached_property
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo

from shared.bootstrap import Services
from shared.config import Settings
from shared.domain.errors import Unavailable
from shared.domain.event import CanonicalEvent
from shared.domain.ids import is_collection_path, is_document_path
from shared.domain.storage import row_event
from shared.domain.stored_documents import (
    MAX_DOCUMENT_BYTES,
    check_document_path,
    decode_document,
    document_size,
    encode_document,
    encode_fields,
    firestore_refusal,
    query_condition,
)
from shared.domain.warehouse import Layout
from shared.ports import (
    COMMIT_TIME,
    DELETED_TOPIC,
    RECORDED,
    AlreadyExists,
    BatchMark,
    Claim,
    Document,
    EventQuery,
    EventSummary,
    Filter,
    Increment,
    ObservedRow,
    PushPolicy,
    SettledBatch,
    SubscriptionState,
    Write,
)

A = TypeVar("A")
R = TypeVar("R")


class InMemoryConfigStore:
    """`ConfigStore` over a dict, with the same all-or-nothing batch semantics as Firestore.

    It is the Firestore adapter over a model of Firestore: documents are encoded and decoded as
    the adapter does (`shared.domain.stored_documents`), paths that cannot name a document are
    never looked up, and what Firestore itself would refuse (its documented limits) is refused
    with `StoreRefused`, so unit tests see what the real store does.
    """

    def __init__(self) -> None:
        # As stored: values Firestore cannot hold as they are, kept as marked JSON bytes.
        self.documents: dict[str, Document] = {}

    def get(self, path: str) -> Document | None:
        if not is_document_path(path):
            return None
        document = self.documents.get(path)
        return decode_document(copy.deepcopy(document)) if document is not None else None

    def list_documents(self, collection: str) -> list[Document]:
        if not is_collection_path(collection):
            return []
        depth = collection.count("/") + 1
        return [
            decode_document(copy.deepcopy(doc))
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
        where = list(where)
        # As the adapter: a condition on a string too long to query matches nothing, unsent.
        if any(query_condition(condition.op, condition.value) is None for condition in where):
            return []
        found = [d for d in self.list_documents(collection) if all(_holds(d, f) for f in where)]
        if order_by is not None:
            found.sort(key=lambda d: d[order_by], reverse=descending)
        return found[:limit] if limit is not None else found

    def query_group(
        self,
        collection_id: str,
        where: Iterable[Filter] = (),
        order_by: str | None = None,
        descending: bool = False,
        limit: int | None = None,
    ) -> list[Document]:
        # Every collection whose last segment is `collection_id`, as Firestore's group query.
        parents = {path.rsplit("/", 1)[0] for path in self.documents}
        found = [
            document
            for parent in sorted(parents)
            if parent == collection_id or parent.endswith("/" + collection_id)
            for document in self.query(parent, where)
        ]
        if order_by is not None:
            found.sort(key=lambda d: d[order_by], reverse=descending)
        return found[:limit] if limit is not None else found

    def create(self, path: str, data: Document) -> None:
        self.commit([Write("create", path, data)])

    def commit(self, writes: Iterable[Write]) -> None:
        staged = dict(self.documents)
        # As the adapter sends them: the path checked, the data encoded (refusals raised here
        # are the adapter's own: DocumentPathInvalid, DocumentTooLarge).
        sent = []
        for write in writes:
            check_document_path(write.path)
            if write.op == "update":
                sent.append(Write(write.op, write.path, encode_fields(write.data)))
            elif write.op in ("create", "set"):
                sent.append(Write(write.op, write.path, encode_document(write.path, write.data)))
            else:
                sent.append(write)
        # As Firestore fills in its server timestamp: one time for the whole commit.
        committed_at = datetime.now(UTC)
        sent = [
            replace(
                write,
                data={
                    name: committed_at if value is COMMIT_TIME else value
                    for name, value in write.data.items()
                },
            )
            for write in sent
        ]
        for write in sent:
            if write.op == "create":
                if write.path in staged:
                    raise AlreadyExists(write.path)
                staged[write.path] = copy.deepcopy(write.data)
            elif write.op == "set":
                staged[write.path] = copy.deepcopy(write.data)
            elif write.op == "update":
                if write.path not in staged:
                    raise KeyError(write.path)
                current = staged[write.path]
                added = {
                    name: current.get(name, 0) + value.amount
                    for name, value in write.data.items()
                    if isinstance(value, Increment)
                }
                staged[write.path] = {**current, **copy.deepcopy(write.data), **added}
            elif write.op == "delete":
                staged.pop(write.path, None)
            if write.op != "delete":
                _refuse_as_firestore(write.path, staged[write.path])
        self.documents = staged


class StoreRefused(Exception):
    """What Firestore answers a document it cannot hold with (InvalidArgument): the adapter
    never sends one, so a test that meets this has found a way around it."""


def _refuse_as_firestore(path: str, document: Document) -> None:
    """Refuse what Firestore refuses, by its documented limits: a path that names no document,
    field names empty or `__reserved__`, arrays in arrays, maps nested over 20 deep, field
    paths over 1,500 bytes, integers beyond 64 bits, text UTF-8 cannot encode, and documents
    over 1 MiB (sized as Firestore sizes them)."""
    if not is_document_path(path):
        raise StoreRefused(f"{path!r}: not a document path Firestore takes")
    _encode_text(document)
    if problem := firestore_refusal(document):
        raise StoreRefused(f"{path}: {problem}")
    if (size := document_size(path, document)) > MAX_DOCUMENT_BYTES:
        raise StoreRefused(f"{path}: {size} bytes, over Firestore's {MAX_DOCUMENT_BYTES}")


def _encode_text(value: object) -> None:
    """Raise UnicodeEncodeError, as the Firestore client does, on text UTF-8 cannot encode."""
    if isinstance(value, str):
        value.encode()
    elif isinstance(value, dict):
        for key, item in value.items():
            _encode_text(key)
            _encode_text(item)
    elif isinstance(value, list):
        for item in value:
            _encode_text(item)


def _holds(document: Document, condition: Filter) -> bool:
    value = document.get(condition.field)
    if condition.op == "array-contains":
        return isinstance(value, list) and condition.value in value
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
        # Subscriptions Pub/Sub will delete once idle (a deleted source's).
        self.retired: set[str] = set()

    def topic_path(self, topic_id: str) -> str:
        return f"projects/{self.project_id}/topics/{topic_id}"

    def ensure_topic(self, topic_id: str) -> str:
        path = self.topic_path(topic_id)
        self.topics.add(path)
        return path

    def ensure_push_subscription(self, topic: str, subscription_id: str, policy: PushPolicy) -> str:
        path = f"projects/{self.project_id}/subscriptions/{subscription_id}"
        # As in Pub/Sub, an existing subscription keeps the topic it is attached to.
        attached = self.subscriptions.get(path, (topic, policy))[0]
        self.subscriptions[path] = (attached, policy)
        return path

    def delete_topic(self, topic: str) -> None:
        self.topics.discard(topic)
        for path, (attached, policy) in self.subscriptions.items():
            if attached == topic:
                self.subscriptions[path] = (DELETED_TOPIC, policy)

    def retire_subscription(self, subscription_id: str) -> None:
        self.retired.add(f"projects/{self.project_id}/subscriptions/{subscription_id}")

    def topic_ids(self, prefix: str) -> set[str]:
        ids = (path.rsplit("/", 1)[-1] for path in self.topics)
        return {topic_id for topic_id in ids if topic_id.startswith(prefix)}

    def subscription_states(self, prefix: str) -> dict[str, SubscriptionState]:
        found: dict[str, SubscriptionState] = {}
        for path, (topic, policy) in self.subscriptions.items():
            subscription_id = path.rsplit("/", 1)[-1]
            if subscription_id.startswith(prefix):
                found[subscription_id] = SubscriptionState(topic, policy.endpoint)
        return found


class FakePublisher:
    """`Publisher` that records what was published, per topic."""

    def __init__(self) -> None:
        self.published: dict[str, list[tuple[bytes, dict[str, str]]]] = {}
        self._ids = itertools.count(1)

    def publish(self, topic: str, messages: Iterable[tuple[bytes, Mapping[str, str]]]) -> list[str]:
        batch = [(data, dict(attrs)) for data, attrs in messages]
        self.published.setdefault(topic, []).extend(batch)
        return [str(next(self._ids)) for _ in batch]


class InMemoryClaims:
    """`Claims` in memory as shared/adapters/valkey_claims.py keeps them, outcomes included (the
    contract both hold: tests/integration/test_claims.py); no window: tests expire nothing."""

    outcome_bytes = 512

    def __init__(self) -> None:
        self.held: dict[tuple[str, str], Claim] = {}
        # Set: `settle` raises it, as Valkey going away after the claims were made.
        self.settle_fails: Exception | None = None

    def claim(self, workspace_id: str, keys: Iterable[str], owner: str) -> dict[str, Claim]:
        answer: dict[str, Claim] = {}
        for key in dict.fromkeys(keys):
            held = self.held.get((workspace_id, key))
            if held is None:
                self.held[(workspace_id, key)] = Claim(owner)
                answer[key] = Claim(owner, new=True)
            else:
                answer[key] = held
        return answer

    def get(self, workspace_id: str, keys: Iterable[str]) -> dict[str, Claim | None]:
        return {key: self.held.get((workspace_id, key)) for key in keys}

    def count_duplicates(self, workspace_id: str, counts: Mapping[str, int], at: str) -> None:
        for key, count in counts.items():
            if (held := self.held.get((workspace_id, key))) is not None:
                self.held[(workspace_id, key)] = replace(
                    held, duplicates=held.duplicates + count, last_duplicate_at=at
                )

    def release(self, workspace_id: str, keys: Iterable[str]) -> None:
        for key in keys:
            self.held.pop((workspace_id, key), None)

    def settle(self, workspace_id: str, owner: str, outcomes: Mapping[str, str]) -> None:
        if self.settle_fails is not None:
            raise self.settle_fails
        for key, outcome in outcomes.items():
            held = self.held.get((workspace_id, key))
            if held is not None and held.owner == owner:
                self.held[(workspace_id, key)] = replace(held, outcome=outcome)


class InMemoryDeliveryMarks:
    """`DeliveryMarks` in memory, as shared/adapters/valkey_marks.py keeps them (the contract
    both hold: tests/integration/test_delivery_marks.py); no window: tests expire nothing."""

    def __init__(self, recent_batches: int = 200) -> None:
        self.marks: dict[tuple[str, str], BatchMark] = {}
        self.recents: dict[tuple[str, str], list[Document]] = {}
        self._keep = recent_batches
        # Set: marking raises it, as Valkey going away after the attempt.
        self.marking_fails: Exception | None = None

    def get(self, workspace_id: str, batch_ids: Iterable[str]) -> dict[str, BatchMark]:
        return {b: self.marks.get((workspace_id, b)) for b in batch_ids}

    def mark_recorded(self, workspace_id: str, batch_id: str) -> None:
        if self.marking_fails is not None:
            raise self.marking_fails
        self.marks[(workspace_id, batch_id)] = RECORDED

    def settle(
        self,
        workspace_id: str,
        batch_id: str,
        destination_id: str,
        settled: SettledBatch,
        recent: Document,
    ) -> None:
        if self.marking_fails is not None:
            raise self.marking_fails
        self.marks[(workspace_id, batch_id)] = settled
        listed = self.recents.setdefault((workspace_id, destination_id), [])
        listed.insert(0, json.loads(json.dumps(recent)))
        del listed[self._keep :]

    def recent(self, workspace_id: str, destination_id: str, limit: int) -> list[Document]:
        return self.recents.get((workspace_id, destination_id), [])[:limit]


class FakeEventStore:
    """`EventStore` keeping rows in a list; `fail` makes the next inserts raise like an outage."""

    def __init__(self) -> None:
        self.rows: list[Document] = []
        self.fail: Exception | None = None

    def insert(self, rows: list[Document], row_ids: list[str]) -> None:
        if self.fail is not None:
            raise self.fail
        self.rows.extend(copy.deepcopy(rows))

    # The readers below answer as BigQueryEventStore does (see the EventStore port).
    def volume(
        self,
        workspace_id: str,
        since: datetime,
        *,
        granularity: Literal["hour", "day"] = "hour",
        time_zone: str = "UTC",
        source_id: str | None = None,
    ) -> list[Document]:
        zone = ZoneInfo(time_zone)
        counts: collections.Counter[tuple[str, str | None, datetime]] = collections.Counter()
        for row in self._found(EventQuery(workspace_id, since, source_id=source_id)):
            if granularity == "day":
                local = row["received_at"].astimezone(zone)
                midnight = datetime.combine(local.date(), time(), tzinfo=zone)
                bucket = midnight.astimezone(UTC)
            else:
                bucket = row["received_at"].replace(minute=0, second=0, microsecond=0)
            counts[(row["event_type"], row["event_name"], bucket)] += 1
        return [
            {"event_type": t, "event_name": n, "bucket": b, "event_count": c}
            for (t, n, b), c in sorted(
                counts.items(), key=lambda i: (i[0][2], i[0][0], i[0][1] or "")
            )
        ]

    def counts_by_source(self, workspace_id: str, since: datetime) -> dict[str, int]:
        found = self._found(EventQuery(workspace_id, since))
        return dict(collections.Counter(row["source_id"] for row in found))

    def consent_denials(
        self, workspace_id: str, since: datetime, destination_id: str | None = None
    ) -> list[Document]:
        counts: collections.Counter[tuple[datetime, str]] = collections.Counter()
        for row in self._found(EventQuery(workspace_id, since)):
            bucket = row["received_at"].replace(minute=0, second=0, microsecond=0)
            for denied in row.get("consent_denied") or []:
                if destination_id is None or denied == destination_id:
                    counts[(bucket, denied)] += 1
        return [
            {"destination_id": d, "bucket": b, "event_count": c}
            for (b, d), c in sorted(counts.items())
        ]

    def find(self, query: EventQuery) -> list[Document]:
        found = sorted(
            self._found(query), key=lambda r: (r["received_at"], r["message_id"]), reverse=True
        )
        return found[: query.limit]

    def summarise(self, query: EventQuery) -> EventSummary:
        found = self._found(query)
        types = {r["event_name"] if r["event_type"] == "track" else r["event_type"] for r in found}
        return EventSummary(len(found), len(types))

    def recent(
        self,
        workspace_id: str,
        limit: int,
        *,
        source_id: str | None = None,
        event_name: str | None = None,
        since: datetime | None = None,
    ) -> list[CanonicalEvent]:
        rows = [
            row
            for row in self.rows
            if row["workspace_id"] == workspace_id
            and source_id in (None, row["source_id"])
            and event_name in (None, row["event_name"])
            and (since is None or _moment(row["received_at"]) >= since)
        ]
        rows.sort(key=lambda r: (_moment(r["received_at"]), r["message_id"]), reverse=True)
        return [row_event(row) for row in rows[:limit]]

    def delete_user(self, workspace_id: str, column: str, value: str) -> int:
        kept = [
            r for r in self.rows if not (r["workspace_id"] == workspace_id and r[column] == value)
        ]
        deleted = len(self.rows) - len(kept)
        self.rows = kept
        return deleted

    def _found(self, query: EventQuery) -> list[Document]:
        found = []
        for stored in self.rows:
            row = {
                **stored,
                "timestamp": _moment(stored["timestamp"]),
                "received_at": _moment(stored["received_at"]),
                **{f: json.loads(stored[f] or "{}") for f in ("properties", "traits", "context")},
            }
            stream_type = row["event_name"] if row["event_type"] == "track" else row["event_type"]
            if (
                row["workspace_id"] == query.workspace_id
                and row["received_at"] >= query.since
                and (query.until is None or row["received_at"] < query.until)
                and query.source_id in (None, row["source_id"])
                and query.stream_type in (None, stream_type)
            ):
                found.append(row)
        return found


def _moment(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class InMemoryCounterStore:
    """`CounterStore` over a dict: each increment adds and answers the totals at once, as one
    Firestore commit does. `unavailable` makes every call fail as an outage would."""

    def __init__(self) -> None:
        self.documents: dict[str, Document] = {}
        self.unavailable = False
        self.calls = 0
        self._lock = threading.Lock()

    def increment(
        self, path: str, amounts: Mapping[str, int], expires_at: datetime
    ) -> dict[str, int]:
        with self._lock:
            self.calls += 1
            if self.unavailable:
                raise Unavailable("Firestore is unavailable, retry later (ServiceUnavailable)")
            document = self.documents.setdefault(path, {})
            for name, amount in amounts.items():
                document[name] = document.get(name, 0) + amount
            document["expires_at"] = expires_at
            return {name: document[name] for name in amounts}


class FakeWarehouseViews:
    """`WarehouseViews` over a `FakeEventStore`'s rows: the SQL as the adapter writes it, the
    views applied kept by dataset and name (no query engine behind them)."""

    def __init__(self, events: FakeEventStore) -> None:
        self.events = events
        self.datasets: dict[str, dict[str, str]] = {}
        self.expired_before: list[datetime] = []

    def sample(
        self, workspace_id: str, since: datetime, until: datetime, per_stream: int
    ) -> list[ObservedRow]:
        newest: dict[tuple[str, str | None], list[ObservedRow]] = collections.defaultdict(list)
        for row in sorted(self.events.rows, key=lambda r: str(r["received_at"]), reverse=True):
            received = _moment(row["received_at"])
            if row["workspace_id"] != workspace_id or not since <= received < until:
                continue
            if row["event_type"] == "alias":
                continue
            field = "traits" if row["event_type"] in ("identify", "group") else "properties"
            values = json.loads(row[field]) if row.get(field) else None
            stream = newest[(row["event_type"], row["event_name"])]
            if len(stream) < per_stream:
                stream.append((row["event_type"], row["event_name"], values))
        return [row for rows in newest.values() for row in rows]

    def views(
        self, workspace_id: str, layout: Layout, retention_days: int | None
    ) -> dict[str, str]:
        from shared.adapters.warehouse_sql import view_sql

        return {
            table.name: view_sql(table, layout, "events", workspace_id, retention_days)
            for table in layout.tables
        }

    def apply(
        self, workspace_id: str, dataset: str, views: Mapping[str, str], drop: Iterable[str]
    ) -> None:
        applied = self.datasets.setdefault(dataset, {})
        applied.update(views)
        for name in drop:
            applied.pop(name, None)

    def delete_expired(self, workspace_id: str, before: datetime) -> int:
        self.expired_before.append(before)
        kept = [
            row
            for row in self.events.rows
            if row["workspace_id"] != workspace_id or _moment(row["received_at"]) >= before
        ]
        deleted = len(self.events.rows) - len(kept)
        self.events.rows[:] = kept
        return deleted


class FakeServices(Services):
    """Services on the in-memory fakes, typed as the fakes, so that a test reads what they
    recorded (`services.publisher.published`) as it would any attribute. Any service can still
    be replaced by a keyword, as with `Services`."""

    def __init__(self, settings: Settings | None = None, **overrides: Any):
        super().__init__(settings or Settings(project_id="test-project"), **overrides)

    @cached_property
    def store(self) -> InMemoryConfigStore:
        return InMemoryConfigStore()

    @cached_property
    def topics(self) -> FakeTopicAdmin:
        return FakeTopicAdmin()

    @cached_property
    def publisher(self) -> FakePublisher:
        return FakePublisher()

    @cached_property
    def event_store(self) -> FakeEventStore:
        return FakeEventStore()

    @cached_property
    def warehouse_views(self) -> FakeWarehouseViews:
        return FakeWarehouseViews(self.event_store)


def recording(calls: list[A], function: Callable[[A], R]) -> Callable[[A], R]:
    """`function`, noting each argument in `calls` first: what a test counts a service's reads
    or lookups with."""

    def recorded(argument: A) -> R:
        calls.append(argument)
        return function(argument)

    return recorded
