"""Live streams cannot exhaust the `events` function: capped, sharing one poll, freed promptly."""

from __future__ import annotations

import http.client
import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from emulators.gateway import Gateway, serve
from emulators.processes import ManagedProcess, tcp_open
from shared.api.routes import ROUTES
from shared.config import Settings
from shared.domain.errors import Unavailable
from shared.http.client_socket import always_connected, connection_check
from shared.services.live import Cursor, LiveEvent, LiveFeed, LiveFilters, StreamLimits
from tests.fakes import FakeServices
from tests.functions import ROOT, function_client
from tests.tenants import Tenant
from tests.unit.test_observe_live import CountingStore, event, stored

W = "ws-1"
HOST = "127.0.0.1"
POLL = 0.02  # seconds between shared polls in the threaded tests: many polls in little time


def run_streams(
    feed: LiveFeed, count: int, holder: str = ""
) -> tuple[list[list[str]], list[threading.Thread]]:
    """Open `count` streams of W and consume each in its own thread until it ends; the message
    ids each received, and the threads."""
    received: list[list[str]] = [[] for _ in range(count)]

    def consume(index: int, stream: Any) -> None:
        for item in stream:
            if isinstance(item, LiveEvent):
                received[index].append(json.loads(item.data)["messageId"])

    streams = [feed.open(W, LiveFilters(), holder=f"{holder}{i}") for i in range(count)]
    threads = [
        threading.Thread(target=consume, args=(i, stream), daemon=True)
        for i, stream in enumerate(streams)
    ]
    for thread in threads:
        thread.start()
    return received, threads


def live_queries(store: CountingStore) -> int:
    return sum(1 for collection in store.queries if collection.endswith("/live_events"))


def test_streams_of_one_workspace_share_one_poll_per_interval() -> None:
    store = CountingStore()
    lifetime = 1.0
    feed = LiveFeed(
        store,
        max_stream_seconds=lifetime,
        poll_seconds=POLL,
        limits=StreamLimits(per_instance=16, per_token=16),
    )
    streams = 8
    store.queries.clear()
    began = time.monotonic()
    received, threads = run_streams(feed, streams)
    time.sleep(0.3)
    feed.observe(W, "s1", stored(event(1), event(2)))
    time.sleep(0.2)
    feed.observe(W, "s1", stored(event(3)))
    for thread in threads:
        thread.join(timeout=5)
    elapsed = time.monotonic() - began
    assert not any(thread.is_alive() for thread in threads)
    # Every stream got every event, once, in order, from the one poll they share.
    assert received == [["m1", "m2", "m3"]] * streams
    # Opening reads twice per stream (expired documents, then its catch-up); then one poll per
    # interval serves all of them (a poll per stream would be `streams` times as many).
    polls = live_queries(store) - 2 * streams
    assert polls <= elapsed / POLL + 2, (polls, elapsed)
    assert feed.hub.open_streams == 0


def test_a_resumed_stream_catches_up_then_shares_the_poll_without_gaps_or_repeats() -> None:
    store = CountingStore()
    feed = LiveFeed(store, max_stream_seconds=0.8, poll_seconds=POLL)
    received, threads = run_streams(feed, 1)
    time.sleep(0.1)
    feed.observe(W, "s1", stored(event(1), event(2)))
    time.sleep(0.2)
    documents = sorted(
        store.list_documents(f"workspaces/{W}/live_events"),
        key=lambda d: (d["written_at"], d["key"]),
    )
    after_m1 = Cursor(documents[0]["written_at"], documents[0]["key"])
    resumed = feed.open(W, LiveFilters(), after_m1, holder="resumed")
    got: list[str] = []
    consumer = threading.Thread(
        target=lambda: got.extend(
            json.loads(i.data)["messageId"] for i in resumed if isinstance(i, LiveEvent)
        ),
        daemon=True,
    )
    consumer.start()
    time.sleep(0.1)
    feed.observe(W, "s1", stored(event(3)))
    for thread in [*threads, consumer]:
        thread.join(timeout=5)
    assert received[0] == ["m1", "m2", "m3"]
    assert got == ["m2", "m3"]


def test_a_slow_client_that_falls_far_behind_is_ended_to_resume_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("shared.services.live_hub.MAX_WAITING_DOCUMENTS", 3)
    store = CountingStore()
    feed = LiveFeed(store, max_stream_seconds=3, poll_seconds=POLL)
    fast = feed.open(W, LiveFilters(), holder="fast")
    slow = feed.open(W, LiveFilters(), holder="slow")
    # Only the fast stream is read: it runs the shared poll, which queues for the slow one.
    pump = threading.Thread(target=lambda: [None for _ in fast], daemon=True)
    pump.start()
    for batch in ([event(1), event(2)], [event(3), event(4)]):
        feed.observe(W, "s1", stored(*batch))
        time.sleep(0.3)  # the fast stream empties its queue; the slow one's holds 2, then 4
    assert list(slow) == [], "it ends instead of holding what it cannot send"
    assert feed.hub.open_streams == 1
    fast.close()  # from another thread than the one iterating it, which then stops
    pump.join(timeout=1)
    assert not pump.is_alive()
    assert feed.hub.open_streams == 0


