"""wiring: Pub/Sub wiring of sources and destinations, for the functions that create them.

Private: invokable only by event_keys, destinations and streams, each with an ID token that
Cloud Run checks (docs/DEPLOY.md, Pub/Sub). It alone holds the rights to create topics and
subscriptions, grant topics' publishers and act as the push account.
"""

import functions_framework
from flask import Request, Response

from shared.api.function_routes import routes_of
from shared.bootstrap import get_services
from shared.http.app import handle
from shared.http.framework import dispatch_refused_requests

ROUTES = routes_of("wiring")
dispatch_refused_requests(ROUTES, get_services)


@functions_framework.http
def wiring(request: Request) -> Response:
    return handle(request, ROUTES, get_services)
