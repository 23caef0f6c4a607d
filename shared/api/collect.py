"""Web and mobile collection beside ingest: the SDK settings documents and the browser SDKs
themselves, so that a website loads analytics.js from Streams, not from Segment's CDN.

- `GET /v1/projects/{writeKey}/settings`: Segment's settings (analytics.js 2.0, analytics-kotlin,
  analytics-swift), naming this host as the client reached it.
- `GET /sourceConfig/`: RudderStack's JavaScript SDK v3 source configuration (`configUrl`).
- `GET /analytics.js/v1/{writeKey}/analytics.min.js`: the standalone build of
  `@segment/analytics-next` (collect/, pinned), with the write key embedded as Segment's CDN
  embeds it, and `GET /analytics-next/bundles/{file}`: the chunks it loads lazily from there
  (it derives that base from its own script URL, or from `analytics._cdn`).
- `GET /rudderstack/v3/analytics.min.js`: `@rudderstack/analytics-js`' UMD build, every plugin
  bundled, so it too loads nothing from elsewhere.

All are served by the ingest function, whose answers carry CORS headers (shared/http/cors.py).
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any, Literal

from flask import Response
from pydantic import BaseModel, Field

from shared.domain.errors import InvalidRequest, NotFound, Unauthorized, Unavailable
from shared.domain.ids import is_write_key
from shared.domain.sdk_settings import rudderstack_source_config, segment_settings
from shared.http.forwarded import public_host, public_scheme
from shared.http.openapi import Media
from shared.http.request import ApiRequest, Reply
from shared.http.responses import cacheable
from shared.http.routing import Route

FUNCTION = "ingest"
TAG = "SDK Configuration"
# collect/dist locally (`make collect`); in the ingest function's zip, collect/dist beside
# shared/ (terraform `assets`).
DIST = Path(__file__).resolve().parents[2] / "collect" / "dist"
# Within DIST (collect/build.mjs writes them).
LOADER = "analytics-next/standalone.js"
CHUNKS = "analytics-next/bundles"
RUDDERSTACK = "rudderstack/analytics.min.js"

JAVASCRIPT = "text/javascript; charset=utf-8"
SCRIPT = Media("text/javascript", etag=True)
# Settings and loaders change with configuration and deploys: browsers and shared caches keep
# them a few minutes. A chunk's name holds its content hash: it never changes.
SETTINGS_CACHE = "public, max-age=120"
LOADER_CACHE = "public, max-age=300"
IMMUTABLE_CACHE = "public, max-age=31536000, immutable"
# The settings name the host the client reached: a shared cache keys them on what says so.
SETTINGS_VARY = ("X-Forwarded-Host", "X-Forwarded-Proto")
# Scripts are loaded by pages of any origin (a <script> element, no CORS): never sniffed.
SCRIPT_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Resource-Policy": "cross-origin",
}
# Where the standalone build carries the write key a CDN embeds (lib/embedded-write-key.ts).
EMBEDDED_KEY = b'"__WRITE_KEY__"'
CHUNK_NAME = re.compile(r"^[A-Za-z0-9_-]{1,100}\.bundle\.[0-9a-f]{8,64}\.js$")


class SegmentIoSettings(BaseModel):
    """Where Segment's SDKs send: `{protocol}://{apiHost}/t` (analytics.js), `https://{apiHost}/b`
    (mobile)."""

    apiKey: str
    apiHost: str = Field(description="host[:port]/v1, no scheme")
    protocol: Literal["http", "https"]


class BlockingContract(BaseModel):
    """An active contract that quarantines the events breaking it."""

    eventType: str
    eventName: str = Field(description='the event name it judges, "*" for every name')
    enforcementMode: str
    undeclaredFields: str


class StreamsSourceSettings(BaseModel):
    """Streams' own part of the document (no SDK reads it)."""

    sourceId: str
    blockingContracts: list[BlockingContract]


class SdkMetrics(BaseModel):
    sampleRate: float
    host: str


class SdkSettingsDocument(BaseModel):
    """The settings document Segment's SDKs load at start-up."""

    integrations: dict[str, SegmentIoSettings]
    plan: dict[str, Any]
    edgeFunction: dict[str, Any]
    analyticsNextEnabled: bool
    middlewareSettings: dict[str, Any]
    enabledMiddleware: dict[str, bool]
    metrics: SdkMetrics
    legacyVideoPluginsEnabled: bool
    remotePlugins: list[Any]
    streams: StreamsSourceSettings


class RudderStackSource(BaseModel):
    id: str
    name: str
    writeKey: str
    workspaceId: str
    enabled: bool
    config: dict[str, Any]
    destinations: list[Any]


class RudderStackSourceConfig(BaseModel):
    """The source configuration RudderStack's JavaScript SDK v3 loads from its `configUrl`."""

    source: RudderStackSource


class SourceConfigQuery(BaseModel):
    """What RudderStack's SDK adds to its `configUrl` (`p`, `v`, `build`... are ignored)."""

    writeKey: str | None = Field(
        default=None, description="the source's write key (or HTTP Basic username)"
    )


def _origin(request: ApiRequest) -> str | None:
    return request.raw.headers.get("Origin")