def test_per_token_and_per_instance_caps_answer_429_with_a_json_error(
    services: FakeServices, tenant: Tenant
) -> None:
    client = function_client("events")
    workspace_id, auth = tenant
    feed = LiveFeed(services.store, limits=StreamLimits(per_instance=3, per_token=2))
    services.__dict__["live"] = feed
    url = f"/api/v1/workspaces/{workspace_id}/events/live"
    token, _ = services.workspaces.create_token(workspace_id, "second")
    other_auth = {"Authorization": f"Bearer {token}"}

    held = [client.get(url, headers=auth, buffered=False) for _ in range(2)]
    assert [r.status_code for r in held] == [200, 200]
    refused = client.get(url, headers=auth)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "10"
    body = refused.get_json()
    assert body["error"] == "too_many_requests" and body["code"] == 429
    assert "this API token already has 2 live streams open" in body["message"]

    held.append(client.get(url, headers=other_auth, buffered=False))
    assert held[-1].status_code == 200
    full = client.get(url, headers=other_auth)
    assert full.status_code == 429
    assert "already streams to 3 clients" in full.get_json()["message"]

    held.pop(0).close()  # the server closes a response when its client goes: a slot is free
    assert feed.hub.open_streams == 2
    again = client.get(url, headers=auth, buffered=False)
    assert again.status_code == 200
    for response in [*held, again]:
        response.close()
    assert feed.hub.open_streams == 0


def test_an_open_that_fails_leaves_no_slot_taken() -> None:
    class DownStore(CountingStore):
        def commit(self, writes: Any) -> None:
            raise Unavailable("firestore is down")

    feed = LiveFeed(DownStore(), limits=StreamLimits(per_instance=1, per_token=1))
    for _ in range(3):
        with pytest.raises(Unavailable, match="firestore is down"):
            feed.open(W, LiveFilters())
    assert feed.hub.open_streams == 0


@pytest.fixture
def socket_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    server, client = socket.socketpair()
    yield server, client
    server.close()
    client.close()


def test_the_socket_check_sees_a_closed_client_but_not_a_quiet_one(
    socket_pair: tuple[socket.socket, socket.socket],
) -> None:
    server, client = socket_pair
    connected = connection_check({"gunicorn.socket": server})
    assert connected()
    client.sendall(b"GET /next HTTP/1.1\r\n")  # a keep-alive client's next request
    assert connected()
    assert server.recv(100)
    client.close()
    assert not connected()


def test_without_a_plain_socket_the_heartbeats_must_tell() -> None:
    assert connection_check({}) is always_connected
    assert connection_check({"gunicorn.socket": object()}) is always_connected


def test_a_stream_whose_client_disconnects_frees_its_slot_within_a_poll(
    socket_pair: tuple[socket.socket, socket.socket],
) -> None:
    server, client = socket_pair
    feed = LiveFeed(CountingStore(), poll_seconds=POLL, max_stream_seconds=60)
    stream = feed.open(W, LiveFilters(), connected=connection_check({"gunicorn.socket": server}))
    consumer = threading.Thread(target=lambda: list(stream), daemon=True)
    consumer.start()
    time.sleep(0.1)
    assert feed.hub.open_streams == 1
    client.close()
    closed = time.monotonic()
    consumer.join(timeout=2)
    assert not consumer.is_alive()
    assert feed.hub.open_streams == 0
    assert time.monotonic() - closed < 0.5


# --- through functions-framework's production server (gunicorn, a fixed thread pool) ---------

THREADS = 8  # functions-framework's default on a 2-CPU machine, where the finding was made
PER_TOKEN = 3
PER_INSTANCE = THREADS // 2  # the default: half the threads


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def events_server(tmp_path: Path) -> Iterator[tuple[int, dict[str, Tenant]]]:
    """The `events` function under gunicorn with THREADS threads, over fakes; port, tenants."""
    port = free_port()
    tenants_file = tmp_path / "tenants.json"
    process = ManagedProcess(
        name="events",
        command=[
            sys.executable,
            "-m",
            "functions_framework",
            "--target",
            "events",
            "--source",
            str(ROOT / "tests" / "unit" / "live_limits_app.py"),
            "--host",
            HOST,
            "--port",
            str(port),
        ],
        log_path=tmp_path / "events.log",
        env={
            "STREAMS_PROJECT_ID": "test-project",
            "THREADS": str(THREADS),
            "STREAMS_LIVE_STREAMS_PER_TOKEN": str(PER_TOKEN),
            "STREAMS_TEST_TENANTS_FILE": str(tenants_file),
        },
        cwd=ROOT,
        health_check=lambda: tcp_open(HOST, port),
    )
    process.start()
    try:
        process.wait_healthy(60)
        tenants = {name: (t[0], t[1]) for name, t in json.loads(tenants_file.read_text()).items()}
        yield port, tenants
    finally:
        process.stop()


