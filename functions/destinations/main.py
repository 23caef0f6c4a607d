"""Destinations API: /api/v1/workspaces/{id}/destinations."""

import functions_framework
from flask import Request, Response

from shared.api.routes import routes_of
from shared.http.app import handle
from shared.http.framework import use_json_errors

ROUTES = routes_of("destinations")
use_json_errors()


@functions_framework.http
def destinations(request: Request) -> Response:
    return handle(request, ROUTES)
