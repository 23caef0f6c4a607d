"""Start bqemulator offline; run with the .venv-bq interpreter (imports nothing from Streams)."""

from __future__ import annotations

import argparse
import os
from typing import Any


def _skip_spatial(self: Any) -> None:
    """Stand in for DuckDBEngine._load_spatial: GEOGRAPHY is unused and needs a download."""


def _record_change_without_snapshot(
    self: Any, project_id: str, dataset_id: str, table_id: str
) -> None:
    """Stand in for SnapshotManager.record_change: tell the query cache and views, copy nothing.

    bqemulator serves `FOR SYSTEM_TIME AS OF` by copying the whole table after every write and
    keeping each copy for 7 days, so a streaming insert costs time in proportion to the table
    and memory grows with its square: a local stack taking 20 events/s held 14 GB after an
    hour. Streams never reads time travel, and real BigQuery's inserts cost the same at any
    table size.
    """
    from bqemulator.domain.events import TableDataChanged

    self._events.publish(TableDataChanged(project_id, dataset_id, table_id))


def main(argv: list[str] | None = None) -> None:
    """Parse our few options and hand over to bqemulator's own CLI."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--rest-port", type=int, default=int(os.environ.get("STREAMS_BIGQUERY_PORT", "9050"))
    )
    parser.add_argument(
        "--grpc-port", type=int, default=int(os.environ.get("STREAMS_BIGQUERY_GRPC_PORT", "9060"))
    )
    parser.add_argument("--project", default=os.environ.get("STREAMS_PROJECT_ID", "streams-local"))
    args = parser.parse_args(argv)

    # The avro extension is also downloaded at boot; offline that only costs ~2 s and a warning.
    os.environ.setdefault("BQEMU_ENABLE_FORMAT_EXTENSIONS", "false")

    from bqemulator import cli
    from bqemulator.storage.engine import DuckDBEngine
    from bqemulator.versioning.snapshots import SnapshotManager

    # Offline, INSTALL spatial fails and bqemulator refuses to start.
    DuckDBEngine._load_spatial = _skip_spatial
    SnapshotManager.record_change = _record_change_without_snapshot
    cli.main(
        args=[
            "start",
            "--rest-host",
            args.host,
            "--rest-port",
            str(args.rest_port),
            "--grpc-host",
            args.host,
            "--grpc-port",
            str(args.grpc_port),
            "--project",
            args.project,
        ],
        prog_name="bqemulator",
    )


if __name__ == "__main__":
    main()
