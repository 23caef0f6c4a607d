"""The local API gateway: one port, routed by path to the function that serves it, as the
production gateway routes (both are built from `shared.api.routes.ROUTES`)."""

from __future__ import annotations

import http.client
import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from shared.http.routing import Route

log = logging.getLogger("streams.gateway")

# Headers that describe one hop, not the message (RFC 9110 section 7.6.1).
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
}
UPSTREAM_TIMEOUT_SECONDS = 60.0


class Gateway:
    """Resolves a path to the base URL of the function serving it."""

    def __init__(
        self,
        routes: tuple[Route, ...],
        upstreams: dict[str, str],
        health: Callable[[], dict[str, bool]],
    ):
        self.routes = routes
        self.upstreams = upstreams
        self.health = health

    def upstream_for(self, path: str) -> str | None:
        for route in self.routes:
            if route.match(path) is not None:
                return self.upstreams.get(route.function)
        return None


def serve(gateway: Gateway, host: str, port: int) -> ThreadingHTTPServer:
    """Start serving in a background thread; `shutdown()` the returned server to stop."""
    handler = type("BoundGatewayHandler", (GatewayHandler,), {"gateway": gateway})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="gateway", daemon=True).start()
    return server


class GatewayHandler(BaseHTTPRequestHandler):
    """Proxies one request, streaming the answer so Server-Sent Events pass through live."""

    gateway: Gateway
    protocol_version = "HTTP/1.1"

    def do_request(self) -> None:
        path = urlsplit(self.path).path
        if path == "/healthz":
            return self._healthz()
        upstream = self.gateway.upstream_for(path)
        if upstream is None:
            return self._json(
                404,
                {
                    "code": 404,
                    "error": "not_found",
                    "message": f"no such path: {path}",
                    "field": None,
                    "details": None,
                },
            )
        body = self._read_body()
        target = urlsplit(upstream)
        connection = http.client.HTTPConnection(
            target.hostname or "127.0.0.1", target.port, timeout=UPSTREAM_TIMEOUT_SECONDS
        )
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            forwarded = self.headers.get("X-Forwarded-For")
            client = self.client_address[0]
            headers["X-Forwarded-For"] = f"{forwarded}, {client}" if forwarded else client
            try:
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
            except OSError as exc:
                return self._json(
                    502,
                    {
                        "code": 502,
                        "error": "bad_gateway",
                        "message": f"function unreachable: {exc}",
                        "field": None,
                        "details": None,
                    },
                )
            self._relay(response)
        finally:
            connection.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_request

    def _relay(self, response: http.client.HTTPResponse) -> None:
        self.send_response_only(response.status, response.reason)
        length = response.getheader("Content-Length")
        for key, value in response.getheaders():
            if key.lower() not in HOP_BY_HOP:
                self.send_header(key, value)
        if length is None and self.command != "HEAD":
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if self.command == "HEAD":
            return
        try:
            while chunk := response.read1(65536):
                if length is None:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                else:
                    self.wfile.write(chunk)
                self.wfile.flush()
            if length is None:
                self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, http.client.IncompleteRead):
            # The client left, or the function stopped mid-stream (an SSE stream at shutdown).
            self.close_connection = True

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while (size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)) > 0:
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else None

    def _healthz(self) -> None:
        checks = self.gateway.health()
        healthy = all(checks.values())
        self._json(
            200 if healthy else 503, {"status": "ok" if healthy else "unhealthy", "checks": checks}
        )

    def _json(self, status: int, body: dict[str, object]) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        log.info("%s %s", self.address_string(), format % args)
