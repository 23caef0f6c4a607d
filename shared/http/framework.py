"""What each HTTP function asks of functions-framework's Flask app before Streams sees a request."""

from __future__ import annotations

from collections.abc import Callable

import functions_framework
from flask import Response, request
from werkzeug.exceptions import HTTPException

from shared.bootstrap import Services
from shared.http.app import handle
from shared.http.routing import Route


def dispatch_refused_requests(routes: tuple[Route, ...], services: Callable[[], Services]) -> None:
    """Send the requests the framework would refuse itself through Streams' own dispatch.

    Its URL map (`/<path:path>`) matches no path holding a newline (`%0A`), so such a request
    would get Flask's HTML 404 before its credentials were even checked. Dispatched like any
    other, it gets what any other gets: 401 without valid credentials, then Streams' JSON 404
    or 405. Call this from `main.py`: functions-framework binds `errorhandler` to the app it is
    building only while it executes the module, so a call anywhere else would register nothing.
    """

    def dispatch(error: HTTPException) -> Response:
        return handle(request, routes, services)

    for status in (404, 405):
        functions_framework.errorhandler(status)(dispatch)
