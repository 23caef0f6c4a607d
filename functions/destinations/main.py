"""Destinations API: /api/v1/workspaces/{id}/destinations."""

import functions_framework
from flask import Request, Response

from shared.api.routes import routes_of
from shared.http.app import handle

ROUTES = routes_of("destinations")


@functions_framework.http
def destinations(request: Request) -> Response:
    return handle(request, ROUTES)
