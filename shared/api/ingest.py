"""Segment-compatible ingest: POST /v1/{track,identify,page,screen,group,alias,events,batch}."""

from __future__ import annotations

import json
from typing import Any

import orjson
from flask import Response
from pydantic import BaseModel

from shared.domain.errors import InvalidRequest
from shared.domain.limits import MAX_REQUEST_BYTES
from shared.http.app import ApiRequest
from shared.http.body import client_ip, read_json
from shared.http.responses import JSON
from shared.http.routing import Route

FUNCTION = "ingest"
SINGLE_CALLS = ("track", "identify", "page", "screen", "group", "alias")
SUMMARIES = {
    "track": "Record a user action",
    "identify": "Set user traits",
    "page": "Record a page view",
    "screen": "Record a mobile screen view",
    "group": "Associate a user with a group",
    "alias": "Merge two user identities",
    "events": "Unified endpoint (event type from body)",
    "batch": "Submit a batch of events in a single request",
}


class IngestRejection(BaseModel):
    """One refused event: its position in the request, its messageId as sent, and why."""

    index: int
    messageId: str | None
    reason: str
    field: str | None


class IngestResponse(BaseModel):
    """Always 200 once Pub/Sub has acknowledged every accepted event."""

    success: bool
    accepted: int
    rejected: list[IngestRejection]
    messageId: str | None = None


def _write_key(request: ApiRequest, body: Any) -> str | None:
    raw = request.raw
    if key := raw.headers.get("X-Write-Key"):
        return key
    basic = raw.authorization
    if basic is not None and basic.type == "basic" and basic.username:
        return basic.username
    if key := raw.args.get("writeKey"):
        return key
    if isinstance(body, dict) and isinstance(key := body.get("writeKey"), str):
        return key
    return None


def ingest(request: ApiRequest) -> Response:
    call = request.route.path.rsplit("/", 1)[1]
    body = read_json(request.raw, MAX_REQUEST_BYTES)
    service = request.services.ingest
    key = service.authorize(_write_key(request, body))
    if call == "batch" and not (isinstance(body, dict) and "batch" in body):
        raise InvalidRequest("a batch request needs a `batch` list", field="batch")
    call_type = call if call in SINGLE_CALLS else None
    # `/v1/events` takes a batch body too (normalisation reads it as one): answer it as a batch,
    # or one refused item would turn into a 400 after the others were published.
    is_batch = call == "batch" or (call == "events" and isinstance(body, dict) and "batch" in body)
    result = service.accept(key, body, call_type, client_ip(request.raw))
    if not is_batch and result.rejections:
        # A single event that is refused is the whole request: answer like any bad request.
        raise InvalidRequest(result.rejections[0].reason, field=result.rejections[0].field)
    single_id = result.message_ids[0] if not is_batch and result.message_ids else None
    return _answer(
        {
            "success": True,
            "accepted": len(result.message_ids),
            "rejected": [
                {"index": r.index, "messageId": r.message_id, "reason": r.reason, "field": r.field}
                for r in result.rejections
            ],
            "messageId": single_id,
        }
    )


def _answer(body: dict[str, Any]) -> Response:
    """`IngestResponse` as JSON, written directly: validating the model and encoding it with the
    standard encoder cost more than the rest of a single event's handling after parsing."""
    try:
        payload = orjson.dumps(body)
    except TypeError:
        # A lone surrogate in an echoed messageId: kept as the escape the client sent.
        payload = json.dumps(body, separators=(",", ":")).encode()
    return Response(payload, mimetype=JSON)


ROUTES = tuple(
    Route(
        "POST",
        f"/v1/{call}",
        FUNCTION,
        f"ingest{call.capitalize()}",
        SUMMARIES[call],
        ingest,
        auth="write_key",
        response=IngestResponse,
        tag="Event Ingestion",
    )
    for call in (*SINGLE_CALLS, "events", "batch")
)
