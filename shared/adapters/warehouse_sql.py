"""The BigQuery SQL of the warehouse views (docs/WAREHOUSE.md), from a workspace's layout.

Every view reads the `events` table of its workspace only, keeps the first copy of each
messageId (over all time: `QUALIFY ROW_NUMBER() ... = 1`, so a duplicate stored days apart is
still seen once), and hides rows past the workspace's retention. Values are read from the JSON
columns with JSONPath literals and SAFE_CAST, so a value that does not fit its column is NULL
there and stays in the JSON column, never an error.
"""

from __future__ import annotations

import re

from shared.domain.warehouse import (
    CONTEXT_COLUMNS,
    PAGE_FIELDS,
    STORED_COLUMNS,
    TABLE_EVENT_TYPES,
    Column,
    ColumnType,
    Layout,
    Table,
    json_column,
)

_SQL_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r"}
# One copy per messageId: the first received (source_id breaks a tie deterministically).
FIRST_COPY = (
    "QUALIFY ROW_NUMBER() OVER (PARTITION BY message_id ORDER BY received_at, source_id) = 1"
)
# The `event` column of tracks for names the last sync had not seen yet: Segment's snake_case
# approximated in SQL (the layout's table names cover every name it has seen).
SNAKE_CASE_SQL = (
    "TRIM(REGEXP_REPLACE(LOWER(REGEXP_REPLACE(event_name, r'([a-z0-9])([A-Z])', r'\\1_\\2')),"
    " r'[^a-z0-9]+', '_'), '_')"
)


def literal(text: str) -> str:
    """A BigQuery string literal."""
    return "'" + re.sub(r"[\\'\n\r]", lambda m: _SQL_ESCAPES[m.group()], text) + "'"


def identifier(name: str) -> str:
    """A quoted identifier (names come from `warehouse_names`, but quote anyway)."""
    return "`" + name.replace("`", "") + "`"


def json_path(*keys: str) -> str:
    """A JSONPath literal naming nested keys (each addressable, see `warehouse_names`)."""
    return literal("$" + "".join(f'."{key}"' for key in keys))


def typed_value(source: str, path: str, column_type: ColumnType) -> str:
    """A JSON value as a column of `column_type`; NULL where it does not fit."""
    if column_type == "JSON":
        return f"JSON_QUERY({source}, {path})"
    if column_type == "STRING":
        return f"JSON_VALUE({source}, {path})"
    return f"SAFE_CAST(JSON_VALUE({source}, {path}) AS {column_type})"


def view_sql(
    table: Table,
    layout: Layout,
    events_table: str,
    workspace_id: str,
    retention_days: int | None,
) -> str:
    """The SELECT a view runs."""
    if table.kind == "users":
        return _users_sql(table, events_table, workspace_id, retention_days)
    columns = _event_columns()
    if table.kind == "tracks":
        columns += [f"{_event_column(layout)} AS event", "event_name AS event_text"]
    if table.kind == "event":
        # Its own name, not the CASE over every event: a new event rewrites no other event's view.
        columns += [f"{literal(table.name)} AS event", "event_name AS event_text"]
    if table.kind in ("pages", "screens"):
        columns.append("event_name AS name")
    if table.kind == "pages":
        columns += [
            f"{typed_value('properties', json_path(f), 'STRING')} AS {f}" for f in PAGE_FIELDS
        ]
    if table.kind == "groups":
        columns.append("group_id")
    if table.kind == "aliases":
        columns.append("previous_id")
    source = json_column(table.kind)
    columns += [_column(source, column) for column in table.columns]
    if table.kind != "aliases":
        columns.append(f"{source} AS {source}")
    where = _where(table, events_table, workspace_id, retention_days)
    return f"SELECT {', '.join(columns)}\n{where}\n{FIRST_COPY}"


def _event_columns() -> list[str]:
    columns = [
        stored if stored == name else f"{stored} AS {name}" for stored, name in STORED_COLUMNS
    ]
    for path, name, column_type in CONTEXT_COLUMNS:
        columns.append(f"{typed_value('context', json_path(*path), column_type)} AS {name}")
    return columns


def _event_column(layout: Layout) -> str:
    tables = layout.event_tables()
    if not tables:
        return SNAKE_CASE_SQL
    cases = " ".join(
        f"WHEN {literal(name)} THEN {literal(table)}" for name, table in tables.items()
    )
    return f"CASE event_name {cases} ELSE {SNAKE_CASE_SQL} END"


def _column(source: str, column: Column) -> str:
    return f"{typed_value(source, json_path(column.key), column.type)} AS {identifier(column.name)}"


def _where(table: Table, events_table: str, workspace_id: str, retention_days: int | None) -> str:
    clauses = [
        f"workspace_id = {literal(workspace_id)}",
        f"event_type = {literal(TABLE_EVENT_TYPES[table.kind])}",
    ]
    if table.kind == "event" and table.event_text is not None:
        clauses.append(f"event_name = {literal(table.event_text)}")
    if retention_days is not None:
        clauses.append(
            f"received_at >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL {int(retention_days)} DAY)"
        )
    return f"FROM {identifier(events_table)}\nWHERE {' AND '.join(clauses)}"


def _users_sql(
    table: Table, events_table: str, workspace_id: str, retention_days: int | None
) -> str:
    """One row per userId: the latest identify's anonymousId, time and traits, and each trait's
    latest value that fits its column (FIRST_VALUE ... IGNORE NULLS, newest first)."""
    where = _where(table, events_table, workspace_id, retention_days)
    identifies = (
        "SELECT message_id, user_id, anonymous_id, received_at, timestamp, traits\n"
        f"{where} AND user_id IS NOT NULL\n{FIRST_COPY}"
    )
    columns = [
        "user_id AS id",
        "FIRST_VALUE(anonymous_id IGNORE NULLS) OVER every_identify AS anonymous_id",
        "FIRST_VALUE(received_at) OVER every_identify AS received_at",
    ]
    for column in table.columns:
        value = typed_value("traits", json_path(column.key), column.type)
        latest = f"FIRST_VALUE({value} IGNORE NULLS) OVER every_identify"
        if column.type == "JSON":
            # A JSON value goes through the window as its text: bqemulator cannot take JSON in
            # FIRST_VALUE ... IGNORE NULLS, and text reads back as the same JSON.
            text = f"IF({value} IS NULL, NULL, TO_JSON_STRING({value}))"
            latest = f"PARSE_JSON(FIRST_VALUE({text} IGNORE NULLS) OVER every_identify)"
        columns.append(f"{latest} AS {identifier(column.name)}")
    columns.append("FIRST_VALUE(traits) OVER every_identify AS traits")
    newest_first = "PARTITION BY user_id ORDER BY timestamp DESC, received_at DESC, message_id"
    return (
        f"SELECT {', '.join(columns)}\nFROM ({identifies})\n"
        f"QUALIFY ROW_NUMBER() OVER ({newest_first}) = 1\n"
        f"WINDOW every_identify AS ({newest_first}"
        " ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)"
    )
