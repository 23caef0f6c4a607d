"""Transformations: CRUD with the code compiled on every save, and the test runs."""

from __future__ import annotations

import builtins
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.domain import ids
from shared.domain.errors import Conflict, InvalidRequest, NotFound
from shared.domain.event import CanonicalEvent
from shared.domain.routing import transformation_path
from shared.domain.sources import sources_collection
from shared.domain.transformations import Transformation, transformations_collection
from shared.ports import ConfigStore, EventStore, Write
from shared.services.forwarding_rules import ForwardingRules
from shared.transform import CompileError, HeapBudget, Limits, Program, RunResult, check, diff
from shared.transform.events import event_problem, output_events, valid_events

# What an update may change; everything else (id, workspace, version, timestamps) is the service's.
UPDATABLE = frozenset({"name", "description", "source_code", "test_input", "test_output", "status"})
# Most stored events one test run goes through (each is a sandbox call).
MAX_RECENT = 100
# CPU time one test request may use across all its events (at least one call's limit): without
# it, `recent` events that each loop up to the limit hold a thread for seconds.
TEST_CPU_MS = 1_000


class Transformations:
    """The transformation use cases; every call is scoped to one workspace."""

    def __init__(
        self,
        store: ConfigStore,
        rules: ForwardingRules,
        events: Callable[[], EventStore],
        limits: Limits,
        clock: Callable[[], datetime] = ids.utcnow,
    ):
        self._store = store
        self._rules = rules
        # A callable: the event store (BigQuery) is built only when a test asks for recent events.
        self._events = events
        self._limits = limits
        self._budget = HeapBudget(limits)
        self._clock = clock

    def list(self, workspace_id: str) -> list[Transformation]:
        documents = self._store.list_documents(transformations_collection(workspace_id))
        return sorted(
            (Transformation.model_validate(d) for d in documents),
            key=lambda t: (t.created_at, t.id),
        )

    def get(self, workspace_id: str, transform_id: str) -> Transformation:
        path = transformation_path(workspace_id, transform_id)
        document = self._store.get(path) if ids.is_document_id(transform_id) else None
        if document is None:
            raise NotFound(f"transformation {transform_id} not found", field="transformId")
        return Transformation.model_validate(document)

    def create(
        self,
        workspace_id: str,
        *,
        name: str,
        source_code: str,
        description: str = "",
        test_input: dict[str, Any] | None = None,
        test_output: Any = None,
        status: str = "active",
    ) -> Transformation:
        """Save new code; code that does not compile is refused (400 with line and column)."""
        self._compile(source_code)
        now = ids.isoformat(self._clock())
        transformation = Transformation(
            id=ids.new_id(),
            workspace_id=workspace_id,
            name=name,
            description=description,
            source_code=source_code,
            test_input=test_input,
            test_output=test_output,
            status=status,  # type: ignore[arg-type]
            version=1,
            created_at=now,
            updated_at=now,
        )
        path = transformation_path(workspace_id, transformation.id)
        self._store.commit([Write("create", path, transformation.model_dump())])
        return transformation

    def update(
        self, workspace_id: str, transform_id: str, changes: dict[str, Any]
    ) -> Transformation:
        """Apply a partial update. The resulting code is compiled again (400 if it fails, and the
        stored version stays); a transformation in error becomes active unless `status` says."""
        unknown = set(changes) - UPDATABLE
        if unknown:
            raise InvalidRequest(f"{min(unknown)} cannot be updated", field=min(unknown))
        current = self.get(workspace_id, transform_id)
        source_code = changes.get("source_code", current.source_code)
        self._compile(source_code)
        status = changes.get("status") or (
            "active" if current.status == "error" else current.status
        )
        updated = current.model_copy(
            update={
                **changes,
                "status": status,
                "compile_error": None,
                "version": current.version + 1,
                "updated_at": ids.isoformat(self._clock()),
            }
        )
        path = transformation_path(workspace_id, transform_id)
        self._store.commit([Write("set", path, updated.model_dump())])
        return updated

    def delete(self, workspace_id: str, transform_id: str) -> None:
        """Delete a transformation no forwarding rule and no webhook source applies; else
        Conflict naming them (a webhook source's requests would all be dead-lettered)."""
        self.get(workspace_id, transform_id)
        users = [
            ("forwarding rule", rule.name, rule.id)
            for rule in self._rules.list(workspace_id)
            if rule.transformation_id == transform_id
        ]
        users += [
            ("webhook source", str(source.get("name")), str(source.get("id")))
            for source in self._store.list_documents(sources_collection(workspace_id))
            if source.get("status") == "active"
            and (source.get("webhook") or {}).get("transformation_id") == transform_id
        ]
        if users:
            names = ", ".join(f"{kind} {name!r} ({item_id})" for kind, name, item_id in users)
            raise Conflict(
                f"transformation {transform_id} is used by {names}: remove it from them first",
                field="transformId",
                details=", ".join(item_id for _, _, item_id in users),
            )
        self._store.commit([Write("delete", transformation_path(workspace_id, transform_id))])

    def test(
        self,
        workspace_id: str,
        transform_id: str,
        *,
        source_code: str | None = None,
        input: dict[str, Any] | None = None,
        expected: Any = None,
        expected_given: bool = False,
        recent: int | None = None,
        recent_source_id: str | None = None,
        recent_event_name: str | None = None,
    ) -> dict[str, Any]:
        """Run the saved code (or `source_code`) on a sample, or on the N most recent events
        (optionally only of one source, of one event name)."""
        transformation = self.get(workspace_id, transform_id)
        program = self._program(source_code or transformation.source_code)
        if recent is None:
            for value, field in (
                (recent_source_id, "source_id"),
                (recent_event_name, "event_name"),
            ):
                if value is not None:
                    raise InvalidRequest(
                        f"{field} narrows the recent events: send it with recent", field=field
                    )
        else:
            if input is not None or expected_given:
                raise InvalidRequest(
                    "recent runs stored events: send it without input or expected", field="recent"
                )
            return self._test_recent(
                program, transformation, recent, recent_source_id, recent_event_name
            )
        sample = input if input is not None else transformation.test_input
        if sample is None:
            raise InvalidRequest(
                "no input: the transformation has no test_input; send `input` or `recent`",
                field="input",
            )
        wanted = expected if expected_given else transformation.test_output
        result = program.run(sample, _metadata(workspace_id, sample.get("sourceId")))
        return _sample_result(result, sample, wanted, expected_given or wanted is not None)

    def _test_recent(
        self,
        program: Program,
        transformation: Transformation,
        count: int,
        source_id: str | None,
        event_name: str | None,
    ) -> dict[str, Any]:
        if not 1 <= count <= MAX_RECENT:
            raise InvalidRequest(f"recent must be between 1 and {MAX_RECENT}", field="recent")
        events = self._events().recent(
            transformation.workspace_id, count, source_id=source_id, event_name=event_name
        )
        budget_ms = max(TEST_CPU_MS, self._limits.cpu_ms)
        runs: builtins.list[dict[str, Any]] = []
        used_ms = 0.0
        for event in events:
            left_ms = budget_ms - used_ms
            if left_ms <= 0:
                break
            run, cpu_ms = _recent_run(program, transformation.workspace_id, event, left_ms)
            runs.append(run)
            used_ms += cpu_ms
            if program.broken:
                # A limit stopped the call: the next event gets a fresh context, as in deliver.
                program = Program(program.source_code, self._limits, self._budget)
        result: dict[str, Any] = {
            "mode": "recent",
            "passed": len(runs) == len(events) and all(run["error"] is None for run in runs),
            "dropped": False,
            "duration_ms": round(sum(run["duration_ms"] for run in runs), 3),
            "cpu_ms": round(used_ms, 3),
            "events": runs,
        }
        if used_ms >= budget_ms:
            result["error"] = (
                f"the test used its {budget_ms} ms of CPU time: "
                f"{len(events) - len(runs)} of {len(events)} events were not run"
            )
            result["skipped"] = len(events) - len(runs)
        return result

    def _compile(self, source_code: str) -> None:
        try:
            check(source_code, self._limits, self._budget)
        except CompileError as exc:
            raise InvalidRequest(f"source_code: {exc.message}", field="source_code") from None

    def _program(self, source_code: str) -> Program:
        try:
            return Program(source_code, self._limits, self._budget)
        except CompileError as exc:
            # The full check finds a syntax error's column, which the program build does not.
            self._compile(source_code)
            raise InvalidRequest(f"source_code: {exc.message}", field="source_code") from None


