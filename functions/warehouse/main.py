"""warehouse: the hourly sync of every workspace's warehouse views (docs/WAREHOUSE.md).

Private: invokable only by the Cloud Scheduler job's service account, with an ID token that
Cloud Run checks (docs/DEPLOY.md). It holds the rights to create each workspace's dataset,
write its views and authorise them to read the events table.
"""

import functions_framework
from flask import Request, Response

from shared.api.function_routes import routes_of
from shared.bootstrap import get_services
from shared.http.app import handle
from shared.http.framework import dispatch_refused_requests

ROUTES = routes_of("warehouse")
dispatch_refused_requests(ROUTES, get_services)


@functions_framework.http
def warehouse(request: Request) -> Response:
    return handle(request, ROUTES, get_services)
