"""Ingest's entry point before issue 19 (item 3): Flask on gunicorn's threads (WSGI).

A frozen copy of `functions/ingest/main.py` as it was, served by bench/ingest.py beside the
asynchronous entry point so that both are measured in one run. It calls the same handlers and
services (the synchronous `shared.api.ingest.ingest`); only the server and the entry differ.
"""

import functions_framework
from flask import Request, Response

from shared.api.function_routes import routes_of
from shared.bootstrap import Services, get_services
from shared.http.app import handle
from shared.http.framework import dispatch_refused_requests


def services() -> Services:
    """The process's services, ingest's own on Firestore's and Pub/Sub's REST APIs."""
    return get_services(rest_clients=True)


ROUTES = routes_of("ingest")
dispatch_refused_requests(ROUTES, services)


@functions_framework.http
def ingest(request: Request) -> Response:
    return handle(request, ROUTES, services)
