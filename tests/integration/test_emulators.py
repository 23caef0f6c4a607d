"""The local emulator stack starts, serves the real Google clients, is reused, and stops cleanly."""

from __future__ import annotations

import os
import socket
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery, firestore
from google.cloud.pubsub_v1 import PublisherClient

from emulators import EmulatorPorts, EmulatorStack, reset_firestore, stack_status, start_stack
from emulators.processes import read_pid_file
from emulators.stack import default_state_dir
from shared.adapters.firestore import FirestoreConfigStore, new_client
from shared.config import Settings
from shared.ports import COMMIT_TIME, Increment, Write

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(emulator_stack: EmulatorStack) -> EmulatorStack:
    """The session's stack (tests/conftest.py): reused when running, stopped at session end."""
    return emulator_stack


@pytest.fixture
def emulator_env(stack: EmulatorStack, monkeypatch: pytest.MonkeyPatch) -> EmulatorStack:
    """Point the Google clients at the stack for one test."""
    for key, value in stack.env().items():
        monkeypatch.setenv(key, value)
    return stack


def _free_ports(count: int) -> list[int]:
    socks = [socket.socket() for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _group_commands(pgid: int) -> list[str]:
    """Command lines of the live processes in a process group."""
    commands = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if fields[2] == str(pgid) and fields[0] != "Z":
            commands.append(cmdline)
    return commands


def test_all_are_healthy(stack: EmulatorStack) -> None:
    assert stack_status(stack.ports, stack.project_id) == {
        "pubsub": True,
        "firestore": True,
        "bigquery": True,
        "valkey": True,
    }
    env = stack.env()
    assert env["PUBSUB_EMULATOR_HOST"] == f"127.0.0.1:{stack.ports.pubsub}"
    assert env["BIGQUERY_EMULATOR_URL"] == f"http://127.0.0.1:{stack.ports.bigquery}"
    assert env["GOOGLE_CLOUD_PROJECT"] == env["STREAMS_PROJECT_ID"] == stack.project_id
    assert env["STREAMS_VALKEY_URL"] == f"valkey://127.0.0.1:{stack.ports.valkey}/0"


def test_pubsub_create_topic_and_publish(emulator_env: EmulatorStack) -> None:
    publisher = PublisherClient()
    topic = publisher.topic_path(emulator_env.project_id, f"t-{uuid.uuid4().hex[:8]}")
    publisher.create_topic(name=topic)
    message_id = publisher.publish(topic, b"hello", kind="test").result(timeout=10)
    assert message_id


def test_firestore_set_get_and_reset(emulator_env: EmulatorStack) -> None:
    # A project of its own: the reset must not wipe data other tests of the session rely on.
    scratch = firestore.Client(project="emulator-reset-test")
    doc = scratch.collection("emulator-test").document(uuid.uuid4().hex)
    doc.set({"n": 1, "name": "x"})
    assert doc.get().to_dict() == {"n": 1, "name": "x"}
    other = firestore.Client(project=emulator_env.project_id).collection("emulator-test").document()
    other.set({"n": 2})

    reset_firestore(emulator_env.firestore_host, "emulator-reset-test")

    assert not doc.get().exists
    assert other.get().exists  # the reset is scoped to one project
    other.delete()


def test_firestore_adapter_stores_commit_time_as_the_commit_s_own(
    emulator_env: EmulatorStack,
) -> None:
    store = FirestoreConfigStore(new_client(Settings(project_id=emulator_env.project_id)))
    first, second = (f"emulator-test/{uuid.uuid4().hex}" for _ in range(2))
    store.commit([Write("set", second, {"n": 0})])
    before = datetime.now(UTC)
    store.commit(
        [
            Write("set", first, {"n": 1, "written_at": COMMIT_TIME}),
            Write("update", second, {"written_at": COMMIT_TIME}),
        ]
    )
    after = datetime.now(UTC)
    stamps = [(store.get(path) or {}).get("written_at") for path in (first, second)]
    assert isinstance(stamps[0], datetime), stamps

    # Every write of one commit gets the same time: the commit's, taken by the server.
    assert stamps[0] == stamps[1]
    slack = timedelta(seconds=1)  # the emulator's clock is this machine's, read a moment apart
    assert before - slack <= stamps[0] <= after + slack
    store.commit([Write("delete", first), Write("delete", second)])


def _new_table(
    stack: EmulatorStack, *fields: bigquery.SchemaField
) -> tuple[bigquery.Client, bigquery.Table]:
    """A client of the stack's BigQuery emulator and a new table in a new dataset."""
    client = bigquery.Client(
        project=stack.project_id,
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=stack.bigquery_url),
    )
    dataset = client.create_dataset(f"d_{uuid.uuid4().hex[:8]}", timeout=10)
    table = bigquery.Table(f"{stack.project_id}.{dataset.dataset_id}.events", schema=list(fields))
    return client, client.create_table(table, timeout=10)


