"""BigQuery adapter: the `events` table (and the emulator-aware client)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from google.api_core import exceptions as gexc
from google.api_core import retry as gretry
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from shared.adapters import operation_counts
from shared.adapters.errors import CALL_TIMEOUT_SECONDS, TRANSIENT_ERRORS, transient_as_unavailable
from shared.config import Settings
from shared.domain.errors import Unavailable
from shared.domain.event import CanonicalEvent
from shared.domain.storage import (
    CLUSTERING_FIELDS,
    EVENT_COLUMNS,
    EVENTS_TABLE,
    PARTITION_FIELD,
    row_event,
)
from shared.ports import Document, EventQuery, EventSummary

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas" / "bigquery"
# The client retries for 600 s by default: far longer than any request or push may wait.
RETRY = gretry.Retry(
    predicate=gretry.if_exception_type(*TRANSIENT_ERRORS), timeout=CALL_TIMEOUT_SECONDS
)


def new_client(settings: Settings) -> bigquery.Client:
    """A client for the project; against the emulator when `bigquery_emulator_url` is set."""
    operation_counts.export_to(settings.operation_counts_dir)
    if settings.bigquery_emulator_url:
        return bigquery.Client(
            project=settings.project_id,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=settings.bigquery_emulator_url),
        )
    return bigquery.Client(project=settings.project_id)


def table_schema(name: str) -> list[bigquery.SchemaField]:
    """A table's schema from the JSON file Terraform deploys too."""
    text = (SCHEMA_DIR / f"{name}.json").read_text()
    return [bigquery.SchemaField.from_api_repr(field) for field in json.loads(text)]


def ensure_tables(client: bigquery.Client, dataset: str) -> None:
    """Create the dataset and the `events` table if missing (production: Terraform does)."""
    client.create_dataset(dataset, exists_ok=True, retry=RETRY)
    table = bigquery.Table(
        f"{client.project}.{dataset}.{EVENTS_TABLE}", schema=table_schema(EVENTS_TABLE)
    )
    table.time_partitioning = bigquery.TimePartitioning(
        type_=bigquery.TimePartitioningType.DAY, field=PARTITION_FIELD
    )
    table.clustering_fields = list(CLUSTERING_FIELDS)
    client.create_table(table, exists_ok=True, retry=RETRY)


class BigQueryEventStore:
    """Streams rows into the `events` table."""

    def __init__(self, client: bigquery.Client, dataset: str):
        self._client = client
        self._table = f"{client.project}.{dataset}.{EVENTS_TABLE}"

    def insert(self, rows: list[Document], row_ids: list[str]) -> None:
        # row_ids are messageIds: BigQuery's best-effort dedup of a retried insert.
        with transient_as_unavailable("BigQuery"):
            errors = self._client.insert_rows_json(
                self._table, rows, row_ids=row_ids, retry=RETRY, timeout=CALL_TIMEOUT_SECONDS
            )
        if errors:
            raise Unavailable(f"BigQuery refused {len(errors)} rows: {str(errors)[:500]}")
        operation_counts.bigquery_streamed(rows)

    def volume(
        self,
        workspace_id: str,
        since: datetime,
        *,
        granularity: Literal["hour", "day"] = "hour",
        time_zone: str = "UTC",
        source_id: str | None = None,
    ) -> list[Document]:
        # A constant lower bound on the partitioning column: BigQuery prunes to the days it spans.
        where = "workspace_id = @workspace_id AND received_at >= @since"
        params = [
            _param("workspace_id", "STRING", workspace_id),
            _param("since", "TIMESTAMP", since),
        ]
        # Hours are UTC hours (the seed's hour_bucket); days start at midnight in `time_zone`.
        bucket = "TIMESTAMP_TRUNC(received_at, HOUR)"
        if granularity == "day":
            bucket = "TIMESTAMP_TRUNC(received_at, DAY, @time_zone)"
            params.append(_param("time_zone", "STRING", time_zone))
        if source_id is not None:
            where += " AND source_id = @source_id"
            params.append(_param("source_id", "STRING", source_id))
        sql = f"""
            SELECT event_type, event_name,
                   {bucket} AS bucket,
                   COUNT(*) AS event_count
            FROM `{self._table}`
            WHERE {where}
            GROUP BY event_type, event_name, bucket
            ORDER BY bucket, event_type, event_name"""
        return [dict(row) for row in self._query(sql, params)]

    def counts_by_source(self, workspace_id: str, since: datetime) -> dict[str, int]:
        sql = f"""
            SELECT source_id, COUNT(*) AS event_count
            FROM `{self._table}`
            WHERE workspace_id = @workspace_id AND received_at >= @since
            GROUP BY source_id"""
        params = [
            _param("workspace_id", "STRING", workspace_id),
            _param("since", "TIMESTAMP", since),
        ]
        return {row["source_id"]: int(row["event_count"]) for row in self._query(sql, params)}

    def consent_denials(
        self, workspace_id: str, since: datetime, destination_id: str | None = None
    ) -> list[Document]:
        where = "workspace_id = @workspace_id AND received_at >= @since"
        params = [
            _param("workspace_id", "STRING", workspace_id),
            _param("since", "TIMESTAMP", since),
        ]
        if destination_id is not None:
            where += " AND destination_id = @destination_id"
            params.append(_param("destination_id", "STRING", destination_id))
        sql = f"""
            SELECT destination_id, TIMESTAMP_TRUNC(received_at, HOUR) AS bucket,
                   COUNT(*) AS event_count
            FROM `{self._table}`, UNNEST(consent_denied) AS destination_id
            WHERE {where}
            GROUP BY destination_id, bucket
            ORDER BY bucket, destination_id"""
        return [dict(row) for row in self._query(sql, params)]

    def find(self, query: EventQuery) -> list[Document]:
        where, params = _event_filter(query)
        sql = f"""
            SELECT {", ".join(FOUND_COLUMNS)}
            FROM `{self._table}`
            WHERE {where}
            ORDER BY received_at DESC, message_id DESC
            LIMIT @limit"""
        params.append(_param("limit", "INT64", query.limit))
        return [_found(dict(row)) for row in self._query(sql, params)]

    def summarise(self, query: EventQuery) -> EventSummary:
        where, params = _event_filter(query)
        sql = f"""
            SELECT COUNT(*) AS total_events,
                   COUNT(DISTINCT IF(event_type = 'track', event_name, event_type))
                     AS unique_event_types
            FROM `{self._table}`
            WHERE {where}"""
        [row] = list(self._query(sql, params))
        return EventSummary(int(row["total_events"]), int(row["unique_event_types"]))

    def recent(
        self,
        workspace_id: str,
        limit: int,
        *,
        source_id: str | None = None,
        event_name: str | None = None,
        since: datetime | None = None,
    ) -> list[CanonicalEvent]:
        where = [
            "workspace_id = @workspace_id",
            "received_at >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL @days_back DAY)",
        ]
        params = [
            _param("workspace_id", "STRING", workspace_id),
            _param("days_back", "INT64", RECENT_DAYS),
            _param("limit", "INT64", limit),
        ]
        if since is not None:
            where.append("received_at >= @since")
            params.append(_param("since", "TIMESTAMP", since))
        if source_id is not None:
            where.append("source_id = @source_id")
            params.append(_param("source_id", "STRING", source_id))
        if event_name is not None:
            where.append("event_name = @event_name")
            params.append(_param("event_name", "STRING", event_name))
        sql = f"""
            SELECT {", ".join(EVENT_COLUMNS)}
            FROM `{self._table}`
            WHERE {" AND ".join(where)}
            ORDER BY received_at DESC, message_id DESC
            LIMIT @limit"""
        return [row_event(dict(row)) for row in self._query(sql, params)]

    def delete_user(self, workspace_id: str, column: str, value: str) -> int:
        if column not in ("user_id", "anonymous_id"):
            raise ValueError(f"cannot delete by {column!r}")
        # DML; real BigQuery refuses it while matching rows are still in the streaming buffer
        # (up to ~90 minutes after insertAll): that answer is a 400, reported as Unavailable.
        sql = (
            f"DELETE FROM `{self._table}` WHERE workspace_id = @workspace_id AND {column} = @value"
        )
        params = [
            _param("workspace_id", "STRING", workspace_id),
            _param("value", "STRING", value),
        ]
        job = run_job(self._client, sql, params, "the deletion")
        return int(job.num_dml_affected_rows or 0)

    def _query(self, sql: str, params: list[bigquery.ScalarQueryParameter]) -> list[Any]:
        config = bigquery.QueryJobConfig(query_parameters=params)
        with transient_as_unavailable("BigQuery"):
            job = self._client.query(sql, job_config=config, retry=RETRY)
            return list(job.result(timeout=QUERY_TIMEOUT_SECONDS))


