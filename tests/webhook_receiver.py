"""A real HTTP server standing in for a customer's webhook endpoint, with scriptable failures."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """Records every request; answers `status` (or `fail_status` while `failures_left` > 0),
    after `delay_seconds`."""

    port: int = 0
    status: int = 200
    fail_status: int = 503
    failures_left: int = 0
    delay_seconds: float = 0.0
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def answer(self) -> int:
        with self.lock:
            if self.failures_left > 0:
                self.failures_left -= 1
                return self.fail_status
            return self.status

    def delivered(self) -> list[Received]:
        """Requests that were answered with success."""
        with self.lock:
            return list(self.received)

    def wait_for(self, count: int, timeout: float = 30) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.delivered()
            if len(got) >= count:
                return got
            time.sleep(0.1)
        return self.delivered()


class Server(ThreadingHTTPServer):
    # socketserver's default backlog of 5 drops connection attempts of parallel senders, which
    # then retry after a second: a real endpoint's listen backlog is in the hundreds.
    request_queue_size = 128


@contextmanager
def webhook_receiver(**settings: Any) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(**settings)

    class Handler(BaseHTTPRequestHandler):
        # Keep-alive, as real webhook endpoints serve.
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in two writes: without this, Nagle's algorithm holds the
            # body until the client's delayed ACK, 40 ms later on every kept-alive request.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            time.sleep(receiver.delay_seconds)
            status = receiver.answer()
            if 200 <= status < 300:
                with receiver.lock:
                    receiver.received.append(Received(dict(self.headers), body, time.monotonic()))
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        do_PUT = do_POST

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = Server(("127.0.0.1", receiver.port), Handler)
    server.daemon_threads = True
    receiver.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
