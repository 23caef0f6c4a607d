"""JSON responses, and the one error body every endpoint answers with."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from flask import Request, Response

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


def cacheable(
    request: Request, body: bytes, content_type: str, headers: dict[str, str]
) -> Response:
    """`body` with an ETag of its content, or a 304 when the request's If-None-Match names it
    (compared weakly, as HTTP says for If-None-Match; `*` matches, an empty tag matches none)."""
    etag = hashlib.sha256(body).hexdigest()[:32]
    headers = {**headers, "ETag": f'"{etag}"'}
    if request.if_none_match.contains_weak(etag):
        return Response(status=304, headers=headers)
    return Response(body, status=200, content_type=content_type, headers=headers)


def error_body(
    status: int, code: str, message: str, field: str | None = None, details: str | None = None
) -> dict[str, Any]:
    """The error shape: the /v1/streams API's `Error` (code, message, details), `error`, `field`."""
    return {"code": status, "error": code, "message": message, "field": field, "details": details}


def error_response(error: StreamsError) -> Response:
    headers = {"Retry-After": str(error.retry_after)} if isinstance(error, Unavailable) else None
    body = error_body(error.status, error.code, error.message, error.field, error.details)
    return json_response(body, error.status, headers)
