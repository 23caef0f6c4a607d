"""The console's way to the management API when no load balancer fronts Streams (edge "direct").

Behind the load balancer every route shares one origin, so the console's pages call the API on
their own origin. With edge "direct" each function answers at its own run.app URL, and the
console's origin is the console function's: it then forwards each path the route table gives
to a management function, to that function's URL as Terraform set it (STREAMS_CONSOLE_API_URLS,
docs/DEPLOY.md "Choosing the edge"). The pages keep calling their own origin, so the management
API stays closed to every other origin (shared/http/cors.py) and the page's CSP is unchanged.

What is reachable is what the load balancer would route, no more: a path is forwarded only when
the table says one of the configured functions serves it, only to that function's configured
URL (never to a host the request names), with the request's Authorization untouched (the API
function authenticates it as it would any caller's) and only the headers the API reads.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import quote

import urllib3
from flask import Request, Response

from shared.domain.errors import PayloadTooLarge, StreamsError, Unavailable
from shared.http.responses import error_response
from shared.http.routing import Route, allowed_methods, find_route

log = logging.getLogger("streams.http.forward")

ENVIRONMENT = "STREAMS_CONSOLE_API_URLS"
# The management API's own body limit (shared/http/app.py MAX_BODY_BYTES): a larger body would
# be refused upstream anyway, so it is refused before being read whole.
MAX_BODY_BYTES = 1024 * 1024
# What the management API reads from a request (the console sends no cookies: its fetches use
# credentials "omit"). Host, X-Forwarded-* and Forwarded are the upstream front end's to write.
REQUEST_HEADERS = (
    "Authorization",
    "Accept",
    "Content-Type",
    "Content-Encoding",
    "Last-Event-ID",
    "If-None-Match",
    "If-Match",
    "User-Agent",
)
# Hop-by-hop headers (RFC 9110, 7.6.1), what describes the upstream's own front end rather than
# the answer (the console's front end writes its own), and cookies: the API sets none, and the
# console's origin is to set none either.
DROPPED_RESPONSE_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "set-cookie",
        "alt-svc",
        "server",
        "date",
    }
)
CONNECT_SECONDS = 10.0
# Between two reads of an answer: the longest a management function may take before its first
# byte (events' live stream and warehouse sync: 330 s timeouts), which also bounds the silence
# between the live stream's heartbeats.
READ_SECONDS = 330.0
CHUNK_BYTES = 64 * 1024
LOOPBACK = frozenset({"127.0.0.1", "localhost", "[::1]"})
ORIGIN = re.compile(
    r"(?P<scheme>https?)://(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[::1\])"
    r"(?::\d{1,5})?/?"
)


@dataclass(frozen=True)
class Forwarding:
    """Forwards the management API's paths from the console's origin to their functions."""

    urls: Mapping[str, str]  # function name -> its base URL (scheme and host, no path)
    routes: tuple[Route, ...]  # the public route table: which function serves a path
    pool: urllib3.PoolManager

    def target(self, request: Request) -> str | None:
        """The function `request` goes to, or None when no configured function serves its path."""
        path = request.path
        if any(segment in (".", "..") for segment in path.split("/")):
            return None  # a path an upstream might normalise into another one
        route, _, _ = find_route(self.routes, request.method, path)
        if route is None:
            # A method the path does not take: its function answers the 405, with its Allow.
            methods = allowed_methods(self.routes, path)
            route = find_route(self.routes, methods[0], path)[0] if methods else None
        if route is None or route.function not in self.urls:
            return None
        return route.function

    def forward(self, request: Request, function: str) -> Response:
        """`request` sent to `function`, its answer streamed back as it comes (the live stream
        is read as it is written)."""
        try:
            body = _body(request)
            url = self.urls[function] + quote(request.path, safe="/:@!$&'()*+,;=-._~")
            if request.query_string:
                url += "?" + request.query_string.decode("latin-1")
            headers = {
                name: value for name in REQUEST_HEADERS if (value := request.headers.get(name))
            }
            try:
                upstream = self.pool.request(
                    request.method,
                    url,
                    body=body,
                    headers=headers,
                    preload_content=False,
                    decode_content=False,
                    redirect=False,
                    retries=False,
                )
            except urllib3.exceptions.HTTPError as exc:
                log.warning(
                    "console: %s %s to %s failed: %s", request.method, request.path, function, exc
                )
                raise Unavailable(
                    f"the {function} function could not be reached from the console; try again",
                    retry_after=5,
                ) from None
        except StreamsError as error:
            return error_response(error)
        response = Response(
            _stream(upstream),
            status=upstream.status,
            headers=[
                (name, value)
                for name, value in upstream.headers.items()
                if name.lower() not in DROPPED_RESPONSE_HEADERS
            ],
            direct_passthrough=True,
        )
        if "Content-Type" not in upstream.headers:
            del response.headers["Content-Type"]  # Flask's default would describe no content
        return response


def _body(request: Request) -> bytes | None:
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"request body exceeds {MAX_BODY_BYTES} bytes")
    # At most one byte past the limit: a body without Content-Length cannot exhaust memory.
    data = request.stream.read(MAX_BODY_BYTES + 1)
    if len(data) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"request body exceeds {MAX_BODY_BYTES} bytes")
    return data or None


def _stream(upstream: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
    # read1: whatever has arrived, not a full chunk's worth (a heartbeat must not wait for more).
    try:
        while chunk := upstream.read1(CHUNK_BYTES, decode_content=False):
            yield chunk
    except urllib3.exceptions.HTTPError as exc:
        # Headers are sent: the browser sees the answer end early, as when the upstream drops.
        log.warning("console: an answer from the management API ended early: %s", exc)
    finally:
        # Also when the browser leaves (the generator is closed): the upstream sees it go.
        upstream.release_conn()
        upstream.close()


def forwarding_from(
    value: str | None, routes: tuple[Route, ...], allowed: frozenset[str]
) -> Forwarding | None:
    """The forwarding STREAMS_CONSOLE_API_URLS describes (a JSON object of function name to
    base URL), or None when it is unset or empty (behind the load balancer, which routes the
    API itself). Refuses, at start, a function outside `allowed` and a URL that is not a bare
    https origin (http only on the loopback, for local runs)."""
    if not value:
        return None
    try:
        urls = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{ENVIRONMENT} is not JSON: {exc}") from None
    if not isinstance(urls, dict):
        raise ValueError(f"{ENVIRONMENT} must be a JSON object of function name to URL")
    bases: dict[str, str] = {}
    for function, url in urls.items():
        if function not in allowed:
            raise ValueError(
                f"{ENVIRONMENT}: {function!r} is not a management API function "
                f"(one of: {', '.join(sorted(allowed))})"
            )
        bases[function] = checked_origin(f"{ENVIRONMENT}: the URL of {function!r}", url)
    if not bases:
        return None
    pool = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=CONNECT_SECONDS, read=READ_SECONDS),
        retries=False,
    )
    return Forwarding(bases, routes, pool)


def checked_origin(setting: str, url: object) -> str:
    """`url` as a bare origin, `scheme://host[:port]` (https; http only on the loopback, for
    local runs), without a trailing slash. Refuses anything else, naming `setting`: a path, a
    query, credentials, a character a host cannot hold."""
    match = ORIGIN.fullmatch(url) if isinstance(url, str) else None
    if match is None or (match["scheme"] == "http" and match["host"] not in LOOPBACK):
        raise ValueError(
            f"{setting} must be https://<host> with no path, query or credentials "
            f"(http only on the loopback), not {url!r}"
        )
    return match[0].rstrip("/")
