"""Quarantine API: events a contract blocked, listed and replayed (served by event_contracts)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, Field

from shared.api.contracts import FUNCTION, iso
from shared.api.events import ReplayResult
from shared.api.models import Input, Timestamp
from shared.http.request import ApiRequest
from shared.http.routing import Route
from shared.services.dead_letters import ReplayReport
from shared.services.quarantine import REPLAY_LIMIT, QuarantineQuery

BASE = "/api/v1/workspaces/{workspace_id}/quarantine"
QuarantineStatus = Literal["quarantined", "replayed"]


class QuarantineFilters(Input):
    contract_id: str | None = Field(None, description="events blocked by this contract")
    status: QuarantineStatus | None = None
    from_: AwareDatetime | None = Field(None, alias="from")
    to: AwareDatetime | None = None
    limit: int = Field(100, ge=1, le=500)


class QuarantineReason(BaseModel):
    """A violation that blocked the event."""

    contract_id: str
    contract_version: int | None
    type: str
    field: str
    message: str | None
    expected: str | None
    actual: str | None


class QuarantinedEvent(BaseModel):
    """A blocked event, whole, with why it was blocked and its replay state."""

    id: str
    message_id: str
    source_id: str | None
    event_type: str | None
    event_name: str | None
    received_at: Timestamp | None
    contract_ids: list[str]
    reasons: list[QuarantineReason]
    status: QuarantineStatus
    times_quarantined: int
    replay_count: int
    created_at: Timestamp
    quarantined_at: Timestamp
    replayed_at: Timestamp | None
    event: dict[str, Any]


class QuarantineReplayRequest(Input):
    """Which quarantined events to replay: by id, or by filters; `dry_run` only reports which
    would pass the current contracts."""

    ids: list[str] | None = Field(None, max_length=REPLAY_LIMIT)
    contract_id: str | None = None
    from_: AwareDatetime | None = Field(None, alias="from")
    to: AwareDatetime | None = None
    limit: int = Field(REPLAY_LIMIT, ge=1, le=REPLAY_LIMIT)
    dry_run: bool = False


def list_quarantine(request: ApiRequest) -> list[dict[str, Any]]:
    filters: QuarantineFilters = request.query
    query = QuarantineQuery(
        contract_id=filters.contract_id,
        status=filters.status,
        since=iso(filters.from_),
        until=iso(filters.to),
        limit=filters.limit,
    )
    return request.services.quarantine.list(request.workspace_id, query)


def replay_quarantine(request: ApiRequest) -> ReplayReport:
    body: QuarantineReplayRequest = request.body
    query = QuarantineQuery(
        ids=body.ids,
        contract_id=body.contract_id,
        since=iso(body.from_),
        until=iso(body.to),
        limit=body.limit,
    )
    return request.services.quarantine.replay(request.workspace_id, query, body.dry_run)


ROUTES = (
    Route(
        "GET",
        BASE,
        FUNCTION,
        "listQuarantine",
        "Events blocked by a contract, most recently quarantined first, filtered",
        list_quarantine,
        query=QuarantineFilters,
        response=list[QuarantinedEvent],
        tag="Quarantine",
    ),
    Route(
        "POST",
        BASE + "/replay",
        FUNCTION,
        "replayQuarantine",
        "Replay quarantined events that pass the current contracts (dry_run only reports)",
        replay_quarantine,
        body=QuarantineReplayRequest,
        response=ReplayResult,
        tag="Quarantine",
    ),
)
