"""BigQuery adapter: the `events` table (and the emulator-aware client)."""

from __future__ import annotations

import json
from pathlib import Path

from google.api_core import retry as gretry
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from shared.adapters.errors import CALL_TIMEOUT_SECONDS, TRANSIENT_ERRORS, transient_as_unavailable
from shared.config import Settings
from shared.domain.errors import Unavailable
from shared.domain.storage import CLUSTERING_FIELDS, EVENTS_TABLE, PARTITION_FIELD
from shared.ports import Document

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas" / "bigquery"
# The client retries for 600 s by default: far longer than any request or push may wait.
RETRY = gretry.Retry(
    predicate=gretry.if_exception_type(*TRANSIENT_ERRORS), timeout=CALL_TIMEOUT_SECONDS
)


def new_client(settings: Settings) -> bigquery.Client:
    """A client for the project; against the emulator when `bigquery_emulator_url` is set."""
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
