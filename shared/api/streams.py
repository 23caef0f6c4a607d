"""The /v1/streams API, over the same data model as the /api/v1 management API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from shared.api.destinations import (
    DESTINATIONS,
    StreamDestination,
    StreamDestinationInput,
    stream_destination,
)
from shared.api.models import Timestamp
from shared.http.request import ApiRequest
from shared.http.routing import Route

FUNCTION = "streams"


class EventInput(BaseModel):
    """The /v1/streams API's `EventInput`: a free `type` name becomes a track of that name."""

    model_config = ConfigDict(extra="allow")

    sourceId: str
    type: str
    properties: dict[str, Any] | None = None
    userId: str | None = None
    anonymousId: str | None = None
    timestamp: Timestamp | None = None
    context: dict[str, Any] | None = None


class EventAccepted(BaseModel):
    eventId: str
    status: Literal["accepted"]


def send_event(request: ApiRequest) -> EventAccepted:
    body: EventInput = request.body
    source = request.services.sources.get(request.workspace_id, body.sourceId, field="sourceId")
    key = request.services.ingest.authorize_source(source)
    event_id = request.services.ingest.accept_stream_event(
        key, body.model_dump(exclude_unset=True), request.client_ip
    )
    return EventAccepted(eventId=event_id, status="accepted")


class StreamDestinationList(BaseModel):
    """The /v1/streams API's list answer: `{"data": [StreamDestination, ...]}`."""

    data: list[StreamDestination]


def list_destinations(request: ApiRequest) -> StreamDestinationList:
    destinations = request.services.destinations.list(request.workspace_id)
    return StreamDestinationList(data=[stream_destination(d) for d in destinations])


ROUTES = (
    Route(
        "POST",
        "/v1/streams/events",
        FUNCTION,
        "sendEvent",
        "Send a custom event to a stream source for processing",
        send_event,
        body=EventInput,
        rate_limited=True,
        response=EventAccepted,
        status=202,
        tag="Events",
    ),
    Route(
        "GET",
        "/v1/streams/destinations",
        FUNCTION,
        "listStreamDestinations",
        "List stream destinations (the workspace's destinations; secrets are never returned)",
        list_destinations,
        response=StreamDestinationList,
        tag="Destinations",
    ),
    Route(
        "POST",
        "/v1/streams/destinations",
        FUNCTION,
        "createStreamDestination",
        "Configure a destination for delivering stream events",
        DESTINATIONS.create,
        body=StreamDestinationInput,
        response=StreamDestination,
        status=201,
        tag="Destinations",
    ),
)
