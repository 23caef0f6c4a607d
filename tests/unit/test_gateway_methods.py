"""The local gateway answers every method on every path with JSON: a method no function serves on
the path is Streams' 405 with `Allow` (never http.server's HTML 501), and what it does serve,
preflights included, still reaches the function."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from emulators.gateway import Gateway, serve
from shared.api.routes import ROUTES

HOST = "127.0.0.1"
ORIGIN = "https://shop.example.com"
KEYS = "/api/v1/workspaces/w1/event-keys"


class Upstream(BaseHTTPRequestHandler):
    """A function that records each request's method and path and answers 204."""

    seen: list[tuple[str, str]]
    protocol_version = "HTTP/1.1"

    def answer(self) -> None:
        self.seen.append((self.command, self.path))
        self.send_response(204)
        self.end_headers()

    do_GET = do_OPTIONS = answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def running() -> Iterator[tuple[int, list[tuple[str, str]]]]:
    """A gateway whose every function is one recording upstream: its port and what arrived."""
    seen: list[tuple[str, str]] = []
    upstream = ThreadingHTTPServer((HOST, 0), type("Bound", (Upstream,), {"seen": seen}))
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    url = f"http://{HOST}:{upstream.server_address[1]}"
    functions = {route.function for route in ROUTES}
    server = serve(Gateway(ROUTES, dict.fromkeys(functions, url), health=dict), HOST, 0)
    yield int(server.server_address[1]), seen
    server.shutdown()
    server.server_close()
    upstream.shutdown()
    upstream.server_close()


@pytest.fixture
def gateway(running: tuple[int, list[tuple[str, str]]]) -> tuple[int, list[tuple[str, str]]]:
    """The running gateway, with nothing recorded yet."""
    running[1].clear()
    return running


def send(port: int, method: str, path: str, **headers: str) -> tuple[Any, Any]:
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    connection.request(method, path, headers=headers)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    assert response.getheader("Content-Type") in ("application/json", None)
    return response, json.loads(body) if body else None


@pytest.mark.parametrize("method", ["TRACE", "PROPFIND", "CONNECT", "PURGE", "PATCH", "OPTIONS"])
def test_a_method_no_function_serves_is_a_json_405_with_allow(
    gateway: tuple[int, list[tuple[str, str]]], method: str
) -> None:
    port, seen = gateway
    response, body = send(port, method, KEYS, Origin=ORIGIN)
    assert response.status == 405
    assert body == {
        "code": 405,
        "error": "method_not_allowed",
        "message": f"{method} is not allowed on {KEYS}",
        "field": None,
        "details": None,
    }
    assert response.getheader("Allow") == "GET, POST, HEAD"
    # The management API stays closed to pages, its refusals included.
    assert response.getheader("Access-Control-Allow-Origin") is None
    assert seen == []


def test_any_method_on_a_path_no_route_has_is_a_json_404(
    gateway: tuple[int, list[tuple[str, str]]],
) -> None:
    port, seen = gateway
    response, body = send(port, "TRACE", "/nowhere")
    assert response.status == 404
    assert body["error"] == "not_found"
    assert seen == []


def test_a_collection_paths_405_is_readable_by_the_page(
    gateway: tuple[int, list[tuple[str, str]]],
) -> None:
    port, _ = gateway
    response, _ = send(port, "DELETE", "/v1/track", Origin=ORIGIN)
    assert response.status == 405
    assert response.getheader("Allow") == "POST, OPTIONS"
    assert response.getheader("Access-Control-Allow-Origin") == ORIGIN


def test_preflights_and_served_methods_still_reach_the_function(
    gateway: tuple[int, list[tuple[str, str]]],
) -> None:
    port, seen = gateway
    preflight, _ = send(port, "OPTIONS", "/v1/track", Origin=ORIGIN)
    listed, _ = send(port, "GET", KEYS)
    assert (preflight.status, listed.status) == (204, 204)
    assert seen == [("OPTIONS", "/v1/track"), ("GET", KEYS)]


def test_the_connection_carries_the_next_request_after_a_405(
    gateway: tuple[int, list[tuple[str, str]]],
) -> None:
    port, seen = gateway
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    connection.request("TRACE", KEYS)
    first = connection.getresponse()
    first.read()
    connection.request("GET", KEYS)
    second = connection.getresponse()
    second.read()
    connection.close()
    assert (first.status, second.status) == (405, 204)
    assert seen == [("GET", KEYS)]


def test_http_servers_own_refusals_are_answered_in_json(
    gateway: tuple[int, list[tuple[str, str]]],
) -> None:
    port, seen = gateway
    headers = "".join(f"X-Header-{index}: {index}\r\n" for index in range(120))
    with socket.create_connection((HOST, port), timeout=10) as sock:
        sock.sendall(f"GET {KEYS} HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
        answer = sock.makefile("rb").read()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431")
    assert b"Content-Type: application/json" in head
    assert json.loads(body)["error"] == "request_header_fields_too_large"
    assert seen == []


def test_healthz_answers_the_stacks_health_and_leaves_other_methods_to_ingest(
    gateway: tuple[int, list[tuple[str, str]]],
) -> None:
    port, seen = gateway

    health, body = send(port, "GET", "/healthz")
    preflight, _ = send(port, "OPTIONS", "/healthz", Origin=ORIGIN)
    post, refusal = send(port, "POST", "/healthz")

    assert (health.status, body["status"]) == (200, "ok")
    assert preflight.status == 204 and seen == [("OPTIONS", "/healthz")]
    assert (post.status, post.getheader("Allow")) == (405, "GET, OPTIONS, HEAD")
    assert refusal["error"] == "method_not_allowed"
