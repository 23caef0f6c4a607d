"""Watching events on the local stack: live SSE (latency, resume, filters), volume, the source
debugger, the event query and the second seed's sources API, through the gateway."""

from __future__ import annotations

import json
import queue
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from segment.analytics.client import Client as SegmentClient

from emulators.stack import REPO_ROOT
from shared.tail import SseMessage, parse_sse
from tests.e2e.helpers import Tenant, wait_until

pytestmark = pytest.mark.e2e

# process caches "nobody watches" for 0.5 s: a new stream sees events stored after that.
WATCH_SETTLE_SECONDS = 1.0


class LiveReader:
    """A real streaming client of the live endpoint, reading in a thread, timing each arrival."""

    def __init__(self, tenant: Tenant, last_event_id: str | None = None, **params: str):
        headers = {"Authorization": f"Bearer {tenant.token}", "Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        self.response = requests.get(
            f"{tenant.gateway}/api/v1/workspaces/{tenant.workspace_id}/events/live",
            headers=headers,
            params=params,
            stream=True,
            timeout=(5, 60),
        )
        assert self.response.status_code == 200, self.response.text
        assert self.response.headers["Content-Type"].startswith("text/event-stream")
        self.messages: queue.Queue[tuple[float, SseMessage]] = queue.Queue()
        self.last_id: str | None = None
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for message in parse_sse(self._lines()):
                self.messages.put((time.monotonic(), message))
        except Exception:  # the test closed the response under this thread
            pass

    def _lines(self) -> Iterator[str]:
        buffer = b""
        for chunk in self.response.iter_content(chunk_size=None):
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                yield line.decode().rstrip("\r")

    def outcomes(self, count: int, timeout: float = 10) -> list[tuple[str, str, str | None]]:
        """The next `count` events as (messageId, status, reason): stored ones are messages,
        the others `outcome` events."""
        found = []
        for _, data in self.events(count, timeout):
            if "status" in data and isinstance(data.get("event"), dict):
                found.append((data["event"]["messageId"], data["status"], data["reason"]))
            else:
                found.append((data["messageId"], "stored", None))
        return found

    def events(self, count: int, timeout: float = 10) -> list[tuple[float, dict[str, Any]]]:
        """The next `count` events with their arrival times (monotonic)."""
        found: list[tuple[float, dict[str, Any]]] = []
        deadline = time.monotonic() + timeout
        while len(found) < count:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"only {len(found)} of {count} events arrived"
            try:
                arrived, message = self.messages.get(timeout=remaining)
            except queue.Empty:
                continue
            if message.id:
                self.last_id = message.id
            if message.data:
                found.append((arrived, json.loads(message.data)))
        return found

    def quiet(self, seconds: float) -> list[dict[str, Any]]:
        """Events arriving within `seconds` (expected: none)."""
        time.sleep(seconds)
        found = []
        while not self.messages.empty():
            _, message = self.messages.get()
            if message.data:
                found.append(json.loads(message.data))
        return found

    def close(self) -> None:
        self.response.close()


@pytest.fixture
def live(tenant: Tenant) -> Iterator[LiveReader]:
    reader = LiveReader(tenant)
    time.sleep(WATCH_SETTLE_SECONDS)
    yield reader
    reader.close()


def track(name: str, message_id: str, **fields: Any) -> dict[str, Any]:
    return {"event": name, "userId": "u1", "messageId": message_id, **fields}


def test_live_events_arrive_within_a_second(tenant: Tenant, live: LiveReader) -> None:
    # The first event of a new source pays for cold clients and a new push subscription.
    assert tenant.send("track", track("Warm Up", "warm-up")).status_code == 200
    live.events(1, timeout=20)
    sent: dict[str, float] = {}
    for i in range(10):
        message_id = f"lat-{i}-{uuid.uuid4().hex[:6]}"
        sent[message_id] = time.monotonic()
        assert tenant.send("track", track("Latency Probe", message_id)).status_code == 200
        time.sleep(0.2)
    arrived = live.events(10)
    latencies = [at - sent[event["messageId"]] for at, event in arrived]
    print(
        f"\ningest->SSE latency: median {statistics.median(latencies) * 1000:.0f} ms, "
        f"max {max(latencies) * 1000:.0f} ms"
    )
    assert sorted(e["messageId"] for _, e in arrived) == sorted(sent)
    assert max(latencies) < 1.0
    event = arrived[0][1]
    assert (event["type"], event["event"], event["sourceId"]) == (
        "track",
        "Latency Probe",
        tenant.source_id,
    )


