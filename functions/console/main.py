"""The web console: /console/ and its assets (console/dist, built by `make console`).

With edge "direct" (no load balancer, docs/DEPLOY.md "Choosing the edge") Terraform sets
STREAMS_CONSOLE_API_URLS, and the console's origin also forwards the management API's paths to
their functions (shared/http/forward.py): the pages call their own origin either way.
"""

from __future__ import annotations

import os

import functions_framework
from flask import Request, Response

from shared.api.function_routes import routes_of
from shared.bootstrap import get_services
from shared.http.app import handle
from shared.http.forward import ENVIRONMENT, Forwarding, forwarding_from
from shared.http.framework import dispatch_refused_requests

ROUTES = routes_of("console")
dispatch_refused_requests(ROUTES, get_services)

# The console calls the management API only: never ingest (SDK traffic has its own host) nor
# the console itself.
NOT_FORWARDED = frozenset({"console", "ingest"})


def _forwarding() -> Forwarding | None:
    value = os.environ.get(ENVIRONMENT)
    if not value:
        return None  # behind the load balancer, which routes the API itself
    # The whole table, only here: it says which function serves each path.
    from shared.api.routes import ROUTES as TABLE
    from shared.api.routes import http_functions

    allowed = frozenset(http_functions()) - NOT_FORWARDED
    return forwarding_from(value, TABLE, allowed)


FORWARDING = _forwarding()


@functions_framework.http
def console(request: Request) -> Response:
    if FORWARDING is not None and (function := FORWARDING.target(request)) is not None:
        return FORWARDING.forward(request, function)
    return handle(request, ROUTES, get_services)
