"""Contracts API: /api/v1/workspaces/{id}/event-contracts, and the quarantine of blocked events."""

import functions_framework
from flask import Request, Response

from shared.api.function_routes import routes_of
from shared.bootstrap import get_services
from shared.http.app import handle
from shared.http.framework import dispatch_refused_requests

ROUTES = routes_of("event_contracts")
dispatch_refused_requests(ROUTES, get_services)


@functions_framework.http
def event_contracts(request: Request) -> Response:
    return handle(request, ROUTES, get_services)
