"""Watching a workspace's events: hourly volume (BigQuery) and the live stream (SSE)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal

from flask import Response
from pydantic import BaseModel, BeforeValidator, Field

from shared.api.models import Input
from shared.domain.errors import InvalidRequest
from shared.http.app import ApiRequest
from shared.http.routing import Route
from shared.services.live import Cursor, Heartbeat, LiveFilters, LiveItem
from shared.services.volume import DEFAULT_HOURS, MAX_HOURS

FUNCTION = "events"
WORKSPACE = "/api/v1/workspaces/{workspace_id}"
CallType = Literal["track", "identify", "page", "screen", "group", "alias"]
# Reconnect after this many milliseconds (EventSource honours it; `streams tail` too).
RETRY_MS = 1000
SSE_HEADERS = {
    "Cache-Control": "no-cache",
    # Proxies (nginx and friends) must pass each event on at once, not buffer the stream.
    "X-Accel-Buffering": "no",
}


def _whole_number(value: object) -> object:
    # Query strings reach pydantic as text, and its lax mode would take "24.0" for 24.
    if isinstance(value, str) and not value.strip().lstrip("+-").isdigit():
        raise ValueError("must be an integer")
    return value


WholeNumber = Annotated[int, BeforeValidator(_whole_number)]


class VolumeQuery(Input):
    hours: WholeNumber = Field(
        DEFAULT_HOURS,
        ge=1,
        le=MAX_HOURS,
        description="hourly buckets to return: the current hour and the hours-1 before it",
    )


class VolumeRow(BaseModel):
    """The seed's volume row: one event type and name in one hour."""

    event_type: str
    event_name: str | None
    hour_bucket: str = Field(description="start of the hour, e.g. 2024-01-15T14:00:00Z")
    event_count: int


class LiveQuery(Input):
    source_id: str | None = None
    event_type: CallType | None = None
    event_name: str | None = Field(None, description="a track's event, a page's or screen's name")
    last_event_id: str | None = Field(
        None, description="resume after this id (for clients that cannot send Last-Event-ID)"
    )


def get_volume(request: ApiRequest) -> list[dict[str, object]]:
    query: VolumeQuery = request.query
    return request.services.volume.hourly(request.workspace_id, query.hours)


def live_stream(request: ApiRequest) -> Response:
    query: LiveQuery = request.query
    after = _resume_point(request, query)
    filters = LiveFilters(query.source_id, query.event_type, query.event_name)
    # Opened before answering: a store outage is a 503 here, not a stream that dies at once.
    items = request.services.live.open(request.workspace_id, filters, after)
    return Response(
        _sse(items),
        mimetype="text/event-stream",
        headers=SSE_HEADERS,
        direct_passthrough=True,
    )


def _resume_point(request: ApiRequest, query: LiveQuery) -> Cursor | None:
    header = request.raw.headers.get("Last-Event-ID")
    text, field = (header, "Last-Event-ID") if header else (query.last_event_id, "last_event_id")
    if not text:
        return None
    cursor = Cursor.parse(text)
    if cursor is None:
        raise InvalidRequest(f"{field} is not an id this stream sent", field=field)
    return cursor


def _sse(items: Iterator[LiveItem]) -> Iterator[bytes]:
    """Server-Sent Events framing: `id:` and `data:` per event, `: heartbeat` comments."""
    try:
        yield f"retry: {RETRY_MS}\n: connected\n\n".encode()
        for item in items:
            if isinstance(item, Heartbeat):
                # An `id:` without `data:` moves the client's Last-Event-ID without an event.
                yield (": heartbeat\n" + (f"id: {item.id}\n" if item.id else "") + "\n").encode()
            else:
                yield f"id: {item.id}\ndata: {item.data}\n\n".encode()
    finally:
        close = getattr(items, "close", None)
        if close is not None:
            close()


ROUTES = (
    Route(
        "GET",
        WORKSPACE + "/events/volume",
        FUNCTION,
        "getEventVolume",
        "Hourly event counts per event_type and event_name, computed in BigQuery",
        get_volume,
        query=VolumeQuery,
        response=list[VolumeRow],
        tag="Volume & Live",
    ),
    Route(
        "GET",
        WORKSPACE + "/events/live",
        FUNCTION,
        "streamLiveEvents",
        "Server-Sent Events of the workspace's events as they are stored (id: to resume with "
        "Last-Event-ID, data: the event JSON, a heartbeat comment every 15 s; streams end "
        "after 5 minutes and the client reconnects)",
        live_stream,
        query=LiveQuery,
        streaming=True,
        tag="Volume & Live",
    ),
)
