"""Start bqemulator offline; run with the .venv-bq interpreter (imports nothing from Streams)."""

from __future__ import annotations

import argparse
import os
from typing import Any


def _skip_spatial(self: Any) -> None:
    """Stand in for DuckDBEngine._load_spatial: GEOGRAPHY is unused and needs a download."""


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

    # Offline, INSTALL spatial fails and bqemulator refuses to start.
    DuckDBEngine._load_spatial = _skip_spatial
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
