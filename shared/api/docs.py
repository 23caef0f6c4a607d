"""The API's own description: GET /openapi.json."""

from __future__ import annotations

from functools import cache
from importlib.metadata import version
from typing import Any

from shared.http.app import ApiRequest
from shared.http.routing import Route

FUNCTION = "api_docs"


@cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of every route (built once per process)."""
    from shared.api.models import ErrorBody
    from shared.api.routes import ROUTES
    from shared.http.openapi import build_document

    return build_document(ROUTES, ErrorBody, version("streams"))


def get_openapi(request: ApiRequest) -> dict[str, Any]:
    return openapi_document()


ROUTES = (
    Route(
        "GET",
        "/openapi.json",
        FUNCTION,
        "getOpenApi",
        "This API's OpenAPI 3.1 document",
        get_openapi,
        auth="none",
        response=dict[str, Any],
        tag="Meta",
    ),
)
