"""Segment-compatible ingest: POST /v1/{track,identify,page,screen,group,alias,events,batch},
the other paths browser and mobile SDKs post the same calls to, and analytics.js's client
metrics (/v1/m)."""

from __future__ import annotations

import json
from typing import Any

import orjson
from flask import Response
from pydantic import BaseModel

from shared.api.ingest_bodies import CALL_BODIES, ClientMetrics
from shared.domain.errors import InvalidRequest
from shared.domain.limits import MAX_REQUEST_BYTES
from shared.http.body import read_json
from shared.http.request import ApiRequest
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
# Other paths SDKs post to, each its long form under another name: analytics.js 2.0's one-letter
# paths (the mobile SDKs upload to /v1/b), and RudderStack's JavaScript SDK's sendBeacon path.
ALIASES = {
    "/v1/t": "track",
    "/v1/i": "identify",
    "/v1/p": "page",
    "/v1/s": "screen",
    "/v1/g": "group",
    "/v1/a": "alias",
    "/v1/b": "batch",
    "/beacon/v1/batch": "batch",
}
# analytics.js's client metrics are a few counters (at most 20 a flush): a small body.
MAX_METRICS_BYTES = 64 * 1024


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


class ClientMetricsAccepted(BaseModel):
    """The client metrics were read; nothing of them is kept."""

    success: bool


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
    call = CALLS[request.route.path]
    body = read_json(request.raw, MAX_REQUEST_BYTES)
    service = request.services.ingest
    key = service.authorize(_write_key(request, body), request.raw.headers.get("Origin"))
    if call == "batch" and not (isinstance(body, dict) and "batch" in body):
        raise InvalidRequest("a batch request needs a `batch` list", field="batch")
    call_type = call if call in SINGLE_CALLS else None
    # `/v1/events` takes a batch body too (normalisation reads it as one): answer it as a batch,
    # or one refused item would turn into a 400 after the others were published.
    is_batch = call == "batch" or (call == "events" and isinstance(body, dict) and "batch" in body)
    result = service.accept(key, body, call_type, request.client_ip)
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


def client_metrics(request: ApiRequest) -> Response:
    """analytics.js's own counters (`{"series": [{"type": "Counter", "metric", "value",
    "tags"}]}`), which it posts to `/m` beside the events: read, checked and dropped. Streams
    keeps no metrics of its clients, but an answer the page can read keeps its console clean."""
    body = read_json(request.raw, MAX_METRICS_BYTES)
    if not isinstance(body, dict) or not isinstance(body.get("series"), list):
        raise InvalidRequest("client metrics need a `series` list", field="series")
    return _answer({"success": True})


class Health(BaseModel):
    status: str = "ok"


def health(request: ApiRequest) -> Health:
    """Liveness for the load balancer's uptime check: this instance answers. It reads nothing,
    so a check every minute costs no Firestore or Pub/Sub operation."""
    return Health()


def _answer(body: dict[str, Any]) -> Response:
    """`IngestResponse` as JSON, written directly: validating the model and encoding it with the
    standard encoder cost more than the rest of a single event's handling after parsing."""
    try:
        payload = orjson.dumps(body)
    except TypeError:
        # A lone surrogate in an echoed messageId: kept as the escape the client sent.
        payload = json.dumps(body, separators=(",", ":")).encode()
    return Response(payload, mimetype=JSON)


def _ingest_route(path: str, call: str, operation_id: str, summary: str) -> Route:
    return Route(
        "POST",
        path,
        FUNCTION,
        operation_id,
        summary,
        ingest,
        auth="write_key",
        request_schema=CALL_BODIES[call],
        response=IngestResponse,
        tag="Event Ingestion",
    )


# The call each ingest path stands for.
CALLS = {
    **{f"/v1/{call}": call for call in (*SINGLE_CALLS, "events", "batch")},
    **ALIASES,
}


def _alias_route(path: str, call: str) -> Route:
    beacon = path.startswith("/beacon/")
    return _ingest_route(
        path,
        call,
        f"ingest{call.capitalize()}{'Beacon' if beacon else 'Short'}",
        f"{SUMMARIES[call]}: /v1/{call} under the path "
        + ("RudderStack's sendBeacon posts to" if beacon else "analytics.js 2.0 posts to"),
    )


ROUTES = (
    *(
        _ingest_route(f"/v1/{call}", call, f"ingest{call.capitalize()}", SUMMARIES[call])
        for call in (*SINGLE_CALLS, "events", "batch")
    ),
    *(_alias_route(path, call) for path, call in ALIASES.items()),
    Route(
        "POST",
        "/v1/m",
        FUNCTION,
        "ingestClientMetrics",
        "Accept analytics.js's client metrics (no write key; read and dropped, nothing stored)",
        client_metrics,
        auth="none",
        request_schema=ClientMetrics,
        response=ClientMetricsAccepted,
        tag="Event Ingestion",
    ),
    Route(
        "GET",
        "/healthz",
        FUNCTION,
        "getHealth",
        "Liveness of the ingest function (the uptime check's target)",
        health,
        auth="none",
        response=Health,
        tag="Meta",
    ),
)
