"""The OpenAPI 3.1 document, generated from the route table and its pydantic models."""

from __future__ import annotations

from typing import Any, get_args, get_origin

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from shared.http.routing import Route

REF = "#/components/schemas/{model}"
ERROR_STATUSES = {
    400: "Invalid request: the body names the field at fault",
    401: "Missing or invalid credentials",
    403: "Valid credentials that do not allow this request (a web page's Origin that the "
    "source does not list)",
    404: "Not found in the caller's workspace",
    409: "The resource's state does not allow this",
    413: "Body too large",
    503: "A dependency is unavailable; retry after the Retry-After header",
}
SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "bearer": [{"bearerAuth": []}],
    "write_key": [{"writeKeyHeader": []}, {"writeKeyBasic": []}, {"writeKeyQuery": []}],
    "none": [],
}


def build_document(
    routes: tuple[Route, ...], error_model: type[BaseModel], version: str
) -> dict[str, Any]:
    """The whole document: one operation per route, components from every model used."""
    models = {m for r in routes for m in (r.body, r.query, _model_of(r.response)) if m}
    models.add(error_model)
    keyed: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        (m, "validation" if _is_input(m, routes) else "serialization")
        for m in sorted(models, key=lambda m: m.__name__)
    ]
    refs, schema = models_json_schema(keyed, ref_template=REF)
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(
            route, refs, error_model
        )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Streams API",
            "version": version,
            "description": "Segment-compatible event ingest and the management API of Streams.",
        },
        "paths": paths,
        "components": {
            "schemas": schema.get("$defs", {}),
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer"},
                "writeKeyHeader": {"type": "apiKey", "in": "header", "name": "X-Write-Key"},
                "writeKeyBasic": {"type": "http", "scheme": "basic"},
                "writeKeyQuery": {"type": "apiKey", "in": "query", "name": "writeKey"},
            },
        },
    }


def _operation(route: Route, refs: dict[Any, Any], error_model: type[BaseModel]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": [route.tag] if route.tag else [],
        "security": SECURITY[route.auth],
        "x-streams-function": route.function,
    }
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in route.params
    ]
    if route.query is not None:
        properties = route.query.model_json_schema()["properties"]
        for name, field in route.query.model_fields.items():
            schema = {k: v for k, v in properties[field.alias or name].items() if k != "title"}
            parameters.append(
                {
                    "name": field.alias or name,
                    "in": "query",
                    "required": field.is_required(),
                    "description": field.description or "",
                    "schema": schema,
                }
            )
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        operation["requestBody"] = {
            "required": route.body_required,
            "content": {"application/json": {"schema": refs[(route.body, "validation")]}},
        }
    operation["responses"] = {str(route.status): _success(route, refs)}
    error_ref = refs[(error_model, "serialization")]
    for status, description in ERROR_STATUSES.items():
        operation["responses"][str(status)] = {
            "description": description,
            "content": {"application/json": {"schema": error_ref}},
        }
    return operation


def _success(route: Route, refs: dict[Any, Any]) -> dict[str, Any]:
    if route.streaming:
        return {
            "description": "Server-Sent Events",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    if route.response is None:
        return {"description": "No content"}
    model = _model_of(route.response)
    schema = refs[(model, "serialization")]
    if get_origin(route.response) is list:
        schema = {"type": "array", "items": schema}
    return {"description": route.summary, "content": {"application/json": {"schema": schema}}}


def _model_of(response: Any) -> type[BaseModel] | None:
    if response is None:
        return None
    if get_origin(response) is list:
        return get_args(response)[0]
    return response


def _is_input(model: type[BaseModel], routes: tuple[Route, ...]) -> bool:
    return any(model in (r.body, r.query) for r in routes)
