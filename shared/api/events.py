"""An event's fate: its trace, and the dead letters of deliveries and events (with replay)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.api.models import Input, Timestamp
from shared.domain import ids
from shared.http.request import ApiRequest
from shared.http.routing import Route
from shared.services.dead_letters import REPLAY_LIMIT, DeadLetterQuery, ReplayReport

FUNCTION = "events"
WORKSPACE = "/api/v1/workspaces/{workspace_id}"
DeadLetterStatus = Literal["dead_lettered", "replayed"]


class TraceStage(BaseModel):
    """One step of an event's path, with its outcome and why."""

    model_config = ConfigDict(extra="allow")

    stage: str = Field(
        description="received, duplicate, suppressed, blocked, violated, stored, routed, "
        "skipped, consent_denied (held back from a destination for consent), transformed, "
        "delivered, retried, failed, dead_lettered, dropped, replayed, ignored (a webhook "
        "request its source's transformation returned null for, or a bot's event its source's "
        "bot policy drops; transformed adds transformation_id and transformation_version)"
    )
    status: str
    at: Timestamp | None
    reason: str | None
    rule_id: str | None = None
    destination_id: str | None = None
    delivery_id: str | None = None


class EventTrace(BaseModel):
    """Every stage an event passed, oldest first."""

    message_id: str
    workspace_id: str
    source_id: str | None
    event_type: str | None
    state: Literal["processing", "processed"]
    stages: list[TraceStage]


class DeadLetter(BaseModel):
    """A delivery that could not be made (`kind: delivery`: why, where to, how often tried), or
    an event that never reached routing (`kind: event`: set aside by process, or its message
    given up on by Pub/Sub; replay sends it to its source again), with its replay state."""

    id: str
    kind: Literal["delivery", "event"] = "delivery"
    message_id: str
    source_id: str | None = Field(None, description="kind event: the source it came from")
    rule_id: str | None
    destination_id: str | None
    destination_type: str | None
    reason_code: str
    reason: str
    attempts: int | None
    last_http_status: int | None
    status: DeadLetterStatus
    times_dead_lettered: int
    replay_count: int
    created_at: Timestamp
    updated_at: Timestamp
    replayed_at: Timestamp | None


class DeadLetterFilters(Input):
    destination_id: str | None = None
    reason: str | None = Field(
        None,
        description="a reason code, e.g. http_error, retries_exhausted, unprocessable_event, "
        "processing_failed",
    )
    status: DeadLetterStatus | None = None
    from_: AwareDatetime | None = Field(None, alias="from")
    to: AwareDatetime | None = None
    limit: int = Field(100, ge=1, le=1000)


class ReplayRequest(Input):
    """Which dead letters to replay: by id, or by filters; `dry_run` only reports."""

    ids: list[str] | None = Field(None, max_length=REPLAY_LIMIT)
    destination_id: str | None = None
    reason: str | None = None
    from_: AwareDatetime | None = Field(None, alias="from")
    to: AwareDatetime | None = None
    limit: int = Field(REPLAY_LIMIT, ge=1, le=REPLAY_LIMIT)
    dry_run: bool = False


class ReplaySkip(BaseModel):
    id: str
    reason: str


class ReplayResult(BaseModel):
    dry_run: bool
    matched: int
    replayed: list[str] = Field(description="ids of the records replayed (or, dry, that would be)")
    skipped: list[ReplaySkip]
    message_ids: dict[str, str] = Field(
        description="the messageId of each record of replayed and skipped, by record id"
    )


def get_trace(request: ApiRequest) -> dict[str, Any]:
    return request.services.traces.trace(request.workspace_id, request.params["message_id"])


def list_dead_letters(request: ApiRequest) -> list[dict[str, Any]]:
    filters: DeadLetterFilters = request.query
    query = DeadLetterQuery(
        destination_id=filters.destination_id,
        reason_code=filters.reason,
        status=filters.status,
        since=_iso(filters.from_),
        until=_iso(filters.to),
        limit=filters.limit,
    )
    return request.services.dead_letters.list(request.workspace_id, query)


def replay_dead_letters(request: ApiRequest) -> ReplayReport:
    body: ReplayRequest = request.body
    query = DeadLetterQuery(
        ids=body.ids,
        destination_id=body.destination_id,
        reason_code=body.reason,
        status="dead_lettered",
        since=_iso(body.from_),
        until=_iso(body.to),
        limit=body.limit,
    )
    return request.services.dead_letters.replay(request.workspace_id, query, body.dry_run)


def _iso(moment: datetime | None) -> str | None:
    return ids.isoformat(moment) if moment else None


ROUTES = (
    Route(
        "GET",
        WORKSPACE + "/events/{message_id}/trace",
        FUNCTION,
        "getEventTrace",
        "Every stage an event passed, with status, reason and time",
        get_trace,
        response=EventTrace,
        tag="Events",
    ),
    Route(
        "GET",
        WORKSPACE + "/dead-letters",
        FUNCTION,
        "listDeadLetters",
        "Dead-lettered deliveries, newest first, filtered",
        list_dead_letters,
        query=DeadLetterFilters,
        response=list[DeadLetter],
        tag="Dead Letters",
    ),
    Route(
        "POST",
        WORKSPACE + "/dead-letters/replay",
        FUNCTION,
        "replayDeadLetters",
        "Replay dead letters (all or filtered; dry_run reports without sending)",
        replay_dead_letters,
        body=ReplayRequest,
        response=ReplayResult,
        tag="Dead Letters",
    ),
)
