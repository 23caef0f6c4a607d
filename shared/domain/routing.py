"""Forwarding rules and destinations: which events go where."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from shared.domain.event import CanonicalEvent
from shared.domain.events import CALL_TYPES

DestinationStatus = Literal["active", "inactive"]


class Destination(BaseModel):
    """Where events are delivered. `config` is stored with its secrets; the API never shows them."""

    id: str
    workspace_id: str
    name: str
    type: str
    config: dict[str, Any]
    status: DestinationStatus = "active"
    # The consent categories (ids, as in context.consent.categoryPreferences) an event must have
    # all granted to be delivered here (shared/domain/consent.py); empty: none needed.
    consent_categories: list[str] = Field(default_factory=list)
    created_at: str
    updated_at: str


class ForwardingRule(BaseModel):
    """Selects events by type and name; delivers them, maybe transformed, to a destination."""

    id: str
    workspace_id: str
    name: str
    destination_id: str
    event_types: list[str]
    event_names: list[str]
    transformation_id: str | None = None
    enabled: bool = True
    created_at: str
    updated_at: str

    def matches(self, event: CanonicalEvent) -> bool:
        """Enabled, and the event's type and name are selected (an empty list selects all)."""
        if not self.enabled:
            return False
        if self.event_types and event["type"] not in self.event_types:
            return False
        return not self.event_names or event_name(event) in self.event_names


def event_name(event: CanonicalEvent) -> str | None:
    """The name rules, contracts and volume group by: a track's event, a page's or screen's name."""
    if event["type"] == "track":
        return event.get("event")
    if event["type"] in ("page", "screen"):
        return event.get("name")
    return None


def matching_rules(rules: list[ForwardingRule], event: CanonicalEvent) -> list[ForwardingRule]:
    """The rules an event is forwarded by, in a stable order."""
    return [rule for rule in rules if rule.matches(event)]


VALID_EVENT_TYPES = CALL_TYPES


def delivery_topic_id(destination_id: str) -> str:
    """The topic of one destination's deliveries (its subscription pushes to `deliver`)."""
    return f"streams-deliveries-{destination_id}"


def deliver_subscription_id(destination_id: str) -> str:
    return f"streams-deliver-{destination_id}"


def destinations_collection(workspace_id: str) -> str:
    return f"workspaces/{workspace_id}/destinations"


def destination_path(workspace_id: str, destination_id: str) -> str:
    return f"{destinations_collection(workspace_id)}/{destination_id}"


def rules_collection(workspace_id: str) -> str:
    return f"workspaces/{workspace_id}/forwarding_rules"


def rule_path(workspace_id: str, rule_id: str) -> str:
    return f"{rules_collection(workspace_id)}/{rule_id}"


def transformation_path(workspace_id: str, transformation_id: str) -> str:
    return f"workspaces/{workspace_id}/transformations/{transformation_id}"
