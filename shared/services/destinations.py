"""Destinations: CRUD with configs validated per type and their URLs checked against SSRF."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from shared.destinations import connector_for, merge_config, stored_config, validate_config
from shared.destinations.base import DestinationConfig
from shared.destinations.outbound import UrlGuard
from shared.destinations.pubsub import TopicGuard
from shared.domain import ids
from shared.domain.errors import Conflict, InvalidRequest, NotFound
from shared.domain.routing import (
    Destination,
    DestinationStatus,
    destination_path,
    destinations_collection,
)
from shared.ports import ConfigStore, Write
from shared.services.delivery_topics import DeliveryTopics
from shared.services.forwarding_rules import ForwardingRules

# What an update may change; everything else (id, workspace, timestamps) is the service's.
UPDATABLE = frozenset({"name", "type", "config", "status", "consent_categories"})
# The most delivery records one read of a destination's recent deliveries returns.
MAX_RECENT_DELIVERIES = 200


class Destinations:
    """The destination use cases; every call is scoped to one workspace.

    Configs are stored with their secrets (the deliver function needs them); the API layer
    shows `public_config` only, and nothing here logs a config.
    """

    def __init__(
        self,
        store: ConfigStore,
        guard: UrlGuard,
        rules: ForwardingRules,
        topic_guard: TopicGuard,
        delivery_topics: DeliveryTopics | None = None,
        clock: Callable[[], datetime] = ids.utcnow,
    ):
        self._store = store
        self._guard = guard
        self._topic_guard = topic_guard
        self._rules = rules
        self._delivery_topics = delivery_topics
        self._clock = clock

    def list(self, workspace_id: str) -> list[Destination]:
        documents = self._store.list_documents(destinations_collection(workspace_id))
        return sorted((Destination.model_validate(d) for d in documents), key=_creation_order)

    def get(self, workspace_id: str, destination_id: str) -> Destination:
        path = destination_path(workspace_id, destination_id)
        document = self._store.get(path) if ids.is_document_id(destination_id) else None
        if document is None:
            raise NotFound(f"destination {destination_id} not found", field="destinationId")
        return Destination.model_validate(document)

    def create(
        self,
        workspace_id: str,
        *,
        name: str,
        type: str,
        config: Any,
        status: DestinationStatus = "active",
        consent_categories: Sequence[str] = (),
    ) -> Destination:
        validated = validate_config(type, config)
        self._check_addresses(validated)
        now = ids.isoformat(self._clock())
        destination = Destination(
            id=ids.new_id(),
            workspace_id=workspace_id,
            name=name,
            type=type,
            config=stored_config(validated),
            status=status,
            consent_categories=list(consent_categories),
            created_at=now,
            updated_at=now,
        )
        if self._delivery_topics is not None:
            # Before the record: a destination must never exist without its deliveries topic.
            self._delivery_topics.wire(destination.id)
        path = destination_path(workspace_id, destination.id)
        self._store.commit([Write("create", path, destination.model_dump())])
        return destination

    def update(
        self, workspace_id: str, destination_id: str, changes: dict[str, Any]
    ) -> Destination:
        """Apply a partial update. A new `config` replaces the old one, except that secrets it
        omits keep their stored values; a new `type` needs a whole new config."""
        unknown = set(changes) - UPDATABLE
        if unknown:
            raise InvalidRequest(f"{min(unknown)} cannot be updated", field=min(unknown))
        current = self.get(workspace_id, destination_id)
        type_ = changes.get("type", current.type)
        connector_for(type_)
        updates = {k: v for k, v in changes.items() if k in UPDATABLE - {"config"}}
        if "config" in changes:
            if type_ == current.type:
                validated = merge_config(type_, current.config, changes["config"])
            else:
                # Secrets of another type mean nothing here: nothing is carried over.
                validated = validate_config(type_, changes["config"])
            self._check_addresses(validated)
            updates["config"] = stored_config(validated)
        elif type_ != current.type:
            raise InvalidRequest(f"config is required when type changes to {type_}", field="config")
        updated = current.model_copy(update={**updates, "updated_at": ids.isoformat(self._clock())})
        path = destination_path(workspace_id, destination_id)
        self._store.commit([Write("set", path, updated.model_dump())])
        return updated

    def delete(self, workspace_id: str, destination_id: str) -> None:
        """Delete a destination no forwarding rule delivers to; else Conflict naming the rules."""
        self.get(workspace_id, destination_id)
        referencing = self._rules.referencing(workspace_id, destination_id)
        if referencing:
            names = ", ".join(f"{rule.name!r} ({rule.id})" for rule in referencing)
            raise Conflict(
                f"destination {destination_id} is used by forwarding rules {names}: "
                "delete them or point them elsewhere first",
                field="destinationId",
                details=", ".join(rule.id for rule in referencing),
            )
        if self._delivery_topics is not None:
            # First: no rule routes here any more, so nothing publishes to the topic, and a
            # failure leaves a destination whose DELETE can be sent again.
            self._delivery_topics.unwire(destination_id)
        self._store.commit([Write("delete", destination_path(workspace_id, destination_id))])

    def _check_addresses(self, config: DestinationConfig) -> None:
        """Refuse a config whose URLs lead to internal addresses (SSRF), or whose topic is one
        of Streams' own, before it is stored."""
        for name in config.ADDRESS_FIELDS:
            url = getattr(config, name, None)
            if url is not None:
                self._guard.check(url, field=f"config.{name}")
        for name in config.TOPIC_FIELDS:
            self._topic_guard.check(getattr(config, name), field=f"config.{name}")


def _creation_order(destination: Destination) -> tuple[str, str]:
    return (destination.created_at, destination.id)
