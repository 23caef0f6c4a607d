"""A webhook endpoint that fault runs can take down (its port refuses connections) and bring back,
and that records every request it is sent, answered or not."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


class _Server(ThreadingHTTPServer):
    # The default backlog of 5 makes a burst of deliveries meet refused connections: a failure
    # of the test's receiver, not of the pipeline under test.
    request_queue_size = 128
    daemon_threads = True


@dataclass
class Receipt:
    """One request as the destination saw it."""

    message_id: str
    idempotency_key: str
    arrived: float
    status: int | None = None  # None until answered


@dataclass
class Destination:
    """Answers 200 to every webhook delivery after `delay_seconds`, while up."""

    delay_seconds: float = 0.0
    port: int = 0
    receipts: list[Receipt] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def up(self) -> None:
        """Listen (again, on the same port once it had one)."""
        self._server = _Server(("127.0.0.1", self.port), self._handler())
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def down(self) -> None:
        """Close the listening socket: new deliveries get `connection refused`."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def delivered(self) -> Counter[str]:
        """How many times each messageId was received and answered 2xx."""
        with self.lock:
            return Counter(
                r.message_id for r in self.receipts if r.status and 200 <= r.status < 300
            )

    def in_flight(self) -> list[Receipt]:
        """Requests received and not answered yet."""
        with self.lock:
            return [r for r in self.receipts if r.status is None]

    def received(self) -> list[Receipt]:
        with self.lock:
            return list(self.receipts)

    def __enter__(self) -> Destination:
        self.up()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.down()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        destination = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    message_id = str(json.loads(body).get("messageId"))
                except (ValueError, AttributeError):
                    message_id = "<unparseable>"
                receipt = Receipt(
                    message_id, self.headers.get("Idempotency-Key", ""), time.monotonic()
                )
                with destination.lock:
                    destination.receipts.append(receipt)
                time.sleep(destination.delay_seconds)
                # Counted as received before the answer is written: a sender killed now has
                # still reached the destination, which is what a duplicate check must see.
                with destination.lock:
                    receipt.status = 200
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler
