"""Segment-compatible ingest: POST /v1/{track,identify,page,screen,group,alias,events,batch}."""

import functions_framework
from flask import Request, Response

from shared.api.function_routes import routes_of
from shared.bootstrap import Services, get_services
from shared.http.app import handle
from shared.http.framework import dispatch_refused_requests


def services() -> Services:
    """The process's services, ingest's own on Firestore's and Pub/Sub's REST APIs: a new
    instance answers without loading Google's gRPC clients (shared/bootstrap.py)."""
    return get_services(rest_clients=True)


ROUTES = routes_of("ingest")
dispatch_refused_requests(ROUTES, services)


@functions_framework.http
def ingest(request: Request) -> Response:
    return handle(request, ROUTES, services)
