"""The OpenAPI 3.1 document, generated from the route table and its pydantic models."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, get_args, get_origin

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from shared.http.cors import CROSS_ORIGIN_FUNCTIONS
from shared.http.routing import Route

REF = "#/components/schemas/{model}"
# Every operation's error answers (status: component name, description): one ErrorBody each.
ERRORS = {
    400: ("InvalidRequest", "Invalid request: `field` names the field at fault"),
    401: ("Unauthorized", "Missing or invalid credentials"),
    403: (
        "Forbidden",
        "Valid credentials that do not allow this request (a web page's Origin that the "
        "source does not list)",
    ),
    404: ("NotFound", "Not found in the caller's workspace"),
    409: ("Conflict", "The resource's state does not allow this"),
    413: ("PayloadTooLarge", "Body too large"),
    503: ("Unavailable", "A dependency is unavailable; retry after the Retry-After header"),
}
# Only live streams (as many open as allowed) and what publishes through a source (ingest's
# posts, sendEvent, a test event: the source's rate limit) are refused with TooManyRequests.
TOO_MANY = (
    429,
    "TooManyRequests",
    "Too many: as many live streams open as allowed, or the source's rate limit reached; "
    "retry after the Retry-After header",
)
# The variant of each error answer of a function that web pages of any origin may call.
CORS_SUFFIX = "WithCors"
RETRY_AFTER = {
    "description": "Seconds to wait before retrying",
    "required": True,
    "schema": {"type": "integer", "minimum": 0},
}
STRING = {"schema": {"type": "string"}}
# What the ingest function's answers carry for web pages (shared/http/cors.py).
CORS_HEADERS = {
    "Access-Control-Allow-Origin": {
        "description": "The request's Origin, when it sent one: any page may read the answer",
        **STRING,
    },
    "Vary": {"description": "Origin (and what else the answer depends on)", **STRING},
}
PREFLIGHT_HEADERS = {
    name: {"required": True, **STRING}
    for name in (
        "Access-Control-Allow-Methods",
        "Access-Control-Allow-Headers",
        "Access-Control-Max-Age",
    )
}
BODY_KEY = (
    "The write key may also be the body's `writeKey` (SDKs that cannot set headers send it "
    "there): OpenAPI cannot name a body field as a credential, so the last security "
    "alternative is empty and the body's schema documents `writeKey`."
)
INGEST_BODY = (
    "Read as JSON whatever the Content-Type says (analytics.js and sendBeacon send text/plain), "
    "inflated first when Content-Encoding is gzip, x-gzip or deflate or the body starts with "
    "gzip's magic bytes; at most 500 KB after decompression (docs/INGEST.md)."
)
SECURITY_SCHEMES = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": "A management API token of the workspace (`stk_...`; `streams token "
        "create` or POST /api/v1/workspaces/{workspace_id}/tokens)",
    },
    "writeKeyHeader": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Write-Key",
        "description": "A source's write key (`wk_...`). " + BODY_KEY,
    },
    "writeKeyBasic": {
        "type": "http",
        "scheme": "basic",
        "description": "A source's write key as the HTTP Basic username, with an empty "
        "password (what Segment's and RudderStack's SDKs send). " + BODY_KEY,
    },
    "writeKeyQuery": {
        "type": "apiKey",
        "in": "query",
        "name": "writeKey",
        "description": "A source's write key in ?writeKey= (navigator.sendBeacon cannot set "
        "headers). " + BODY_KEY,
    },
}
SERVERS = [
    {
        "url": "/",
        "description": "The host that serves this document: in production the load balancer on"
        " your own domain (Terraform output `url`), locally the gateway of `make dev`"
        " (http://127.0.0.1:8080)",
    }
]


@dataclass(frozen=True)
class Media:
    """A route's answer that is not JSON (a script, a page, a file), which its handler writes as
    a Response: its media type (a range such as `*/*` when it varies), and whether it carries an
    ETag that makes a request with a matching If-None-Match a 304."""

    media_type: str
    etag: bool = False


def build_document(
    routes: tuple[Route, ...], error_model: type[BaseModel], version: str
) -> dict[str, Any]:
    """The whole document: one operation per route, components from every model used."""
    models: set[type[BaseModel]] = {
        m
        for r in routes
        for m in (r.body, r.query, r.request_schema, _model_of(r.response))
        if m is not None and _is_model(m)
    }
    models.add(error_model)
    keyed: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        (m, "validation" if _is_input(m, routes) else "serialization")
        for m in sorted(models, key=lambda m: m.__name__)
    ]
    refs, schema = models_json_schema(keyed, ref_template=REF)
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Streams API",
            "version": version,
            "description": "Segment-compatible event ingest and the management API of Streams. "
            "Every error answers the `ErrorBody` schema: `message` is `<field>: <what is "
            "wrong>`, in plain words, and `field` names the field at fault.",
        },
        "servers": SERVERS,
        "paths": paths,
        "components": {
            "schemas": schema.get("$defs", {}),
            "responses": _error_responses(refs[(error_model, "serialization")]),
            "securitySchemes": SECURITY_SCHEMES,
        },
    }


def _security(route: Route) -> list[dict[str, list[str]]]:
    if route.auth == "bearer":
        return [{"bearerAuth": []}]
    if route.auth == "none":
        return []
    if not _reads_body_key(route):
        # The SDK configuration (GET /sourceConfig) reads the key from the query or Basic only.
        return [{"writeKeyQuery": []}, {"writeKeyBasic": []}]
    # Ingest's posts read the header, Basic, the query, and else the body's writeKey: the empty
    # alternative is that last case, which OpenAPI's security schemes cannot express.
    return [{"writeKeyHeader": []}, {"writeKeyBasic": []}, {"writeKeyQuery": []}, {}]


def _reads_body_key(route: Route) -> bool:
    """Whether the route is one of ingest's posts, which may take the write key in the body."""
    return route.auth == "write_key" and route.request_schema is not None


