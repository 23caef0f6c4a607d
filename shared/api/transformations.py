"""Transformations API (seed: /api/v1/workspaces/{id}/event-transformations)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    StringConstraints,
    WithJsonSchema,
)

from shared.api.crud import Collection, Summaries
from shared.api.models import Input, Name, Timestamp, not_null
from shared.domain.limits import MAX_EVENT_DEPTH
from shared.domain.nesting import nests_deeper_than
from shared.http.request import ApiRequest
from shared.http.routing import Route
from shared.services.transformations import MAX_RECENT
from shared.transform.limits import Limits

FUNCTION = "event_transformations"
BASE = "/api/v1/workspaces/{workspace_id}/event-transformations"
TAG = "Transformations"

SourceCode = Annotated[
    str,
    StringConstraints(min_length=1, max_length=Limits().source_chars),
    Field(description="JavaScript defining function transform(event, metadata)"),
]
Description = Annotated[str, StringConstraints(max_length=2000)]
SavedStatus = Annotated[
    Literal["draft", "active"],
    Field(
        description="draft: saved, not run by rules; active: run by rules (error is set by Streams)"
    ),
]


def _shallow_event(value: dict[str, Any]) -> dict[str, Any]:
    # The same bound as ingest: an event deeper than this could never have been accepted.
    if nests_deeper_than(value, MAX_EVENT_DEPTH):
        raise ValueError(f"an event nests at most {MAX_EVENT_DEPTH} levels")
    return value


AnyJson = Annotated[Any, WithJsonSchema({"description": "Any JSON value"})]
Sample = Annotated[
    dict[str, Any],
    AfterValidator(_shallow_event),
    WithJsonSchema({"type": "object", "additionalProperties": True, "description": "An event"}),
]


class TransformationCreate(Input):
    """The seed's Create Transformation body; it is compiled before it is saved."""

    name: Name
    description: Description = ""
    source_code: SourceCode
    test_input: Sample | None = None
    test_output: AnyJson = None
    status: SavedStatus = "active"


class TransformationUpdate(Input):
    """A partial update: omitted fields keep their value; the code is compiled again."""

    name: Name | None = None
    description: Description | None = None
    source_code: SourceCode | None = None
    test_input: Sample | None = None
    test_output: AnyJson = None
    status: SavedStatus | None = None

    _not_null = not_null("name", "description", "source_code", "status")


class TransformationTest(Input):
    """What to run: the saved test_input, `input`, or the workspace's `recent` events."""

    input: Sample | None = Field(None, description="Run on this event instead of test_input")
    source_code: SourceCode | None = Field(None, description="Run this code instead (not saved)")
    expected: AnyJson = Field(None, description="Compare with this instead of test_output")
    recent: int | None = Field(
        None, ge=1, le=MAX_RECENT, description="Run on the workspace's N most recent events"
    )
    source_id: str | None = Field(None, description="recent: only events of this source")
    event_name: str | None = Field(
        None,
        min_length=1,
        description="recent: only events of this name (a track's event, a page's or screen's name)",
    )


class TransformationObject(BaseModel):
    """A transformation, as every endpoint of the group answers it."""

    id: str
    workspace_id: str
    name: str
    description: str
    source_code: str
    test_input: dict[str, Any] | None
    test_output: AnyJson
    status: Literal["draft", "active", "error"]
    version: int
    compile_error: str | None
    created_at: Timestamp
    updated_at: Timestamp


class Difference(BaseModel):
    """One path where the output differs from the expected output."""

    path: str
    expected: AnyJson
    actual: AnyJson
    change: Literal["added", "removed", "changed"]


class Change(BaseModel):
    """One path the transformation changed (fan-out outputs are prefixed `[i]`)."""

    path: str
    before: AnyJson
    after: AnyJson
    change: Literal["added", "removed", "changed"]


class RecentEventRun(BaseModel):
    """One stored event through the code: before, after, and what changed."""

    message_id: str | None
    before: dict[str, Any]
    after: AnyJson
    dropped: bool
    changes: list[Change]
    logs: list[str]
    duration_ms: float
    error: str | None
    error_line: int | None


class TransformationTestResult(BaseModel):
    """A test run. `sample` mode compares with the expected output; `recent` lists each event."""

    mode: Literal["sample", "recent"]
    passed: bool | None = Field(
        description="sample: output equals expected (null when nothing is expected); "
        "recent: no event failed"
    )
    output: AnyJson = None
    expected: AnyJson = None
    dropped: bool
    diff: list[Difference] = []
    logs: list[str] = []
    duration_ms: float
    error: str | None = None
    error_line: int | None = None
    warnings: list[str] = []
    events: list[RecentEventRun] | None = None
    cpu_ms: float | None = Field(
        None, description="recent: CPU time used in all (bounded per request, see error)"
    )
    skipped: int = Field(
        0, description="recent: events not run because the request's CPU time was used up"
    )


def run_test(request: ApiRequest) -> dict[str, Any]:
    body: TransformationTest = request.body
    return request.services.transformations.test(
        request.workspace_id,
        request.params["transform_id"],
        source_code=body.source_code,
        input=body.input,
        expected=body.expected,
        expected_given="expected" in body.model_fields_set,
        recent=body.recent,
        recent_source_id=body.source_id,
        recent_event_name=body.event_name,
    )


TRANSFORMATIONS = Collection(
    service=lambda services: services.transformations,
    function=FUNCTION,
    path=BASE,
    id_param="transform_id",
    operation="Transformation",
    tag=TAG,
    create_body=TransformationCreate,
    update_body=TransformationUpdate,
    response=TransformationObject,
    summaries=Summaries(
        list="List transformations, oldest first",
        create="Create a transformation (400 with line and column when the code does not compile)",
        get="Get a transformation",
        update="Update a transformation: omitted fields keep their value; "
        "the code is compiled again",
        delete="Delete a transformation (409 while forwarding rules apply it)",
    ),
)

ROUTES = (
    *TRANSFORMATIONS.routes(),
    Route(
        "POST",
        BASE + "/{transform_id}/test",
        FUNCTION,
        "testTransformation",
        "Test a transformation on test_input (or a body's input and code), or on recent events",
        run_test,
        body=TransformationTest,
        body_required=False,  # no body: the saved test_input against the saved test_output
        response=TransformationTestResult,
        tag=TAG,
    ),
)
