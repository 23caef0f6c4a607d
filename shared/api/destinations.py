"""Destinations API (/api/v1/workspaces/{id}/destinations), in the /v1/streams API's
`StreamDestination` shape; `shared.api.streams` serves the same data at /v1/streams/destinations."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints, WithJsonSchema, field_validator

from shared.api.crud import Collection, Summaries
from shared.api.models import Input, Name, Timestamp, not_null
from shared.destinations import CONNECTORS, DESTINATION_TYPES, public_config, secret_fields
from shared.destinations.deletion import UserDeletion
from shared.domain.errors import NotFound
from shared.domain.pipeline import DeliveryStatus
from shared.domain.routing import Destination, DestinationStatus
from shared.http.request import ApiRequest
from shared.http.routing import Route
from shared.services.destination_test import TestOutcome
from shared.services.destinations import MAX_RECENT_DELIVERIES

FUNCTION = "destinations"
WORKSPACE = "/api/v1/workspaces/{workspace_id}"
BASE = WORKSPACE + "/destinations"

# Checked against the connector registry by the service (400 naming `type`); the enum documents it.
DestinationType = Annotated[
    str,
    StringConstraints(min_length=1, max_length=50),
    WithJsonSchema({"type": "string", "enum": list(DESTINATION_TYPES)}),
]
Config = Annotated[
    dict[str, Any],
    WithJsonSchema(
        {
            "type": "object",
            "additionalProperties": True,
            "description": "Settings of the destination type; secrets are write-only",
        }
    ),
]


class StreamDestinationInput(Input):
    """The /v1/streams API's `StreamDestinationInput`."""

    name: Name
    type: DestinationType
    config: Config


ConsentCategory = Annotated[str, StringConstraints(min_length=1, max_length=100)]
CONSENT_CATEGORIES_DESCRIPTION = (
    "The consent categories (their ids, as keys of context.consent.categoryPreferences) an "
    "event must have all granted to be delivered here; empty: none (docs/PRIVACY.md)"
)
ConsentCategories = Annotated[
    list[ConsentCategory],
    Field(max_length=20, description=CONSENT_CATEGORIES_DESCRIPTION),
]


def _distinct(categories: list[str] | None) -> list[str] | None:
    if categories is not None and len(set(categories)) != len(categories):
        raise ValueError("must not name a category twice")
    return categories


class DestinationCreate(StreamDestinationInput):
    """`StreamDestinationInput` plus the destination's initial status and consent categories."""

    status: DestinationStatus = "active"
    consent_categories: ConsentCategories = []

    _distinct_categories = field_validator("consent_categories")(_distinct)


class DestinationUpdate(Input):
    """A partial update. `config` replaces the config, but a secret it omits keeps its value."""

    name: Name | None = None
    type: DestinationType | None = None
    config: Config | None = None
    status: DestinationStatus | None = None
    consent_categories: ConsentCategories | None = None

    _not_null = not_null("name", "type", "config", "status", "consent_categories")
    _distinct_categories = field_validator("consent_categories")(_distinct)


class StreamDestination(BaseModel):
    """The /v1/streams API's `StreamDestination`: `config` without its secrets."""

    id: str
    name: str
    type: str
    config: dict[str, Any]
    status: DestinationStatus
    createdAt: Timestamp


def stream_destination(destination: Destination) -> StreamDestination:
    """The API's view of a destination: secrets never leave the store."""
    return StreamDestination(
        id=destination.id,
        name=destination.name,
        type=destination.type,
        config=public_config(destination.type, destination.config),
        status=destination.status,
        createdAt=destination.created_at,
    )


class DestinationObject(StreamDestination):
    """A destination as /api/v1 answers it: the /v1/streams shape plus which secrets are set."""

    secrets_set: list[str] = Field(
        description="The config's write-only fields that hold a value (never the values): "
        "a form shows them as set, and an update that omits them keeps them"
    )
    consent_categories: list[str] = Field(description=CONSENT_CATEGORIES_DESCRIPTION)


