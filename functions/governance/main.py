"""Governance API: privacy settings, regulations and the audit log."""

import functions_framework
from flask import Request, Response

from shared.api.routes import routes_of
from shared.http.app import handle
from shared.http.framework import use_json_errors

ROUTES = routes_of("governance")
use_json_errors()


@functions_framework.http
def governance(request: Request) -> Response:
    return handle(request, ROUTES)
