"""Local fakes of destination vendors' APIs, for the retry-classification tests.

A fake is a function from a `Received` request to an `Answer`; `FakeVendor` serves it on a local
port with a real HTTP server, and records what it received. Each fake checks what the vendor's
real API checks (auth header, required fields, batch limits) and answers the vendor's documented
errors. `send_all` sends a connector's requests for some events through the real `HttpSender`
and classifies each answer the way deliver does (`classify_result`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import BaseModel

from shared.destinations import connector_for
from shared.destinations.base import OutboundRequest, batched
from shared.destinations.outbound import HttpSender, UrlGuard
from shared.destinations.pubsub import TopicGuard
from shared.domain.event import CanonicalEvent
from shared.ports import SendResult, SendStatus
from shared.services.outlets import Outlets
from tests.fakes import FakePublisher


@dataclass(frozen=True)
class Received:
    """One request as the fake saw it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Answer:
    """What the fake answers."""

    status: int
    body: Any = None  # JSON-encoded unless bytes or str
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


Handler = Callable[[Received], Answer]


class FakeVendor:
    """A vendor API on 127.0.0.1: `url` is its base, `received` what it was sent."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.received: list[Received] = []
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                request = Received(
                    self.command,
                    parts.path,
                    parse_qs(parts.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                )
                fake.received.append(request)
                answer = fake.handler(request)
                body = answer.encoded()
                self.send_response(answer.status)
                content_type = "application/json" if body[:1] in (b"{", b"[") else "text/plain"
                headers = {"Content-Type": content_type, **answer.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeVendor:
        # A short poll: stopping a fake then takes ~50 ms, not serve_forever's default 0.5 s.
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def fake_vendor(handler: Handler) -> Iterator[FakeVendor]:
    """A running fake for the length of the block."""
    vendor = FakeVendor(handler).start()
    try:
        yield vendor
    finally:
        vendor.stop()


def vendor_fixtures(default: Handler) -> tuple[Any, Any]:
    """The fixtures `server` (one fake per test module, answering with `default`) and `serve`
    (points it at a handler for one test, with nothing received yet), for a test module to
    assign: `server, serve = vendor_fixtures(handler)`."""

    @pytest.fixture(scope="module")
    def server() -> Iterator[FakeVendor]:
        with fake_vendor(default) as running:
            yield running

    @pytest.fixture
    def serve(server: FakeVendor) -> Iterator[Callable[[Handler], FakeVendor]]:
        def use(handler: Handler) -> FakeVendor:
            server.handler = handler
            server.received.clear()
            return server

        yield use
        server.handler = default

    return server, serve


@dataclass(frozen=True)
class Sent:
    """One request's answer, classified as deliver classifies it."""

    status: SendStatus
    result: SendResult
    owners: tuple[int, ...]  # indices of the events whose parts it carried


def send_all(
    type_: str,
    config: BaseModel,
    events: Sequence[CanonicalEvent],
    *,
    now: datetime | None = None,
) -> list[Sent]:
    """Batch the events' parts as deliver does, send each request through deliver's outlets
    (the connector's follow-up and classification included), and answer each outcome."""
    connector = connector_for(type_)
    moment = now or datetime.now(UTC)
    parts = [connector.parts(event, config, now=moment) for event in events]
    sender = _Recording(HttpSender(UrlGuard(allow_private=True)))
    outlets = Outlets(sender, FakePublisher(), TopicGuard("vendor-fakes"))
    sent: list[Sent] = []
    try:
        for batch in batched(connector, config, parts, now=moment):
            assert isinstance(batch.request, OutboundRequest), batch.request
            status = outlets.send(connector, batch.request).status
            assert sender.last is not None
            sent.append(Sent(status, sender.last, batch.owners))
    finally:
        sender.sender.close()
    return sent


class _Recording:
    """The sender, keeping the last answer (the follow-up's, when there was one)."""

    def __init__(self, sender: HttpSender) -> None:
        self.sender = sender
        self.last: SendResult | None = None

    def send(self, request: OutboundRequest, timeout: float | None = None) -> SendResult:
        self.last = self.sender.send(request, timeout)
        return self.last