def _is_set(value: Any) -> bool:
    return value not in (None, "", {})


def destination_object(destination: Destination) -> DestinationObject:
    """The /api/v1 view: secrets as set or not, never their values."""
    hidden = secret_fields(destination.type) if destination.type in CONNECTORS else frozenset()
    return DestinationObject(
        **stream_destination(destination).model_dump(),
        secrets_set=sorted(name for name in hidden if _is_set(destination.config.get(name))),
        consent_categories=destination.consent_categories,
    )


DESTINATIONS = Collection(
    service=lambda services: services.destinations,
    function=FUNCTION,
    path=BASE,
    id_param="destination_id",
    operation="Destination",
    tag="Destinations",
    create_body=DestinationCreate,
    update_body=DestinationUpdate,
    response=DestinationObject,
    summaries=Summaries(
        list="List destinations, oldest first (secrets are never returned)",
        create="Create a destination; its config is validated for its type and its URLs checked",
        get="Get a destination",
        update="Update a destination: omitted fields, and omitted secrets in config, "
        "keep their value",
        delete="Delete a destination (409 while a forwarding rule delivers to it)",
    ),
    present=destination_object,
)


class BatchLimits(BaseModel):
    """How many events one request to the vendor carries at most."""

    max_parts: int = Field(
        description="Vendor payload items per request (an event may make more than one item: "
        "a group is a membership and a group profile). A delivery message carries at most "
        "100 deliveries, so a request joins at most those"
    )
    max_bytes: int | None = Field(description="The items' bytes per request, when limited")


class RequestRate(BaseModel):
    """The vendor's documented request rate that each deliver instance keeps to."""

    requests: int
    per_seconds: float


class DestinationTypeSchema(BaseModel):
    """A destination type: what it does, the JSON Schema its `config` is validated with, and
    how Streams sends to it."""

    type: str
    description: str
    docs_url: str = Field(description="The vendor's API documentation, or Streams' own page")
    config_schema: dict[str, Any] = Field(
        description="JSON Schema (2020-12) of `config`, generated from the very model that "
        "validates it; write-only fields are marked `writeOnly`"
    )
    secret_fields: list[str] = Field(
        description="config fields that are write-only: never answered, kept when an update "
        "omits them"
    )
    event_types: list[str] = Field(
        description="The Segment calls this type sends; deliveries of the others are `skipped`"
    )
    batching: BatchLimits
    rate_limit: RequestRate | None = Field(
        description="Requests per window each deliver instance sends at most; null: unlimited"
    )
    supports_deletion: bool = Field(
        description="Whether user-deletion regulations reach this type through its vendor's "
        "deletion API (else they list it for manual action)"
    )


def _destination_type(type_: str) -> DestinationTypeSchema:
    connector = CONNECTORS[type_]
    about = connector.about
    rate = about.rate_limit
    return DestinationTypeSchema(
        type=type_,
        description=about.description,
        docs_url=about.docs_url,
        config_schema=connector.config_model.model_json_schema(),
        secret_fields=sorted(secret_fields(type_)),
        event_types=list(about.event_types),
        batching=BatchLimits(
            max_parts=about.batching.max_parts, max_bytes=about.batching.max_bytes
        ),
        rate_limit=None if rate is None else RequestRate(**rate.__dict__),
        supports_deletion=isinstance(connector, UserDeletion),
    )


def list_destination_types(request: ApiRequest) -> list[DestinationTypeSchema]:
    return [_destination_type(type_) for type_ in DESTINATION_TYPES]


def get_destination_type(request: ApiRequest) -> DestinationTypeSchema:
    type_ = request.params["type"]
    if type_ not in CONNECTORS:
        raise NotFound(f"no destination type {type_!r}", field="type")
    return _destination_type(type_)


