"""A benchmark's own workspace: new for every run, named so that a person recognises it, and left
with nothing that can still act however the run ends.

A bench never works in a workspace it did not create (not the one `make dev` bootstrapped, not a
test's): its catch-all forwarding rule would route the owner's events to a receiver that stops
with the bench, and each of them would be retried and dead-lettered from then on. When the run
ends, normally, on an exception or on SIGINT/SIGTERM, what is in its workspace is taken apart:
forwarding rules, destinations and sources deleted, with their Pub/Sub topics and subscriptions
(on emulators shared with another stack they would otherwise keep pushing to the bench's stopped
functions), and API tokens revoked. The empty workspace record stays: Streams has no call that
deletes a workspace.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from shared.bootstrap import Services

# Every bench workspace's name starts with this; a project holding any other workspace belongs
# to another stack (see foreign_workspaces).
WORKSPACE_PREFIX = "bench "

T = TypeVar("T")


def workspace_name(bench: str, moment: datetime | None = None) -> str:
    """`bench pipeline 2026-12-02T19:30Z`: which bench, and when it started (UTC)."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return f"{WORKSPACE_PREFIX}{bench} {moment:%Y-%m-%dT%H:%MZ}"


def foreign_workspaces(services: Services) -> list[str]:
    """The workspaces of the services' project that no bench created, as `'name' (id)`.

    Starting a stack (`LocalStack.start`) re-points the push subscriptions of every source and
    destination of its project to its own functions: in a project that another stack uses (the
    one `make dev` or a test run bootstrapped), that stack's events would go to the bench's
    functions, and nowhere once the bench stops.
    """
    return [
        f"{document.get('name')!r} ({document.get('id')})"
        for document in services.store.list_documents("workspaces")
        if not str(document.get("name", "")).startswith(WORKSPACE_PREFIX)
    ]


@dataclass(frozen=True)
class BenchWorkspace:
    """The bench's workspace, an admin token of it and one source."""

    workspace_id: str
    name: str
    admin_token: str
    source_id: str
    write_key: str


@dataclass
class Dismantled:
    """What `dismantle` removed, and what it could not (each with the error)."""

    rules_deleted: list[str] = field(default_factory=list)
    destinations_deleted: list[str] = field(default_factory=list)
    sources_deleted: list[str] = field(default_factory=list)
    tokens_revoked: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = (
            f"{len(self.rules_deleted)} forwarding rules and {len(self.destinations_deleted)} "
            f"destinations deleted (with their topics), {len(self.sources_deleted)} sources "
            f"deleted (with their topics), {len(self.tokens_revoked)} API tokens revoked"
        )
        if self.failures:
            text += "; NOT removed: " + "; ".join(self.failures)
        return text


@contextmanager
def own_workspace(services: Services, bench: str) -> Iterator[BenchWorkspace]:
    """A new workspace with an admin token and a source, dismantled when the block exits."""
    workspace = services.workspaces.create(workspace_name(bench))
    try:
        token, record = services.workspaces.create_token(workspace.id, f"{bench} admin")
        source = services.sources.create(workspace.id, bench, created_by=record.id)
        yield BenchWorkspace(workspace.id, workspace.name, token, source.id, source.key)
    finally:
        dismantled = dismantle(services, workspace.id)
        print(
            f"Workspace {workspace.name!r} ({workspace.id}): {dismantled.summary()}",
            file=sys.stderr,
            flush=True,
        )


def dismantle(services: Services, workspace_id: str) -> Dismantled:
    """Remove or revoke everything in a workspace that could still route, deliver or accept
    events. Each step is tried whatever the others did; failures are reported, not raised, so
    that the caller's other cleanup (stopping the stack) still runs. Deleting a destination or
    a source deletes its topic and subscription too (the product's own deletes)."""
    done = Dismantled()

    def listed(what: str, lister: Callable[[str], list[T]]) -> list[T]:
        try:
            return lister(workspace_id)
        except Exception as exc:
            done.failures.append(f"listing {what}: {type(exc).__name__}: {exc}")
            return []

    # Rules first: a destination that a rule delivers to cannot be deleted.
    rules = services.forwarding_rules
    for rule in listed("forwarding rules", rules.list):
        what = f"forwarding rule {rule.id}"
        _attempt(done, what, done.rules_deleted, rules.delete, workspace_id, rule.id)
    destinations = services.destinations
    for destination in listed("destinations", destinations.list):
        what = f"destination {destination.id}"
        _attempt(
            done, what, done.destinations_deleted, destinations.delete, workspace_id, destination.id
        )
    sources = services.sources
    for source in listed("sources", sources.list):
        what = f"source {source.id}"
        _attempt(done, what, done.sources_deleted, sources.delete, workspace_id, source.id)
    workspaces = services.workspaces
    for token in listed("API tokens", workspaces.list_tokens):
        what = f"API token {token.id}"
        _attempt(done, what, done.tokens_revoked, workspaces.revoke_token, workspace_id, token.id)
    return done


def _attempt(
    done: Dismantled, what: str, into: list[str], action: Callable[..., object], *args: Any
) -> None:
    """Run one removal; note `what` in `into`, or its error in `done.failures`."""
    try:
        action(*args)
    except Exception as exc:
        done.failures.append(f"{what}: {type(exc).__name__}: {exc}")
    else:
        into.append(what)