# What the event readers need of a row (never `SELECT *`: BigQuery bills by columns read).
FOUND_COLUMNS = (
    "message_id",
    "source_id",
    "event_type",
    "event_name",
    "user_id",
    "anonymous_id",
    "timestamp",
    "received_at",
    "properties",
    "traits",
    "context",
)
QUERY_TIMEOUT_SECONDS = 30.0
# How far back `recent` looks: a bound on the partitioning column, so it never scans the table.
RECENT_DAYS = 7


def run_job(client: bigquery.Client, sql: str, params: list[Any], what: str) -> bigquery.QueryJob:
    """Run a statement to its end; BigQuery refusing it (a 400: DML on rows still in the
    streaming buffer, a view it cannot build) is Unavailable, naming `what`."""
    config = bigquery.QueryJobConfig(query_parameters=params)
    try:
        with transient_as_unavailable("BigQuery"):
            job = client.query(sql, job_config=config, retry=RETRY)
            job.result(timeout=QUERY_TIMEOUT_SECONDS)
    except gexc.BadRequest as exc:
        raise Unavailable(f"BigQuery refused {what}: {exc.message}"[:500]) from exc
    return job


def _param(name: str, type_: str, value: Any) -> bigquery.ScalarQueryParameter:
    return bigquery.ScalarQueryParameter(name, type_, value)


def _event_filter(query: EventQuery) -> tuple[str, list[bigquery.ScalarQueryParameter]]:
    """The WHERE clause of an `EventQuery`: always bounded on the partitioning column."""
    clauses = ["workspace_id = @workspace_id", "received_at >= @since"]
    params = [
        _param("workspace_id", "STRING", query.workspace_id),
        _param("since", "TIMESTAMP", query.since),
    ]
    if query.until is not None:
        clauses.append("received_at < @until")
        params.append(_param("until", "TIMESTAMP", query.until))
    if query.source_id is not None:
        clauses.append("source_id = @source_id")
        params.append(_param("source_id", "STRING", query.source_id))
    if query.stream_type is not None:
        # Spelled out, not IF(...) = @t, so that clustering on event_type/event_name still prunes.
        clauses.append(
            "((event_type = 'track' AND event_name = @stream_type)"
            " OR (event_type != 'track' AND event_type = @stream_type))"
        )
        params.append(_param("stream_type", "STRING", query.stream_type))
    return " AND ".join(clauses), params


def _found(row: Document) -> Document:
    # The real service returns JSON columns parsed; some emulator versions return text.
    for field in ("properties", "traits", "context"):
        if isinstance(row.get(field), str):
            row[field] = json.loads(row[field])
    return row