def test_segment_sdk_events_are_live(tenant: Tenant, live: LiveReader) -> None:
    errors: list[Any] = []
    client = SegmentClient(
        write_key=tenant.write_key,
        host=tenant.gateway,
        sync_mode=True,
        on_error=lambda e, batch: errors.append(e),
    )
    started = time.monotonic()
    client.track("sdk-user", "Signed Up", {"plan": "pro"})
    client.page("sdk-user", "Docs", "Pricing", {"url": "https://example.com/pricing"})
    arrived = live.events(2)
    assert errors == []
    assert {e["type"] for _, e in arrived} == {"track", "page"}
    assert max(at for at, _ in arrived) - started < 2.0  # two synchronous SDK round trips


def test_resume_with_last_event_id_misses_nothing(tenant: Tenant, live: LiveReader) -> None:
    for i in range(3):
        assert tenant.send("track", track("Before", f"before-{i}")).status_code == 200
    live.events(3)
    assert live.last_id
    live.close()
    for i in range(4):
        assert tenant.send("track", track("While Away", f"away-{i}")).status_code == 200
    for i in range(4):
        tenant.trace(f"away-{i}")  # stored (and written for the live stream) while disconnected

    resumed = LiveReader(tenant, last_event_id=live.last_id)
    try:
        assert tenant.send("track", track("After", "after-0")).status_code == 200
        got = [e["messageId"] for _, e in resumed.events(5)]
        # Separate requests are processed concurrently: the stream is in commit order.
        assert sorted(got[:4]) == [f"away-{i}" for i in range(4)] and got[4] == "after-0"
        assert resumed.quiet(1) == [], "nothing twice"
    finally:
        resumed.close()


def test_live_filters(tenant: Tenant) -> None:
    other = tenant.services.sources.create(tenant.workspace_id, "other", created_by="e2e")
    pages = LiveReader(tenant, event_type="page", source_id=tenant.source_id)
    named = LiveReader(tenant, event_name="Wanted")
    try:
        time.sleep(WATCH_SETTLE_SECONDS)
        assert tenant.send("track", track("Unwanted", "f-1")).status_code == 200
        assert tenant.send("track", track("Wanted", "f-2")).status_code == 200
        assert (
            tenant.send("page", {"userId": "u", "name": "Home", "messageId": "f-3"}).status_code
            == 200
        )
        response = requests.post(
            f"{tenant.gateway}/v1/page",
            json={"userId": "u", "name": "Elsewhere", "messageId": "f-4"},
            headers={"X-Write-Key": other.key},
            timeout=30,
        )
        assert response.status_code == 200
        assert [e["messageId"] for _, e in pages.events(1)] == ["f-3"]
        assert [e["messageId"] for _, e in named.events(1)] == ["f-2"]
        assert pages.quiet(1) == [] and named.quiet(0) == []
    finally:
        pages.close()
        named.close()


