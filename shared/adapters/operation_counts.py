"""Billed cloud operations, counted in-process where the adapters make them (issue 19).

Firestore bills documents read, written and deleted; Pub/Sub the bytes of publish requests;
BigQuery's streaming inserts the rows (and their bytes). The adapters add to these counters as
each call succeeds, so the cost model reads what the code did, not an estimate of it:

- Firestore: a commit of N writes counts N writes (deletes apart); a lookup counts one read per
  document asked for, found or not; a query counts the documents it returns, at least one (the
  minimum Firestore bills a query). TTL deletes are Firestore's own and never pass through here.
- Pub/Sub: messages and the serialised bytes of each Publish request (the unit Pub/Sub bills
  throughput by, with a 1 KB minimum per request: hence the request count too).
- BigQuery: rows and insert requests; bytes only while counts are exported (`bigquery_bytes`
  needs a pass over each row's values, which production does not pay for).
- Valkey (the deduplication window, billed by node size): what each call left in the window for
  its 48 hours, claims made, outcomes kept on claims and deliver's marks set, which the cost
  model turns into memory with the bytes `bench.valkey_memory` measures of each.

Always on, and cheap: a lock and a few integer additions per RPC, never per event, and no I/O.
The counts leave the process only when `Settings.operation_counts_dir` is set (benchmarks:
`STREAMS_OPERATION_COUNTS_DIR`): the process then writes them, with its pid and process group,
to `<dir>/<pid>.json` every `EXPORT_INTERVAL_S` and at exit, and counts the HTTP requests it
serves. `read_exports` is the reading side (bench/pipeline/costs.py sums them per function).
"""

from __future__ import annotations

import atexit
import json
import os
import threading
import time
from collections.abc import Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

FIELDS = (
    "requests",
    "firestore_reads",
    "firestore_writes",
    "firestore_deletes",
    "firestore_commits",
    "firestore_lookups",
    "firestore_queries",
    "pubsub_publish_requests",
    "pubsub_messages",
    "pubsub_bytes",
    "bigquery_insert_requests",
    "bigquery_rows",
    "bigquery_bytes",
    "valkey_claims",
    "valkey_outcomes",
    "valkey_marks",
)
# How stale an exported file may be: a reader waits this long for operations it caused.
EXPORT_INTERVAL_S = 1.0
# A string, bytes or JSON value costs its UTF-8 length plus 2 bytes in BigQuery's data-size
# rules; numbers, timestamps and dates cost 8; a boolean 1; NULL nothing.
BIGQUERY_VALUE_OVERHEAD = 2
BIGQUERY_FIXED_BYTES = 8

_lock = threading.Lock()
_counts = dict.fromkeys(FIELDS, 0)
_export: dict[str, Any] = {"directory": None, "thread": None}


def snapshot() -> dict[str, int]:
    """The process's totals so far."""
    with _lock:
        return dict(_counts)


def reset() -> None:
    """Back to zero (a forked child starts its own count; tests start from a known state)."""
    with _lock:
        for name in FIELDS:
            _counts[name] = 0


def firestore_commit(writes: int, deletes: int) -> None:
    with _lock:
        _counts["firestore_commits"] += 1
        _counts["firestore_writes"] += writes
        _counts["firestore_deletes"] += deletes


def firestore_lookup(documents: int) -> None:
    """A get of one document or a batch get: one read per document asked for."""
    with _lock:
        _counts["firestore_lookups"] += 1
        _counts["firestore_reads"] += documents


def firestore_query(returned: int) -> None:
    with _lock:
        _counts["firestore_queries"] += 1
        _counts["firestore_reads"] += max(1, returned)


def pubsub_published(messages: int, request_bytes: int) -> None:
    with _lock:
        _counts["pubsub_publish_requests"] += 1
        _counts["pubsub_messages"] += messages
        _counts["pubsub_bytes"] += request_bytes


