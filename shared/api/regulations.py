"""Regulations API: suppress, unsuppress or delete one user's data (served by governance)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from shared.api.models import Input, Timestamp
from shared.domain.regulations import Regulation, RegulationStatus, RegulationType
from shared.http.request import ApiRequest
from shared.http.routing import Route
from shared.services.regulations import MAX_ID_CHARS, RegulationQuery

FUNCTION = "governance"
BASE = "/api/v1/workspaces/{workspace_id}/regulations"


class RegulationCreate(Input):
    """One of `user_id` and `anonymous_id`: the user the regulation is about."""

    type: RegulationType = Field(
        description="suppress: drop the user's future events in process; unsuppress: stop "
        "that; delete: remove the user's stored events and ask destinations to delete them"
    )
    user_id: str | None = Field(None, min_length=1, max_length=MAX_ID_CHARS)
    anonymous_id: str | None = Field(None, min_length=1, max_length=MAX_ID_CHARS)


class RegulationFilters(Input):
    type: RegulationType | None = None
    status: RegulationStatus | None = None
    limit: int = Field(100, ge=1, le=500)


class RegulationObject(BaseModel):
    """A regulation and how it went. It runs inside the creating request, so the answer to the
    create already holds its final status and report."""

    id: str
    type: RegulationType
    user_id: str | None
    anonymous_id: str | None
    status: RegulationStatus
    report: dict[str, Any] | None = Field(
        description="suppress/unsuppress: {suppression}; delete: {stores: {bigquery, "
        "quarantine, dead_letters, live_buffer: {status, deleted}}, destinations: "
        "{requested: [...], manual: [...]}}"
    )
    error: str | None
    created_by: str = Field(description="the id of the API token that created it")
    created_by_name: str | None
    created_at: Timestamp
    updated_at: Timestamp
    completed_at: Timestamp | None


class RegulationList(BaseModel):
    data: list[RegulationObject]


def create_regulation(request: ApiRequest) -> Regulation:
    body: RegulationCreate = request.body
    assert request.token is not None
    return request.services.regulations.create(
        request.workspace_id,
        body.type,
        request.token,
        user_id=body.user_id,
        anonymous_id=body.anonymous_id,
    )


def list_regulations(request: ApiRequest) -> dict[str, list[Regulation]]:
    filters: RegulationFilters = request.query
    query = RegulationQuery(type=filters.type, status=filters.status, limit=filters.limit)
    return {"data": request.services.regulations.list(request.workspace_id, query)}


def get_regulation(request: ApiRequest) -> Regulation:
    return request.services.regulations.get(request.workspace_id, request.params["regulation_id"])


ROUTES = (
    Route(
        "GET",
        BASE,
        FUNCTION,
        "listRegulations",
        "List regulations, newest first",
        list_regulations,
        query=RegulationFilters,
        response=RegulationList,
        tag="Regulations",
    ),
    Route(
        "POST",
        BASE,
        FUNCTION,
        "createRegulation",
        "Suppress, unsuppress or delete a user (by user_id or anonymous_id); runs at once and "
        "answers with its status and report",
        create_regulation,
        body=RegulationCreate,
        response=RegulationObject,
        status=201,
        tag="Regulations",
    ),
    Route(
        "GET",
        BASE + "/{regulation_id}",
        FUNCTION,
        "getRegulation",
        "Get a regulation with its status and completion report",
        get_regulation,
        response=RegulationObject,
        tag="Regulations",
    ),
)
