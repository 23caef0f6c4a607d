"""Contracts API (seed: /api/v1/workspaces/{id}/event-contracts) and their violations."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints, field_validator

from shared.api.forwarding_rules import EventName
from shared.api.models import Input, Name
from shared.domain import ids
from shared.domain.contracts import ContractEventType, ContractStatus, EnforcementMode
from shared.http.app import ApiRequest, Reply
from shared.http.routing import Route
from shared.services.contracts import ViolationQuery

FUNCTION = "event_contracts"
BASE = "/api/v1/workspaces/{workspace_id}/event-contracts"

Description = Annotated[str, StringConstraints(max_length=2000)]
SchemaDefinition = Annotated[
    dict[str, Any],
    Field(
        description="The compact form ({'properties': {'total': {'type': 'number', "
        "'required': true}}}) or JSON Schema draft 2020-12; see docs/CONTRACTS.md"
    ),
]
ContractEventName = Annotated[
    EventName | None,
    Field(
        description='The event name to match; "*" or null matches every name (identify and '
        "group events have no name, so only these)"
    ),
]


class EventContractCreate(Input):
    """The seed's Create Contract body."""

    name: Name
    event_type: ContractEventType
    event_name: ContractEventName = None
    description: Description | None = None
    schema_definition: SchemaDefinition
    enforcement_mode: EnforcementMode = "warn"
    undeclared_fields: EnforcementMode = "allow"
    status: ContractStatus = "active"


class EventContractUpdate(Input):
    """A partial update: omitted fields keep their value; event_name and description may be null."""

    name: Name | None = None
    event_type: ContractEventType | None = None
    event_name: ContractEventName = None
    description: Description | None = None
    schema_definition: SchemaDefinition | None = None
    enforcement_mode: EnforcementMode | None = None
    undeclared_fields: EnforcementMode | None = None
    status: ContractStatus | None = None

    @field_validator(
        "name",
        "event_type",
        "schema_definition",
        "enforcement_mode",
        "undeclared_fields",
        "status",
        mode="before",
    )
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("must not be null")
        return value


class EventContractObject(BaseModel):
    """A contract, as every endpoint of the group answers it (`version` counts its changes)."""

    id: str
    workspace_id: str
    name: str
    event_type: str
    event_name: str
    description: str | None
    schema_definition: dict[str, Any]
    enforcement_mode: EnforcementMode
    undeclared_fields: EnforcementMode
    status: ContractStatus
    version: int
    created_at: str
    updated_at: str


class ViolationFilters(Input):
    from_: AwareDatetime | None = Field(None, alias="from")
    to: AwareDatetime | None = None
    limit: int = Field(100, ge=1, le=1000)
    cursor: str | None = Field(None, description="next_cursor of the previous page")


class ContractViolation(BaseModel):
    """One violation of one event: where, of what kind, and what the policy did about it."""

    id: str
    contract_id: str
    contract_version: int | None
    message_id: str
    event_type: str | None
    event_name: str | None
    source_id: str | None
    field: str
    type: str = Field(
        description="Required-Missing, Datatype-Mismatch, Undeclared-Field, "
        "Additional-Properties, Enum-Mismatch, Format-Mismatch, Pattern-Mismatch, "
        "Range-Mismatch, Length-Mismatch, Schema-Mismatch"
    )
    message: str | None
    expected: str | None
    actual: str | None = Field(description="the value sent, as JSON text, truncated")
    action: Literal["allowed", "warned", "blocked"]
    created_at: str


class FieldTypeCount(BaseModel):
    field: str
    type: str
    count: int


class ShadowReport(BaseModel):
    """Events the contract let through that `block` would have stopped."""

    would_block: int = Field(description="with enforcement_mode block")
    would_block_undeclared: int = Field(description="with undeclared_fields block")


class ViolationSummary(BaseModel):
    """Counts over the whole requested range (array indices folded: items[].sku)."""

    violations: int
    events: int
    blocked_events: int
    by_type: dict[str, int]
    by_field: dict[str, int]
    by_field_and_type: list[FieldTypeCount]
    shadow: ShadowReport
    scanned: int
    truncated: bool


class ViolationPage(BaseModel):
    data: list[ContractViolation]
    next_cursor: str | None
    summary: ViolationSummary | None = Field(description="on the first page only")


def list_contracts(request: ApiRequest) -> Any:
    return request.services.contracts.list(request.workspace_id)


def create_contract(request: ApiRequest) -> Any:
    body: EventContractCreate = request.body
    return request.services.contracts.create(request.workspace_id, **body.model_dump())


def get_contract(request: ApiRequest) -> Any:
    return request.services.contracts.get(request.workspace_id, request.params["contract_id"])


def update_contract(request: ApiRequest) -> Any:
    body: EventContractUpdate = request.body
    return request.services.contracts.update(
        request.workspace_id, request.params["contract_id"], body.model_dump(exclude_unset=True)
    )


def delete_contract(request: ApiRequest) -> Reply:
    request.services.contracts.delete(request.workspace_id, request.params["contract_id"])
    return Reply(None, 204)


def list_violations(request: ApiRequest) -> dict[str, Any]:
    filters: ViolationFilters = request.query
    query = ViolationQuery(
        since=iso(filters.from_), until=iso(filters.to), limit=filters.limit, cursor=filters.cursor
    )
    return request.services.contracts.violations(
        request.workspace_id, request.params["contract_id"], query
    )


def iso(moment: datetime | None) -> str | None:
    return ids.isoformat(moment) if moment else None


ROUTES = (
    Route(
        "GET",
        BASE,
        FUNCTION,
        "listEventContracts",
        "List contracts, oldest first",
        list_contracts,
        response=list[EventContractObject],
        tag="Contracts",
    ),
    Route(
        "POST",
        BASE,
        FUNCTION,
        "createEventContract",
        "Create a contract (its schema is checked: 400 names the problem)",
        create_contract,
        body=EventContractCreate,
        response=EventContractObject,
        status=201,
        tag="Contracts",
    ),
    Route(
        "GET",
        BASE + "/{contract_id}",
        FUNCTION,
        "getEventContract",
        "Get a contract",
        get_contract,
        response=EventContractObject,
        tag="Contracts",
    ),
    Route(
        "PUT",
        BASE + "/{contract_id}",
        FUNCTION,
        "updateEventContract",
        "Update a contract: omitted fields keep their value; every change is a new version",
        update_contract,
        body=EventContractUpdate,
        response=EventContractObject,
        tag="Contracts",
    ),
    Route(
        "DELETE",
        BASE + "/{contract_id}",
        FUNCTION,
        "deleteEventContract",
        "Delete a contract",
        delete_contract,
        status=204,
        tag="Contracts",
    ),
    Route(
        "GET",
        BASE + "/{contract_id}/violations",
        FUNCTION,
        "listContractViolations",
        "A contract's violations, newest first, paged, with a summary and the shadow report",
        list_violations,
        query=ViolationFilters,
        response=ViolationPage,
        tag="Contracts",
    ),
)
