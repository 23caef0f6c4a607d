"""The second seed's API: /v1/streams/..."""

import functions_framework
from flask import Request, Response

from shared.api.routes import routes_of
from shared.http.app import handle

ROUTES = routes_of("streams")


@functions_framework.http
def streams(request: Request) -> Response:
    return handle(request, ROUTES)
