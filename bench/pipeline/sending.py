"""Sending: events on an open-loop schedule, as raw `/v1/track` or `/v1/batch` requests from
keep-alive sender threads, or through the real Segment SDK; each event notes when it was due,
sent and answered, and how.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from segment.analytics.client import Client as SegmentClient

from bench.events import track_event
from bench.reporting import iso
from bench.running import HOST


@dataclass
class Sent:
    """One event: when it was due, sent and answered (monotonic seconds), and the answer."""

    message_id: str
    phase: str  # "warmup" or "measure"
    due: float
    sent: float = 0.0
    answered: float = 0.0
    status: int = 0
    error: str | None = None

    @property
    def accepted(self) -> bool:
        return self.status == 200


class Schedule:
    """Event i is due at start + i / rate, whoever sends it and however late earlier answers are.

    Events go out in requests of `batch_size` (a request is due when its first event is):
    single `/v1/track` calls, or `/v1/batch` calls as the Segment SDKs send them.
    """

    def __init__(
        self, start: float, rate: float, warmup_s: float, duration_s: float, batch_size: int = 1
    ):
        total = round(rate * (warmup_s + duration_s))
        warmup = round(rate * warmup_s)
        self.events = [
            Sent(str(uuid.uuid4()), "warmup" if i < warmup else "measure", start + i / rate)
            for i in range(total)
        ]
        self.requests = [
            self.events[i : i + batch_size] for i in range(0, len(self.events), batch_size)
        ]
        self._next = 0
        self._lock = threading.Lock()

    def take(self) -> list[Sent] | None:
        with self._lock:
            if self._next >= len(self.requests):
                return None
            self._next += 1
            return self.requests[self._next - 1]


def request_body(events: list[Sent]) -> dict[str, Any]:
    """One track call, or a `/v1/batch` envelope of several (messageIds from the schedule)."""
    now = datetime.now(UTC)
    calls = [{**track_event(i, now), "messageId": e.message_id} for i, e in enumerate(events)]
    if len(calls) == 1:
        return {**calls[0], "sentAt": iso(now)}
    return {"batch": calls, "sentAt": iso(now)}


def send_loop(
    url: str, headers: Mapping[str, str], schedule: Schedule, stop: threading.Event
) -> None:
    """A sender thread: a keep-alive connection, taking the next due request until none is left."""
    target = urlsplit(url)
    conn: http.client.HTTPConnection | None = None
    while not stop.is_set() and (events := schedule.take()) is not None:
        delay = events[0].due - time.monotonic()
        if delay > 0 and stop.wait(delay):
            break
        data = json.dumps(request_body(events), separators=(",", ":")).encode()
        if conn is None:
            conn = http.client.HTTPConnection(target.hostname or HOST, target.port, timeout=10)
        sent = time.monotonic()
        status, error = 0, None
        try:
            conn.request("POST", target.path, body=data, headers=dict(headers))
            response = conn.getresponse()
            answer = response.read()
            status = response.status
            if response.status != 200:
                error = f"{response.status} {answer[:300].decode('utf-8', 'replace')}"
            if response.will_close:
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as exc:
            error = f"{type(exc).__name__}: {exc}"
            if conn is not None:
                conn.close()
            conn = None
        answered = time.monotonic()
        for event in events:
            event.sent, event.answered, event.status, event.error = sent, answered, status, error
    if conn is not None:
        conn.close()


def sdk_loop(host: str, write_key: str, schedule: Schedule, stop: threading.Event) -> None:
    """Track each event when due through the real Segment SDK, then flush it.

    The SDK queues events and its consumer thread posts them to `/v1/batch` (every 0.5 s or
    100 events by default). Its upload call is wrapped only to note when each batch was
    answered, and how.
    """
    client = SegmentClient(write_key=write_key, host=host)
    events = {e.message_id: e for e in schedule.events}
    for consumer in client.consumers:
        consumer.request = timed_upload(consumer.request, events)
    template = track_event(0, datetime.now(UTC))
    for event in schedule.events:
        delay = event.due - time.monotonic()
        if delay > 0 and stop.wait(delay):
            break
        event.sent = time.monotonic()
        client.track(
            user_id=template["userId"],
            event=template["event"],
            properties=template["properties"],
            message_id=event.message_id,
        )
    client.shutdown()  # uploads what is queued, then stops the consumer thread


Upload = Callable[[list[dict[str, Any]]], None]


def timed_upload(upload: Upload, events: Mapping[str, Sent]) -> Upload:
    def timed(batch: list[dict[str, Any]]) -> None:
        status, error = 200, None
        try:
            upload(batch)
        except Exception as exc:
            status, error = int(getattr(exc, "status", 0) or 0), f"{type(exc).__name__}: {exc}"
            raise
        finally:
            answered = time.monotonic()
            for item in batch:
                if (event := events.get(item.get("messageId", ""))) is not None:
                    event.answered, event.status, event.error = answered, status, error

    return timed


class Senders:
    """The threads sending one schedule; stoppable from any cleanup path, once or many times."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start_raw(
        self, url: str, headers: Mapping[str, str], schedule: Schedule, count: int
    ) -> None:
        """`count` threads of `send_loop` sharing the schedule."""
        self._start([lambda: send_loop(url, headers, schedule, self._stop)] * count)

    def start_sdk(self, host: str, write_key: str, schedule: Schedule) -> None:
        """One thread tracking every event through one Segment SDK client."""
        self._start([lambda: sdk_loop(host, write_key, schedule, self._stop)])

    def _start(self, loops: list[Callable[[], None]]) -> None:
        self._threads = [
            threading.Thread(target=loop, name=f"sender-{i}", daemon=True)
            for i, loop in enumerate(loops)
        ]
        for thread in self._threads:
            thread.start()

    def join(self) -> None:
        """Until the schedule is sent."""
        for thread in self._threads:
            thread.join()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)
