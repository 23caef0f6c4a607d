"""The warehouse layout: Segment's tables for one workspace, and the type of every column.

The pipeline stores every event once in the `events` table; the warehouse is a set of views over
it, one per Segment table (docs/WAREHOUSE.md says why views). This module decides what those
views hold; the BigQuery adapter writes them.

- What was seen: each sync reads the events received since the last one and records, per stream
  (a track's name, or pages, screens, identifies, groups), each property's or trait's kinds of
  value (`observe`). Kinds only grow; a key keeps the moment it was first seen, which orders
  columns and tables, so a column never moves or changes name.
- Types: a contract that describes the stream gives a column its type; otherwise the kinds seen
  do. A key seen with kinds its column's type does not naturally hold is a conflict: it is
  reported, and its values are never lost (the table's `properties` or `traits` JSON column holds
  every value as sent).
- Caps: past `max_event_tables` per-event tables, and `max_columns` columns per table, the rest
  are folded: still queryable in the JSON column, and listed as folded.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from shared.domain.storable import not_unicode
from shared.domain.warehouse_names import addressable, unique_names

Kind = Literal["string", "timestamp", "integer", "number", "boolean", "json"]
ColumnType = Literal["STRING", "TIMESTAMP", "INT64", "FLOAT64", "BOOL", "JSON"]
TableKind = Literal[
    "tracks", "event", "pages", "screens", "identifies", "groups", "aliases", "users"
]

# The kinds of value each column type holds as itself; others are conflicts.
NATURAL_KINDS: dict[ColumnType, frozenset[str]] = {
    "STRING": frozenset({"string", "timestamp"}),
    "TIMESTAMP": frozenset({"timestamp"}),
    "INT64": frozenset({"integer"}),
    "FLOAT64": frozenset({"integer", "number"}),
    "BOOL": frozenset({"boolean"}),
    "JSON": frozenset({"json"}),
}
KIND_TYPES: dict[str, ColumnType] = {
    "string": "STRING",
    "timestamp": "TIMESTAMP",
    "integer": "INT64",
    "number": "FLOAT64",
    "boolean": "BOOL",
    "json": "JSON",
}
# A JSON Schema type (and format) to a column type.
SCHEMA_TYPES: dict[str, ColumnType] = {
    "string": "STRING",
    "integer": "INT64",
    "number": "FLOAT64",
    "boolean": "BOOL",
    "object": "JSON",
    "array": "JSON",
}
# RFC 3339 date-times, as SDKs write them, within what BigQuery casts to TIMESTAMP (at most
# microseconds; an offset with its colon).
_DATE_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})?", re.ASCII
)
INT64_RANGE = (-(2**63), 2**63 - 1)

# Streams (what a sync observes, and what a table is built from).
PAGES, SCREENS, IDENTIFIES, GROUPS = "page", "screen", "identify", "group"
TRACK_PREFIX = "track:"

# Context fields every table carries as columns, Segment's names (path in context, column, type).
CONTEXT_COLUMNS: tuple[tuple[tuple[str, ...], str, ColumnType], ...] = (
    (("app", "build"), "context_app_build", "STRING"),
    (("app", "name"), "context_app_name", "STRING"),
    (("app", "namespace"), "context_app_namespace", "STRING"),
    (("app", "version"), "context_app_version", "STRING"),
    (("campaign", "content"), "context_campaign_content", "STRING"),
    (("campaign", "medium"), "context_campaign_medium", "STRING"),
    (("campaign", "name"), "context_campaign_name", "STRING"),
    (("campaign", "source"), "context_campaign_source", "STRING"),
    (("campaign", "term"), "context_campaign_term", "STRING"),
    (("device", "advertisingId"), "context_device_advertising_id", "STRING"),
    (("device", "id"), "context_device_id", "STRING"),
    (("device", "manufacturer"), "context_device_manufacturer", "STRING"),
    (("device", "model"), "context_device_model", "STRING"),
    (("device", "name"), "context_device_name", "STRING"),
    (("device", "type"), "context_device_type", "STRING"),
    (("ip",), "context_ip", "STRING"),
    (("library", "name"), "context_library_name", "STRING"),
    (("library", "version"), "context_library_version", "STRING"),
    (("locale",), "context_locale", "STRING"),
    (("location", "city"), "context_location_city", "STRING"),
    (("location", "country"), "context_location_country", "STRING"),
    (("location", "latitude"), "context_location_latitude", "FLOAT64"),
    (("location", "longitude"), "context_location_longitude", "FLOAT64"),
    (("location", "region"), "context_location_region", "STRING"),
    (("network", "bluetooth"), "context_network_bluetooth", "BOOL"),
    (("network", "carrier"), "context_network_carrier", "STRING"),
    (("network", "cellular"), "context_network_cellular", "BOOL"),
    (("network", "wifi"), "context_network_wifi", "BOOL"),
    (("os", "name"), "context_os_name", "STRING"),
    (("os", "version"), "context_os_version", "STRING"),
    (("page", "path"), "context_page_path", "STRING"),
    (("page", "referrer"), "context_page_referrer", "STRING"),
    (("page", "search"), "context_page_search", "STRING"),
    (("page", "title"), "context_page_title", "STRING"),
    (("page", "url"), "context_page_url", "STRING"),
    (("referrer", "id"), "context_referrer_id", "STRING"),
    (("referrer", "type"), "context_referrer_type", "STRING"),
    (("screen", "density"), "context_screen_density", "FLOAT64"),
    (("screen", "height"), "context_screen_height", "INT64"),
    (("screen", "width"), "context_screen_width", "INT64"),
    (("timezone",), "context_timezone", "STRING"),
    (("userAgent",), "context_user_agent", "STRING"),
)
# The `events` columns every event table copies, and their names there (Segment's).
STORED_COLUMNS = (
    ("message_id", "id"),
    ("anonymous_id", "anonymous_id"),
    ("user_id", "user_id"),
    ("source_id", "source_id"),
    ("received_at", "received_at"),
    ("sent_at", "sent_at"),
    ("timestamp", "timestamp"),
    ("original_timestamp", "original_timestamp"),
)
# Columns every event table has (users has its own), in order.
EVENT_COLUMNS = (
    *(name for _, name in STORED_COLUMNS),
    *(name for _, name, _ in CONTEXT_COLUMNS),
)
# Page properties Segment always gives a column (STRING), whether or not they were seen.
PAGE_FIELDS = ("url", "path", "title", "referrer", "search")
# Each kind of table's own columns after the common ones, and the JSON column keeping every value.
KIND_COLUMNS: dict[TableKind, tuple[str, ...]] = {
    "tracks": ("event", "event_text", "properties"),
    "event": ("event", "event_text", "properties"),
    "pages": ("name", *PAGE_FIELDS, "properties"),
    "screens": ("name", "properties"),
    "identifies": ("traits",),
    "groups": ("group_id", "traits"),
    "aliases": ("previous_id",),
    "users": ("id", "anonymous_id", "received_at", "traits"),
}
# The event type each kind of table reads.
TABLE_EVENT_TYPES: dict[TableKind, str] = {
    "tracks": "track",
    "event": "track",
    "pages": "page",
    "screens": "screen",
    "identifies": "identify",
    "groups": "group",
    "aliases": "alias",
    "users": "identify",
}
STANDARD_TABLES = ("tracks", "pages", "screens", "identifies", "groups", "aliases", "users")


def value_kind(value: Any) -> Kind | None:
    """The kind of a property's value (None for JSON null: it says nothing of a type)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        # Past INT64, BigQuery's JSON reads a number as FLOAT64.
        return "integer" if INT64_RANGE[0] <= value <= INT64_RANGE[1] else "number"
    if isinstance(value, float):
        # 3.0 is written "3.0", which INT64 will not cast: a float is a number even when whole.
        return "number"
    if isinstance(value, str):
        return "timestamp" if _DATE_TIME.fullmatch(value) else "string"
    return "json"


