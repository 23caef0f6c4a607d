"""Audit log API: who changed what, when (served by the governance function)."""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, Field

from shared.api.contracts import iso
from shared.api.models import Input, Timestamp
from shared.http.request import ApiRequest
from shared.http.routing import Route
from shared.services.audit import AuditQuery

FUNCTION = "governance"
BASE = "/api/v1/workspaces/{workspace_id}/audit-log"


class AuditFilters(Input):
    resource_type: str | None = Field(
        None,
        description="event_source, destination, forwarding_rule, transformation, contract, "
        "quarantine, dead_letter, regulation, privacy_settings",
    )
    resource_id: str | None = None
    token_id: str | None = Field(None, description="changes made with this API token")
    from_: AwareDatetime | None = Field(None, alias="from")
    to: AwareDatetime | None = None
    limit: int = Field(100, ge=1, le=500)


class AuditActor(BaseModel):
    token_id: str
    token_name: str


class AuditEntry(BaseModel):
    """One management change. `before` is the resource as its GET answered just before (null
    for creations and resources without one), `after` the change's answer; secrets are masked."""

    id: str
    at: Timestamp
    actor: AuditActor
    action: str = Field(description="create, update, delete, revoke, replay, ...")
    operation_id: str
    method: str
    path: str
    status: int
    resource_type: str
    resource_id: str | None
    before: Any
    after: Any


class AuditLogPage(BaseModel):
    data: list[AuditEntry]


def list_audit_log(request: ApiRequest) -> dict[str, Any]:
    filters: AuditFilters = request.query
    query = AuditQuery(
        resource_type=filters.resource_type,
        resource_id=filters.resource_id,
        token_id=filters.token_id,
        since=iso(filters.from_),
        until=iso(filters.to),
        limit=filters.limit,
    )
    return {"data": request.services.audit.list(request.workspace_id, query)}


ROUTES = (
    Route(
        "GET",
        BASE,
        FUNCTION,
        "listAuditLog",
        "List management changes, newest first, with filters",
        list_audit_log,
        query=AuditFilters,
        response=AuditLogPage,
        tag="Audit Log",
    ),
)
