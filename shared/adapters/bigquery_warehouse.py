"""BigQuery adapter of the warehouse: each workspace's dataset of views over `events`, the sample
a sync observes, and retention's deletes."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import bigquery

from shared.adapters.bigquery import QUERY_TIMEOUT_SECONDS, RETRY, run_job
from shared.adapters.errors import transient_as_unavailable
from shared.adapters.warehouse_sql import identifier, view_sql
from shared.domain.errors import Unavailable
from shared.domain.storage import EVENTS_TABLE
from shared.domain.warehouse import Layout
from shared.ports import ObservedRow

# DDL statements per multi-statement job (BigQuery runs them one after the other).
STATEMENTS_PER_SCRIPT = 25
# Reads and writes of the events dataset's access list raced by other syncs, at most.
AUTHORISE_ATTEMPTS = 5


class BigQueryWarehouse:
    """Writes a workspace's views into its own dataset, authorised to read `events`."""

    def __init__(self, client: bigquery.Client, dataset: str):
        self._client = client
        self._events_dataset = f"{client.project}.{dataset}"
        self._events_table = f"{self._events_dataset}.{EVENTS_TABLE}"

    def sample(
        self, workspace_id: str, since: datetime, until: datetime, per_stream: int
    ) -> list[ObservedRow]:
        # The newest `per_stream` rows of each type and name: what a sync infers types from.
        sql = f"""
            SELECT event_type, event_name, properties, traits
            FROM {identifier(self._events_table)}
            WHERE workspace_id = @workspace_id AND received_at >= @since AND received_at < @until
              AND event_type != 'alias'
            QUALIFY ROW_NUMBER() OVER (
              PARTITION BY event_type, event_name ORDER BY received_at DESC) <= @per_stream"""
        params = [
            bigquery.ScalarQueryParameter("workspace_id", "STRING", workspace_id),
            bigquery.ScalarQueryParameter("since", "TIMESTAMP", since),
            bigquery.ScalarQueryParameter("until", "TIMESTAMP", until),
            bigquery.ScalarQueryParameter("per_stream", "INT64", per_stream),
        ]
        observed: list[ObservedRow] = []
        for row in self._run(sql, params):
            field = "traits" if row["event_type"] in ("identify", "group") else "properties"
            values = row[field]
            values = json.loads(values) if isinstance(values, str) else values
            observed.append(
                (row["event_type"], row["event_name"], values if isinstance(values, dict) else None)
            )
        return observed

    def views(
        self, workspace_id: str, layout: Layout, retention_days: int | None
    ) -> dict[str, str]:
        return {
            table.name: view_sql(table, layout, self._events_table, workspace_id, retention_days)
            for table in layout.tables
        }

    def apply(
        self, workspace_id: str, dataset: str, views: Mapping[str, str], drop: Iterable[str]
    ) -> None:
        full = f"{self._client.project}.{dataset}"
        target = bigquery.Dataset(full)
        target.labels = {"streams_workspace": _label(workspace_id)}
        target.description = f"Streams warehouse of workspace {workspace_id} (views over events)"
        with transient_as_unavailable("BigQuery"):
            events = self._client.get_dataset(self._events_dataset, retry=RETRY)
            # A view and the table it reads must be in one location: the events dataset's.
            target.location = events.location
            self._client.create_dataset(target, exists_ok=True, retry=RETRY)
        statements = [
            f"CREATE OR REPLACE VIEW {identifier(f'{full}.{name}')} AS\n{select}"
            for name, select in views.items()
        ]
        statements += [
            f"DROP VIEW IF EXISTS {identifier(f'{full}.{name}')}" for name in sorted(drop)
        ]
        # One script per chunk: a job (and a round trip) per view would make a first sync of
        # hundreds of event tables slow; a chunk keeps each job well inside its timeout.
        for start in range(0, len(statements), STATEMENTS_PER_SCRIPT):
            self._run(";\n".join(statements[start : start + STATEMENTS_PER_SCRIPT]))
        self._authorise(full, events)

    def delete_expired(self, workspace_id: str, before: datetime) -> int:
        """Delete the workspace's events received before `before` (its retention)."""
        sql = (
            f"DELETE FROM {identifier(self._events_table)}"
            " WHERE workspace_id = @workspace_id AND received_at < @before"
        )
        params = [
            bigquery.ScalarQueryParameter("workspace_id", "STRING", workspace_id),
            bigquery.ScalarQueryParameter("before", "TIMESTAMP", before),
        ]
        job = self._job(sql, params)
        return int(job.num_dml_affected_rows or 0)

    def _authorise(self, full: str, events: bigquery.Dataset) -> None:
        """Let the views of the workspace's dataset read `events` (an authorised dataset), so an
        analyst given that dataset alone reads their workspace's rows and no other's. `events`
        is the events dataset as last read; it is read again only when another sync raced."""
        project, dataset = full.split(".", 1)
        entry = bigquery.AccessEntry(
            None,
            "dataset",
            {"dataset": {"projectId": project, "datasetId": dataset}, "targetTypes": ["VIEWS"]},
        )
        for attempt in range(AUTHORISE_ATTEMPTS):
            with transient_as_unavailable("BigQuery"):
                if attempt:
                    events = self._client.get_dataset(self._events_dataset, retry=RETRY)
                if any(e.entity_id == entry.entity_id for e in events.access_entries):
                    return
                events.access_entries = [*events.access_entries, entry]
                try:
                    # The read's etag goes along: another sync's entry added meanwhile is a 412,
                    # never overwritten; read again and add ours to theirs.
                    self._client.update_dataset(events, ["access_entries"], retry=RETRY)
                    return
                except gexc.PreconditionFailed:
                    if attempt == AUTHORISE_ATTEMPTS - 1:
                        raise Unavailable("the events dataset kept changing; sync again") from None

    def _run(self, sql: str, params: list[Any] | None = None) -> list[Any]:
        job = self._job(sql, params or [])
        return list(job.result(timeout=QUERY_TIMEOUT_SECONDS))

    def _job(self, sql: str, params: list[Any]) -> bigquery.QueryJob:
        return run_job(self._client, sql, params, "a warehouse statement")


def _label(value: str) -> str:
    """A label value: lower-case letters, digits, `_` and `-`, at most 63 characters."""
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in value.lower())[:63]