def get_settings(request: ApiRequest) -> Reply:
    write_key = request.params["write_key"]
    profile = request.services.sdk_settings.profile(write_key, _origin(request))
    hops = request.services.settings.trusted_proxy_hops
    host = public_host(request.raw, hops)
    if host is None:
        raise InvalidRequest(f"Host {request.raw.host!r} is not a host name", field="Host")
    document = segment_settings(write_key, profile, host, public_scheme(request.raw, hops))
    return Reply(
        document,
        200,
        {"Cache-Control": SETTINGS_CACHE, "Vary": ", ".join(SETTINGS_VARY)},
    )


def get_source_config(request: ApiRequest) -> Reply:
    write_key = request.query.writeKey
    basic = request.raw.authorization
    if not write_key and basic is not None and basic.type == "basic":
        write_key = basic.username
    if not write_key:
        # As on every ingest path: credentials missing or malformed are a 401, before any read.
        raise Unauthorized("missing write key: send ?writeKey= or the HTTP Basic username")
    if not is_write_key(write_key):
        raise Unauthorized("unknown write key")
    profile = request.services.sdk_settings.profile(write_key, _origin(request))
    return Reply(
        rudderstack_source_config(write_key, profile), 200, {"Cache-Control": SETTINGS_CACHE}
    )


class _Files:
    """Built files read once per instance (they change only with a deploy), with their ETags."""

    def __init__(self) -> None:
        self._read: dict[Path, bytes] = {}
        self._lock = threading.Lock()

    def read(self, name: str) -> bytes:
        path = DIST / name
        body = self._read.get(path)
        if body is None:
            if not DIST.is_dir():
                raise Unavailable(
                    "the browser SDKs are not built: run `make collect` (npm ci in collect/)",
                    retry_after=60,
                )
            if not path.is_file():
                raise NotFound(f"no such file: {path.name}", field="file")
            body = path.read_bytes()
            with self._lock:
                self._read[path] = body
        return body


FILES = _Files()


def _script(request: ApiRequest, body: bytes, cache_control: str) -> Response:
    headers = {**SCRIPT_HEADERS, "Cache-Control": cache_control}
    return cacheable(request.raw, body, JAVASCRIPT, headers)


def get_analytics_js(request: ApiRequest) -> Response:
    write_key = request.params["write_key"]
    # An unknown or revoked key fails here, at the first request, as on Segment's CDN.
    request.services.sdk_settings.key(write_key, _origin(request))
    loader = FILES.read(LOADER)
    # The key is a minted one (checked above): letters, digits, `_` and `-`, safe in a string.
    body = loader.replace(EMBEDDED_KEY, b'"' + write_key.encode() + b'"', 1)
    return _script(request, body, LOADER_CACHE)


def get_analytics_js_chunk(request: ApiRequest) -> Response:
    name = request.params["file"]
    if not CHUNK_NAME.match(name):
        raise NotFound(f"no such analytics.js chunk: {name}", field="file")
    return _script(request, FILES.read(f"{CHUNKS}/{name}"), IMMUTABLE_CACHE)


def get_rudderstack_js(request: ApiRequest) -> Response:
    return _script(request, FILES.read(RUDDERSTACK), LOADER_CACHE)


ROUTES = (
    Route(
        "GET",
        "/v1/projects/{write_key}/settings",
        FUNCTION,
        "getSdkSettings",
        "Segment SDK settings for a write key (analytics.js 2.0, analytics-kotlin, "
        "analytics-swift), pointing at this host; 404 for an unknown or revoked key",
        get_settings,
        auth="none",
        response=SdkSettingsDocument,
        tag=TAG,
    ),
    Route(
        "GET",
        "/sourceConfig",
        FUNCTION,
        "getRudderStackSourceConfig",
        "RudderStack JavaScript SDK v3 source configuration (its configUrl), without "
        "device-mode destinations; 404 for an unknown or revoked key",
        get_source_config,
        auth="write_key",
        query=SourceConfigQuery,
        response=RudderStackSourceConfig,
        tag=TAG,
    ),
    Route(
        "GET",
        "/analytics.js/v1/{write_key}/analytics.min.js",
        FUNCTION,
        "getAnalyticsJs",
        "analytics.js 2.0 (@segment/analytics-next, standalone build) for Segment's snippet, "
        "with the write key embedded (JavaScript)",
        get_analytics_js,
        auth="none",
        response=SCRIPT,
        tag=TAG,
    ),
    Route(
        "GET",
        "/analytics-next/bundles/{file}",
        FUNCTION,
        "getAnalyticsJsChunk",
        "A chunk analytics.js loads lazily (JavaScript; content-hashed, immutable)",
        get_analytics_js_chunk,
        auth="none",
        response=SCRIPT,
        tag=TAG,
    ),
    Route(
        "GET",
        "/rudderstack/v3/analytics.min.js",
        FUNCTION,
        "getRudderStackJs",
        "RudderStack's JavaScript SDK v3 (@rudderstack/analytics-js, UMD build with its "
        "plugins bundled; JavaScript)",
        get_rudderstack_js,
        auth="none",
        response=SCRIPT,
        tag=TAG,
    ),
)
