"""Segment-compatible ingest: POST /v1/{track,identify,page,screen,group,alias,events,batch}."""

import functions_framework
from flask import Request, Response

from shared.api.function_routes import routes_of
from shared.bootstrap import get_services
from shared.http.app import handle
from shared.http.framework import dispatch_refused_requests

ROUTES = routes_of("ingest")
dispatch_refused_requests(ROUTES, get_services)


@functions_framework.http
def ingest(request: Request) -> Response:
    return handle(request, ROUTES, get_services)
