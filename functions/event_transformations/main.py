"""Transformations API: /api/v1/workspaces/{id}/event-transformations."""

import functions_framework
from flask import Request, Response

from shared.api.routes import routes_of
from shared.http.app import handle

ROUTES = routes_of("event_transformations")


@functions_framework.http
def event_transformations(request: Request) -> Response:
    return handle(request, ROUTES)
