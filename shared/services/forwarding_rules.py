"""Forwarding rules: create, list, get, update and delete, with their references checked."""

from __future__ import annotations

import builtins
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.domain import ids
from shared.domain.errors import InvalidRequest, NotFound
from shared.domain.routing import (
    ForwardingRule,
    destination_path,
    rule_path,
    rules_collection,
    transformation_path,
)
from shared.ports import ConfigStore, Write

# What an update may change; everything else (id, workspace, timestamps) is the service's.
UPDATABLE = frozenset(
    {"name", "destination_id", "event_types", "event_names", "transformation_id", "enabled"}
)


class ForwardingRules:
    """The forwarding-rule use cases; every call is scoped to one workspace."""

    def __init__(self, store: ConfigStore, clock: Callable[[], datetime] = ids.utcnow):
        self._store = store
        self._clock = clock

    def list(self, workspace_id: str) -> list[ForwardingRule]:
        documents = self._store.list_documents(rules_collection(workspace_id))
        return sorted((ForwardingRule.model_validate(d) for d in documents), key=_creation_order)

    def get(self, workspace_id: str, rule_id: str) -> ForwardingRule:
        document = (
            self._store.get(rule_path(workspace_id, rule_id))
            if ids.is_document_id(rule_id)
            else None
        )
        if document is None:
            raise NotFound(f"forwarding rule {rule_id} not found", field="ruleId")
        return ForwardingRule.model_validate(document)

    def create(
        self,
        workspace_id: str,
        *,
        name: str,
        destination_id: str,
        event_types: builtins.list[str],
        event_names: builtins.list[str],
        transformation_id: str | None = None,
        enabled: bool = True,
    ) -> ForwardingRule:
        self._check_references(workspace_id, destination_id, transformation_id)
        now = ids.isoformat(self._clock())
        rule = ForwardingRule(
            id=ids.new_id(),
            workspace_id=workspace_id,
            name=name,
            destination_id=destination_id,
            event_types=event_types,
            event_names=event_names,
            transformation_id=transformation_id,
            enabled=enabled,
            created_at=now,
            updated_at=now,
        )
        self._store.commit([Write("create", rule_path(workspace_id, rule.id), rule.model_dump())])
        return rule

    def update(self, workspace_id: str, rule_id: str, changes: dict[str, Any]) -> ForwardingRule:
        """Apply a partial update; only the references it changes are checked again."""
        unknown = set(changes) - UPDATABLE
        if unknown:
            raise InvalidRequest(f"{min(unknown)} cannot be updated", field=min(unknown))
        rule = self.get(workspace_id, rule_id)
        if changes.get("destination_id") is not None:
            self._check_destination(workspace_id, changes["destination_id"])
        if changes.get("transformation_id") is not None:
            self._check_transformation(workspace_id, changes["transformation_id"])
        updated = ForwardingRule.model_validate(
            {**rule.model_dump(), **changes, "updated_at": ids.isoformat(self._clock())}
        )
        self._store.commit([Write("set", rule_path(workspace_id, rule_id), updated.model_dump())])
        return updated

    def delete(self, workspace_id: str, rule_id: str) -> None:
        self.get(workspace_id, rule_id)
        self._store.commit([Write("delete", rule_path(workspace_id, rule_id))])

    def referencing(self, workspace_id: str, destination_id: str) -> builtins.list[ForwardingRule]:
        """The workspace's rules that deliver to `destination_id`, in creation order."""
        return [r for r in self.list(workspace_id) if r.destination_id == destination_id]

    def _check_references(
        self, workspace_id: str, destination_id: str, transformation_id: str | None
    ) -> None:
        self._check_destination(workspace_id, destination_id)
        if transformation_id is not None:
            self._check_transformation(workspace_id, transformation_id)

    def _check_destination(self, workspace_id: str, destination_id: str) -> None:
        # 400, not 404: the rule is what is wrong, and another workspace's destination does
        # not exist in this one.
        if not _exists(self._store, destination_path(workspace_id, destination_id), destination_id):
            raise InvalidRequest(
                f"destination_id: destination {destination_id} does not exist in this workspace",
                field="destination_id",
            )

    def _check_transformation(self, workspace_id: str, transformation_id: str) -> None:
        path = transformation_path(workspace_id, transformation_id)
        if not _exists(self._store, path, transformation_id):
            raise InvalidRequest(
                f"transformation_id: transformation {transformation_id} does not exist "
                "in this workspace",
                field="transformation_id",
            )


def _exists(store: ConfigStore, path: str, document_id: str) -> bool:
    return ids.is_document_id(document_id) and store.get(path) is not None


def _creation_order(rule: ForwardingRule) -> tuple[str, str]:
    return (rule.created_at, rule.id)
