"""The counters of billed operations (shared/adapters/operation_counts.py) and their export.

The adapters' own counting, against the emulators, is tests/integration/test_operation_counts.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.adapters import operation_counts
from shared.adapters.operation_counts import FIELDS, bigquery_row_bytes, read_exports, snapshot


@pytest.fixture(autouse=True)
def zero() -> Iterator[None]:
    operation_counts.reset()
    yield
    operation_counts.reset()


def nonzero() -> dict[str, int]:
    return {name: value for name, value in snapshot().items() if value}


def test_a_commit_counts_each_write_and_each_delete() -> None:
    operation_counts.firestore_commit(writes=3, deletes=1)
    operation_counts.firestore_commit(writes=1, deletes=0)
    assert nonzero() == {"firestore_commits": 2, "firestore_writes": 4, "firestore_deletes": 1}


def test_a_lookup_counts_every_document_asked_for_and_a_query_at_least_one() -> None:
    operation_counts.firestore_lookup(1)
    operation_counts.firestore_lookup(5)
    operation_counts.firestore_query(7)
    operation_counts.firestore_query(0)  # Firestore bills an empty query one read
    assert nonzero() == {"firestore_lookups": 2, "firestore_queries": 2, "firestore_reads": 14}


def test_publishing_counts_requests_messages_and_bytes() -> None:
    operation_counts.pubsub_published(10, 4_321)
    operation_counts.pubsub_published(1, 500)
    assert nonzero() == {
        "pubsub_publish_requests": 2,
        "pubsub_messages": 11,
        "pubsub_bytes": 4_821,
    }


def test_streaming_counts_rows_and_leaves_bytes_to_an_exporting_process() -> None:
    operation_counts.bigquery_streamed([{"a": "x"}, {"a": "y"}, {"a": "z"}])
    assert nonzero() == {"bigquery_insert_requests": 1, "bigquery_rows": 3}


def test_row_bytes_follow_bigquerys_data_sizes() -> None:
    row = {
        "message_id": "abc",  # 3 + 2
        "properties": '{"é":1}',  # 8 bytes of UTF-8 + 2
        "count": 7,  # 8
        "price": 1.5,  # 8
        "consented": True,  # 1
        "user_id": None,  # nothing
        "blob": b"\x00\x01",  # 2 + 2
    }
    assert bigquery_row_bytes(row) == 5 + 10 + 8 + 8 + 1 + 0 + 4


def test_counts_from_many_threads_are_exact() -> None:
    import threading

    def work() -> None:
        for _ in range(2_000):
            operation_counts.firestore_commit(writes=1, deletes=0)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert snapshot()["firestore_writes"] == 16_000


# A process with STREAMS_OPERATION_COUNTS_DIR set, as a benchmark starts the functions: building
# the Firestore client starts the export; requests are counted through Flask; a forked child
# (a server's worker) counts afresh in a file of its own; both write their counts at exit.
EXPORTING_PROCESS = textwrap.dedent(
    """
    import os, sys
    import flask
    from shared.adapters import operation_counts
    from shared.adapters.firestore import new_client
    from shared.config import Settings

    new_client(Settings.from_env())
    app = flask.Flask("probe")
    app.add_url_rule("/", "root", lambda: "ok")
    client = app.test_client()
    client.get("/")
    client.get("/")
    operation_counts.firestore_commit(writes=2, deletes=0)
    operation_counts.bigquery_streamed([{"message_id": "abcd"}])
    child = os.fork()
    if child == 0:
        operation_counts.firestore_lookup(3)
        sys.exit(0)
    os.waitpid(child, 0)
    print(child)
    """
)


def test_an_exporting_process_and_its_forked_child_each_write_their_counts(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "counts"
    env = {
        **os.environ,
        "STREAMS_PROJECT_ID": "counts-test",
        "STREAMS_OPERATION_COUNTS_DIR": str(directory),
        # Builds the client without credentials; nothing is sent.
        "FIRESTORE_EMULATOR_HOST": "127.0.0.1:1",
    }
    done = subprocess.run(
        [sys.executable, "-c", EXPORTING_PROCESS],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    child = int(done.stdout.split()[-1])
    exports = {export["pid"]: export for export in read_exports(directory)}
    assert len(exports) == 2
    parent = next(export for pid, export in exports.items() if pid != child)
    assert set(parent["counts"]) == set(FIELDS)
    assert {k: v for k, v in parent["counts"].items() if v} == {
        "requests": 2,
        "firestore_commits": 1,
        "firestore_writes": 2,
        "bigquery_insert_requests": 1,
        "bigquery_rows": 1,
        "bigquery_bytes": 6,  # exporting: the row's bytes are summed
    }
    assert {k: v for k, v in exports[child]["counts"].items() if v} == {
        "firestore_lookups": 1,
        "firestore_reads": 3,
    }
    assert parent["pgid"] == exports[child]["pgid"]
    assert not list(directory.glob("*.tmp"))


# --- from the functions' counts to bench/cost/inputs.json (bench/pipeline/costs.py) ---------


def test_a_runs_counts_become_per_event_inputs_in_the_models_shape() -> None:
    from bench.cost.inputs import inputs_from_json
    from bench.costrun import mix_inputs
    from bench.pipeline import costs

    before = {"ingest": {"requests": 5, "firestore_reads": 5}}
    after = {
        "ingest": {
            "requests": 25,
            "firestore_reads": 7,
            "pubsub_messages": 20,
            "pubsub_bytes": 9000,
        },
        "process": {
            "requests": 20,
            "firestore_reads": 200,
            "firestore_writes": 400,
            "firestore_deletes": 0,
            "pubsub_messages": 200,
            "bigquery_rows": 200,
            "bigquery_bytes": 150_000,
            "valkey_claims": 200,
            "valkey_outcomes": 20,
        },
        "deliver": {"requests": 200, "firestore_writes": 200, "valkey_marks": 100},
    }
    counted = costs.difference(after, before)
    assert counted["ingest"]["requests"] == 20
    per_event = costs.per_event(
        counted,
        events=200,
        deliveries=202,
        cpu_seconds={"function:ingest": 0.1, "function:process": 0.6, "bench (senders)": 9.0},
        window_cpu_seconds={"function:ingest": 0.05},
        window_events=100,
    )
    assert per_event["measured_window"]["cpu_ms_per_event"] == {"ingest": 0.5}
    assert per_event["firestore_operations_per_event"] == (2 + 200 + 400 + 200) / 200
    mix = mix_inputs(
        10, {"costs": per_event}, "valkey", {"claim": 120, "outcome": 170, "mark": 160}
    )
    assert mix == {
        "events_per_request": 10,
        "dedup_store": "valkey",
        "cpu_ms": {"ingest": 0.5, "process": 3.0, "deliver": 0.0},
        "requests": {"ingest": 0.1, "process": 0.1, "deliver": 1.0},
        "firestore": {"reads": 1.01, "writes": 3.0, "deletes": 0.0},
        "pubsub": {"messages": 1.1, "bytes": 45.0},
        "bigquery": {"rows": 1.0, "bytes": 750.0},
        "deliveries": 1.01,
        # 1 claim, 0.1 outcome and 0.5 mark an event: 120 + 17 + 80 bytes.
        "valkey": {"claims": 1.0, "outcomes": 0.1, "marks": 0.5, "bytes": 217.0},
    }
    shape = {
        "measured_at": "",
        "source": "",
        "machine": "",
        "mixes": {
            "batched": mix,
            "single": mix,
            "batched_firestore_claims": {**mix, "dedup_store": "firestore"},
            "single_firestore_claims": {**mix, "dedup_store": "firestore"},
        },
        "valkey_item_bytes": {"claim": 120, "outcome": 170, "mark": 160},
    }
    inputs = inputs_from_json(shape)
    assert (inputs.mixes["batched"].firestore_writes, inputs.mixes["batched"].valkey_bytes) == (
        3.0,
        217.0,
    )


def test_asynchronous_requests_count_only_while_counts_are_exported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Ingest's ASGI server never sends Flask's `request_started`: its entry counts itself.
    operation_counts.reset()
    operation_counts.asgi_request_served()
    assert operation_counts.snapshot()["requests"] == 0
    monkeypatch.setitem(operation_counts._export, "directory", "/nonexistent")
    operation_counts.asgi_request_served()
    operation_counts.asgi_request_served()
    assert operation_counts.snapshot()["requests"] == 2
    operation_counts.reset()