def test_firestore_adapter_adds_increments_of_concurrent_updates(
    emulator_env: EmulatorStack,
) -> None:
    # Each of these reads nothing: a count read and written back would keep one of the eight.
    store = FirestoreConfigStore(new_client(Settings(project_id=emulator_env.project_id)))
    path = f"emulator-test/{uuid.uuid4().hex}"
    store.commit([Write("set", path, {"seen": 1})])
    with ThreadPoolExecutor(max_workers=8) as pool:
        for future in [
            pool.submit(store.commit, [Write("update", path, {"seen": Increment(2), "n": 0})])
            for _ in range(8)
        ]:
            future.result()
    assert store.get(path) == {"seen": 17, "n": 0}
    store.commit([Write("delete", path)])


def test_bigquery_dataset_table_insert_query(emulator_env: EmulatorStack) -> None:
    client, table = _new_table(
        emulator_env, bigquery.SchemaField("id", "STRING"), bigquery.SchemaField("n", "INT64")
    )
    errors = client.insert_rows_json(table, [{"id": "a", "n": 1}, {"id": "b", "n": 2}], timeout=10)
    assert errors == []
    rows = client.query(
        f"SELECT COUNT(*) AS c, SUM(n) AS s FROM `{table.full_table_id.replace(':', '.')}`"
    ).result(timeout=10)
    assert [(r.c, r.s) for r in rows] == [(2, 3)]


def test_bigquery_keeps_no_copy_of_a_table_per_insert(emulator_env: EmulatorStack) -> None:
    # bqemulator copies a whole table after every write to serve time travel, which made each
    # streaming insert cost time in proportion to the table and memory grow without bound; the
    # launcher turns the copies off (emulators/bq_launcher.py). Without a copy, a query as of an
    # hour ago reads the live table; with one, that time lies before the first copy and the
    # emulator refuses the query.
    client, table = _new_table(emulator_env, bigquery.SchemaField("id", "STRING"))
    assert client.insert_rows_json(table, [{"id": "a"}, {"id": "b"}], timeout=10) == []
    rows = client.query(
        f"SELECT COUNT(*) AS c FROM `{table.full_table_id.replace(':', '.')}` "
        "FOR SYSTEM_TIME AS OF TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 1 HOUR)"
    ).result(timeout=10)
    assert [r.c for r in rows] == [2]


def test_second_start_reuses_running_emulators(stack: EmulatorStack) -> None:
    run_dir = default_state_dir()
    pids_before = {name: read_pid_file(run_dir / "run" / f"{name}.pid") for name in stack.handles}

    again = start_stack(stack.ports, stack.project_id)

    assert not any(h.started_by_us for h in again.handles.values())
    again.stop()  # must be a no-op for reused emulators
    assert all(stack_status(stack.ports, stack.project_id).values())
    pids_after = {name: read_pid_file(run_dir / "run" / f"{name}.pid") for name in stack.handles}
    assert pids_after == pids_before


# In `make reliability`, to keep `make test` within its 15 minutes: the tooling's cleanup.
@pytest.mark.reliability
def test_stop_kills_every_process_of_each_group(tmp_path: Path) -> None:
    pubsub, firestore_port, bq, bq_grpc, valkey = _free_ports(5)
    ports = EmulatorPorts(
        pubsub=pubsub, firestore=firestore_port, bigquery=bq, bigquery_grpc=bq_grpc, valkey=valkey
    )
    own = start_stack(ports, "stop-test", state_dir=tmp_path)
    try:
        assert all(h.started_by_us for h in own.handles.values())
        pgids = {
            name: h.process.pid for name, h in own.handles.items() if h.process and h.process.pid
        }
        for name in ("pubsub", "firestore"):
            # gcloud runs the emulator in a Java child: that is what must not survive.
            assert any("java" in cmd for cmd in _group_commands(pgids[name])), name
        assert all((tmp_path / "run" / f"{name}.pid").exists() for name in pgids)
    finally:
        own.stop()

    for name, pgid in pgids.items():
        with pytest.raises(ProcessLookupError):
            os.killpg(pgid, 0)
        assert not (tmp_path / "run" / f"{name}.pid").exists()
    assert not any(stack_status(ports, "stop-test").values())