def inferred_type(kinds: Iterable[str]) -> ColumnType:
    """The type a column takes from the kinds seen: the one kind's, numbers as FLOAT64, a mix
    with JSON as JSON, any other mix (or nothing but nulls) as STRING."""
    seen = set(kinds)
    if len(seen) == 1:
        return KIND_TYPES[seen.pop()]
    if seen == {"integer", "number"}:
        return "FLOAT64"
    if "json" in seen:
        return "JSON"
    return "STRING"


def schema_type(field_schema: Any) -> ColumnType | None:
    """The column type a contract's JSON Schema gives a field; None when it names no one type."""
    if not isinstance(field_schema, Mapping):
        return None
    declared = field_schema.get("type")
    types = [declared] if isinstance(declared, str) else list(declared or [])
    types = [t for t in types if t != "null"]
    if len(types) != 1 or types[0] not in SCHEMA_TYPES:
        return None
    if types[0] == "string" and field_schema.get("format") == "date-time":
        return "TIMESTAMP"
    return SCHEMA_TYPES[types[0]]


@dataclass
class FieldSeen:
    """One key of a stream: the kinds of its values, and when a sync first saw it."""

    kinds: set[str]
    first_seen: str


@dataclass
class StreamSeen:
    """One stream's keys, and when it was first seen."""

    first_seen: str
    fields: dict[str, FieldSeen] = field(default_factory=dict)

    def to_document(self) -> dict[str, Any]:
        return {
            "first_seen": self.first_seen,
            "fields": {
                key: {"kinds": sorted(seen.kinds), "first_seen": seen.first_seen}
                for key, seen in self.fields.items()
            },
        }

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> StreamSeen:
        return cls(
            document["first_seen"],
            {
                key: FieldSeen(set(value["kinds"]), value["first_seen"])
                for key, value in document.get("fields", {}).items()
            },
        )