def _operation(route: Route, refs: dict[Any, Any]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": [route.tag] if route.tag else [],
        "security": _security(route),
        "x-streams-function": route.function,
    }
    if _reads_body_key(route):
        operation["description"] = BODY_KEY
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
    if isinstance(route.response, Media) and route.response.etag:
        parameters.append(
            {
                "name": "If-None-Match",
                "in": "header",
                "required": False,
                "description": "The ETag of a copy held: 304 when it is current",
                "schema": {"type": "string"},
            }
        )
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        operation["requestBody"] = {
            "required": route.body_required,
            "content": {"application/json": {"schema": refs[(route.body, "validation")]}},
        }
    elif route.request_schema is not None:
        operation["requestBody"] = {
            "required": True,
            "description": INGEST_BODY,
            "content": {"application/json": {"schema": refs[(route.request_schema, "validation")]}},
        }
    operation["responses"] = {str(route.status): _success(route, refs)}
    if isinstance(route.response, Media) and route.response.etag:
        operation["responses"]["304"] = {
            "description": "Not Modified: the If-None-Match ETag is current",
            "headers": _headers(route, {"ETag": {"required": True, **STRING}}),
        }
    errors = [(status, name) for status, (name, _) in ERRORS.items()]
    if route.streaming or route.rate_limited or _reads_body_key(route):
        errors.append(TOO_MANY[:2])
    suffix = CORS_SUFFIX if route.function in CROSS_ORIGIN_FUNCTIONS else ""
    for status, name in sorted(errors):
        operation["responses"][str(status)] = {"$ref": f"#/components/responses/{name}{suffix}"}
    return operation


def _error_responses(error_ref: dict[str, Any]) -> dict[str, Any]:
    """Each error answer once, plain and with the CORS headers of the cross-origin functions."""
    responses: dict[str, Any] = {}
    for status, name, description in [
        *((status, *named) for status, named in ERRORS.items()),
        TOO_MANY,
    ]:
        answer: dict[str, Any] = {
            "description": description,
            "content": {"application/json": {"schema": error_ref}},
        }
        own = {"Retry-After": RETRY_AFTER} if status in (429, 503) else {}
        responses[name] = {**answer, **({"headers": own} if own else {})}
        responses[name + CORS_SUFFIX] = {**answer, "headers": {**own, **CORS_HEADERS}}
    return responses


def _headers(route: Route, own: dict[str, Any]) -> dict[str, Any]:
    """`own` and the CORS headers of every answer of a cross-origin function."""
    if route.function in CROSS_ORIGIN_FUNCTIONS:
        return {**own, **CORS_HEADERS}
    return own


# One Server-Sent Event. OpenAPI before 3.2 leaves open what `schema` describes for an event
# stream: fuzzers (schemathesis) read it as each event, request validators (openapi-core) as
# the whole text; the first form answers the latter, the object the former.
SSE_EVENT: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "description": "the stream as text"},
        {
            "type": "object",
            "description": "one event: a stored event's JSON in data, or with event: outcome, "
            "{status, reason, event}",
            "properties": {
                "id": {"type": "string"},
                # A stored event's has none, which SSE reads as "message".
                "event": {"type": "string", "enum": ["message", "outcome"]},
                "data": {"type": "string", "contentMediaType": "application/json"},
                "retry": {"type": "integer"},
            },
        },
    ]
}


def _success(route: Route, refs: dict[Any, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": route.summary}
    own: dict[str, Any] = {}
    if route.method == "OPTIONS":
        own = PREFLIGHT_HEADERS
    elif 300 <= route.status < 400:
        own = {"Location": {"required": True, "description": "Where to go", **STRING}}
    if route.streaming:
        answer["content"] = {"text/event-stream": {"schema": SSE_EVENT}}
    elif isinstance(route.response, Media):
        media_type = route.response.media_type
        # Text is a string; anything else (images, fonts) is any bytes, which no schema states.
        text = {"schema": {"type": "string"}} if media_type.startswith("text/") else {}
        answer["content"] = {media_type: text}
        if route.response.etag:
            own = {"ETag": {"required": True, **STRING}, "Cache-Control": STRING}
    elif route.response is not None:
        answer["content"] = {"application/json": {"schema": _response_schema(route, refs)}}
    for name, kind, description in route.response_headers:
        own = {**own, name: {"description": description, "schema": {"type": kind}}}
    headers = _headers(route, own)
    if headers:
        answer["headers"] = headers
    return answer


def _response_schema(route: Route, refs: dict[Any, Any]) -> dict[str, Any]:
    model = _model_of(route.response)
    if _is_model(model):
        schema = refs[(model, "serialization")]
        if get_origin(route.response) is list:
            return {"type": "array", "items": schema}
        return dict(schema)
    # Not a model (a JSON object of no fixed shape): described inline.
    return TypeAdapter(route.response).json_schema(mode="serialization", ref_template=REF)


def _model_of(response: Any) -> Any:
    if response is None or isinstance(response, Media):
        return None
    if get_origin(response) is list:
        return get_args(response)[0]
    return response


def _is_model(kind: Any) -> bool:
    return isinstance(kind, type) and get_origin(kind) is None and issubclass(kind, BaseModel)


def _is_input(model: type[BaseModel], routes: tuple[Route, ...]) -> bool:
    return any(model in (r.body, r.query, r.request_schema) for r in routes)
