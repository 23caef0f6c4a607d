"""The route table: every operation of Streams, the one source for the local gateway, the
function dispatchers, the OpenAPI document and the production API gateway configuration."""

from __future__ import annotations

from functools import cache
from importlib.metadata import version
from typing import Any

from shared.api import (
    audit,
    collect,
    console,
    contracts,
    destinations,
    event_keys,
    events,
    forwarding_rules,
    ingest,
    me,
    observe,
    privacy,
    quarantine,
    regulations,
    stream_events,
    stream_sources,
    streams,
    tokens,
    transformations,
    warehouse,
    webhooks,
    wiring,
)
from shared.api.models import ErrorBody
from shared.http.cors import with_preflights
from shared.http.openapi import build_document
from shared.http.request import ApiRequest
from shared.http.routing import Route


def get_openapi(request: ApiRequest) -> dict[str, Any]:
    return openapi_document()


# The API's own description, served by the api_docs function: it describes the table it is in,
# so it is declared here rather than in a module the table would import.
DOCS_ROUTES = (
    Route(
        "GET",
        "/openapi.json",
        "api_docs",
        "getOpenApi",
        "This API's OpenAPI 3.1 document",
        get_openapi,
        auth="none",
        response=dict[str, Any],
        tag="Meta",
    ),
)

ROUTES: tuple[Route, ...] = (
    *ingest.ROUTES,
    *collect.ROUTES,
    *webhooks.ROUTES,
    *event_keys.ROUTES,
    *me.ROUTES,
    *tokens.ROUTES,
    *forwarding_rules.ROUTES,
    *transformations.ROUTES,
    *contracts.ROUTES,
    *quarantine.ROUTES,
    *destinations.ROUTES,
    *events.ROUTES,
    *observe.ROUTES,
    *warehouse.ROUTES,
    *streams.ROUTES,
    *stream_sources.ROUTES,
    *stream_events.ROUTES,
    *privacy.ROUTES,
    *regulations.ROUTES,
    *audit.ROUTES,
    *DOCS_ROUTES,
    *console.ROUTES,
)
# Browsers ask before posting to another origin: each path of the ingest function gets its
# OPTIONS route, so preflights reach it through every edge built from this table.
ROUTES = with_preflights(ROUTES)


@cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of every route (built once per process)."""
    return build_document(ROUTES, ErrorBody, version("streams"))


# The Pub/Sub-triggered functions and what feeds them (they have no routes).
# HTTP functions outside the public route table: reached by their IAM invokers only, never
# through the load balancer (their routes: INTERNAL_ROUTES).
INTERNAL_FUNCTIONS = {
    "wiring": "Pub/Sub wiring for the functions that create sources and destinations",
    "warehouse": "the hourly sync of every workspace's warehouse views (Cloud Scheduler)",
}
INTERNAL_ROUTES: tuple[Route, ...] = (*wiring.ROUTES, *warehouse.INTERNAL_ROUTES)

PUBSUB_FUNCTIONS = {
    "process": "every source topic",
    "deliver": "the deliveries topic",
    "dead_letters": "the dead-letter topic",
}


def http_functions() -> list[str]:
    """Every HTTP-triggered function, in route-table order."""
    return list(dict.fromkeys(route.function for route in ROUTES))
