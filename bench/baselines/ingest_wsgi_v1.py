"""Ingest before issue 19 (item 3): Flask on gunicorn's threads (WSGI), and the normalisation
of that day.

A frozen copy of `functions/ingest/main.py` as it was, served by bench/ingest.py beside the
asynchronous entry point so that both are measured in one run. It calls the same handlers and
services (the synchronous `shared.api.ingest.ingest`), with one difference besides the server
and the entry: the ingest service normalises with `bench/baselines/ingest_normalise_v1.py`, the
frozen copy of the normalisation ingest ran when the issue was filed, set through the service's
one seam (`Ingest.normalise`). Otherwise every speed-up of the live normalisation would speed up
this baseline too, and the comparison would no longer be against "today's implementation".
"""

import functions_framework
from flask import Request, Response

from bench.baselines.ingest_normalise_v1 import normalise_request
from shared.api.function_routes import routes_of
from shared.bootstrap import Services, get_services
from shared.http.app import handle
from shared.http.framework import dispatch_refused_requests


def services() -> Services:
    """The process's services, ingest's own on Firestore's and Pub/Sub's REST APIs; the ingest
    service normalising with the frozen copy (set on every call: an attribute store, ~0.1 us,
    and right whichever caller built the service first)."""
    process_services = get_services(rest_clients=True)
    process_services.ingest.normalise = normalise_request
    return process_services


ROUTES = routes_of("ingest")
dispatch_refused_requests(ROUTES, services)


@functions_framework.http
def ingest(request: Request) -> Response:
    return handle(request, ROUTES, services)