class DestinationTestRequest(Input):
    """The event to send; the sample track (`Streams Test Event`) when omitted."""

    event: dict[str, Any] | None = Field(
        None,
        description="A Segment call (`type` defaults to track), normalised as ingest would",
        json_schema_extra={
            "examples": [{"type": "track", "event": "Order Completed", "userId": "u1"}]
        },
    )


class DestinationTestResult(BaseModel):
    """What the destination answered the test event; nothing is recorded."""

    outcome: TestOutcome = Field(
        description="delivered (2xx, or published); retry (what a delivery would retry: 5xx, "
        "408, 429, timeout, no connection); failed (refused for good: other 4xx and 3xx, or an "
        "address Streams does not send to); skipped (this type takes no such event); rejected "
        "(the event lacks what the destination needs; nothing was sent)"
    )
    http_status: int | None
    detail: str = Field(
        description="In words: the HTTP status and up to 300 characters of the answer's body "
        "(secrets sent to the destination are scrubbed), or why nothing was sent"
    )
    duration_ms: float | None
    message_id: str
    event: dict[str, Any] = Field(description="The canonical event that was sent")


def send_test_event(request: ApiRequest) -> DestinationTestResult:
    body: DestinationTestRequest = request.body
    result = request.services.destination_tester.send_test(
        request.workspace_id, request.params["destination_id"], body.event
    )
    return DestinationTestResult(
        outcome=result.outcome,
        http_status=result.http_status,
        detail=result.detail,
        duration_ms=result.duration_ms,
        message_id=result.message_id,
        event=dict(result.event),
    )


class DeliveryQuery(Input):
    limit: int = Field(50, ge=1, le=MAX_RECENT_DELIVERIES)


class Delivery(BaseModel):
    """One event's delivery to the destination, as its last attempt left it."""

    delivery_id: str
    message_id: str
    rule_id: str | None
    status: DeliveryStatus
    attempts: int
    last_detail: str | None
    last_http_status: int | None
    created_at: Timestamp
    updated_at: Timestamp
    delivered_at: Timestamp | None


def list_deliveries(request: ApiRequest) -> list[Delivery]:
    query: DeliveryQuery = request.query
    destination_id = request.params["destination_id"]
    request.services.destinations.get(request.workspace_id, destination_id)  # 404 if not ours
    # Read from what deliver keeps anyway (`DeliveryRecords`): its records of the messages
    # with a failure, a retry or a replay (30 days), and of those accepted at once (48 hours,
    # in Firestore or, with the window in Valkey, as marks and the destination's recent list).
    records = request.services.delivery_records.recent(
        request.workspace_id, destination_id, query.limit
    )
    return [Delivery.model_validate(record) for record in records]


ROUTES = (
    *DESTINATIONS.routes(),
    Route(
        "GET",
        WORKSPACE + "/destination-types",
        FUNCTION,
        "listDestinationTypes",
        "Destination types, each with the JSON Schema of its config",
        list_destination_types,
        response=list[DestinationTypeSchema],
        tag="Destinations",
    ),
    Route(
        "GET",
        WORKSPACE + "/destination-types/{type}",
        FUNCTION,
        "getDestinationType",
        "One destination type, with the JSON Schema of its config",
        get_destination_type,
        response=DestinationTypeSchema,
        tag="Destinations",
    ),
    Route(
        "POST",
        BASE + "/{destination_id}/test",
        FUNCTION,
        "testDestination",
        "Send one test event to the destination now, and answer what it said "
        "(whatever the destination's status; nothing is recorded)",
        send_test_event,
        body=DestinationTestRequest,
        body_required=False,
        response=DestinationTestResult,
        tag="Destinations",
    ),
    Route(
        "GET",
        BASE + "/{destination_id}/deliveries",
        FUNCTION,
        "listDestinationDeliveries",
        "The destination's recent deliveries, most recently attempted first",
        list_deliveries,
        query=DeliveryQuery,
        response=list[Delivery],
        tag="Destinations",
    ),
)
