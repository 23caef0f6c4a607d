"""Wires services to adapters, once per process, lazily; every piece can be overridden for tests."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from shared.config import Settings, get_settings
from shared.destinations.outbound import UrlGuard
from shared.ports import ConfigStore, Publisher, TopicAdmin
from shared.services.destinations import Destinations
from shared.services.forwarding_rules import ForwardingRules
from shared.services.ingest import Ingest
from shared.services.sources import EventSources
from shared.services.workspaces import Workspaces


class Services:
    """The process's services. Cloud clients are built on first use, never at import time."""

    def __init__(self, settings: Settings, **overrides: Any):
        self.settings = settings
        # cached_property reads the instance dict first, so an override replaces the default.
        self.__dict__.update(overrides)

    @cached_property
    def publisher_client(self) -> Any:
        from shared.adapters.pubsub import new_publisher_client

        return new_publisher_client()

    @cached_property
    def store(self) -> ConfigStore:
        from google.cloud import firestore

        from shared.adapters.firestore import FirestoreConfigStore

        return FirestoreConfigStore(firestore.Client(project=self.settings.project_id))

    @cached_property
    def topics(self) -> TopicAdmin:
        from shared.adapters.pubsub import PubSubTopicAdmin

        return PubSubTopicAdmin(self.publisher_client, self.settings.project_id)

    @cached_property
    def publisher(self) -> Publisher:
        from shared.adapters.pubsub import PubSubPublisher

        return PubSubPublisher(self.publisher_client)

    @cached_property
    def workspaces(self) -> Workspaces:
        return Workspaces(self.store)

    @cached_property
    def sources(self) -> EventSources:
        return EventSources(self.store, self.topics)

    @cached_property
    def destinations(self) -> Destinations:
        return Destinations(
            self.store, UrlGuard(self.settings.allow_private_destinations), self.forwarding_rules
        )

    @cached_property
    def forwarding_rules(self) -> ForwardingRules:
        return ForwardingRules(self.store)

    @cached_property
    def ingest(self) -> Ingest:
        return Ingest(
            self.sources, self.publisher, self.store, self.settings.write_key_cache_seconds
        )


_services: Services | None = None


def get_services() -> Services:
    """The process-wide services, built on first use."""
    global _services
    if _services is None:
        _services = Services(get_settings())
    return _services


def set_services(services: Services | None) -> None:
    """Replace the process-wide services (tests); None rebuilds them from settings on next use."""
    global _services
    _services = services
