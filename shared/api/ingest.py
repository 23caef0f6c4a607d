"""Segment-compatible ingest: POST /v1/{track,identify,page,screen,group,alias,events,batch}."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from shared.domain.errors import InvalidRequest
from shared.domain.limits import MAX_REQUEST_BYTES
from shared.http.app import ApiRequest
from shared.http.body import client_ip, read_json
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


def ingest(request: ApiRequest) -> IngestResponse:
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
    rejected = [
        IngestRejection(index=r.index, messageId=r.message_id, reason=r.reason, field=r.field)
        for r in result.rejections
    ]
    if not is_batch and rejected:
        # A single event that is refused is the whole request: answer like any bad request.
        raise InvalidRequest(rejected[0].reason, field=rejected[0].field)
    single_id = result.message_ids[0] if not is_batch and result.message_ids else None
    return IngestResponse(
        success=True, accepted=len(result.message_ids), rejected=rejected, messageId=single_id
    )


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
