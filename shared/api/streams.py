"""The second seed's API (/v1/streams/...), over the same data model as the first."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from shared.http.app import ApiRequest
from shared.http.body import client_ip
from shared.http.routing import Route

FUNCTION = "streams"


class EventInput(BaseModel):
    """The second seed's `EventInput`: a free `type` name becomes a track of that name."""

    model_config = ConfigDict(extra="allow")

    sourceId: str
    type: str
    properties: dict[str, Any] | None = None
    userId: str | None = None
    anonymousId: str | None = None
    timestamp: str | None = None
    context: dict[str, Any] | None = None


class EventAccepted(BaseModel):
    eventId: str
    status: Literal["accepted"]


def send_event(request: ApiRequest) -> EventAccepted:
    body: EventInput = request.body
    source = request.services.sources.get(request.workspace_id, body.sourceId, field="sourceId")
    key = request.services.ingest.authorize_source(source)
    event_id = request.services.ingest.accept_stream_event(
        key, body.model_dump(exclude_unset=True), client_ip(request.raw)
    )
    return EventAccepted(eventId=event_id, status="accepted")


ROUTES = (
    Route(
        "POST",
        "/v1/streams/events",
        FUNCTION,
        "sendEvent",
        "Send a custom event to a stream source for processing",
        send_event,
        body=EventInput,
        response=EventAccepted,
        status=202,
        tag="Events",
    ),
)
