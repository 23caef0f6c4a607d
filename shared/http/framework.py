"""What each HTTP function asks of functions-framework's Flask app before Streams sees a request."""

from __future__ import annotations

import functions_framework
from flask import Response, request
from werkzeug.exceptions import HTTPException

from shared.domain.errors import MethodNotAllowed, NotFound
from shared.http.responses import error_response


def use_json_errors() -> None:
    """Answer the requests the framework refuses itself with Streams' JSON error body.

    Its URL map (`/<path:path>`) matches no path holding a newline (`%0A`), so such a request
    never reaches `handle` and would get Flask's HTML 404. Call this from `main.py`:
    functions-framework binds `errorhandler` to the app it is building only while it executes
    the module, so a call anywhere else would register nothing.
    """
    for status in (404, 405):
        functions_framework.errorhandler(status)(_json_error)


def _json_error(error: HTTPException) -> Response:
    if error.code == 405:
        message = f"{request.method} is not allowed on {request.path!r}"
        return error_response(MethodNotAllowed(message))
    return error_response(NotFound(f"no such path: {request.path!r}"))
