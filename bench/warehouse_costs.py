"""The warehouse bench's bytes and dollars: BigQuery's logical sizes of the stored rows, what
each query reads under views (A) and maintained tables (B), B's hourly upkeep, and the cost
model scaling them to a stated workload."""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bench.cost.prices import BIGQUERY_QUERIES, BIGQUERY_STORAGE
from bench.warehouse_queries import (
    DEDUP_COLUMNS,
    FILTER_COLUMNS,
    AnalystQuery,
    at,
    first_copies,
    matches,
    moment,
)
from shared.adapters.bigquery import table_schema
from shared.domain.storage import EVENTS_TABLE
from shared.domain.warehouse import TABLE_EVENT_TYPES, TableKind

# On-demand BigQuery bills at least 10 MB per table a query references (its pricing page).
MIN_BILLED_PER_TABLE = 10 * 1000**2
DOLLARS_PER_BYTE = BIGQUERY_QUERIES.per_unit()

# Logical sizes BigQuery bills a query by, per column type (the "Data size calculation" table of
# https://cloud.google.com/bigquery/pricing): STRING 2 + its UTF-8 length, INT64, FLOAT64 and
# TIMESTAMP 8, BOOL 1, JSON the UTF-8 length of its text (taken compact here), NULL nothing.
FIXED_SIZES = {
    "INT64": 8,
    "INTEGER": 8,
    "FLOAT64": 8,
    "FLOAT": 8,
    "TIMESTAMP": 8,
    "BOOL": 1,
    "BOOLEAN": 1,
}
STRING_OVERHEAD = 2


def logical_bytes(value: Any, column_type: str) -> int:
    """One stored value's billed size."""
    if value is None:
        return 0
    if column_type in FIXED_SIZES:
        return FIXED_SIZES[column_type]
    if column_type == "JSON":
        return len(compact(value).encode())
    return STRING_OVERHEAD + len(str(value).encode())


def compact(value: Any) -> str:
    """JSON text without spaces (a JSON column read back may be text or parsed)."""
    parsed = json.loads(value) if isinstance(value, str) else value
    return json.dumps(parsed, separators=(",", ":"), ensure_ascii=False)


def json_value_bytes(value: Any, column_type: str) -> int:
    """The billed size of a typed column filled from a JSON value (`JSON_VALUE`/`SAFE_CAST`)."""
    if value is None or (isinstance(value, dict | list) and column_type != "JSON"):
        return 0
    if column_type == "STRING" and not isinstance(value, str):
        value = json.dumps(value)
    return logical_bytes(value, column_type)


EVENT_TYPES = {field.name: field.field_type for field in table_schema(EVENTS_TABLE)}
# The upkeep's average day-partition scan: an hourly MERGE reading `received_at >= last run`
# prunes to the day's partition, whose rows for the workspace and type it reads whole
# (clustering has no time key): after hour h it holds h hours, 12.5 on average over a day.
MEAN_HOURS_SCANNED = statistics.mean(range(1, 25))
# "Last 24 hours" selects yesterday's partition and today's so far: 1.5 days on average.
LAST_DAY_PARTITION_DAYS = 1.5


def row_bytes(row: Mapping[str, Any], columns: Sequence[str]) -> int:
    return sum(logical_bytes(row.get(column), EVENT_TYPES[column]) for column in columns)


def json_leaf_bytes(value: Any) -> int:
    """A JSON value's size as its own typed column would hold it."""
    if isinstance(value, bool):
        return 1
    if isinstance(value, int | float):
        return 8
    if isinstance(value, str):
        return STRING_OVERHEAD + len(value.encode())
    return 0 if value is None else len(compact(value).encode())


def view_columns(query: AnalystQuery) -> tuple[str, ...]:
    name_filter = ("event_name",) if query.event_name else ()
    return tuple(
        dict.fromkeys((*FILTER_COLUMNS, *name_filter, *DEDUP_COLUMNS, *query.view_columns))
    )