# Keys recorded per stream: bounds the observation document far inside Firestore's 1 MiB, and is
# past any sane column cap (keys beyond it are folded like those past the cap).
MAX_KEYS_PER_STREAM = 2000


def stream_of(event_type: str, event_name: str | None) -> str | None:
    """The stream an event feeds (aliases have no properties or traits to observe)."""
    if event_type == "track":
        return TRACK_PREFIX + (event_name or "")
    return event_type if event_type in (PAGES, SCREENS, IDENTIFIES, GROUPS) else None


def observe(
    seen: dict[str, StreamSeen],
    rows: Iterable[tuple[str, str | None, Mapping[str, Any] | None]],
    now: str,
) -> set[str]:
    """Add rows (event type, name, properties or traits) to what was seen; the streams changed.

    A name or key with a lone surrogate (ingest refuses them, but a message published past it
    may carry one) has no UTF-8 form: no document id, SQL text or JSON answer can name it, so
    it is not recorded; its values stay in the JSON column of `tracks` or its table."""
    changed: set[str] = set()
    for event_type, event_name, values in rows:
        stream = stream_of(event_type, event_name)
        if stream is None or not_unicode(stream):
            continue
        entry = seen.get(stream)
        if entry is None:
            entry = seen[stream] = StreamSeen(now)
            changed.add(stream)
        for key, value in (values or {}).items():
            if not_unicode(key):
                continue
            kind = value_kind(value)
            known = entry.fields.get(key)
            if known is None:
                if len(entry.fields) >= MAX_KEYS_PER_STREAM:
                    continue
                known = entry.fields[key] = FieldSeen(set(), now)
                changed.add(stream)
            if kind is not None and kind not in known.kinds:
                known.kinds.add(kind)
                changed.add(stream)
    return changed


