"""The /v1/streams event query (GET /v1/streams/events) and its `Event` object."""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.api.models import Absent, Input, Timestamp, omitted_when_absent
from shared.api.observe import WholeNumber
from shared.http.request import ApiRequest
from shared.http.routing import Route
from shared.services.event_query import DEFAULT_LIMIT, MAX_LIMIT

FUNCTION = "streams"


class EventPage(BaseModel):
    url: str | Absent = omitted_when_absent()
    title: str | Absent = omitted_when_absent()
    referrer: str | Absent = omitted_when_absent()


class EventContext(BaseModel):
    """What the seed's `Event.context` shows; a value the event lacks is left out."""

    ip: str | Absent = omitted_when_absent()
    userAgent: str | Absent = omitted_when_absent()
    locale: str | Absent = omitted_when_absent()
    page: EventPage | Absent = omitted_when_absent()


class Event(BaseModel):
    """The /v1/streams API's `Event`: `type` is a track's event name, else the call type."""

    id: str = Field(description="the messageId")
    sourceId: str
    type: str = Field(description="a track's event name (purchase), else the call type (page)")
    properties: dict[str, Any] = Field(description="properties; traits for identify and group")
    context: EventContext
    userId: str | Absent = omitted_when_absent("left out when the event has none")
    anonymousId: str | Absent = omitted_when_absent("left out when the event has none")
    timestamp: Timestamp
    receivedAt: Timestamp


class EventsQuery(Input):
    model_config = ConfigDict(populate_by_name=True)

    sourceId: str | None = None
    eventType: str | None = Field(None, description="an Event.type: a track's name or call type")
    from_: AwareDatetime | None = Field(
        None, alias="from", description="received at or after (default: `to` minus 24 hours)"
    )
    to: AwareDatetime | None = Field(None, description="received before (default: now)")
    limit: WholeNumber = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)


class TimeRange(BaseModel):
    from_: Timestamp = Field(alias="from", serialization_alias="from")
    to: Timestamp

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class EventSummary(BaseModel):
    totalEvents: int = Field(description="every matching event, not only those returned")
    uniqueEventTypes: int
    timeRange: TimeRange = Field(description="the window queried (by receivedAt)")


class EventQueryResult(BaseModel):
    data: list[Event]
    summary: EventSummary


def query_events(request: ApiRequest) -> dict[str, Any]:
    query: EventsQuery = request.query
    return request.services.event_queries.query(
        request.workspace_id,
        source_id=query.sourceId,
        event_type=query.eventType,
        since=query.from_,
        until=query.to,
        limit=query.limit,
    )


ROUTES = (
    Route(
        "GET",
        "/v1/streams/events",
        FUNCTION,
        "queryEvents",
        "Query events (BigQuery), newest first, with a summary of every match",
        query_events,
        query=EventsQuery,
        response=EventQueryResult,
        tag="Events",
    ),
)