def scanned_by_view(query: AnalystQuery, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
    """Every stored row of the view's type (and name), every partition, copies included."""
    return [
        r
        for r in rows
        if r["event_type"] == query.event_type
        and (query.event_name is None or r["event_name"] == query.event_name)
    ]


def view_row_bytes(query: AnalystQuery, row: Mapping[str, Any], paths_only: bool) -> int:
    """A: the view's columns of one row; JSON columns whole, or (paths_only) only the paths the
    query reads, as if BigQuery billed a JSON column's accessed paths alone."""
    columns = view_columns(query)
    if not paths_only:
        return row_bytes(row, columns)
    plain = [c for c in columns if EVENT_TYPES[c] != "JSON"]
    return row_bytes(row, plain) + sum(
        json_leaf_bytes(at(row[p[0]], *p[1:])) for p in query.json_paths
    )


def table_rows(query: AnalystQuery, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
    """B: the maintained table's rows (one per messageId; users one per userId, the newest)."""
    unique = [r for r in first_copies(rows) if matches(query, r)]
    if query.table != "users":
        return unique
    newest: dict[str, Any] = {}
    for r in unique:
        held = newest.get(r["user_id"])
        if held is None or moment(r["timestamp"]) > moment(held["timestamp"]):
            newest[r["user_id"]] = r
    return list(newest.values())


def table_row_bytes(query: AnalystQuery, row: Mapping[str, Any]) -> int:
    size = sum(
        json_value_bytes(at(row[source], *path), column_type)
        for _, column_type, source, path in query.typed_columns
    )
    return size + (FIXED_SIZES["TIMESTAMP"] if query.since else 0)


def read_columns(view_sql: str) -> tuple[str, ...]:
    """The `events` columns a view's SQL names (string literals, e.g. JSON paths, left out)."""
    code = re.sub(r"'(?:[^'\\]|\\.)*'|`[^`]*`", "", view_sql)
    named = set(re.findall(r"\b[a-z_]+\b", code))
    return tuple(column for column in EVENT_TYPES if column in named)


@dataclass
class TableStats:
    """One warehouse table's rows in the bench's workspace, and the bytes its upkeep reads."""

    name: str
    stored_rows: int  # scanned by its MERGE's source (copies included)
    target_rows: int  # in the maintained table
    source_bytes: int  # the columns its SELECT reads, over the stored rows
    id_bytes: int  # the target's id column
    table_bytes: int  # the whole target (approximated by the source columns of its rows)


def table_stats(
    name: str, kind: TableKind, event_text: str | None, sql: str, rows: Sequence[Mapping[str, Any]]
) -> TableStats:
    stored = [
        r
        for r in rows
        if r["event_type"] == TABLE_EVENT_TYPES[kind]
        and (kind != "event" or r["event_name"] == event_text)
        and (kind != "users" or r["user_id"] is not None)
    ]
    unique = first_copies(stored)
    columns = read_columns(sql)
    if kind == "users":
        by_user = {r["user_id"]: r for r in unique}
        target, ids = list(by_user.values()), [r["user_id"] for r in by_user.values()]
    else:
        target, ids = unique, [r["message_id"] for r in unique]
    return TableStats(
        name,
        len(stored),
        len(target),
        sum(row_bytes(r, columns) for r in stored),
        sum(logical_bytes(i, "STRING") for i in ids),
        sum(row_bytes(r, columns) for r in target),
    )


@dataclass(frozen=True)
class Workload:
    """A workspace's stored events per hour (copies included) and the days its `events` hold."""

    rows_per_hour: float
    history_days: float

    @property
    def history_rows(self) -> float:
        return self.rows_per_hour * 24 * self.history_days


def billed(processed: float) -> float:
    return max(processed, MIN_BILLED_PER_TABLE)


def dollars(billed_bytes: float) -> float:
    return billed_bytes * DOLLARS_PER_BYTE


def upkeep_per_day(
    stats: Sequence[TableStats],
    total_rows: int,
    workload: Workload,
    hours_scanned: float,
    dedup_days: float | None = None,
) -> dict[str, float]:
    """B's hourly MERGE per table with new rows, over a day: it reads the new rows' columns
    (`hours_scanned` hours of them: the day partition so far) and the target's id column to drop
    copies, over all history as the views do (or the last `dedup_days`). An insert-only MERGE
    is billed what it reads; the users table's MERGE updates rows, so it is billed the whole
    table too (the DML page's "q + t")."""
    days = workload.history_days if dedup_days is None else min(dedup_days, workload.history_days)
    per_row = workload.rows_per_hour / total_rows
    processed = billed_bytes = 0.0
    for s in stats:
        if s.stored_rows == 0:
            continue  # no new rows, no MERGE
        source = hours_scanned * per_row * s.source_bytes
        target = per_row * 24 * days * s.id_bytes
        if s.name == "users":
            target += workload.history_rows / total_rows * s.table_bytes
        processed += 24 * (source + target)
        billed_bytes += 24 * (billed(source) + billed(target))
    return {
        "processed_bytes": processed,
        "billed_bytes": billed_bytes,
        "usd": dollars(billed_bytes),
    }


def stored_copy(
    stats: Sequence[TableStats], total_rows: int, workload: Workload
) -> dict[str, float]:
    """B's tables are a second copy of the workspace's events: their size and monthly price."""
    size = workload.history_rows / total_rows * sum(s.table_bytes for s in stats)
    return {"bytes": size, "usd_per_month": size * BIGQUERY_STORAGE.per_unit()}


def query_costs(
    query: AnalystQuery, rows: Sequence[Mapping[str, Any]], workload: Workload
) -> dict[str, Any]:
    """A and B of one query, scaled from the bench's rows (per stored row) to the workload."""
    scale = workload.history_rows / len(rows)
    scanned = scanned_by_view(query, rows)
    table_days = LAST_DAY_PARTITION_DAYS if query.since else workload.history_days
    costs: dict[str, Any] = {
        "views": scale * sum(view_row_bytes(query, r, False) for r in scanned),
        "views_json_paths_only": scale * sum(view_row_bytes(query, r, True) for r in scanned),
        "tables": table_days
        / workload.history_days
        * scale
        * sum(table_row_bytes(query, r) for r in table_rows(query, rows)),
    }
    return {
        **{f"{k}_bytes": v for k, v in costs.items()},
        **{f"{k}_usd": dollars(billed(v)) for k, v in costs.items()},
    }


def bench_bytes(
    query: AnalystQuery, rows: Sequence[Mapping[str, Any]], since: datetime
) -> dict[str, int]:
    """A and B of one query on the bench's own rows, exactly (no minimum, no scaling)."""
    scanned = scanned_by_view(query, rows)
    kept = [
        r
        for r in table_rows(query, rows)
        if not query.since or moment(r["received_at"]).date() >= since.date()
    ]
    return {
        "views_rows": len(scanned),
        "views_bytes": sum(view_row_bytes(query, r, False) for r in scanned),
        "views_json_paths_only_bytes": sum(view_row_bytes(query, r, True) for r in scanned),
        "tables_rows": len(kept),
        "tables_bytes": sum(table_row_bytes(query, r) for r in kept),
    }


def break_even(
    upkeep_usd: float, per_query: Sequence[Mapping[str, Any]], views: str = "views"
) -> dict[str, Any]:
    """Analyst queries a day above which B's upkeep costs less than what its queries save
    (None when B saves nothing: both billed the minimum)."""
    savings = [q[f"{views}_usd"] - q["tables_usd"] for q in per_query]
    mixed = statistics.mean(savings)
    return {
        "per_query": [upkeep_usd / s if s > 0 else None for s in savings],
        "even_mix": upkeep_usd / mixed if mixed > 0 else None,
    }
