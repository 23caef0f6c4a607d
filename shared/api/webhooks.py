"""Webhook ingest: POST /v1/webhook/{writeKey} (or ?writeKey=, for senders whose URL is all they
let you set), where any service's webhook requests reach a source of type webhook
(docs/WEBHOOKS.md)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from shared.domain.limits import MAX_REQUEST_BYTES
from shared.http.body import read_bytes
from shared.http.request import ApiRequest
from shared.http.routing import Route

FUNCTION = "ingest"


class WebhookBody(BaseModel):
    """Any JSON body a provider sends (or a form, application/x-www-form-urlencoded, read as
    its fields); at most 500 KB. Documentation only: the signature is checked on the raw body
    before anything reads it."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [{"id": "evt_1NG8Du2eZvKYlo2CUI79vXWy", "type": "payment_intent.succeeded"}]
        },
    )


class WebhookAccepted(BaseModel):
    """200 once Pub/Sub has acknowledged the request: the provider may stop retrying."""

    success: bool
    messageId: str


def _write_key(request: ApiRequest) -> str | None:
    if key := request.params.get("write_key"):
        return key
    if key := request.raw.args.get("writeKey"):
        return key
    if key := request.raw.headers.get("X-Write-Key"):
        return key
    basic = request.raw.authorization
    if basic is not None and basic.type == "basic" and basic.username:
        return basic.username
    return None


def _headers(request: ApiRequest) -> dict[str, str]:
    """The request's headers by lower-cased name, a repeated header's values joined."""
    headers: dict[str, str] = {}
    for name, value in request.raw.headers.items():
        name = name.lower()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def ingest_webhook(request: ApiRequest) -> WebhookAccepted:
    service = request.services.ingest
    key = service.authorize(_write_key(request), request.raw.headers.get("Origin"), webhook=True)
    raw_body = read_bytes(request.raw, MAX_REQUEST_BYTES)
    query: dict[str, Any] = request.raw.args.to_dict()
    message_id = service.accept_webhook(key, raw_body, _headers(request), query, request.client_ip)
    return WebhookAccepted(success=True, messageId=message_id)


def _route(path: str, operation_id: str, summary: str, auth: Any) -> Route:
    return Route(
        "POST",
        path,
        FUNCTION,
        operation_id,
        summary,
        ingest_webhook,
        auth=auth,
        rate_limited=True,
        request_schema=WebhookBody,
        response=WebhookAccepted,
        tag="Event Ingestion",
    )


ROUTES = (
    _route(
        "/v1/webhook/{write_key}",
        "ingestWebhook",
        "Receive a webhook request for a webhook source (the write key in the path): its "
        "signature checked on the raw body (401), then published for mapping to events",
        "none",
    ),
    _route(
        "/v1/webhook",
        "ingestWebhookQueryKey",
        "Receive a webhook request, the write key as ?writeKey= (or X-Write-Key, or the Basic "
        "username)",
        "write_key",
    ),
)
