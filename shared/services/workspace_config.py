"""Configuration as the hot paths read it: per workspace, cached for a few seconds per instance."""

from __future__ import annotations

from dataclasses import dataclass

from shared.domain.routing import (
    Destination,
    ForwardingRule,
    destinations_collection,
    rules_collection,
)
from shared.ports import ConfigStore
from shared.services.cache import TtlCache


@dataclass(frozen=True)
class RoutingConfig:
    """A workspace's forwarding rules and the destinations they may name."""

    rules: list[ForwardingRule]
    destinations: dict[str, Destination]


class WorkspaceConfig:
    """Cached reads of routing configuration: one read per workspace and interval, not per event."""

    def __init__(self, store: ConfigStore, ttl_seconds: float):
        self._store = store
        self._routing: TtlCache[RoutingConfig] = TtlCache(ttl_seconds)

    def routing(self, workspace_id: str) -> RoutingConfig:
        return self._routing.get(workspace_id, lambda: self._load_routing(workspace_id))

    def destination(self, workspace_id: str, destination_id: str) -> Destination | None:
        return self.routing(workspace_id).destinations.get(destination_id)

    def _load_routing(self, workspace_id: str) -> RoutingConfig:
        rules = [
            ForwardingRule.model_validate(d)
            for d in self._store.list_documents(rules_collection(workspace_id))
        ]
        rules.sort(key=lambda rule: (rule.created_at, rule.id))
        destinations = {
            d["id"]: Destination.model_validate(d)
            for d in self._store.list_documents(destinations_collection(workspace_id))
        }
        return RoutingConfig(rules, destinations)
