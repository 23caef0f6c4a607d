"""The routes one HTTP function serves, importing only the API modules that declare them.

A function's cold start pays for every module it imports: the whole route table
(shared/api/routes.py) would load every API module and, through them, every service. Each
function's `main.py` asks here instead. tests/unit/test_function_routes.py checks that what each
function gets is exactly its share of the whole table.
"""

from __future__ import annotations

import importlib

from shared.http.cors import with_preflights
from shared.http.routing import Route

# Per HTTP function, the shared.api modules declaring its routes ("routes": the whole table,
# for the function that serves the API's own document).
ROUTE_MODULES: dict[str, tuple[str, ...]] = {
    "ingest": ("ingest", "collect", "webhooks"),
    "event_keys": ("event_keys", "me", "tokens"),
    "event_forwarding_rules": ("forwarding_rules",),
    "event_transformations": ("transformations",),
    "event_contracts": ("contracts", "quarantine"),
    "destinations": ("destinations",),
    "events": ("events", "observe", "warehouse"),
    "streams": ("streams", "stream_sources", "stream_events"),
    "governance": ("privacy", "regulations", "audit"),
    "api_docs": ("routes",),
    "console": ("console",),
    # Private: not in the public route table, reached by its invokers only (shared/api/wiring.py).
    "wiring": ("wiring",),
    "warehouse": ("warehouse",),
}


def routes_of(function: str) -> tuple[Route, ...]:
    """The routes `function` serves, in route-table order, with their CORS preflights."""
    declared: list[Route] = []
    for name in ROUTE_MODULES[function]:
        module = importlib.import_module(f"shared.api.{name}")
        routes = (*module.ROUTES, *getattr(module, "INTERNAL_ROUTES", ()))
        declared += [route for route in routes if route.function == function]
    if ROUTE_MODULES[function] == ("routes",):
        return tuple(declared)  # the whole table has its preflights already
    return with_preflights(tuple(declared))
