"""What the wiring function may do to Pub/Sub on a caller's behalf.

In production one private function (`wiring`) alone holds the rights to create topics, grant
their publishers, create and re-point push subscriptions and act as the push account. The
functions that create sources and destinations ask it, and it does only what wiring a source or
a destination needs: topics and subscriptions of the run-time kinds, each subscription on its own
kind's topic with the same id, pushing exactly as the deployment's settings say. A caller that
was taken over can therefore not point a subscription elsewhere, touch the dead-letter topic, or
wire any other name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.domain.errors import Forbidden
from shared.domain.routing import deliver_subscription_id, delivery_topic_id
from shared.domain.sources import process_subscription_id, source_topic_id

# Ids are Streams' own (new_id); anything else is not a run-time resource.
_ID = r"(?P<id>[A-Za-z0-9_-]{1,128})"


@dataclass(frozen=True)
class RunTimeKind:
    """One kind of run-time topic and the subscription that pushes it."""

    name: str  # "source" or "deliveries"
    topic_prefix: str
    subscription_prefix: str

    def topic_id(self, resource_id: str) -> str:
        return f"{self.topic_prefix}{resource_id}"

    def subscription_id(self, resource_id: str) -> str:
        return f"{self.subscription_prefix}{resource_id}"


SOURCE = RunTimeKind("source", source_topic_id(""), process_subscription_id(""))
DELIVERIES = RunTimeKind("deliveries", delivery_topic_id(""), deliver_subscription_id(""))
KINDS = (SOURCE, DELIVERIES)
# Listing is for reconciling; only Streams' own names may be listed.
LISTABLE_PREFIX = "streams-"


def _match(prefix: str, name: str) -> str | None:
    found = re.fullmatch(re.escape(prefix) + _ID, name)
    return found.group("id") if found else None


def topic_kind(topic_id: str) -> tuple[RunTimeKind, str]:
    """The kind and resource id of a run-time topic id; Forbidden for any other topic."""
    for kind in KINDS:
        resource_id = _match(kind.topic_prefix, topic_id)
        if resource_id is not None:
            return kind, resource_id
    raise Forbidden(f"{topic_id!r} is not a source or deliveries topic", field="topic_id")


def subscription_kind(subscription_id: str) -> tuple[RunTimeKind, str]:
    """The kind and resource id of a run-time subscription id; Forbidden for any other."""
    for kind in KINDS:
        resource_id = _match(kind.subscription_prefix, subscription_id)
        if resource_id is not None:
            return kind, resource_id
    raise Forbidden(
        f"{subscription_id!r} is not a process or deliver subscription", field="subscription_id"
    )


def topic_name(project_id: str, topic_id: str) -> str:
    """A topic's full resource name, as Pub/Sub's API names it."""
    return f"projects/{project_id}/topics/{topic_id}"


def topic_id_of(project_id: str, topic: str) -> str:
    """The id of a topic of `project_id` given by its full name; Forbidden for another project's."""
    prefix = topic_name(project_id, "")
    if not topic.startswith(prefix):
        raise Forbidden(f"{topic!r} is not a topic of this deployment's project", field="topic")
    return topic.removeprefix(prefix)


def check_subscription(project_id: str, topic: str, subscription_id: str) -> RunTimeKind:
    """A subscription may be wired only on its own kind's topic, of the same resource."""
    kind, resource_id = subscription_kind(subscription_id)
    if topic_id_of(project_id, topic) != kind.topic_id(resource_id):
        raise Forbidden(
            f"{subscription_id!r} may only subscribe to {kind.topic_id(resource_id)!r}",
            field="topic",
        )
    return kind


def check_listing(prefix: str) -> None:
    if not prefix.startswith(LISTABLE_PREFIX):
        raise Forbidden(f"only names starting {LISTABLE_PREFIX!r} may be listed", field="prefix")