# Bounds of the settings. BigQuery allows 10,000 columns; the standard ones (about 55) come on top.
MAX_EVENT_TABLES = 5_000
MAX_COLUMNS = 9_000
MAX_RETENTION_DAYS = 36_500


@dataclass(frozen=True)
class WarehouseSettings:
    """A workspace's warehouse settings (the API's, with their defaults)."""

    max_event_tables: int = 200
    max_columns: int = 300
    retention_days: int | None = None


@dataclass(frozen=True)
class Column:
    """A property's or trait's column."""

    name: str
    key: str
    type: ColumnType
    typed_by: Literal["contract", "data"]
    seen: tuple[ColumnType, ...]

    @property
    def conflict(self) -> bool:
        """Seen with a kind of value its type does not hold as itself."""
        natural = NATURAL_KINDS[self.type]
        return any(kind not in natural for kind in _kinds_of(self.seen))


@dataclass(frozen=True)
class Table:
    """One view: its kind, the event it holds (per-event tables), and its dynamic columns."""

    name: str
    kind: TableKind
    stream: str | None = None
    columns: tuple[Column, ...] = ()
    folded: tuple[str, ...] = ()
    contract_id: str | None = None

    @property
    def event_text(self) -> str | None:
        return self.stream[len(TRACK_PREFIX) :] if self.stream else None


@dataclass(frozen=True)
class Layout:
    """Every table of a workspace's warehouse, and the track events folded into `tracks`."""

    tables: tuple[Table, ...]
    folded_events: tuple[str, ...] = ()

    def table(self, name: str) -> Table:
        return next(t for t in self.tables if t.name == name)

    def event_tables(self) -> dict[str, str]:
        """Each track event name with a table, to its table's name (the `event` column)."""
        return {t.event_text: t.name for t in self.tables if t.kind == "event" and t.event_text}


@dataclass(frozen=True)
class ContractTyping:
    """The field types one contract gives its stream (JSON Schema `properties` at the top)."""

    contract_id: str
    types: Mapping[str, ColumnType]


def contract_typing(contract_id: str, schema: Mapping[str, Any]) -> ContractTyping:
    """The column types a contract's JSON Schema gives, field by field."""
    fields = schema.get("properties")
    types: dict[str, ColumnType] = {}
    for key, field_schema in (fields if isinstance(fields, Mapping) else {}).items():
        column_type = schema_type(field_schema)
        if column_type is not None:
            types[key] = column_type
    return ContractTyping(contract_id, types)


def plan_layout(
    seen: Mapping[str, StreamSeen],
    typings: Mapping[str, ContractTyping],
    settings: WarehouseSettings,
) -> Layout:
    """The workspace's tables from what was seen, typed by the contracts of each stream
    (`typings`, keyed by stream), within the settings' caps."""
    tables = [
        Table("tracks", "tracks"),
        _table("pages", "pages", PAGES, seen, typings, settings, skip=PAGE_FIELDS),
        _table("screens", "screens", SCREENS, seen, typings, settings),
        _table("identifies", "identifies", IDENTIFIES, seen, typings, settings),
        _table("groups", "groups", GROUPS, seen, typings, settings),
        Table("aliases", "aliases"),
        _table("users", "users", IDENTIFIES, seen, typings, settings),
    ]
    events = sorted(
        (entry.first_seen, stream)
        for stream, entry in seen.items()
        if stream.startswith(TRACK_PREFIX)
    )
    kept = [stream for _, stream in events[: settings.max_event_tables]]
    names = unique_names([s[len(TRACK_PREFIX) :] for s in kept], STANDARD_TABLES)
    for stream in kept:
        name = names[stream[len(TRACK_PREFIX) :]]
        tables.append(_table(name, "event", stream, seen, typings, settings))
    folded = tuple(stream[len(TRACK_PREFIX) :] for _, stream in events[settings.max_event_tables :])
    return Layout(tuple(tables), folded)


