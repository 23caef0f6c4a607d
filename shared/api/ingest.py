"""Segment-compatible ingest: POST /v1/{track,identify,page,screen,group,alias,events,batch},
the other paths browser and mobile SDKs post the same calls to, and analytics.js's client
metrics (/v1/m)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
from flask import Request, Response
from pydantic import BaseModel
from werkzeug.test import EnvironBuilder

from shared.api.ingest_bodies import CALL_BODIES, ClientMetrics
from shared.domain.errors import InvalidRequest
from shared.domain.limits import MAX_REQUEST_BYTES
from shared.http.body import GZIP_MAGIC, read_bytes, read_json
from shared.http.request import ApiRequest
from shared.http.responses import JSON
from shared.http.routing import Route

if TYPE_CHECKING:
    from shared.services.ingest import AsyncPublisher, IngestResult

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
# The shortest digit run that may be an integer beyond 64 bits (-9223372036854775809), found
# by turning every digit into 0 and every other byte into a space: ~40 us for 42 KB, where a
# regular expression takes ~700.
DIGITS_AS_ZEROS = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
LONG_DIGITS = b"0" * 19
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
    call, body, write_key = _read(request, _read_json)
    service = request.services.ingest
    key = service.authorize(write_key, request.raw.headers.get("Origin"))
    call_type, is_batch = _call_of(call, body)
    return _result(service.accept(key, body, call_type, request.client_ip), is_batch)


async def ingest_async(request: ApiRequest, publisher: AsyncPublisher) -> Response:
    """`ingest` on an event loop (the ingest function's asynchronous entry point): the same
    steps, with the write key's lookup (on a cache miss) and the publish awaited."""
    call, body, write_key = _read(request, _read_body)
    service = request.services.ingest
    key = await service.authorize_async(write_key, request.raw.headers.get("Origin"))
    call_type, is_batch = _call_of(call, body)
    result = await service.accept_async(key, body, call_type, request.client_ip, publisher)
    return _result(result, is_batch)


# The handlers that have an asynchronous form, and that form: what the ingest function's
# entry point awaits on its event loop instead of running the handler in a thread.
ASYNC_HANDLERS: dict[
    Callable[[ApiRequest], Response],
    Callable[[ApiRequest, AsyncPublisher], Awaitable[Response]],
] = {ingest: ingest_async}


def _read(request: ApiRequest, body_of: Callable[[Request], Any]) -> tuple[str, Any, str | None]:
    """The call the path stands for, the body (read by `body_of`), and the write key wherever
    it was sent."""
    call = CALLS[request.route.path]
    body = body_of(request.raw)
    return call, body, _write_key(request, body)


def _read_json(raw: Request) -> Any:
    return read_json(raw, MAX_REQUEST_BYTES)


def _read_body(raw: Request) -> Any:
    """The body as `read_json` reads it (any content type, gzip, the same limits, the same
    answers), parsed by orjson when orjson takes it: 3 us instead of 13 for one event, 0.25 ms
    instead of 0.6 for 100 (docs/INGEST.md, "Server"). The asynchronous handler's; the
    synchronous one, which only the previous entry point serves (bench/ingest.py measures it),
    reads as before. What orjson refuses (NaN, integers beyond 64 bits, lone surrogates, other
    encodings, malformed JSON) Python's reader reads or refuses exactly as before; what orjson
    takes it parses to the same value."""
    data = read_bytes(raw, MAX_REQUEST_BYTES)
    # orjson reads an integer beyond 64 bits as a float, where Python's reader keeps it (and
    # normalisation refuses the event holding it): a body with a run of 19 or more digits
    # anywhere, in a string too, is left to Python's reader.
    if data.strip() and LONG_DIGITS not in data.translate(DIGITS_AS_ZEROS):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    if data[:2] == GZIP_MAGIC:
        # Compressed twice: `read_json` inflates once, so this is malformed JSON to it, never
        # inflated again below.
        try:
            json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidRequest(f"malformed JSON: {exc}") from None
    replay = Request(EnvironBuilder(method="POST", data=data).get_environ())
    return read_json(replay, MAX_REQUEST_BYTES)


def _call_of(call: str, body: Any) -> tuple[str | None, bool]:
    """The call type to normalise with (None: the body says), and whether to answer a batch."""
    if call == "batch" and not (isinstance(body, dict) and "batch" in body):
        raise InvalidRequest("a batch request needs a `batch` list", field="batch")
    call_type = call if call in SINGLE_CALLS else None
    # `/v1/events` takes a batch body too (normalisation reads it as one): answer it as a batch,
    # or one refused item would turn into a 400 after the others were published.
    is_batch = call == "batch" or (call == "events" and isinstance(body, dict) and "batch" in body)
    return call_type, is_batch


def _result(result: IngestResult, is_batch: bool) -> Response:
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
