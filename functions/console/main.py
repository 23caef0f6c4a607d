"""The web console: /console/ and its assets (console/dist, built by `make console`)."""

import functions_framework
from flask import Request, Response

from shared.api.routes import routes_of
from shared.http.app import handle
from shared.http.framework import use_json_errors

ROUTES = routes_of("console")
use_json_errors()


@functions_framework.http
def console(request: Request) -> Response:
    return handle(request, ROUTES)
