"""Destinations API (/api/v1/workspaces/{id}/destinations), in the second seed's
`StreamDestination` shape; `shared.api.streams` serves the same data at /v1/streams/destinations."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, StringConstraints, WithJsonSchema, field_validator

from shared.api.models import Input, Name
from shared.destinations import DESTINATION_TYPES, public_config
from shared.domain.routing import Destination, DestinationStatus
from shared.http.app import ApiRequest, Reply
from shared.http.routing import Route

FUNCTION = "destinations"
BASE = "/api/v1/workspaces/{workspace_id}/destinations"

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
    """The second seed's `StreamDestinationInput`."""

    name: Name
    type: DestinationType
    config: Config


class DestinationCreate(StreamDestinationInput):
    """`StreamDestinationInput` plus the destination's initial status."""

    status: DestinationStatus = "active"


class DestinationUpdate(Input):
    """A partial update. `config` replaces the config, but a secret it omits keeps its value."""

    name: Name | None = None
    type: DestinationType | None = None
    config: Config | None = None
    status: DestinationStatus | None = None

    @field_validator("name", "type", "config", "status", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("must not be null")
        return value


class StreamDestination(BaseModel):
    """The second seed's `StreamDestination`: `config` without its secrets."""

    id: str
    name: str
    type: str
    config: dict[str, Any]
    status: DestinationStatus
    createdAt: str


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


def list_destinations(request: ApiRequest) -> list[StreamDestination]:
    return [stream_destination(d) for d in request.services.destinations.list(request.workspace_id)]


def create_destination(request: ApiRequest) -> StreamDestination:
    body: StreamDestinationInput = request.body
    created = request.services.destinations.create(request.workspace_id, **body.model_dump())
    return stream_destination(created)


def get_destination(request: ApiRequest) -> StreamDestination:
    destination = request.services.destinations.get(
        request.workspace_id, request.params["destination_id"]
    )
    return stream_destination(destination)


def update_destination(request: ApiRequest) -> StreamDestination:
    body: DestinationUpdate = request.body
    updated = request.services.destinations.update(
        request.workspace_id, request.params["destination_id"], body.model_dump(exclude_unset=True)
    )
    return stream_destination(updated)


def delete_destination(request: ApiRequest) -> Reply:
    request.services.destinations.delete(request.workspace_id, request.params["destination_id"])
    return Reply(None, 204)


ROUTES = (
    Route(
        "GET",
        BASE,
        FUNCTION,
        "listDestinations",
        "List destinations, oldest first (secrets are never returned)",
        list_destinations,
        response=list[StreamDestination],
        tag="Destinations",
    ),
    Route(
        "POST",
        BASE,
        FUNCTION,
        "createDestination",
        "Create a destination; its config is validated for its type and its URLs checked",
        create_destination,
        body=DestinationCreate,
        response=StreamDestination,
        status=201,
        tag="Destinations",
    ),
    Route(
        "GET",
        BASE + "/{destination_id}",
        FUNCTION,
        "getDestination",
        "Get a destination",
        get_destination,
        response=StreamDestination,
        tag="Destinations",
    ),
    Route(
        "PUT",
        BASE + "/{destination_id}",
        FUNCTION,
        "updateDestination",
        "Update a destination: omitted fields, and omitted secrets in config, keep their value",
        update_destination,
        body=DestinationUpdate,
        response=StreamDestination,
        tag="Destinations",
    ),
    Route(
        "DELETE",
        BASE + "/{destination_id}",
        FUNCTION,
        "deleteDestination",
        "Delete a destination (409 while a forwarding rule delivers to it)",
        delete_destination,
        status=204,
        tag="Destinations",
    ),
)
