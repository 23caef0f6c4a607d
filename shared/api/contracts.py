"""Contracts API (seed: /api/v1/workspaces/{id}/event-contracts) and their violations."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints

from shared.api.crud import Collection, Summaries
from shared.api.forwarding_rules import EventName
from shared.api.models import Input, Name, Timestamp, not_null
from shared.domain import ids
from shared.domain.contracts import ContractEventType, ContractStatus, EnforcementMode
from shared.domain.schema_forms import SchemaForm
from shared.http.request import ApiRequest
from shared.http.routing import Route
from shared.services.contracts import ViolationQuery, check_schema
from shared.services.schema_proposals import SchemaProposals

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

    _not_null = not_null(
        "name", "event_type", "schema_definition", "enforcement_mode", "undeclared_fields", "status"
    )


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
    created_at: Timestamp
    updated_at: Timestamp


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
    created_at: Timestamp


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


def list_violations(request: ApiRequest) -> dict[str, Any]:
    filters: ViolationFilters = request.query
    query = ViolationQuery(
        since=iso(filters.from_), until=iso(filters.to), limit=filters.limit, cursor=filters.cursor
    )
    return request.services.contracts.violations(
        request.workspace_id, request.params["contract_id"], query
    )


class SchemaCheck(Input):
    """A schema to check as creating or updating a contract would, without saving anything."""

    schema_definition: SchemaDefinition


class SchemaCheckResult(BaseModel):
    valid: Literal[True]
    form: SchemaForm = Field(description="the form the definition was read as")
    json_schema: dict[str, Any] = Field(description="the definition as JSON Schema")


def validate_schema(request: ApiRequest) -> dict[str, Any]:
    body: SchemaCheck = request.body
    json_schema, form = check_schema(body.schema_definition)
    return {"valid": True, "form": form, "json_schema": json_schema}


class ProposalFilters(Input):
    event_type: ContractEventType
    event_name: ContractEventName = None
    limit: int = Field(100, ge=1, le=1000, description="the newest this many events are read")
    days: int = Field(7, ge=1, le=30, description="received within this many days")


class ProposedField(BaseModel):
    field: str = Field(description="dotted path inside the payload; items[] for array elements")
    types: list[str]
    seen: int = Field(description="how many sampled values it had (array elements count each)")
    required: bool = Field(description="present and not null in every sampled object")


class SchemaProposal(BaseModel):
    """A compact-form schema describing the sampled events: a starting point to edit."""

    event_type: str
    event_name: str
    target: Literal["properties", "traits"]
    sampled: int
    since: Timestamp
    until: Timestamp
    newest_received_at: Timestamp | None
    schema_definition: dict[str, Any]
    fields: list[ProposedField]


def propose_schema(request: ApiRequest) -> dict[str, Any]:
    filters: ProposalFilters = request.query
    proposals = SchemaProposals(request.services.event_store)
    return proposals.propose(
        request.workspace_id, filters.event_type, filters.event_name, filters.limit, filters.days
    )


class CountFilters(Input):
    hours: int = Field(24, ge=1, le=24 * 30, description="the window, ending now")


class ViolationCount(BaseModel):
    events: int = Field(description="events with violations")
    violations: int
    blocked_events: int


class ViolationCounts(BaseModel):
    """Counts per contract id (contracts without violations are absent)."""

    since: Timestamp
    until: Timestamp
    complete_since: Timestamp = Field(
        description="the counts are complete from this time on (since, unless truncated)"
    )
    truncated: bool = Field(description="more records than one scan reads (20,000)")
    scanned: int
    counts: dict[str, ViolationCount]


def violation_counts(request: ApiRequest) -> dict[str, Any]:
    filters: CountFilters = request.query
    return request.services.contracts.violation_counts(request.workspace_id, filters.hours)


def iso(moment: datetime | None) -> str | None:
    return ids.isoformat(moment) if moment else None


CONTRACTS = Collection(
    service=lambda services: services.contracts,
    function=FUNCTION,
    path=BASE,
    id_param="contract_id",
    operation="EventContract",
    tag="Contracts",
    create_body=EventContractCreate,
    update_body=EventContractUpdate,
    response=EventContractObject,
    summaries=Summaries(
        list="List contracts, oldest first",
        create="Create a contract (its schema is checked: 400 names the problem)",
        get="Get a contract",
        update="Update a contract: omitted fields keep their value; every change is a new version",
        delete="Delete a contract",
    ),
)

# Before the collection's routes: `validate-schema` and the others are not contract ids.
ROUTES = (
    Route(
        "POST",
        BASE + "/validate-schema",
        FUNCTION,
        "validateEventContractSchema",
        "Check a schema as create and update would (400 names the problem), saving nothing",
        validate_schema,
        body=SchemaCheck,
        response=SchemaCheckResult,
        tag="Contracts",
    ),
    Route(
        "GET",
        BASE + "/proposal",
        FUNCTION,
        "proposeEventContractSchema",
        "A compact-form schema inferred from the newest stored events of a type and name",
        propose_schema,
        query=ProposalFilters,
        response=SchemaProposal,
        tag="Contracts",
    ),
    Route(
        "GET",
        BASE + "/violation-counts",
        FUNCTION,
        "countEventContractViolations",
        "Every contract's violation counts over the last hours, in one answer",
        violation_counts,
        query=CountFilters,
        response=ViolationCounts,
        tag="Contracts",
    ),
    *CONTRACTS.routes(),
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
