"""Forwarding Rules API (seed: /api/v1/workspaces/{id}/event-forwarding-rules)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    StrictBool,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)

from shared.api.models import Input, Name
from shared.domain.routing import VALID_EVENT_TYPES, ForwardingRule
from shared.http.app import ApiRequest, Reply
from shared.http.routing import Route

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

    @field_validator(
        "name", "destination_id", "event_types", "event_names", "enabled", mode="before"
    )
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("must not be null")
        return value


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
    created_at: str
    updated_at: str


def list_rules(request: ApiRequest) -> list[ForwardingRule]:
    return request.services.forwarding_rules.list(request.workspace_id)


def create_rule(request: ApiRequest) -> ForwardingRule:
    body: ForwardingRuleCreate = request.body
    return request.services.forwarding_rules.create(request.workspace_id, **body.model_dump())


def get_rule(request: ApiRequest) -> ForwardingRule:
    return request.services.forwarding_rules.get(request.workspace_id, request.params["rule_id"])


def update_rule(request: ApiRequest) -> ForwardingRule:
    body: ForwardingRuleUpdate = request.body
    return request.services.forwarding_rules.update(
        request.workspace_id, request.params["rule_id"], body.model_dump(exclude_unset=True)
    )


def delete_rule(request: ApiRequest) -> Reply:
    request.services.forwarding_rules.delete(request.workspace_id, request.params["rule_id"])
    return Reply(None, 204)


ROUTES = (
    Route(
        "GET",
        BASE,
        FUNCTION,
        "listForwardingRules",
        "List forwarding rules, oldest first",
        list_rules,
        response=list[ForwardingRuleObject],
        tag="Forwarding Rules",
    ),
    Route(
        "POST",
        BASE,
        FUNCTION,
        "createForwardingRule",
        "Create a forwarding rule (its destination and transformation must exist)",
        create_rule,
        body=ForwardingRuleCreate,
        response=ForwardingRuleObject,
        status=201,
        tag="Forwarding Rules",
    ),
    Route(
        "GET",
        BASE + "/{rule_id}",
        FUNCTION,
        "getForwardingRule",
        "Get a forwarding rule",
        get_rule,
        response=ForwardingRuleObject,
        tag="Forwarding Rules",
    ),
    Route(
        "PUT",
        BASE + "/{rule_id}",
        FUNCTION,
        "updateForwardingRule",
        "Update a forwarding rule: omitted fields keep their value",
        update_rule,
        body=ForwardingRuleUpdate,
        response=ForwardingRuleObject,
        tag="Forwarding Rules",
    ),
    Route(
        "DELETE",
        BASE + "/{rule_id}",
        FUNCTION,
        "deleteForwardingRule",
        "Delete a forwarding rule",
        delete_rule,
        status=204,
        tag="Forwarding Rules",
    ),
)
