"""Cross-origin access (CORS): web pages of any site may call the collection endpoints, and no
page may call the management API.

The answer names the page's own origin, never credentials: no SDK sends cookies to its
collection host (analytics.js posts with fetch's default `same-origin` credentials, RudderStack's
JavaScript SDK with a plain XMLHttpRequest), the write key travels in a header or the body, and
a response that allowed credentials would let any site read answers sent with the user's
cookies for nothing in return.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from flask import Request, Response

from shared.http.routing import Route

if TYPE_CHECKING:
    from shared.http.request import ApiRequest

# Functions whose every answer a page of another origin may read: collection only. The
# management API (every other function) answers no CORS headers, so a browser refuses a page's
# cross-origin call to it, and its OPTIONS stays a 405.
CROSS_ORIGIN_FUNCTIONS = frozenset({"ingest"})
# What the browser SDKs set: Content-Type (analytics.js sends text/plain, which needs no
# preflight; RudderStack application/json), Authorization (RudderStack's Basic write key),
# AnonymousId and SentAt (RudderStack v3), X-Write-Key and Content-Encoding (a
# page posting gzip itself).
ALLOW_HEADERS = "Authorization, Content-Type, Content-Encoding, X-Write-Key, AnonymousId, SentAt"
# Response headers beyond the safelisted ones that a page's script may read: when to retry.
EXPOSE_HEADERS = "Retry-After"
# Two hours: Chromium caps a cached preflight there (Firefox at 24 hours), so a page pays one
# preflight per path every two hours at most.
MAX_AGE_SECONDS = 7200


def serves_cross_origin(routes: tuple[Route, ...]) -> bool:
    """Whether the function serving `routes` (one function's share of the table) opens to
    other origins."""
    return bool(routes) and routes[0].function in CROSS_ORIGIN_FUNCTIONS


def allow_origin(request: Request, response: Response) -> Response:
    """Let the page that sent `request` read `response`, whatever its status."""
    # The answer depends on Origin: a shared cache must not hand one page's answer to another.
    response.vary.add("Origin")
    origin = request.headers.get("Origin")
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
    return response


def preflight(request: ApiRequest, allow_methods: str) -> Response:
    """The answer to a browser's preflight: which methods and headers the path accepts.

    Every origin gets 204, also for a source that lists its allowed origins: a preflight carries
    no write key, so the source is unknown here. The request that follows is refused (403) when
    its origin is not allowed, with the CORS headers that let the page read why.
    """
    response = Response(status=204)
    del response.headers["Content-Type"]  # no content, so no type of it
    response.headers["Access-Control-Allow-Methods"] = allow_methods
    response.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
    response.headers["Access-Control-Max-Age"] = str(MAX_AGE_SECONDS)
    return response


def with_preflights(routes: tuple[Route, ...]) -> tuple[Route, ...]:
    """`routes` and an OPTIONS route for each path a cross-origin function serves.

    Declared in the route table, the preflights reach the function through every edge built
    from it (the local gateway, the production gateway's configuration) and are documented.
    """
    methods: dict[str, list[str]] = {}
    first: dict[str, Route] = {}
    for route in routes:
        if route.function in CROSS_ORIGIN_FUNCTIONS and route.method != "OPTIONS":
            methods.setdefault(route.path, []).append(route.method)
            first.setdefault(route.path, route)
    return routes + tuple(
        _preflight_route(route, ", ".join([*dict.fromkeys(methods[path]), "OPTIONS"]))
        for path, route in first.items()
    )


def _preflight_route(route: Route, allow_methods: str) -> Route:
    handler: Any = partial(preflight, allow_methods=allow_methods)
    return Route(
        "OPTIONS",
        route.path,
        route.function,
        "preflight" + route.operation_id[:1].upper() + route.operation_id[1:],
        f"CORS preflight of {route.path}: 204 for every origin ({allow_methods})",
        handler,
        auth="none",
        status=204,
        tag=route.tag,
    )
