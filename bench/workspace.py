"""A benchmark's own workspace: new for every run, named so that a person recognises it, and left
with nothing that can still act however the run ends.

A bench never works in a workspace it did not create (not the one `make dev` bootstrapped, not a
test's): its catch-all forwarding rule would route the owner's events to a receiver that stops
with the bench, and each of them would be retried and dead-lettered from then on. When the run
ends, normally, on an exception or on SIGINT/SIGTERM, what is in its workspace is taken apart:
forwarding rules and destinations deleted, sources and API tokens revoked, and the Pub/Sub
subscriptions and topics of those sources and destinations deleted (on emulators shared with
another stack they would otherwise keep pushing to the bench's stopped functions). The empty
workspace record stays: Streams has no call that deletes a workspace.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
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
    sources_revoked: list[str] = field(default_factory=list)
    tokens_revoked: list[str] = field(default_factory=list)
    pubsub_deleted: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = (
            f"{len(self.rules_deleted)} forwarding rules and {len(self.destinations_deleted)} "
            f"destinations deleted, {len(self.sources_revoked)} sources and "
            f"{len(self.tokens_revoked)} API tokens revoked, {len(self.pubsub_deleted)} Pub/Sub "
            "topics and subscriptions deleted"
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
    that the caller's other cleanup (stopping the stack) still runs."""
    from shared.domain.routing import deliver_subscription_id, delivery_topic_id
    from shared.domain.sources import process_subscription_id

    done = Dismantled()
    project = services.settings.project_id
    topics: list[str] = []
    subscriptions: list[str] = []

    def listed(what: str, lister: Callable[[str], list[T]]) -> list[T]:
        try:
            return lister(workspace_id)
        except Exception as exc:
            done.failures.append(f"listing {what}: {type(exc).__name__}: {exc}")
            return []

    # Rules first: a destination that a rule delivers to cannot be deleted.
    rules = services.forwarding_rules
    for rule in listed("forwarding rules", rules.list):
        _attempt(
            done,
            f"forwarding rule {rule.id}",
            done.rules_deleted,
            rules.delete,
            workspace_id,
            rule.id,
        )
    destinations = services.destinations
    for destination in listed("destinations", destinations.list):
        _attempt(
            done,
            f"destination {destination.id}",
            done.destinations_deleted,
            destinations.delete,
            workspace_id,
            destination.id,
        )
        topics.append(f"projects/{project}/topics/{delivery_topic_id(destination.id)}")
        subscriptions.append(
            f"projects/{project}/subscriptions/{deliver_subscription_id(destination.id)}"
        )
    sources = services.sources
    for source in listed("sources", sources.list):
        _attempt(
            done,
            f"source {source.id}",
            done.sources_revoked,
            sources.revoke,
            workspace_id,
            source.id,
        )
        topics.append(source.pubsub_topic)
        subscriptions.append(
            f"projects/{project}/subscriptions/{process_subscription_id(source.id)}"
        )
    workspaces = services.workspaces
    for token in listed("API tokens", workspaces.list_tokens):
        _attempt(
            done,
            f"API token {token.id}",
            done.tokens_revoked,
            workspaces.revoke_token,
            workspace_id,
            token.id,
        )
    if services.settings.pubsub_emulator:
        _delete_pubsub(done, subscriptions, topics)
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


def _delete_pubsub(done: Dismantled, subscriptions: list[str], topics: list[str]) -> None:
    """Delete the subscriptions, then the topics, on the Pub/Sub emulator (the bench runs on
    emulators only); those already gone count as deleted."""
    from google.api_core.exceptions import NotFound
    from google.cloud import pubsub_v1  # type: ignore[attr-defined]

    subscriber = pubsub_v1.SubscriberClient()
    publisher = pubsub_v1.PublisherClient()

    def delete_subscription(path: str) -> None:
        with suppress(NotFound):
            subscriber.delete_subscription(request={"subscription": path})

    def delete_topic(path: str) -> None:
        with suppress(NotFound):
            publisher.delete_topic(request={"topic": path})

    try:
        for path in subscriptions:
            _attempt(done, path, done.pubsub_deleted, delete_subscription, path)
        for path in topics:
            _attempt(done, path, done.pubsub_deleted, delete_topic, path)
    finally:
        subscriber.close()
