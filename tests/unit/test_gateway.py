"""The local gateway's handling of request bodies and of its own answers on collection paths:
chunked uploads (what analytics-kotlin sends) reach the function whole, within a limit."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from emulators.gateway import Gateway, serve
from shared.api.routes import ROUTES

HOST = "127.0.0.1"
ORIGIN = "https://shop.example.com"


class Recorder(BaseHTTPRequestHandler):
    """An upstream function that records what reached it and answers 200."""

    received: list[tuple[str, dict[str, str], bytes]]

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.received.append((self.path, dict(self.headers.items()), self.rfile.read(length)))
        payload = b'{"ok":true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[tuple[str, list[tuple[str, dict[str, str], bytes]]]]:
    received: list[tuple[str, dict[str, str], bytes]] = []
    handler = type("BoundRecorder", (Recorder,), {"received": received})
    server = ThreadingHTTPServer((HOST, 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://{HOST}:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@contextmanager
def gateway_port(upstreams: dict[str, str], max_body_bytes: int = 1000) -> Iterator[int]:
    """A running local gateway in front of `upstreams`; its port."""
    server = serve(Gateway(ROUTES, upstreams, health=dict, max_body_bytes=max_body_bytes), HOST, 0)
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def send_chunked(port: int, path: str, chunks: list[bytes], raw_end: bytes = b"0\r\n\r\n") -> Any:
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    connection.putrequest("POST", path)
    connection.putheader("Transfer-Encoding", "chunked")
    connection.putheader("Origin", ORIGIN)
    connection.endheaders()
    for chunk in chunks:
        connection.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    connection.send(raw_end)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response, json.loads(body) if body else None


def test_a_chunked_body_reaches_the_function_whole_with_its_length(upstream: Any) -> None:
    url, received = upstream
    with gateway_port({"ingest": url}) as port:
        response, _ = send_chunked(
            port, "/v1/b", [b'{"batch":', b"[]}"], raw_end=b"0\r\nX-Trailer: yes\r\n\r\n"
        )
        assert response.status == 200
    [(path, headers, body)] = received
    assert (path, body) == ("/v1/b", b'{"batch":[]}')
    assert headers["Content-Length"] == str(len(body))
    assert "Transfer-Encoding" not in headers


def test_a_chunked_body_past_the_limit_is_refused_while_read(upstream: Any) -> None:
    url, received = upstream
    with gateway_port({"ingest": url}, max_body_bytes=1000) as port:
        response, body = send_chunked(port, "/v1/b", [b"x" * 600, b"x" * 600])
        assert response.status == 413
        assert body["error"] == "payload_too_large"
        # A page reads the refusal of a collection path, as it reads the function's answers.
        assert response.getheader("Access-Control-Allow-Origin") == ORIGIN
    assert received == []


def test_a_declared_length_past_the_limit_is_refused_unread(upstream: Any) -> None:
    url, received = upstream
    with gateway_port({"ingest": url}, max_body_bytes=1000) as port:
        connection = http.client.HTTPConnection(HOST, port, timeout=10)
        connection.request("POST", "/v1/b", body=b"x" * 1001)
        assert connection.getresponse().status == 413
        connection.close()
    assert received == []


def test_a_malformed_chunk_is_400(upstream: Any) -> None:
    url, received = upstream
    with gateway_port({"ingest": url}) as port:
        response, body = send_chunked(port, "/v1/b", [], raw_end=b"zz\r\nnope\r\n0\r\n\r\n")
        assert response.status == 400 and body["code"] == 400
    assert received == []


def test_an_unreachable_function_is_502_readable_only_on_collection_paths() -> None:
    down = f"http://{HOST}:{closed_port()}"
    with gateway_port({"ingest": down, "event_keys": down}) as port:
        for path, cross_origin in (
            ("/v1/track", True),
            ("/api/v1/workspaces/w/event-keys", False),
        ):
            connection = http.client.HTTPConnection(HOST, port, timeout=10)
            connection.request("POST", path, body=b"{}", headers={"Origin": ORIGIN})
            response = connection.getresponse()
            response.read()
            connection.close()
            assert response.status == 502
            allowed = response.getheader("Access-Control-Allow-Origin")
            assert allowed == (ORIGIN if cross_origin else None), path