def open_stream(port: int, tenant: Tenant) -> tuple[int, http.client.HTTPConnection, str]:
    """GET the live stream; the connection stays open (and the stream with it) until closed."""
    workspace_id, auth = tenant
    connection = http.client.HTTPConnection(HOST, port, timeout=5)
    connection.request("GET", f"/api/v1/workspaces/{workspace_id}/events/live", headers=auth)
    response = connection.getresponse()
    if response.status != 200:
        body = response.read().decode()
        connection.close()
        return response.status, connection, body
    assert response.readline().startswith(b"retry:")  # the first bytes are out: it streams
    return 200, connection, ""


def timed_get(port: int, path: str, headers: dict[str, str], timeout: float) -> float:
    started = time.monotonic()
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        assert response.status == 200
    finally:
        connection.close()
    return time.monotonic() - started


def wait_until(condition: Callable[[], bool], timeout: float) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"not within {timeout} s"
        time.sleep(0.02)
    return time.monotonic() - started


def test_eight_streams_of_one_token_leave_other_workspaces_served(
    events_server: tuple[int, dict[str, Tenant]],
) -> None:
    port, tenants = events_server
    watcher, other = tenants["watcher"], tenants["other"]
    # The reproduction: eight streams from one token against a server of eight threads.
    attempts = [open_stream(port, watcher) for _ in range(THREADS)]
    statuses = [status for status, _, _ in attempts]
    assert statuses == [200] * PER_TOKEN + [429] * (THREADS - PER_TOKEN)
    refusal = json.loads(attempts[-1][2])
    assert refusal["error"] == "too_many_requests" and "API token" in refusal["message"]
    # Another workspace's stream fills the instance's share; beyond it, 429 for everyone.
    status, other_stream, _ = open_stream(port, other)
    assert status == 200
    status, _, body = open_stream(port, other)
    assert status == 429 and "already streams to" in json.loads(body)["message"]
    # ... and the rest of the threads still serve ordinary requests, promptly, every time.
    other_id, other_auth = other
    for _ in range(5):
        assert timed_get(port, f"/api/v1/workspaces/{other_id}/dead-letters", other_auth, 5) < 2

    # Clients that go away give their slots back within a poll, not a heartbeat or two.
    for _, connection, _ in attempts[:PER_TOKEN]:
        connection.close()
    other_stream.close()
    reopened: list[http.client.HTTPConnection] = []

    def watcher_can_stream_again() -> bool:
        status, connection, _ = open_stream(port, watcher)
        if status == 200:
            reopened.append(connection)
        return len(reopened) == PER_TOKEN

    freed_in = wait_until(watcher_can_stream_again, timeout=3)
    for connection in reopened:
        connection.close()
    assert freed_in < 3


def test_the_instance_limit_follows_the_thread_count_and_leaves_one_free() -> None:
    base = {"STREAMS_PROJECT_ID": "p"}
    assert Settings.from_env({**base, "THREADS": "40"}).live_streams_per_instance == 20
    assert Settings.from_env({**base, "THREADS": "1"}).live_streams_per_instance == 1
    settings = Settings.from_env({**base, "THREADS": "8", "STREAMS_LIVE_STREAMS_PER_TOKEN": "2"})
    assert (settings.live_streams_per_instance, settings.live_streams_per_token) == (4, 2)
    with pytest.raises(ValueError, match="STREAMS_LIVE_STREAMS_PER_INSTANCE must be between 1"):
        Settings.from_env({**base, "THREADS": "8", "STREAMS_LIVE_STREAMS_PER_INSTANCE": "8"})


def test_a_client_leaving_through_the_local_gateway_frees_its_slot_as_promptly(
    events_server: tuple[int, dict[str, Tenant]],
) -> None:
    port, tenants = events_server
    gateway_port = free_port()
    gateway = serve(
        Gateway(ROUTES, {"events": f"http://{HOST}:{port}"}, health=dict), HOST, gateway_port
    )
    try:
        streams = [open_stream(gateway_port, tenants["watcher"]) for _ in range(PER_TOKEN)]
        assert [status for status, _, _ in streams] == [200] * PER_TOKEN
        assert open_stream(gateway_port, tenants["watcher"])[0] == 429
        streams[0][1].close()
        reopened: list[http.client.HTTPConnection] = []

        def slot_free() -> bool:
            status, connection, _ = open_stream(gateway_port, tenants["watcher"])
            if status == 200:
                reopened.append(connection)
            return bool(reopened)

        # Under two heartbeats (10 s) without the gateway passing the close on.
        assert wait_until(slot_free, timeout=3) < 3
        for _, connection, _ in streams[1:]:
            connection.close()
        for connection in reopened:
            connection.close()
    finally:
        gateway.shutdown()
        gateway.server_close()
