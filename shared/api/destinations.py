"""Destinations API (/api/v1/workspaces/{id}/destinations), in the /v1/streams API's
`StreamDestination` shape; `shared.api.streams` serves the same data at /v1/streams/destinations."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, StringConstraints, WithJsonSchema

from shared.api.crud import Collection, Summaries
from shared.api.models import Input, Name, Timestamp, not_null
from shared.destinations import DESTINATION_TYPES, public_config
from shared.domain.routing import Destination, DestinationStatus

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
    """The /v1/streams API's `StreamDestinationInput`."""

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

    _not_null = not_null("name", "type", "config", "status")


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


DESTINATIONS = Collection(
    service=lambda services: services.destinations,
    function=FUNCTION,
    path=BASE,
    id_param="destination_id",
    operation="Destination",
    tag="Destinations",
    create_body=DestinationCreate,
    update_body=DestinationUpdate,
    response=StreamDestination,
    summaries=Summaries(
        list="List destinations, oldest first (secrets are never returned)",
        create="Create a destination; its config is validated for its type and its URLs checked",
        get="Get a destination",
        update="Update a destination: omitted fields, and omitted secrets in config, "
        "keep their value",
        delete="Delete a destination (409 while a forwarding rule delivers to it)",
    ),
    present=stream_destination,
)

ROUTES = DESTINATIONS.routes()
