"""Contracts API: /api/v1/workspaces/{id}/event-contracts, and the quarantine of blocked events."""

import functions_framework
from flask import Request, Response

from shared.api.routes import routes_of
from shared.http.app import handle
from shared.http.framework import use_json_errors

ROUTES = routes_of("event_contracts")
use_json_errors()


@functions_framework.http
def event_contracts(request: Request) -> Response:
    return handle(request, ROUTES)
