"""The web console: the built single-page app of console/ (docs/CONSOLE.md), served as files.

`console/dist/` is Vite's output: `index.html` and content-hashed `assets/`. The index is
revalidated on every load (a deploy changes the asset names it points to); assets are immutable.
Every answer carries a strict Content-Security-Policy: the page runs only its own scripts and
styles and talks only to this origin's Streams API, with the token the user typed (kept in the
tab's sessionStorage; see docs/CONSOLE.md).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from flask import Response

from shared.domain.errors import NotFound, Unavailable
from shared.http.forward import checked_origin
from shared.http.openapi import Media
from shared.http.request import ApiRequest
from shared.http.responses import cacheable
from shared.http.routing import Route

FUNCTION = "console"
BASE = "/console"
# The repository's console/dist locally; in a deployed function's zip, console/dist beside
# shared/ (terraform/build.py `package` puts it there).
DIST = Path(__file__).resolve().parents[2] / "console" / "dist"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        # data: only for the empty favicon (no request for /favicon.ico).
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "manifest-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}
# The SDKs' host when it is not the console's own origin: with edge "direct", ingest's run.app
# URL (Terraform sets it; docs/DEPLOY.md, "Choosing the edge"). The page's snippets and webhook
# URLs name it; unset, they name the page's origin, as behind the load balancer.
INGEST_ENVIRONMENT = "STREAMS_CONSOLE_INGEST_URL"
_ingest_url = os.environ.get(INGEST_ENVIRONMENT)
INGEST_ORIGIN = checked_origin(INGEST_ENVIRONMENT, _ingest_url) if _ingest_url else None
# console/index.html's empty placeholder, which the index is served with when INGEST_ORIGIN is
# unset.
INGEST_META = b'<meta name="streams-ingest-origin" content="" />'
INDEX_CACHE = "no-cache"
IMMUTABLE_CACHE = "public, max-age=31536000, immutable"
# Only these file types are served from assets/; anything else is a 404.
CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".woff2": "font/woff2",
    ".png": "image/png",
}
ASSET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
# Vite's file names end in -<content hash>.<ext>: such a file never changes.
HASHED = re.compile(r"-[A-Za-z0-9_-]{8,}\.[a-z0-9]+$")


def _file(
    path: Path,
    content_type: str,
    cache_control: str,
    request: ApiRequest,
    body: bytes | None = None,
) -> Response:
    body = path.read_bytes() if body is None else body
    headers = {**SECURITY_HEADERS, "Cache-Control": cache_control}
    return cacheable(request.raw, body, content_type, headers)


def get_index(request: ApiRequest) -> Response:
    index = DIST / "index.html"
    if not index.is_file():
        raise Unavailable(
            "the console is not built: run `make console` (npm ci and vite build in console/)",
            retry_after=60,
        )
    body = index.read_bytes()
    if INGEST_ORIGIN is not None:
        # A checked origin (scheme, host and port only): nothing in it needs escaping.
        filled = INGEST_META.replace(b'content=""', f'content="{INGEST_ORIGIN}"'.encode())
        body = body.replace(INGEST_META, filled, 1)
    return _file(index, "text/html; charset=utf-8", INDEX_CACHE, request, body)


def redirect_to_index(request: ApiRequest) -> Response:
    # The page's assets and its fragment routes are relative to /console/.
    return Response(status=308, headers={**SECURITY_HEADERS, "Location": f"{BASE}/"})


def get_asset(request: ApiRequest) -> Response:
    name = request.params["asset"]
    content_type = CONTENT_TYPES.get(Path(name).suffix)
    path = DIST / "assets" / name
    if not ASSET_NAME.match(name) or content_type is None or not path.is_file():
        raise NotFound(f"no such console asset: {name}", field="asset")
    cache = IMMUTABLE_CACHE if HASHED.search(name) else INDEX_CACHE
    return _file(path, content_type, cache, request)


ROUTES = (
    # "/console/" first: "/console" matches both, and redirects only the path without the slash.
    Route(
        "GET",
        BASE + "/",
        FUNCTION,
        "getConsole",
        "The web console (an HTML page; sign in with a management API token)",
        get_index,
        auth="none",
        response=Media("text/html", etag=True),
        tag="Console",
    ),
    Route(
        "GET",
        BASE,
        FUNCTION,
        "redirectConsole",
        "Redirects to /console/",
        redirect_to_index,
        auth="none",
        status=308,
        tag="Console",
    ),
    Route(
        "GET",
        BASE + "/assets/{asset}",
        FUNCTION,
        "getConsoleAsset",
        "A file of the web console (scripts and styles; content-hashed, immutable)",
        get_asset,
        auth="none",
        # Scripts, styles, fonts, images: CONTENT_TYPES.
        response=Media("*/*", etag=True),
        tag="Console",
    ),
)
