"""Serves one function's share of the route table: match, authenticate, parse, call, answer."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Request, Response
from pydantic import BaseModel, TypeAdapter, ValidationError

from shared.bootstrap import Services
from shared.domain import ids
from shared.domain.errors import (
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    StreamsError,
    Unauthorized,
)
from shared.domain.sources import ApiToken
from shared.domain.storable import find_unencodable
from shared.domain.validation_messages import plain_errors
from shared.http import audit
from shared.http.body import read_json
from shared.http.cors import allow_origin, serves_cross_origin
from shared.http.request import ApiRequest, Reply
from shared.http.responses import error_response, json_response
from shared.http.routing import Route, allowed_methods, find_route

log = logging.getLogger("streams.http")

# Management bodies are small configuration documents; ingest enforces its own limits.
MAX_BODY_BYTES = 1024 * 1024


def handle(
    request: Request, routes: tuple[Route, ...], services: Callable[[], Services]
) -> Response:
    """Answer `request` with one of `routes` (a function's share of the route table), acting
    with the services `services()` answers (asked for only when a handler needs them)."""
    response = _answer(request, routes, services)
    if serves_cross_origin(routes):
        # Every answer, errors included: a page can only read why it was refused if it may
        # read the refusal.
        allow_origin(request, response)
    return response


def _answer(
    request: Request, routes: tuple[Route, ...], services: Callable[[], Services]
) -> Response:
    try:
        route, params, path_exists = find_route(routes, request.method, request.path)
        if route is None:
            if path_exists:
                return method_not_allowed(request.method, request.path, routes)
            raise NotFound(f"no such path: {request.path}")
        api_request = _parse(request, route, params, services)
        # Every management change is audited here, once, not in each handler.
        change = audit.begin(api_request, routes, _serialise)
        response = _respond(route, route.handler(api_request))
        if change is not None:
            audit.finish(change, response)
        return response
    except StreamsError as error:
        return error_response(error)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(StreamsError("internal error"))


def method_not_allowed(method: str, path: str, routes: tuple[Route, ...]) -> Response:
    """405, with the `Allow` header HTTP requires: the methods the path does answer to."""
    response = error_response(MethodNotAllowed(f"{method} is not allowed on {path}"))
    response.headers["Allow"] = ", ".join(allowed_methods(routes, path))
    return response


def _respond(route: Route, result: Any) -> Response:
    if isinstance(result, Response):
        return result
    if isinstance(result, Reply):
        return json_response(_serialise(route, result.body), result.status, result.headers)
    return json_response(_serialise(route, result), route.status)


def _parse(
    request: Request, route: Route, params: dict[str, str], services: Callable[[], Services]
) -> ApiRequest:
    api_request = ApiRequest(raw=request, route=route, params=params, services_of=services)
    if route.auth == "bearer":
        api_request.token = _authenticate(request, services())
        workspace_id = params.get("workspace_id")
        if workspace_id is not None and workspace_id != api_request.token.workspace_id:
            # 404, not 403: a token must not learn whether another workspace exists.
            raise NotFound(f"workspace {workspace_id} not found", field="workspace_id")
    _check_ids(route, params)
    if route.query is not None:
        api_request.query = _validate(route.query, request.args.to_dict(), "query parameter")
    if route.body is not None:
        data = read_json(request, MAX_BODY_BYTES, required=route.body_required)
        # Configuration is stored as sent: text that is not Unicode (a lone surrogate) or a
        # number too long to read would fail the write, so it is refused here, by field.
        if problem := find_unencodable(data):
            field = problem.field
            message = f"{field}: {problem.reason}" if field else problem.reason
            raise InvalidRequest(message, field=field)
        api_request.body = _validate(route.body, data, "body")
    return api_request


def _check_ids(route: Route, params: dict[str, str]) -> None:
    """404 for a path id no document can have (`__name__`, `.`, `..`, over 1,500 bytes), as for
    any unknown id: it is never looked up, since Firestore refuses such an id outright."""
    for name in route.document_params:
        value = params[name]
        if not ids.is_document_id(value):
            shown = value if len(value) <= 64 else f"{value[:64]}..."
            raise NotFound(f"{name} {shown} not found", field=name)


def _authenticate(request: Request, services: Services) -> ApiToken:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
    return services.workspaces.authenticate(token.strip())


def _validate(model: type[BaseModel], data: Any, where: str) -> BaseModel:
    if not isinstance(data, dict):
        raise InvalidRequest(f"{where} must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        # `<field>: <what is wrong>` in plain words; every problem found in `details`.
        errors = plain_errors(exc, model)
        details = "; ".join(str(error) for error in errors)
        raise InvalidRequest(str(errors[0]), field=errors[0].field, details=details) from None


_adapters: dict[Any, TypeAdapter[Any]] = {}


def _serialise(route: Route, result: Any) -> Any:
    """Shape the result as the route's documented response, so answers match the OpenAPI."""
    if route.response is None or result is None:
        return result
    adapter = _adapters.get(route.response)
    if adapter is None:
        adapter = _adapters[route.response] = TypeAdapter(route.response)
    return adapter.dump_python(adapter.validate_python(result, from_attributes=True), mode="json")
