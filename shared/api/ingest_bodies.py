"""The documented request bodies of the ingest paths, for the OpenAPI document only.

Ingest reads its bodies itself (any content type, gzip, batches whose bad items are refused one
by one), and `shared/domain/events.py` decides what is accepted; these models describe exactly
that, in both spellings it reads: Segment's camelCase (`userId`, `messageId`, `sentAt`) and the
snake_case of the first API document (`user_id`, `anonymous_id`, `group_id`). camelCase wins
when both carry a value; `null` and `""` count as absent. Keys not listed here are kept
verbatim in the event's `extras` (docs/EVENTS.md).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, WithJsonSchema

from shared.domain.limits import MAX_BATCH_EVENTS, MAX_MESSAGE_ID_CHARS

# SDKs send numeric ids too; ingest stores them as strings (12 -> "12").
Id = Annotated[Any, WithJsonSchema({"type": ["string", "number", "null"]})]
MessageId = Annotated[
    Any,
    WithJsonSchema({"type": ["string", "number", "null"], "maxLength": MAX_MESSAGE_ID_CHARS}),
]
# What a client should send: RFC 3339. Ingest also reads the other ISO 8601 forms Python's
# `datetime.fromisoformat` takes (a missing offset means UTC).
DateTime = Annotated[Any, WithJsonSchema({"type": ["string", "null"], "format": "date-time"})]
JsonObject = Annotated[
    Any, WithJsonSchema({"type": ["object", "null"], "additionalProperties": True})
]
WRITE_KEY_DESCRIPTION = (
    "The source's write key, for clients that cannot set headers (analytics.js batches, the "
    "mobile SDKs); read only at the top level of a body, and only when no X-Write-Key header, "
    "HTTP Basic username or ?writeKey= carries a key"
)


def present(*names: str) -> dict[str, Any]:
    """A JSON Schema that holds when one of `names` (spellings of one field) has a value."""
    return {
        "anyOf": [
            {
                "required": [name],
                "properties": {name: {"type": ["string", "number"], "minLength": 1}},
            }
            for name in names
        ]
    }


USER_ID = ("userId", "user_id")
IDENTIFIED = present(*USER_ID, "anonymousId", "anonymous_id")
# What each call needs beyond its own fields, as shared/domain/events.py checks it.
REQUIRES: dict[str, list[dict[str, Any]]] = {
    "track": [IDENTIFIED],
    "identify": [IDENTIFIED],
    "page": [IDENTIFIED],
    "screen": [IDENTIFIED],
    "group": [IDENTIFIED, present("groupId", "group_id")],
    "alias": [present(*USER_ID), present("previousId", "previous_id")],
}
# One body per call's path, the first API document's examples among them.
EXAMPLES: dict[str, list[dict[str, Any]]] = {
    "track": [
        {
            "event": "purchase_completed",
            "user_id": "user-123",
            "properties": {
                "order_id": "ORD-456",
                "total": 99.99,
                "currency": "USD",
                "items": ["SKU-001", "SKU-002"],
            },
            "timestamp": "2024-01-15T15:00:00Z",
            "context": {"ip": "203.0.113.1", "user_agent": "Mozilla/5.0..."},
        },
        {
            "event": "Order Completed",
            "userId": "user-123",
            "messageId": "msg-0001",
            "properties": {"total": 99.99},
            "sentAt": "2024-01-15T15:00:01.000Z",
        },
    ],
    "identify": [
        {"user_id": "user-123", "traits": {"email": "alice@example.com", "name": "Alice Smith"}}
    ],
    "page": [
        {
            "user_id": "user-123",
            "name": "Pricing",
            "properties": {
                "url": "https://example.com/pricing",
                "title": "Pricing - Example App",
                "referrer": "https://google.com",
            },
        }
    ],
    "screen": [{"anonymousId": "anon-42", "name": "Checkout"}],
    "group": [
        {
            "user_id": "user-123",
            "group_id": "company-456",
            "traits": {"name": "Acme Corp", "employee_count": 250},
        }
    ],
    "alias": [{"userId": "user-123", "previousId": "anon-42"}],
}


def _rules(call: str, with_examples: bool) -> ConfigDict:
    extra: dict[str, Any] = {"allOf": REQUIRES[call]}
    if with_examples:
        extra["examples"] = EXAMPLES[call]
    return ConfigDict(extra="allow", json_schema_extra=extra)


class Message(BaseModel):
    """What every call may carry."""

    model_config = ConfigDict(extra="allow")

    userId: Id = Field(None, description="the user's id in your database")
    user_id: Id = Field(None, description="userId, as the first API document spells it")
    anonymousId: Id = Field(None, description="an id for a user not (yet) identified")
    anonymous_id: Id = Field(None, description="anonymousId")
    messageId: MessageId = Field(
        None, description="the event's unique id, for deduplication (48 h); made when absent"
    )
    message_id: MessageId = Field(None, description="messageId")
    timestamp: DateTime = Field(
        None,
        description="when the event happened (default: when it was received); corrected for "
        "the client's clock by sentAt",
    )
    originalTimestamp: DateTime = Field(None, description="timestamp, when none is sent")
    original_timestamp: DateTime = Field(None, description="originalTimestamp")
    sentAt: DateTime = Field(None, description="when the client sent it")
    sent_at: DateTime = Field(None, description="sentAt")
    properties: JsonObject = Field(None, description="the call's properties")
    traits: JsonObject = Field(None, description="traits of the user (identify) or group")
    context: JsonObject = Field(
        None,
        description="the client's context: ip (filled from the request when absent), "
        "userAgent (or user_agent), locale, page {url, title, referrer}, library, ...",
    )
    integrations: JsonObject = Field(None, description="per-destination switches")
    writeKey: str | None = Field(None, description=WRITE_KEY_DESCRIPTION)


class TrackCall(Message):
    """A track call: a user action, named by `event`; userId or anonymousId is required."""

    model_config = _rules("track", with_examples=True)

    type: Literal["track"] | None = Field(None, description="the path's call, when given")
    event: str = Field(min_length=1, description="the action's name, e.g. purchase_completed")


class IdentifyCall(Message):
    """An identify call: traits of a user; userId or anonymousId is required."""

    model_config = _rules("identify", with_examples=True)

    type: Literal["identify"] | None = Field(None, description="the path's call, when given")


class PageCall(Message):
    """A page call: a page view; userId or anonymousId is required."""

    model_config = _rules("page", with_examples=True)

    type: Literal["page"] | None = Field(None, description="the path's call, when given")
    name: str | None = Field(None, description="the page's name")


class ScreenCall(Message):
    """A screen call: a mobile app's screen view; userId or anonymousId is required."""

    model_config = _rules("screen", with_examples=True)

    type: Literal["screen"] | None = Field(None, description="the path's call, when given")
    name: str | None = Field(None, description="the screen's name")


