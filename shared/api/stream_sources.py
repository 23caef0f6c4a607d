"""The /v1/streams Stream Sources API (/v1/streams/sources), over the event sources of the
/api/v1 management API's /event-keys: one data model, so a source made through either is in
both."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from shared.api.models import (
    Absent,
    AllowedOrigins,
    Input,
    Name,
    Timestamp,
    omitted_when_absent,
)
from shared.api.observe import WholeNumber
from shared.api.stream_events import Event
from shared.domain.privacy import IpPolicy
from shared.domain.sources import EventSource, SourceType
from shared.http.request import ApiRequest
from shared.http.routing import Route
from shared.services.debugger import DEFAULT_DEBUG_LIMIT, MAX_DEBUG_LIMIT

FUNCTION = "streams"
BASE = "/v1/streams/sources"
# The management API revokes (`revoked`); /v1/streams calls the same state `inactive`.
STREAM_STATUS = {"active": "active", "revoked": "inactive"}


class StreamSourceInput(Input):
    """The /v1/streams API's `StreamSourceInput`, plus the optional `ip_policy` (docs/PRIVACY.md)
    and `allowed_origins` (docs/INGEST.md)."""

    name: Name
    type: SourceType
    ip_policy: IpPolicy = Field(
        "keep", description="What ingest does with context.ip: keep, truncate or remove"
    )
    allowed_origins: AllowedOrigins = []


class StreamSource(BaseModel):
    """The /v1/streams API's `StreamSource`, field for field (a source's allowed origins are read
    and changed at /api/v1/workspaces/{id}/event-keys/{keyId}/origins, as its IP policy is)."""

    id: str
    name: str
    type: SourceType
    writeKey: str = Field(description="API key for sending events to this source")
    status: Literal["active", "inactive"]
    eventsToday: int = Field(description="events received since 00:00 UTC")
    createdAt: Timestamp


class StreamSourceList(BaseModel):
    data: list[StreamSource]


class DebugQuery(Input):
    limit: WholeNumber = Field(DEFAULT_DEBUG_LIMIT, ge=1, le=MAX_DEBUG_LIMIT)


class SourceDebug(BaseModel):
    data: list[Event] = Field(description="the source's recent events (24 h), newest first")
    connected: bool = Field(description="an event was received within the last 5 minutes")
    lastEventAt: Timestamp | Absent = omitted_when_absent("left out until an event arrives")


def stream_source(source: EventSource, events_today: int) -> StreamSource:
    return StreamSource(
        id=source.id,
        name=source.name,
        type=source.type,
        writeKey=source.key,
        status=STREAM_STATUS[source.status],  # type: ignore[arg-type]
        eventsToday=events_today,
        createdAt=source.created_at,
    )


def list_sources(request: ApiRequest) -> StreamSourceList:
    sources = request.services.sources.list(request.workspace_id)
    counts = request.services.debugger.events_today(request.workspace_id) if sources else {}
    return StreamSourceList(data=[stream_source(s, counts.get(s.id, 0)) for s in sources])


def create_source(request: ApiRequest) -> StreamSource:
    body: StreamSourceInput = request.body
    assert request.token is not None
    source = request.services.sources.create(
        request.workspace_id,
        body.name,
        request.token.id,
        type=body.type,
        ip_policy=body.ip_policy,
        allowed_origins=body.allowed_origins,
    )
    return stream_source(source, 0)


def get_source(request: ApiRequest) -> StreamSource:
    source = request.services.sources.get(
        request.workspace_id, request.params["sourceId"], field="sourceId"
    )
    counts = request.services.debugger.events_today(request.workspace_id)
    return stream_source(source, counts.get(source.id, 0))


def delete_source(request: ApiRequest) -> None:
    """Delete, as the /v1/streams API says (DELETE .../event-keys/{keyId} revokes):
    the source is gone, its stored events stay."""
    request.services.sources.delete(request.workspace_id, request.params["sourceId"], "sourceId")


def debug_source(request: ApiRequest) -> dict[str, object]:
    query: DebugQuery = request.query
    return request.services.debugger.debug(
        request.workspace_id, request.params["sourceId"], query.limit
    )


ROUTES = (
    Route(
        "GET",
        BASE,
        FUNCTION,
        "listStreamSources",
        "List stream sources (the workspace's event sources), with today's event counts",
        list_sources,
        response=StreamSourceList,
        tag="Stream Sources",
    ),
    Route(
        "POST",
        BASE,
        FUNCTION,
        "createStreamSource",
        "Create a stream source (and its Pub/Sub topic); it is an event source of /event-keys too",
        create_source,
        body=StreamSourceInput,
        response=StreamSource,
        status=201,
        tag="Stream Sources",
    ),
    Route(
        "GET",
        BASE + "/{sourceId}",
        FUNCTION,
        "getStreamSource",
        "Get a stream source by ID",
        get_source,
        response=StreamSource,
        tag="Stream Sources",
    ),
    Route(
        "DELETE",
        BASE + "/{sourceId}",
        FUNCTION,
        "deleteStreamSource",
        "Delete a stream source: it is gone from the API (404), its write key is refused "
        "within 10 s, its topic is deleted; its stored events stay queryable. "
        "(DELETE /api/v1/workspaces/{id}/event-keys/{keyId} revokes instead.)",
        delete_source,
        status=204,
        tag="Stream Sources",
    ),
    Route(
        "GET",
        BASE + "/{sourceId}/debug",
        FUNCTION,
        "debugStreamSource",
        "Source debugger: the source's recent events (BigQuery, last 24 h), newest first, "
        "whether it is connected, and when it last received an event",
        debug_source,
        query=DebugQuery,
        response=SourceDebug,
        tag="Stream Sources",
    ),
)
