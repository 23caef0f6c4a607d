"""JSON responses, and the one error body every endpoint answers with."""

from __future__ import annotations

import json
from typing import Any

from flask import Response

from shared.domain.errors import StreamsError, Unavailable

JSON = "application/json"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response; `None` bodies become empty (204-style) responses."""
    if body is None:
        return Response(status=status, headers=headers)
    try:
        payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    except UnicodeEncodeError:
        # A lone surrogate echoed from a request has no UTF-8 form: kept as the escape it came as.
        payload = json.dumps(body, separators=(",", ":")).encode()
    return Response(payload, status=status, mimetype=JSON, headers=headers)


def error_body(
    status: int, code: str, message: str, field: str | None = None, details: str | None = None
) -> dict[str, Any]:
    """The error shape: the second seed's `Error` (code, message, details), `error`, `field`."""
    return {"code": status, "error": code, "message": message, "field": field, "details": details}


def error_response(error: StreamsError) -> Response:
    headers = {"Retry-After": str(error.retry_after)} if isinstance(error, Unavailable) else None
    body = error_body(error.status, error.code, error.message, error.field, error.details)
    return json_response(body, error.status, headers)
