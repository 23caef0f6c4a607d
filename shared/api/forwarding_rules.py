"""Forwarding Rules API (seed: /api/v1/workspaces/{id}/event-forwarding-rules)."""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    StrictBool,
    StringConstraints,
    WithJsonSchema,
)

from shared.api.crud import Collection, Summaries
from shared.api.models import Input, Name, Timestamp, not_null
from shared.domain.routing import VALID_EVENT_TYPES

FUNCTION = "event_forwarding_rules"
BASE = "/api/v1/workspaces/{workspace_id}/event-forwarding-rules"
# Bounds one rule document well inside Firestore's 1 MiB; more names than this want a contract.
MAX_EVENT_NAMES = 1000


def _known_event_type(value: str) -> str:
    if value not in VALID_EVENT_TYPES:
        raise ValueError(
            f"unknown event type {value!r}: one of {', '.join(sorted(VALID_EVENT_TYPES))}"
        )
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


ResourceId = Annotated[str, StringConstraints(min_length=1, max_length=200)]
EventType = Annotated[
    str,
    AfterValidator(_known_event_type),
    WithJsonSchema({"type": "string", "enum": sorted(VALID_EVENT_TYPES)}),
]
# Not stripped: rules match event names exactly as SDKs send them.
EventName = Annotated[str, StringConstraints(max_length=255), AfterValidator(_not_blank)]
EventTypes = Annotated[list[EventType], AfterValidator(_unique)]
EventNames = Annotated[list[EventName], Field(max_length=MAX_EVENT_NAMES), AfterValidator(_unique)]


class ForwardingRuleCreate(Input):
    """The seed's Create Forwarding Rule body; empty lists select every event."""

    name: Name
    destination_id: ResourceId
    event_types: EventTypes = []
    event_names: EventNames = []
    transformation_id: ResourceId | None = None
    enabled: StrictBool = True


class ForwardingRuleUpdate(Input):
    """A partial update: omitted fields keep their value; only transformation_id may be null."""

    name: Name | None = None
    destination_id: ResourceId | None = None
    event_types: EventTypes | None = None
    event_names: EventNames | None = None
    transformation_id: ResourceId | None = None
    enabled: StrictBool | None = None

    _not_null = not_null("name", "destination_id", "event_types", "event_names", "enabled")


class ForwardingRuleObject(BaseModel):
    """A forwarding rule, as every endpoint of the group answers it."""

    id: str
    workspace_id: str
    name: str
    destination_id: str
    event_types: list[str]
    event_names: list[str]
    transformation_id: str | None
    enabled: bool
    created_at: Timestamp
    updated_at: Timestamp


RULES = Collection(
    service=lambda services: services.forwarding_rules,
    function=FUNCTION,
    path=BASE,
    id_param="rule_id",
    operation="ForwardingRule",
    tag="Forwarding Rules",
    create_body=ForwardingRuleCreate,
    update_body=ForwardingRuleUpdate,
    response=ForwardingRuleObject,
    summaries=Summaries(
        list="List forwarding rules, oldest first",
        create="Create a forwarding rule (its destination and transformation must exist)",
        get="Get a forwarding rule",
        update="Update a forwarding rule: omitted fields keep their value",
        delete="Delete a forwarding rule",
    ),
)

ROUTES = RULES.routes()
