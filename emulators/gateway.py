"""The local API gateway: one port, routed by path to the function that serves it, as the
production gateway routes (both are built from `shared.api.routes.ROUTES`)."""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from shared.http.client_socket import socket_check
from shared.http.cors import CROSS_ORIGIN_FUNCTIONS
from shared.http.responses import error_body
from shared.http.routing import Route, allowed_methods

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
# The largest request body passed on, as the production edge (API Gateway, and Cloud Run behind
# it, refuse requests above 32 MiB). Each function enforces its own, smaller limit as it reads.
MAX_BODY_BYTES = 32 * 1024 * 1024
# A chunk-size line is a hex number and maybe extensions: a longer one is not HTTP.
MAX_CHUNK_LINE = 1024
# Streams' error codes for the statuses http.server answers on its own (others: their phrase).
ERROR_CODES = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed"}


class BadBody(Exception):
    """A request body the gateway refuses to pass on: its status and message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class Gateway:
    """Resolves a path to the base URL of the function serving it."""

    def __init__(
        self,
        routes: tuple[Route, ...],
        upstreams: dict[str, str],
        health: Callable[[], dict[str, bool]],
        max_body_bytes: int = MAX_BODY_BYTES,
    ):
        self.routes = routes
        self.upstreams = upstreams
        self.health = health
        self.max_body_bytes = max_body_bytes

    def function_for(self, path: str) -> str | None:
        """The function serving `path`, or None when no route has it."""
        for route in self.routes:
            if route.match(path) is not None:
                return route.function
        return None

    def allowed_methods(self, path: str) -> list[str]:
        """The methods the route table serves `path` with (HEAD with GET); empty: no path."""
        return allowed_methods(self.routes, path)


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
    cross_origin = False

    def do_request(self) -> None:
        path = urlsplit(self.path).path
        self.cross_origin = False
        if path == "/healthz" and self.command in ("GET", "HEAD"):
            # The whole stack's health; any other method is ingest's /healthz's (its preflight,
            # or a 405), as behind the production edge.
            return self._healthz()
        function = self.gateway.function_for(path)
        upstream = None if function is None else self.gateway.upstreams.get(function)
        if upstream is None:
            return self._refuse(404, error_body(404, "not_found", f"no such path: {path}"))
        # The gateway's own refusals on a collection path are readable by the page, as the
        # function's own answers are.
        self.cross_origin = function in CROSS_ORIGIN_FUNCTIONS
        allowed = self.gateway.allowed_methods(path)
        if self.command not in allowed:
            # As the functions answer a method their path does not take (the production
            # gateway, built from the same table, passes no other method on).
            message = f"{self.command} is not allowed on {path}"
            return self._refuse(
                405,
                error_body(405, "method_not_allowed", message),
                {"Allow": ", ".join(allowed)},
            )
        try:
            body = self._read_body()
        except BadBody as refused:
            # The rest of the body is still on the connection: it cannot carry another request.
            self.close_connection = True
            return self._json(
                refused.status, error_body(refused.status, refused.code, refused.message)
            )
        target = urlsplit(upstream)
        connection = http.client.HTTPConnection(
            target.hostname or "127.0.0.1", target.port, timeout=UPSTREAM_TIMEOUT_SECONDS
        )
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            # Append the peer, as a proxy does: the functions trust this one entry
            # (STREAMS_TRUSTED_PROXY_HOPS=1 locally) and never what the client sent before it.
            forwarded = self.headers.get("X-Forwarded-For")
            client = self.client_address[0]
            headers["X-Forwarded-For"] = f"{forwarded}, {client}" if forwarded else client
            # The host and scheme the client reached, as Google's front end passes them: the
            # SDK settings name this gateway, not the function's own port, as the ingest host.
            headers["X-Forwarded-Host"] = self.headers.get("Host") or "127.0.0.1"
            headers["X-Forwarded-Proto"] = "http"
            try:
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
            except OSError as exc:
                return self._json(
                    502, error_body(502, "bad_gateway", f"function unreachable: {exc}")
                )
            self._relay(response, connection)
        finally:
            connection.close()

    def parse_request(self) -> bool:
        """Read the request line and headers; then have any method, TRACE and CONNECT and
        made-up ones too, handled by `do_request` (http.server answers a method it finds no
        `do_<METHOD>` for with an HTML 501)."""
        if not super().parse_request():
            return False
        setattr(self, f"do_{self.command}", self.do_request)
        return True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (a malformed request line, headers too long), in JSON."""
        self.close_connection = True
        status = HTTPStatus(code)
        error = ERROR_CODES.get(code) or status.phrase.lower().replace(" ", "_").replace("-", "_")
        self._json(code, error_body(code, error, message or status.phrase, details=explain))

    def _refuse(
        self, status: int, body: dict[str, object], headers: dict[str, str] | None = None
    ) -> None:
        """Answer without reading the body: if the request has one, it is still on the
        connection, which then cannot carry another request."""
        if self.headers.get("Content-Length") not in (None, "0") or self.headers.get(
            "Transfer-Encoding"
        ):
            self.close_connection = True
        self._json(status, body, headers)

    def _relay(
        self, response: http.client.HTTPResponse, upstream: http.client.HTTPConnection
    ) -> None:
        self.send_response_only(response.status, response.reason)
        length = response.getheader("Content-Length")
        for key, value in response.getheaders():
            if key.lower() not in HOP_BY_HOP:
                self.send_header(key, value)
        # 1xx, 204 and 304 answers carry no body, hence no chunked framing: Chromium refuses a
        # 204 preflight answer that has one.
        bodiless = self.command == "HEAD" or response.status in (204, 304) or response.status < 200
        if length is None and not bodiless:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if bodiless:
            return
        if length is None:
            # A stream (SSE): when its client leaves, leave the function too, at once, so that
            # it frees the stream's thread now rather than when a write of ours would fail.
            threading.Thread(
                target=_close_when_gone, args=(self.connection, upstream), daemon=True
            ).start()
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
        """The whole body, de-chunked (the function gets it with a Content-Length), within
        the gateway's limit, counted while reading: a chunked body declares no size."""
        limit = self.gateway.max_body_bytes
        too_large = BadBody(413, "payload_too_large", f"request body exceeds {limit} bytes")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts, total = [], 0
            while (size := self._chunk_size()) > 0:
                total += size
                if total > limit:
                    raise too_large
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            # Trailer fields, if any, up to the empty line that ends the message.
            while self.rfile.readline(MAX_CHUNK_LINE).strip():
                pass
            return b"".join(parts)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise BadBody(400, "invalid_request", "Content-Length is not a number") from None
        if length > limit:
            raise too_large
        return self.rfile.read(length) if length > 0 else None

    def _chunk_size(self) -> int:
        line = self.rfile.readline(MAX_CHUNK_LINE)
        try:
            return int(line.split(b";")[0].strip(), 16)
        except ValueError:
            raise BadBody(400, "invalid_request", "malformed chunked request body") from None

    def _healthz(self) -> None:
        checks = self.gateway.health()
        healthy = all(checks.values())
        self._json(
            200 if healthy else 503, {"status": "ok" if healthy else "unhealthy", "checks": checks}
        )

    def _json(
        self, status: int, body: dict[str, object], headers: dict[str, str] | None = None
    ) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        # None when http.server refuses a request before reading its headers.
        request_headers = getattr(self, "headers", None)
        origin = None if request_headers is None else request_headers.get("Origin")
        if self.cross_origin and origin is not None:
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Vary", "Origin")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        log.info("%s %s", self.address_string(), format % args)


def _close_when_gone(client: socket.socket, upstream: http.client.HTTPConnection) -> None:
    upstream_socket = upstream.sock  # None once the relay has ended and closed it
    connected = socket_check(client)
    while upstream.sock is not None and connected():
        time.sleep(0.1)
    if upstream.sock is not None and upstream_socket is not None:
        with contextlib.suppress(OSError):
            upstream_socket.shutdown(socket.SHUT_RDWR)  # ends the relay's blocked read