class GroupCall(Message):
    """A group call: a user joins a group (company, team, account); groupId, and userId or
    anonymousId, are required."""

    model_config = _rules("group", with_examples=True)

    type: Literal["group"] | None = Field(None, description="the path's call, when given")
    groupId: Id = Field(None, description="the group's id")
    group_id: Id = Field(None, description="groupId")


class AliasCall(Message):
    """An alias call: `previousId` becomes `userId`; both are required."""

    model_config = _rules("alias", with_examples=True)

    type: Literal["alias"] | None = Field(None, description="the path's call, when given")
    previousId: Id = Field(None, description="the id the user had before")
    previous_id: Id = Field(None, description="previousId")


# In a batch or on /v1/events, `type` says which call an item is.
class TrackMessage(TrackCall):
    model_config = _rules("track", with_examples=False)
    type: Literal["track"]


class IdentifyMessage(IdentifyCall):
    model_config = _rules("identify", with_examples=False)
    type: Literal["identify"]


class PageMessage(PageCall):
    model_config = _rules("page", with_examples=False)
    type: Literal["page"]


class ScreenMessage(ScreenCall):
    model_config = _rules("screen", with_examples=False)
    type: Literal["screen"]


class GroupMessage(GroupCall):
    model_config = _rules("group", with_examples=False)
    type: Literal["group"]


class AliasMessage(AliasCall):
    model_config = _rules("alias", with_examples=False)
    type: Literal["alias"]


AnyMessage = Annotated[
    TrackMessage | IdentifyMessage | PageMessage | ScreenMessage | GroupMessage | AliasMessage,
    Field(discriminator="type"),
]


class BatchRequest(BaseModel):
    """Up to 2,500 calls in one request; `context`, `integrations` and `sentAt` apply to each
    of them (an item's own values win). A bad item is refused alone: the answer lists it."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "batch": [
                        {
                            "type": "track",
                            "event": "Order Completed",
                            "userId": "user-123",
                            "properties": {"total": 99.99},
                        },
                        {"type": "identify", "userId": "user-123", "traits": {"plan": "pro"}},
                    ],
                    "sentAt": "2024-01-15T15:00:01.000Z",
                    "context": {"library": {"name": "analytics-python", "version": "2.4.0"}},
                }
            ]
        },
    )

    batch: list[AnyMessage] = Field(max_length=MAX_BATCH_EVENTS)
    context: JsonObject = Field(None, description="merged into every item's context")
    integrations: JsonObject = Field(None, description="merged into every item's integrations")
    sentAt: DateTime = Field(None, description="when the client sent the batch")
    sent_at: DateTime = Field(None, description="sentAt")
    writeKey: str | None = Field(None, description=WRITE_KEY_DESCRIPTION)


class EventsRequest(RootModel[AnyMessage | BatchRequest]):
    """One call whose `type` names it, or a batch."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"type": "track", "event": "Signed Up", "anonymousId": "anon-42"},
                {"batch": [{"type": "page", "anonymousId": "anon-42", "name": "Home"}]},
            ]
        }
    )


class ClientMetrics(BaseModel):
    """analytics.js's own counters: read and dropped."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "series": [
                        {
                            "type": "Counter",
                            "metric": "analytics_js.invoke.track",
                            "value": 1,
                            "tags": {"library": "analytics.js"},
                        }
                    ]
                }
            ]
        },
    )

    series: list[dict[str, Any]]


# The body of each call's path.
CALL_BODIES: dict[str, type[BaseModel]] = {
    "track": TrackCall,
    "identify": IdentifyCall,
    "page": PageCall,
    "screen": ScreenCall,
    "group": GroupCall,
    "alias": AliasCall,
    "events": EventsRequest,
    "batch": BatchRequest,
}
