"""`python -m bench.pipeline`: the command line (flags, or environment variables for `make`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from bench import pipeline
from bench.pipeline.run import run
from bench.running import catch_interrupts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline", description=pipeline.__doc__)
    add_sending_options(parser)
    add_stack_options(parser)
    args = parser.parse_args(argv)
    catch_interrupts()
    return run(args)


def add_sending_options(parser: argparse.ArgumentParser) -> None:
    """What is sent, how fast, how, and how long the bench waits around it."""
    env = os.environ.get
    parser.add_argument("--rate", type=float, default=float(env("BENCH_RATE", "100")))
    parser.add_argument(
        "--duration", type=float, default=float(env("BENCH_PIPELINE_DURATION", "30"))
    )
    parser.add_argument("--warmup", type=float, default=float(env("BENCH_PIPELINE_WARMUP", "5")))
    parser.add_argument(
        "--drain",
        type=float,
        default=float(env("BENCH_DRAIN", "30")),
        help="seconds to wait for deliveries after sending stops; later ones count as lost",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=float(env("BENCH_SETTLE", "6")),
        help="seconds between creating the rule and sending (routing is cached up to 5 s)",
    )
    parser.add_argument("--senders", type=int, default=int(env("BENCH_SENDERS", "8")))
    parser.add_argument(
        "--batch-size",
        type=int,
        default=int(env("BENCH_PIPELINE_BATCH_SIZE", "1")),
        help="events per request: 1 sends POST /v1/track, more send POST /v1/batch",
    )
    parser.add_argument(
        "--sdk",
        action="store_true",
        default=env("BENCH_SDK", "") == "1",
        help="send through the real Segment SDK (its default batching) instead of raw requests",
    )
    parser.add_argument(
        "--via",
        choices=("gateway", "ingest"),
        default=env("BENCH_VIA", "gateway"),
        help="send through the local gateway (default) or straight to the ingest function",
    )


def add_stack_options(parser: argparse.ArgumentParser) -> None:
    """Where the stack runs, and what the run leaves behind."""
    env = os.environ.get
    parser.add_argument("--gateway-port", type=int, default=int(env("BENCH_GATEWAY_PORT", "27080")))
    parser.add_argument(
        "--functions-port",
        type=int,
        default=int(env("BENCH_FUNCTIONS_PORT", "27100")),
        help="first of the consecutive ports of the functions",
    )
    parser.add_argument(
        "--project",
        default=env("BENCH_PROJECT_ID", "streams-bench"),
        help="Pub/Sub and Firestore project on the emulators (kept apart from make dev's)",
    )
    parser.add_argument(
        "--emulators",
        choices=("own", "shared"),
        default=env("BENCH_EMULATORS", "own"),
        help="own: start emulators on the bench's ports (27085, 27086, 27050, 27060); "
        "shared: reuse those at STREAMS_*_PORT (default ports) if running",
    )
    parser.add_argument(
        "--events-out", type=Path, help="also write every measured event's timings to this file"
    )
    parser.add_argument(
        "--keep-state", action="store_true", help="keep the temporary state dir (function logs)"
    )


if __name__ == "__main__":
    sys.exit(main())
