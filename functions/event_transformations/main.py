"""Transformations API: /api/v1/workspaces/{id}/event-transformations."""

import functions_framework
from flask import Request, Response

from shared.api.routes import routes_of
from shared.http.app import handle
from shared.http.framework import use_json_errors

ROUTES = routes_of("event_transformations")
use_json_errors()


@functions_framework.http
def event_transformations(request: Request) -> Response:
    return handle(request, ROUTES)