def _table(
    name: str,
    kind: TableKind,
    stream: str,
    seen: Mapping[str, StreamSeen],
    typings: Mapping[str, ContractTyping],
    settings: WarehouseSettings,
    skip: Sequence[str] = (),
) -> Table:
    entry = seen.get(stream)
    typing = typings.get(stream)
    fields = entry.fields if entry else {}
    ordered = sorted(
        (seen_field.first_seen, key)
        for key, seen_field in fields.items()
        if key not in skip and addressable(key)
    )
    keys = [key for _, key in ordered]
    kept, folded = keys[: settings.max_columns], keys[settings.max_columns :]
    folded += sorted(key for key in fields if key not in skip and not addressable(key))
    standard = (*EVENT_COLUMNS, *KIND_COLUMNS[kind]) if kind != "users" else KIND_COLUMNS[kind]
    names = unique_names(kept, standard)
    columns = []
    for key in kept:
        kinds = fields[key].kinds
        declared = typing.types.get(key) if typing else None
        columns.append(
            Column(
                name=names[key],
                key=key,
                type=declared or inferred_type(kinds),
                typed_by="contract" if declared else "data",
                seen=tuple(sorted({KIND_TYPES[k] for k in kinds})),
            )
        )
    return Table(
        name,
        kind,
        stream if kind == "event" else None,
        tuple(columns),
        tuple(folded),
        typing.contract_id if typing else None,
    )


def _kinds_of(types: Iterable[ColumnType]) -> set[str]:
    inverse = {column_type: kind for kind, column_type in KIND_TYPES.items()}
    return {inverse[t] for t in types}


def conflicts(layout: Layout) -> list[dict[str, Any]]:
    """Every column seen with values its type does not hold as itself, and where they are."""
    found = []
    for table in layout.tables:
        for column in table.columns:
            if column.conflict:
                found.append(
                    {
                        "table": table.name,
                        "column": column.name,
                        "key": column.key,
                        "type": column.type,
                        "typed_by": column.typed_by,
                        "seen_types": list(column.seen),
                        "values_not_fitting": _not_fitting(column, table.kind),
                    }
                )
    return found


def _not_fitting(column: Column, kind: TableKind) -> str:
    """Where the values a column does not hold as itself are."""
    kinds = _kinds_of(column.seen)
    if column.type == "JSON":
        return "in the column, as JSON"
    if column.type == "STRING" and "json" not in kinds:
        return "in the column, as text"
    return f"NULL in the column; as sent in `{json_column(kind)}`"


def json_column(kind: TableKind) -> str:
    """The JSON column holding every value as sent."""
    return "traits" if kind in ("identifies", "groups", "users") else "properties"


def dataset_name(prefix: str, workspace_id: str) -> str:
    """The workspace's dataset: the prefix and its id, `-` and anything BigQuery refuses as `_`
    (workspace ids are UUIDs, so this stays one dataset per workspace)."""
    return prefix + re.sub(r"[^A-Za-z0-9_]", "_", workspace_id)


def warehouse_settings_path(workspace_id: str) -> str:
    return f"workspaces/{workspace_id}/warehouse/settings"


def warehouse_state_path(workspace_id: str) -> str:
    return f"workspaces/{workspace_id}/warehouse/state"


def warehouse_lock_path(workspace_id: str) -> str:
    return f"workspaces/{workspace_id}/warehouse/sync_lock"


def streams_seen_collection(workspace_id: str) -> str:
    return f"workspaces/{workspace_id}/warehouse_streams"


def stream_seen_path(workspace_id: str, stream: str) -> str:
    # Event names are client-chosen (and may hold '/'): the document id is a digest.
    digest = hashlib.sha256(stream.encode()).hexdigest()[:40]
    return f"{streams_seen_collection(workspace_id)}/{digest}"