def test_a_new_stream_starts_with_the_latest_events_then_shows_every_outcome(
    tenant: Tenant,
) -> None:
    # Sent before anyone watched: a stream opened later still starts with them.
    for i in range(2):
        assert tenant.send("track", track("Earlier", f"early-{i}")).status_code == 200
        tenant.trace(f"early-{i}")
    tenant.contract("Checkout", "total", "block")
    assert tenant.send("track", track("Checkout", "blocked-0")).status_code == 200
    tenant.trace("blocked-0")
    reader = LiveReader(tenant)
    try:
        assert reader.outcomes(3) == [
            ("early-0", "stored", None),
            ("early-1", "stored", None),
            ("blocked-0", "blocked", "blocked by a contract: total is required"),
        ]
        time.sleep(WATCH_SETTLE_SECONDS)
        assert tenant.send("track", track("Checkout", "blocked-1")).status_code == 200
        assert tenant.send("track", track("Again", "early-0")).status_code == 200
        arrived = sorted(reader.outcomes(2, timeout=20))
        assert [(m, status) for m, status, _ in arrived] == [
            ("blocked-1", "blocked"),
            ("early-0", "duplicate"),
        ]
        # A reconnect resumes after the backlog: nothing shown again.
        again = LiveReader(tenant, last_event_id=reader.last_id)
        assert again.quiet(2) == []
        again.close()
    finally:
        reader.close()


def test_streams_tail_prints_live_events(tenant: Tenant) -> None:
    command = [
        sys.executable,
        "-m",
        "shared.cli",
        "tail",
        "--gateway",
        tenant.gateway,
        "--token",
        tenant.token,
        "--workspace",
        tenant.workspace_id,
        "--event-type",
        "track",
        "--max-events",
        "1",
    ]
    with subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True) as process:
        try:
            time.sleep(2 + WATCH_SETTLE_SECONDS)  # interpreter start, then the stream opens
            tenant.send("identify", {"userId": "u-tail", "messageId": "tail-0"})
            tenant.send("track", track("Tail Me", "tail-1", properties={"n": 1}))
            out, _ = process.communicate(timeout=20)
        finally:
            process.kill()
    assert process.returncode == 0
    [line] = out.splitlines()
    assert "track" in line and "Tail Me" in line and '{"n":1}' in line


def test_volume_counts_stored_events(tenant: Tenant) -> None:
    for i in range(3):
        assert tenant.send("track", track("Checkout", f"vol-t{i}")).status_code == 200
    assert (
        tenant.send("page", {"userId": "u", "name": "Home", "messageId": "vol-p"}).status_code
        == 200
    )
    assert tenant.send("identify", {"userId": "u", "messageId": "vol-i"}).status_code == 200
    for message_id in ("vol-t0", "vol-t1", "vol-t2", "vol-p", "vol-i"):
        tenant.trace(message_id)

    response = tenant.api("GET", "/events/volume", params={"hours": 2})
    assert response.status_code == 200
    counts: dict[tuple[str, str | None], int] = {}
    for row in response.json():
        assert set(row) == {"event_type", "event_name", "hour_bucket", "event_count"}
        assert row["hour_bucket"].endswith(":00:00Z")
        key = (row["event_type"], row["event_name"])
        counts[key] = counts.get(key, 0) + row["event_count"]
    assert counts == {("track", "Checkout"): 3, ("page", "Home"): 1, ("identify", None): 1}
    assert len(tenant.api("GET", "/events/volume").json()) >= 3  # default 24 h
    bad = tenant.api("GET", "/events/volume", params={"hours": 721})
    assert bad.status_code == 400 and bad.json()["field"] == "hours"


