"""Ingest on the event loop: no store I/O runs on the loop's thread, and the asynchronous path
publishes exactly what the synchronous one does."""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
from typing import Any

import functions_framework
import pytest
from functions_framework import _function_registry

from shared.adapters.pubsub_rest import AsyncGroupPublisher
from shared.domain.errors import TooManyRequests, Unauthorized
from shared.domain.rate_limit import RateLimit
from shared.domain.sources import EventSource, source_path
from tests.fakes import FakeServices
from tests.functions import ROOT, function_client


class ThreadsOfReads:
    """Wraps the store's `get`, noting the thread of every read."""

    def __init__(self, services: FakeServices, monkeypatch: pytest.MonkeyPatch) -> None:
        self.threads: list[str] = []
        get = services.store.get

        def recorded(path: str) -> Any:
            self.threads.append(threading.current_thread().name)
            return get(path)

        monkeypatch.setattr(services.store, "get", recorded)


def test_a_key_the_cache_misses_is_read_in_a_thread_and_a_hit_reads_nothing(
    services: FakeServices, source: EventSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = ThreadsOfReads(services, monkeypatch)
    ingest = services.ingest

    async def scenario() -> tuple[str, str]:
        first = await ingest.authorize_async(source.key)
        second = await ingest.authorize_async(source.key)
        return first.source_id, second.source_id

    assert asyncio.run(scenario()) == (source.id, source.id)
    assert len(reads.threads) == 1  # the second was the cache's
    assert reads.threads[0] != threading.main_thread().name


def test_the_refusals_are_the_synchronous_ones(services: FakeServices, source: EventSource) -> None:
    ingest = services.ingest
    for key in (None, "", "garbage", "wk_unknown"):
        with pytest.raises(Unauthorized) as sync_refusal:
            ingest.authorize(key)
        with pytest.raises(Unauthorized) as async_refusal:
            asyncio.run(ingest.authorize_async(key))
        assert async_refusal.value.message == sync_refusal.value.message


def test_the_message_is_the_one_the_synchronous_path_publishes(
    services: FakeServices, source: EventSource
) -> None:
    ingest = services.ingest
    key = ingest.authorize(source.key)
    body = {"batch": [{"type": "track", "event": "E", "userId": "u", "messageId": "m1"}]}
    sync = ingest.accept(key, body, None, "203.0.113.7")
    publisher = AsyncGroupPublisher(ingest.publisher)
    result = asyncio.run(ingest.accept_async(key, body, None, "203.0.113.7", publisher))
    assert result.message_ids == sync.message_ids == ["m1"]
    [(first, first_attributes), (second, second_attributes)] = services.publisher.published[
        source.pubsub_topic
    ]
    assert first_attributes == second_attributes
    # receivedAt and the event's own timestamps follow the clock, which moved between the two.
    first_event, second_event = (json.loads(data)[0] for data in (first, second))
    moving = {"receivedAt", "timestamp", "originalTimestamp", "sentAt"}
    assert {k: v for k, v in first_event.items() if k not in moving} == {
        k: v for k, v in second_event.items() if k not in moving
    }


def test_store_writes_of_the_asynchronous_path_run_in_threads(
    services: FakeServices, source: EventSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`last_used_at` (once per interval) and a limited source's shared counter are written off
    the loop; a request over the limit is refused before anything is published."""
    threads: list[str] = []
    commit = services.store.commit

    def recorded(writes: Any, *args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return commit(writes, *args, **kwargs)

    monkeypatch.setattr(services.store, "commit", recorded)
    ingest = services.ingest
    key = ingest.authorize(source.key).model_copy(
        update={"rate_limit": RateLimit(events_per_second=1, burst=2)}
    )
    publisher = AsyncGroupPublisher(ingest.publisher)
    track = {"event": "E", "userId": "u"}

    async def scenario() -> int:
        for sent in range(100):
            try:
                await ingest.accept_async(key, dict(track), "track", None, publisher)
            except TooManyRequests:
                return sent
        raise AssertionError("the source's limit never refused a request")

    admitted = asyncio.run(scenario())
    assert len(services.publisher.published[source.pubsub_topic]) == admitted
    # One write of last_used_at for every request (LAST_USED_WRITE_SECONDS apart at most).
    assert len(threads) == 1
    assert threading.main_thread().name not in threads
    stored = services.store.get(source_path(source.workspace_id, source.id))
    assert stored is not None and stored.get("last_used_at")


@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [
        ("TRACE", "/v1/track", 405, "POST, OPTIONS"),
        ("PROPFIND", "/v1/batch", 405, "POST, OPTIONS"),
        ("GET", "/v1/tr%0Aack", 404, None),
        ("GET", "/robots.txt", 404, None),
        ("GET", "/favicon.ico", 404, None),
    ],
)
def test_what_the_frameworks_router_refuses_gets_streams_answer(
    services: FakeServices, method: str, path: str, status: int, allow: str | None
) -> None:
    """Starlette's router would answer these itself, in plain text (a 405's Allow naming the
    framework's methods): the entry point dispatches them like any other request."""
    response = function_client("ingest").open(path, method=method)
    assert response.status_code == status
    assert response.headers.get("Allow") == allow
    assert response.get_json()["code"] == status


def _wsgi_client(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The previous entry point (Flask on gunicorn's threads), frozen for the benchmark. The
    framework picks ASGI by the function's name, which the new entry point registered."""
    with monkeypatch.context() as patch:
        patch.setattr(_function_registry, "ASGI_FUNCTIONS", set())
        app = functions_framework.create_app(
            target="ingest", source=str(ROOT / "bench" / "baselines" / "ingest_wsgi_v1.py")
        )
    return app.test_client()


TRACK_ITEM = b'{"type":"track","event":"E","userId":"u","messageId":"m%d","properties":%s}'
BODIES = [
    b'{"event":"E","userId":"u","messageId":"m","properties":{"a":1,"a":2}}',  # repeated key
    b'{"event":"E","userId":"u","messageId":"m","properties":{"f":0.1000000000000000055511151231257827,"e":1E400,"n":-0}}',
    b'{"event":"E","userId":"u","messageId":"m","properties":{"big":123456789012345678901234567890}}',
    b'{"event":"E","userId":"u","messageId":"m","properties":{"u":18446744073709551615}}',
    b'{"event":"E","userId":"u","messageId":"m","properties":{"u":18446744073709551616}}',
    b'{"event":"E","userId":"u","messageId":"m","properties":{"i":-9223372036854775809}}',
    b'{"event":"E","userId":"u","messageId":"m","properties":{"s":"12345678901234567890123"}}',
    b'{"event":"E","userId":"u","messageId":"m","properties":{"x":NaN,"y":-Infinity}}',
    b'{"event":"E","userId":"u","messageId":"m","properties":{"s":"\\ud800"}}',
    b'\xef\xbb\xbf{"event":"E","userId":"u","messageId":"m"}',  # a UTF-8 byte order mark
    '{"event":"E","userId":"u","messageId":"m"}'.encode("utf-16"),
    b'{"event":"E","userId":"u","messageId":"m","properties":' + b"[" * 3000 + b"]" * 3000 + b"}",
    b'{"event":"E","userId":"u","messageId":"m","properties":{"c":"a\x01b"}}',  # a raw control
    b"{nope",
    b"",
    b"   ",
    gzip.compress(gzip.compress(b'{"event":"E","userId":"u","messageId":"m"}')),
    b'{"batch":[' + b",".join(TRACK_ITEM % (i, b'{"v":%d}' % i) for i in range(3)) + b"]}",
]


@pytest.mark.parametrize("body", BODIES, ids=range(len(BODIES)))
def test_every_body_gets_the_previous_entry_points_answer(
    services: FakeServices, source: EventSource, body: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """orjson parses what it takes, Python's reader the rest: the answer and what is published
    are the previous entry point's, whatever the body."""
    path = "/v1/batch" if body.startswith(b'{"batch"') else "/v1/track"
    headers = {"X-Write-Key": source.key, "Content-Type": "application/json"}
    answers = []
    for client in (function_client("ingest"), _wsgi_client(monkeypatch)):
        before = len(services.publisher.published.get(source.pubsub_topic, []))
        response = client.post(path, data=body, headers=headers)
        published = services.publisher.published.get(source.pubsub_topic, [])[before:]
        events = [
            {k: v for k, v in event.items() if k not in ("receivedAt", "timestamp")}
            for data, _ in published
            for event in json.loads(data)
        ]
        answers.append((response.status_code, response.get_json(), events))
    assert answers[0] == answers[1]