def bigquery_streamed(rows: Sequence[Mapping[str, Any]]) -> None:
    """An insert of `rows`; their bytes are summed only while counts are exported."""
    size = sum(map(bigquery_row_bytes, rows)) if _export["directory"] is not None else 0
    with _lock:
        _counts["bigquery_insert_requests"] += 1
        _counts["bigquery_rows"] += len(rows)
        _counts["bigquery_bytes"] += size


def bigquery_row_bytes(row: Mapping[str, Any]) -> int:
    """A row's size by BigQuery's data-size rules, for the flat rows Streams inserts."""
    size = 0
    for value in row.values():
        if value is None:
            continue
        if isinstance(value, bool):
            size += 1
        elif isinstance(value, int | float):
            size += BIGQUERY_FIXED_BYTES
        elif isinstance(value, bytes):
            size += len(value) + BIGQUERY_VALUE_OVERHEAD
        else:
            # Strings, and JSON columns sent as their text; timestamps are sent as ISO text but
            # stored in 8 bytes, a difference the row's 1 KB billing minimum mostly hides.
            size += len(str(value).encode()) + BIGQUERY_VALUE_OVERHEAD
    return size


def valkey_kept(claims: int = 0, outcomes: int = 0, marks: int = 0) -> None:
    with _lock:
        _counts["valkey_claims"] += claims
        _counts["valkey_outcomes"] += outcomes
        _counts["valkey_marks"] += marks


def request_served(*_: Any, **__: Any) -> None:
    """Flask's `request_started` signal, connected only while counts are exported."""
    with _lock:
        _counts["requests"] += 1


def asgi_request_served() -> None:
    """A request of an asynchronous function (ingest), which Flask's signal never sees: counted
    only while counts are exported, as the signal is connected only then."""
    if _export["directory"] is not None:
        request_served()


# --- export (benchmarks only) ----------------------------------------------------------------


def export_to(directory: str | None) -> None:
    """Write this process's counts under `directory` from now on (nothing when None). Called
    when the adapters build their clients; the first call wins, later ones do nothing."""
    if directory is None or _export["directory"] is not None:
        return
    with _lock:
        if _export["directory"] is not None:
            return
        _export["directory"] = directory
    Path(directory).mkdir(parents=True, exist_ok=True)
    _count_requests()
    atexit.register(write_export)
    # A process forked after this (a server's worker) counts afresh, in a file of its own.
    os.register_at_fork(after_in_child=_after_fork)
    _start_writer()


def write_export() -> None:
    """This process's counts, written whole (a reader never sees half a file)."""
    directory = _export["directory"]
    if directory is None:
        return
    pid = os.getpid()
    data = {"pid": pid, "pgid": os.getpgid(0), "counts": snapshot()}
    path = Path(directory) / f"{pid}.json"
    temporary = path.with_suffix(".tmp")
    # A directory removed under a process that outlives its reader (a bench's own process,
    # whose state dir goes when its run ends): nothing is reading, so nothing is written.
    with suppress(OSError):
        temporary.write_text(json.dumps(data))
        temporary.replace(path)


def read_exports(directory: Path) -> list[dict[str, Any]]:
    """Every process's last export under `directory`: {pid, pgid, counts}."""
    found = []
    for path in sorted(directory.glob("*.json")):
        try:
            found.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue  # replaced atomically, so only a file removed meanwhile lands here
    return found


def _start_writer() -> None:
    def loop() -> None:
        while True:
            time.sleep(EXPORT_INTERVAL_S)
            write_export()

    thread = threading.Thread(target=loop, name="operation-counts", daemon=True)
    _export["thread"] = thread
    thread.start()


def _after_fork() -> None:
    global _lock
    # The parent's lock may have been held by one of its threads at the fork: never released.
    _lock = threading.Lock()
    reset()
    _start_writer()


def _count_requests() -> None:
    # Requests are billed per function; Flask's signal sees each one this process serves.
    # Imported here, so that a process that exports nothing never loads Flask for it.
    from flask import request_started

    request_started.connect(request_served)
