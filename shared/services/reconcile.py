"""`streams reconcile`: recreate the Pub/Sub topics and subscriptions made at run time (one pair
per source, one per destination) from what Firestore holds, after they were deleted by hand, by
a project clean-up or by a restore into another project.

Terraform makes only the dead-letter topic and its subscription; every other topic is created
by the call that creates its source or destination. Those same calls recreate them here
(`EventSources.wire`, `DeliveryTopics.wire`), with the settings the functions use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from shared.domain.errors import InvalidRequest
from shared.domain.routing import (
    Destination,
    deliver_subscription_id,
    delivery_topic_id,
    destinations_collection,
)
from shared.domain.sources import WRITE_KEYS, WriteKey, process_subscription_id
from shared.ports import ConfigStore, PushPolicy, TopicAdmin
from shared.services.delivery_topics import DeliveryTopics
from shared.services.sources import EventSources

# Every topic and subscription Streams names starts so; others in the project are not looked at.
STREAMS_PREFIX = "streams-"


@dataclass(frozen=True)
class RunTimeWiring:
    """One source's or destination's topic and push subscription, and how to (re)create them."""

    topic_id: str
    subscription_id: str
    endpoint: str
    wire: Callable[[], None]


@dataclass
class ReconcileReport:
    """What existed, what was missing and what was done about it; names are Pub/Sub ids."""

    dry_run: bool
    sources: int = 0
    destinations: int = 0
    existing_topics: list[str] = field(default_factory=list)
    missing_topics: list[str] = field(default_factory=list)
    existing_subscriptions: list[str] = field(default_factory=list)
    missing_subscriptions: list[str] = field(default_factory=list)
    # Existing, but pushing elsewhere than the function's current URL (it was redeployed).
    wrong_endpoint: list[str] = field(default_factory=list)
    # Existing, but attached to a deleted topic: they receive nothing that is published now,
    # and Pub/Sub cannot attach them again. Reported, never deleted: they may still hold
    # messages to push (delete each once drained, then reconcile again).
    detached_subscriptions: list[str] = field(default_factory=list)
    unowned_topics: list[str] = field(default_factory=list)
    unowned_subscriptions: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        applied = not self.dry_run
        return {
            "dry_run": self.dry_run,
            "sources": self.sources,
            "destinations": self.destinations,
            "topics": {
                "existing": self.existing_topics,
                "missing": self.missing_topics,
                "created": self.missing_topics if applied else [],
            },
            "subscriptions": {
                "existing": self.existing_subscriptions,
                "missing": self.missing_subscriptions,
                "created": self.missing_subscriptions if applied else [],
                "wrong_endpoint": self.wrong_endpoint,
                "repointed": self.wrong_endpoint if applied else [],
                "detached": self.detached_subscriptions,
            },
            # Named like Streams' own but owned by no source or destination (a deleted one's
            # subscription is retired, and Pub/Sub deletes it a day after its last push).
            "unowned": {
                "topics": self.unowned_topics,
                "subscriptions": self.unowned_subscriptions,
            },
        }


class Reconciler:
    """Makes Pub/Sub hold a topic and a push subscription for every source and destination."""

    def __init__(
        self,
        store: ConfigStore,
        topics: TopicAdmin,
        sources: EventSources,
        delivery_topics: DeliveryTopics,
        process_push: PushPolicy | None,
        deliver_push: PushPolicy | None,
        terraform_names: Iterable[str] = (),
    ):
        self._store = store
        self._topics = topics
        self._sources = sources
        self._delivery_topics = delivery_topics
        self._process_push = process_push
        self._deliver_push = deliver_push
        # Made by Terraform (the dead-letter topic and subscription): owned, never recreated here.
        self._terraform_names = frozenset(terraform_names)

    def run(self, dry_run: bool = False) -> ReconcileReport:
        """Create what is missing and re-point what pushes elsewhere (unless `dry_run`);
        idempotent: a second run finds everything in place."""
        if self._process_push is None or self._deliver_push is None:
            # Topics without subscriptions would take events that nothing processes.
            raise InvalidRequest(
                "the push endpoints are not set: export STREAMS_PROCESS_PUSH_ENDPOINT and "
                "STREAMS_DELIVER_PUSH_ENDPOINT (terraform output cli_environment)"
            )
        source_wirings = self._source_wirings(self._process_push)
        destination_wirings = self._destination_wirings(self._deliver_push)
        report = ReconcileReport(
            dry_run=dry_run,
            sources=len(source_wirings),
            destinations=len(destination_wirings),
        )
        topics = self._topics.topic_ids(STREAMS_PREFIX)
        subscriptions = self._topics.subscription_states(STREAMS_PREFIX)
        wirings = sorted(source_wirings + destination_wirings, key=lambda w: w.topic_id)
        for wiring in wirings:
            topic_exists = wiring.topic_id in topics
            state = subscriptions.get(wiring.subscription_id)
            attached = state is not None and state.topic == self._topics.topic_path(wiring.topic_id)
            pushes_elsewhere = (
                attached and state is not None and state.push_endpoint != wiring.endpoint
            )
            if topic_exists:
                report.existing_topics.append(wiring.topic_id)
            else:
                report.missing_topics.append(wiring.topic_id)
            if state is None:
                report.missing_subscriptions.append(wiring.subscription_id)
            else:
                report.existing_subscriptions.append(wiring.subscription_id)
                if not attached:
                    report.detached_subscriptions.append(wiring.subscription_id)
                elif pushes_elsewhere:
                    report.wrong_endpoint.append(wiring.subscription_id)
            if not dry_run and (not topic_exists or state is None or pushes_elsewhere):
                wiring.wire()
        owned_topics = {wiring.topic_id for wiring in wirings}
        owned_subscriptions = {wiring.subscription_id for wiring in wirings}
        report.unowned_topics = sorted(topics - owned_topics - self._terraform_names)
        report.unowned_subscriptions = sorted(
            set(subscriptions) - owned_subscriptions - self._terraform_names
        )
        return report

    def _source_wirings(self, push: PushPolicy) -> list[RunTimeWiring]:
        """Every source's, revoked ones included: revoking keeps a source's topic, whose
        messages already published are still processed."""
        keys = [WriteKey.model_validate(d) for d in self._store.list_documents(WRITE_KEYS)]
        return [self._source_wiring(key, push) for key in keys]

    def _source_wiring(self, key: WriteKey, push: PushPolicy) -> RunTimeWiring:
        # The topic ingest publishes to is the one the source's record names.
        topic_id = key.pubsub_topic.rsplit("/", 1)[-1]

        def wire() -> None:
            self._sources.wire(key.source_id, self._topics.ensure_topic(topic_id))

        return RunTimeWiring(topic_id, process_subscription_id(key.source_id), push.endpoint, wire)

    def _destination_wirings(self, push: PushPolicy) -> list[RunTimeWiring]:
        return [
            self._destination_wiring(Destination.model_validate(document).id, push)
            for workspace in self._store.list_documents("workspaces")
            for document in self._store.list_documents(destinations_collection(workspace["id"]))
        ]

    def _destination_wiring(self, destination_id: str, push: PushPolicy) -> RunTimeWiring:
        def wire() -> None:
            self._delivery_topics.wire(destination_id)

        return RunTimeWiring(
            delivery_topic_id(destination_id),
            deliver_subscription_id(destination_id),
            push.endpoint,
            wire,
        )