def streams_api(tenant: Tenant, method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {tenant.token}"}
    return requests.request(
        method, f"{tenant.gateway}/v1/streams{path}", headers=headers, timeout=30, **kwargs
    )


def test_sources_api_over_both_seeds(tenant: Tenant) -> None:
    created = streams_api(tenant, "POST", "/sources", json={"name": "Mobile", "type": "mobile"})
    assert created.status_code == 201, created.text
    source = created.json()
    keys = {k["id"]: k for k in tenant.api("GET", "/event-keys").json()}
    assert keys[source["id"]]["key"] == source["writeKey"]
    assert keys[source["id"]]["status"] == "active"

    def send(message_id: str) -> requests.Response:
        return requests.post(
            f"{tenant.gateway}/v1/track",
            json=track("From Mobile", message_id),
            headers={"X-Write-Key": source["writeKey"]},
            timeout=30,
        )

    for i in range(2):
        assert send(f"mob-{i}").status_code == 200
    tenant.trace("mob-0")
    tenant.trace("mob-1")
    listed = {s["id"]: s for s in streams_api(tenant, "GET", "/sources").json()["data"]}
    assert set(listed) == {source["id"], tenant.source_id}
    assert listed[source["id"]]["eventsToday"] == 2
    assert listed[tenant.source_id]["eventsToday"] == 0
    assert streams_api(tenant, "GET", f"/sources/{source['id']}").json()["eventsToday"] == 2

    # The second seed's DELETE deletes: gone from both APIs, its key refused, its events kept.
    assert streams_api(tenant, "DELETE", f"/sources/{source['id']}").status_code == 204
    assert streams_api(tenant, "GET", f"/sources/{source['id']}").status_code == 404
    assert source["id"] not in {k["id"] for k in tenant.api("GET", "/event-keys").json()}
    assert wait_until(lambda: send("mob-late").status_code == 401, timeout=15)
    kept = streams_api(tenant, "GET", "/events", params={"sourceId": source["id"]}).json()
    assert kept["summary"]["totalEvents"] == 2


def test_source_debugger(tenant: Tenant) -> None:
    assert tenant.send("track", track("First", "dbg-1")).status_code == 200
    tenant.trace("dbg-1")
    page = {
        "userId": "u1",
        "name": "Pricing",
        "messageId": "dbg-2",
        "properties": {"url": "https://example.com/pricing", "title": "Pricing"},
        "context": {"ip": "203.0.113.9", "userAgent": "Mozilla/5.0", "locale": "en-GB"},
    }
    assert tenant.send("page", page).status_code == 200
    tenant.trace("dbg-2")

    response = streams_api(tenant, "GET", f"/sources/{tenant.source_id}/debug", params={"limit": 5})
    assert response.status_code == 200
    body = response.json()
    assert [e["id"] for e in body["data"]] == ["dbg-2", "dbg-1"]
    newest = body["data"][0]
    assert newest["type"] == "page" and body["data"][1]["type"] == "First"
    assert newest["context"]["ip"] == "203.0.113.9"
    assert newest["context"]["page"]["url"] == "https://example.com/pricing"
    assert body["connected"] is True
    assert body["lastEventAt"] >= newest["receivedAt"]
    bad = streams_api(tenant, "GET", f"/sources/{tenant.source_id}/debug", params={"limit": 0})
    assert bad.status_code == 400 and bad.json()["field"] == "limit"


def test_event_query(tenant: Tenant) -> None:
    for i in range(4):
        assert tenant.send("track", track("purchase", f"q-{i}")).status_code == 200
    body = {"sourceId": tenant.source_id, "type": "signup", "userId": "u9"}
    accepted = streams_api(tenant, "POST", "/events", json=body)
    assert accepted.status_code == 202
    for message_id in [f"q-{i}" for i in range(4)] + [accepted.json()["eventId"]]:
        tenant.trace(message_id)

    everything = streams_api(tenant, "GET", "/events").json()
    assert everything["summary"]["totalEvents"] == 5
    assert everything["summary"]["uniqueEventTypes"] == 2
    assert everything["data"][0]["type"] == "signup"
    purchases = streams_api(
        tenant, "GET", "/events", params={"eventType": "purchase", "limit": 2}
    ).json()
    assert [e["type"] for e in purchases["data"]] == ["purchase", "purchase"]
    assert purchases["summary"]["totalEvents"] == 4
    window = {"from": "2020-01-01T00:00:00Z", "to": "2020-01-02T00:00:00Z"}
    empty = streams_api(tenant, "GET", "/events", params=window).json()
    assert empty["data"] == [] and empty["summary"]["timeRange"] == {
        "from": "2020-01-01T00:00:00.000Z",
        "to": "2020-01-02T00:00:00.000Z",
    }
    for params, field in (({"from": "nope"}, "from"), ({"limit": 1001}, "limit")):
        bad = streams_api(tenant, "GET", "/events", params=params)
        assert bad.status_code == 400 and bad.json()["field"] == field
