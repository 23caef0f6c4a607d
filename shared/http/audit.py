"""The audit hook of the HTTP layer: every successful mutating management request is recorded
once, here, with the resource before (read through its own GET route, when it has one) and after
(the answer), instead of in every handler. docs/PRIVACY.md describes the records."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Response
from pydantic import ValidationError

from shared.domain.errors import StreamsError
from shared.http.request import ApiRequest
from shared.http.routing import Route
from shared.services.audit import Change

log = logging.getLogger("streams.audit")

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Mutating methods that change no configuration: sending events, trying a transformation.
NOT_CHANGES = frozenset({"sendEvent", "sendTestEvent", "sendTestWebhook", "testTransformation"})
# The first path segment after the workspace (or /v1/streams/) -> the resource type recorded.
RESOURCE_TYPES = {
    "event-keys": "event_source",
    "sources": "event_source",
    "destinations": "destination",
    "event-forwarding-rules": "forwarding_rule",
    "event-transformations": "transformation",
    "event-contracts": "contract",
    "quarantine": "quarantine",
    "dead-letters": "dead_letter",
    "regulations": "regulation",
    "privacy": "privacy_settings",
    "tokens": "api_token",
}
PREFIXES = ("/api/v1/workspaces/{workspace_id}/", "/v1/streams/")
_VERB = re.compile(r"[a-z]+")

Serialise = Callable[[Route, Any], Any]


@dataclass
class PendingChange:
    """A change under way: the request and its resource as it was before."""

    request: ApiRequest
    before: Any


def begin(
    request: ApiRequest, routes: tuple[Route, ...], serialise: Serialise
) -> PendingChange | None:
    """Start recording the request if it is a management change; None otherwise."""
    route = request.route
    if route.auth != "bearer" or route.method not in MUTATING or route.operation_id in NOT_CHANGES:
        return None
    if getattr(request.body, "dry_run", False) is True:
        return None  # a dry run changes nothing
    return PendingChange(request, _before(request, routes, serialise))


def finish(change: PendingChange, response: Response) -> None:
    """Record the change if it succeeded. Best effort: the change is made, and failing the
    answer now would make the client repeat it; a failure is logged as an error."""
    if response.status_code >= 300:
        return
    request = change.request
    try:
        after = response.get_json(silent=True) if response.is_json else None
        assert request.token is not None
        request.services.audit.record(
            Change(
                workspace_id=request.token.workspace_id,
                token_id=request.token.id,
                token_name=request.token.name,
                action=_action(request.route),
                operation_id=request.route.operation_id,
                method=request.route.method,
                path=request.raw.path,
                status=response.status_code,
                resource_type=resource_type(request.route),
                resource_id=_resource_id(request, after),
                before=change.before,
                after=after,
            )
        )
    except Exception:
        log.exception(
            "could not record the audit entry of %s %s", request.route.method, request.raw.path
        )


def resource_type(route: Route) -> str:
    """The kind of resource a route changes, from the first segment of its path."""
    path = route.path
    for prefix in PREFIXES:
        if path.startswith(prefix):
            path = path[len(prefix) :]
            break
    segment = path.strip("/").split("/", 1)[0]
    return RESOURCE_TYPES.get(segment, segment.replace("-", "_"))


def _action(route: Route) -> str:
    """The operation's verb: createDestination -> create, revokeEventSource -> revoke."""
    found = _VERB.match(route.operation_id)
    return found.group() if found else route.method.lower()


def _resource_id(request: ApiRequest, after: Any) -> str | None:
    named = [name for name in request.route.params if name != "workspace_id"]
    if named:
        return request.params[named[0]]
    if isinstance(after, dict) and isinstance(after.get("id"), str):
        return str(after["id"])
    return None


def _before(request: ApiRequest, routes: tuple[Route, ...], serialise: Serialise) -> Any:
    """The resource as its GET route answers it now (None without one, or when it is absent)."""
    if request.route.method == "POST":
        return None
    reader = next((r for r in routes if r.method == "GET" and r.path == request.route.path), None)
    if reader is None:
        return None
    read = ApiRequest(
        raw=request.raw,
        route=reader,
        params=request.params,
        services_of=request.services_of,
        token=request.token,
    )
    try:
        if reader.query is not None:
            read.query = reader.query.model_validate({})
        return serialise(reader, reader.handler(read))
    except (StreamsError, ValidationError):
        return None