def _metadata(workspace_id: str, source_id: Any) -> dict[str, Any]:
    """What `transform` gets as metadata in a test (`source_id` is the event's `sourceId`, as
    the sample sent it): no rule or destination is involved."""
    return {
        "workspace_id": workspace_id,
        "source_id": source_id,
        "destination_id": None,
        "destination_type": None,
        "rule_id": None,
    }


def _sample_result(
    result: RunResult, sample: dict[str, Any], expected: Any, compare: bool
) -> dict[str, Any]:
    error, line = result.error, result.line
    warnings: builtins.list[str] = []
    output = result.output
    if error is None:
        try:
            events = output_events(output)
        except ValueError as exc:
            error, events = str(exc), []
        # A sample need not be a whole event; a real one must stay deliverable.
        if event_problem(sample) is None:
            warnings = [
                f"output event {index} would be dead-lettered: {problem}"
                for index, event in enumerate(events)
                if (problem := event_problem(event)) is not None
            ]
    actual = [] if output is None and isinstance(expected, list) else output
    differences = diff(expected, actual) if compare and error is None else []
    return {
        "mode": "sample",
        "passed": (error is None and not differences) if compare else None,
        "output": output,
        "expected": expected,
        "dropped": error is None and output in (None, []),
        "diff": differences,
        "logs": result.logs,
        "duration_ms": result.duration_ms,
        "error": error,
        "error_line": line,
        "warnings": warnings,
    }


def _recent_run(
    program: Program, workspace_id: str, event: CanonicalEvent, cpu_ms: float
) -> tuple[dict[str, Any], float]:
    """One event's entry in a `recent` test, and the CPU time it used."""
    result = program.run(event, _metadata(workspace_id, event.get("sourceId")), cpu_ms)
    error, events = result.error, []
    if error is None:
        try:
            events = valid_events(result.output)
        except ValueError as exc:
            error = str(exc)
    changes: builtins.list[dict[str, Any]] = []
    if error is None and isinstance(result.output, dict):
        changes = diff(event, result.output)
    elif error is None:
        for index, item in enumerate(events):
            changes.extend(diff(event, item, f"[{index}]"))
    return {
        "message_id": event.get("messageId"),
        "before": event,
        "after": result.output if error is None else None,
        "dropped": error is None and not events,
        "changes": [
            {
                "path": d["path"],
                "before": d["expected"],
                "after": d["actual"],
                "change": d["change"],
            }
            for d in changes
        ],
        "logs": result.logs,
        "duration_ms": result.duration_ms,
        "error": error,
        "error_line": result.line,
    }, result.cpu_ms
