"""Watching a workspace's events: hourly volume (BigQuery) and the live stream (SSE)."""

from __future__ import annotations

import json
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Response
from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    PlainValidator,
    RootModel,
    WithJsonSchema,
)

from shared.api.models import Input, Timestamp
from shared.domain.errors import InvalidRequest
from shared.http.client_socket import connection_check
from shared.http.request import ApiRequest
from shared.http.routing import Route
from shared.services.live import Cursor, Heartbeat, LiveFilters, LiveStream
from shared.services.volume import DEFAULT_HOURS, MAX_HOURS, Granularity

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
        raise ValueError("must be a whole number")
    return value


WholeNumber = Annotated[int, BeforeValidator(_whole_number)]


def _time_zone(value: object) -> object:
    if isinstance(value, str):
        try:
            return ZoneInfo(value)
        except (ValueError, ZoneInfoNotFoundError):
            pass
    raise ValueError("must be an IANA time zone name, such as Europe/Paris or UTC")


TimeZoneName = Annotated[
    ZoneInfo,
    PlainValidator(_time_zone),
    WithJsonSchema({"type": "string", "examples": ["Europe/Paris"]}),
]


class VolumeQuery(Input):
    hours: WholeNumber = Field(
        DEFAULT_HOURS,
        ge=1,
        le=MAX_HOURS,
        description="the window: the current hour and the hours-1 before it; per day, today "
        "and the days before it that it spans (168: 7 days)",
    )
    granularity: Granularity = Field(
        "hour",
        description="hour: rows per UTC hour (hour_bucket); day: rows per day from midnight "
        "in time_zone (day_bucket)",
    )
    time_zone: TimeZoneName = Field(
        ZoneInfo("UTC"), description="granularity=day: where days start (IANA name)"
    )
    source_id: str | None = Field(None, description="only the events of this source")


class VolumeRow(BaseModel):
    """The seed's volume row: one event type and name in one hour."""

    event_type: str
    event_name: str | None
    hour_bucket: Timestamp = Field(description="start of the hour, e.g. 2024-01-15T14:00:00Z")
    event_count: int


class DailyVolumeRow(BaseModel):
    """One event type and name in one day (granularity=day)."""

    event_type: str
    event_name: str | None
    day_bucket: Timestamp = Field(
        description="the day's midnight in time_zone, with its offset, e.g. "
        "2024-01-15T00:00:00+01:00"
    )
    event_count: int


class VolumeRows(RootModel[list[VolumeRow | DailyVolumeRow]]):
    """Hourly rows (the seed's), or daily rows with granularity=day."""


class ConsentVolumeQuery(Input):
    hours: WholeNumber = Field(
        DEFAULT_HOURS,
        ge=1,
        le=MAX_HOURS,
        description="the window: the current hour and the hours-1 before it",
    )
    destination_id: str | None = Field(None, description="only this destination's")


class ConsentVolumeRow(BaseModel):
    """Events of one hour held back from one destination for consent (docs/PRIVACY.md)."""

    destination_id: str
    outcome: Literal["consent_denied"]
    hour_bucket: Timestamp = Field(description="start of the hour, e.g. 2024-01-15T14:00:00Z")
    event_count: int


class ConsentVolumeRows(RootModel[list[ConsentVolumeRow]]):
    """Hourly rows of consent_denied per destination."""


class LiveQuery(Input):
    source_id: str | None = None
    event_type: CallType | None = None
    event_name: str | None = Field(None, description="a track's event, a page's or screen's name")
    last_event_id: str | None = Field(
        None, description="resume after this id (for clients that cannot send Last-Event-ID)"
    )


def get_volume(request: ApiRequest) -> list[dict[str, object]]:
    query: VolumeQuery = request.query
    return request.services.volume.counts(
        request.workspace_id,
        query.hours,
        granularity=query.granularity,
        time_zone=query.time_zone,
        source_id=query.source_id,
    )


def get_consent_volume(request: ApiRequest) -> list[dict[str, object]]:
    query: ConsentVolumeQuery = request.query
    return request.services.volume.consent_denials(
        request.workspace_id, query.hours, query.destination_id
    )


def live_stream(request: ApiRequest) -> Response:
    query: LiveQuery = request.query
    after = _resume_point(request, query)
    filters = LiveFilters(query.source_id, query.event_type, query.event_name)
    assert request.token is not None, "the live route is bearer-authenticated"
    # Opened before answering: no free slot is a 429 and a store outage a 503 here, not a
    # stream that dies at once.
    stream = request.services.live.open(
        request.workspace_id,
        filters,
        after,
        holder=request.token.id,
        connected=connection_check(request.raw.environ),
    )
    return Response(
        SseBody(stream),
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


class SseBody:
    """Server-Sent Events framing: `id:` and `data:` per event, `: heartbeat` comments.

    An object rather than a generator: the server passes it through and calls `close()` when
    the response ends, even one it never iterated (a generator that never started would skip
    its `finally`), so that the stream's slot is always given back.
    """

    def __init__(self, stream: LiveStream):
        self._stream = stream
        self._started = False

    def __iter__(self) -> SseBody:
        return self

    def __next__(self) -> bytes:
        if not self._started:
            self._started = True
            return f"retry: {RETRY_MS}\n: connected\n\n".encode()
        item = next(self._stream)
        if isinstance(item, Heartbeat):
            # An `id:` without `data:` moves the client's Last-Event-ID without an event.
            return (": heartbeat\n" + (f"id: {item.id}\n" if item.id else "") + "\n").encode()
        if item.status == "stored":
            return f"id: {item.id}\ndata: {item.data}\n\n".encode()
        # Another outcome is an `outcome` event: clients listening for messages alone (an
        # EventSource's onmessage) keep seeing stored events only, as before.
        outcome = json.dumps({"status": item.status, "reason": item.reason})
        data = f'{outcome[:-1]},"event":{item.data}}}'
        return f"id: {item.id}\nevent: outcome\ndata: {data}\n\n".encode()

    def close(self) -> None:
        self._stream.close()


ROUTES = (
    Route(
        "GET",
        WORKSPACE + "/events/volume",
        FUNCTION,
        "getEventVolume",
        "Event counts per event_type and event_name and per hour (or per day), computed in "
        "BigQuery, optionally of one source",
        get_volume,
        query=VolumeQuery,
        response=VolumeRows,
        tag="Volume & Live",
    ),
    Route(
        "GET",
        WORKSPACE + "/events/consent-volume",
        FUNCTION,
        "getConsentVolume",
        "Events held back from each destination for consent (consent_denied), per hour, "
        "computed in BigQuery",
        get_consent_volume,
        query=ConsentVolumeQuery,
        response=ConsentVolumeRows,
        tag="Volume & Live",
    ),
    Route(
        "GET",
        WORKSPACE + "/events/live",
        FUNCTION,
        "streamLiveEvents",
        "Server-Sent Events of the workspace's events as they are processed. A stream opened "
        "without Last-Event-ID starts with the latest stored and blocked events of the last "
        "hour (at most 100, oldest first). Each stored event is a message (id: to resume with "
        "Last-Event-ID, data: the event JSON); any other outcome is an `outcome` event whose "
        "data is {status: blocked|duplicate|suppressed|dead_lettered|dropped|mapped, reason, "
        "event} (mapped: a webhook source's raw request, with the events it became). "
        "A heartbeat comment every 5 s; streams end after 5 minutes and the client reconnects; "
        "429 with Retry-After when the token or the server has as many streams open as allowed",
        live_stream,
        query=LiveQuery,
        streaming=True,
        tag="Volume & Live",
    ),
)
