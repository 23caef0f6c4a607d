"""Wires services to adapters, once per process, lazily; every piece can be overridden for tests."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from shared.config import Settings, get_settings
from shared.ports import (
    COMMIT_TIME,
    Claims,
    ConfigStore,
    CounterStore,
    DocumentStore,
    EventStore,
    FileWriter,
    GeoLocator,
    Publisher,
    PushPolicy,
    Sender,
    TopicAdmin,
    WarehouseViews,
)

# Services are imported where they are built, so that a function loads only those it uses
# (a cold start pays for every module imported).
if TYPE_CHECKING:
    import valkey

    from shared.adapters.rest import Http, RestApi
    from shared.destinations.outbound import UrlGuard
    from shared.destinations.pubsub import TopicGuard
    from shared.domain.cookieless import CookielessIds
    from shared.domain.signing import MessageSigner
    from shared.services.audit import AuditLog
    from shared.services.contract_validator import ContractValidator
    from shared.services.contracts import EventContracts
    from shared.services.dead_letters import DeadLetters
    from shared.services.debugger import SourceDebugger
    from shared.services.deliver import Deliverer
    from shared.services.delivery_records import DeliveryRecords
    from shared.services.delivery_topics import DeliveryTopics
    from shared.services.delivery_transformer import SandboxTransformer
    from shared.services.destination_test import DestinationTester
    from shared.services.destinations import Destinations
    from shared.services.event_log import EventLog
    from shared.services.event_query import EventQueries
    from shared.services.forwarding_rules import ForwardingRules
    from shared.services.ingest import Ingest
    from shared.services.live import LiveFeed
    from shared.services.pacing import Pacer
    from shared.services.privacy import PrivacyFilter, PrivacySettings
    from shared.services.process import Processor
    from shared.services.quarantine import Quarantine
    from shared.services.rate_limiter import RateLimiter
    from shared.services.reconcile import Reconciler
    from shared.services.regulations import Regulations
    from shared.services.sdk_settings import SdkSettings
    from shared.services.sources import EventSources, WriteKeyResolver
    from shared.services.trace import Traces
    from shared.services.transformations import Transformations
    from shared.services.volume import EventVolume
    from shared.services.warehouse import Warehouse
    from shared.services.webhook_mapper import WebhookMapper
    from shared.services.workspace_config import WorkspaceConfig
    from shared.services.workspaces import Workspaces
    from shared.transform import Limits, ProgramCache


class Services:
    """The process's services. Cloud clients are built on first use, never at import time."""

    # True in the ingest function (functions/ingest/main.py): its `ingest` reads write keys,
    # counts and publishes over Firestore's and Pub/Sub's REST APIs, so that a new instance
    # answers without importing Google's gRPC client libraries (docs/BENCHMARKS.md, "Cold
    # start"). Every other service, and every other function, uses the official clients.
    rest_clients = False

    def __init__(self, settings: Settings, **overrides: Any):
        self.settings = settings
        # cached_property reads the instance dict first, so an override replaces the default.
        self.__dict__.update(overrides)

    @cached_property
    def publisher_client(self) -> Any:
        from shared.adapters.pubsub import new_publisher_client

        return new_publisher_client()

    @cached_property
    def firestore_client(self) -> Any:
        from shared.adapters.firestore import new_client

        return new_client(self.settings)

    @cached_property
    def store(self) -> ConfigStore:
        from shared.adapters.firestore import FirestoreConfigStore

        return FirestoreConfigStore(self.firestore_client)

    @cached_property
    def counters(self) -> CounterStore:
        from shared.adapters.firestore import FirestoreCounterStore

        return FirestoreCounterStore(self.firestore_client)

    @cached_property
    def rest_credentials(self) -> Http:
        """Requests with the default credentials, for the REST clients on Google (never built
        against the emulators)."""
        from shared.adapters.rest import AuthorisedHttp

        return AuthorisedHttp()

    @cached_property
    def firestore_rest_api(self) -> RestApi:
        from shared.adapters import firestore_rest

        return firestore_rest.new_api(self.settings, lambda: self.rest_credentials)

    @cached_property
    def rest_store(self) -> DocumentStore:
        from shared.adapters.firestore_rest import FirestoreRestStore

        return FirestoreRestStore(self.firestore_rest_api, self.settings.project_id)

    @cached_property
    def rest_counters(self) -> CounterStore:
        from shared.adapters.firestore_rest import FirestoreRestCounterStore

        return FirestoreRestCounterStore(self.firestore_rest_api, self.settings.project_id)

    @cached_property
    def rest_publisher(self) -> Publisher:
        """Publishes to Streams' own topics, signed: over Pub/Sub's REST API until `publisher`
        (gRPC, cheaper per message under load) is built in the background after the first."""
        from shared.adapters import pubsub_rest
        from shared.domain.signing import SignedPublisher

        api = pubsub_rest.new_api(self.settings, lambda: self.rest_credentials)
        rest = SignedPublisher(pubsub_rest.PubSubRestPublisher(api), self.signer)
        return pubsub_rest.HandOverPublisher(rest, lambda: self.publisher)

    @cached_property
    def topics(self) -> TopicAdmin:
        """Where sources and destinations are wired: through the wiring function when the
        deployment has one (STREAMS_WIRING_URL), else directly."""
        if self.settings.wiring_url is None:
            return self.pubsub_topics
        from shared.adapters.wiring_client import RemoteTopicAdmin, new_id_token_session

        if self.settings.pubsub_emulator:
            import requests  # locally nothing checks identities: a plain session

            session = requests.Session()
        else:
            session = new_id_token_session(self.settings.wiring_url)
        return RemoteTopicAdmin(self.settings.project_id, self.settings.wiring_url, session)

    @cached_property
    def pubsub_topics(self) -> TopicAdmin:
        """Pub/Sub's own admin API, with this identity's rights (the wiring function's, the
        CLI's, the local stack's)."""
        from shared.adapters.pubsub import PubSubTopicAdmin, new_subscriber_client
        from shared.domain.wiring import DELIVERIES, SOURCE

        return PubSubTopicAdmin(
            self.publisher_client,
            new_subscriber_client(),
            self.settings.project_id,
            emulator=self.settings.pubsub_emulator,
            publishers={
                SOURCE.topic_prefix: self.settings.source_topic_publishers,
                DELIVERIES.topic_prefix: self.settings.delivery_topic_publishers,
            },
        )

    @cached_property
    def pubsub_publisher(self) -> Publisher:
        from shared.adapters.pubsub import PubSubPublisher

        return PubSubPublisher(self.publisher_client)

    @cached_property
    def signer(self) -> MessageSigner:
        from shared.domain.signing import MessageSigner

        key = self.settings.message_signing_key
        if key is None:
            raise ValueError("STREAMS_MESSAGE_SIGNING_KEY must be set (docs/DEPLOY.md)")
        return MessageSigner(
            key,
            accept_unsigned=self.settings.accept_unsigned_messages,
        )

    @cached_property
    def publisher(self) -> Publisher:
        """Publishes to Streams' own topics, signed."""
        from shared.domain.signing import SignedPublisher

        return SignedPublisher(self.pubsub_publisher, self.signer)

    @cached_property
    def customer_publisher(self) -> Publisher:
        """Publishes to customers' topics (`pubsub` destinations), unsigned, as an identity
        with no role on Streams' own topics where one is configured."""
        account = self.settings.customer_publisher_service_account
        if account is None:
            return self.pubsub_publisher
        from shared.adapters.pubsub import PubSubPublisher, new_impersonating_publisher_client

        return PubSubPublisher(new_impersonating_publisher_client(account))

    @cached_property
    def topic_guard(self) -> TopicGuard:
        from shared.destinations.pubsub import TopicGuard

        return TopicGuard(self.settings.project_id, frozenset({self.settings.dead_letters_topic}))

    @cached_property
    def workspaces(self) -> Workspaces:
        from shared.services.workspaces import Workspaces

        return Workspaces(self.store)

    @cached_property
    def bigquery_client(self) -> Any:
        from shared.adapters.bigquery import new_client

        return new_client(self.settings)

    @cached_property
    def event_store(self) -> EventStore:
        from shared.adapters.bigquery import BigQueryEventStore

        return BigQueryEventStore(self.bigquery_client, self.settings.bigquery_dataset)

    @cached_property
    def warehouse_views(self) -> WarehouseViews:
        from shared.adapters.bigquery_warehouse import BigQueryWarehouse

        return BigQueryWarehouse(self.bigquery_client, self.settings.bigquery_dataset)

    @cached_property
    def warehouse(self) -> Warehouse:
        from shared.services.warehouse import Warehouse

        # One dataset per workspace beside the events dataset: `<dataset>_ws_<workspace id>`.
        return Warehouse(self.store, self.warehouse_views, f"{self.settings.bigquery_dataset}_ws_")

    @cached_property
    def url_guard(self) -> UrlGuard:
        from shared.destinations.outbound import UrlGuard

        return UrlGuard(self.settings.allow_private_destinations)

    @cached_property
    def http_sender(self) -> Sender:
        from shared.destinations.outbound import HttpSender

        return HttpSender(self.url_guard)

    @cached_property
    def sources(self) -> EventSources:
        from shared.services.sources import EventSources

        return EventSources(
            self.store, self.topics, process_push_policy(self.settings, self.topics)
        )

    @cached_property
    def destinations(self) -> Destinations:
        from shared.services.destinations import Destinations

        return Destinations(
            self.store,
            self.url_guard,
            self.forwarding_rules,
            self.topic_guard,
            self.delivery_topics,
        )

    @cached_property
    def destination_tester(self) -> DestinationTester:
        from shared.services.destination_test import DestinationTester

        return DestinationTester(
            self.destinations,
            self.http_sender,
            self.customer_publisher,
            self.topic_guard,
            files=lambda: self.file_writer,
        )

    @cached_property
    def file_writer(self) -> FileWriter:
        # Customers' buckets, with this function's identity (they grant it access; docs/
        # DESTINATIONS.md). Built on first use: only Cloud Storage destinations load its client.
        from shared.adapters.gcs_files import GcsFileWriter

        return GcsFileWriter(self.settings.project_id)

    @cached_property
    def workspace_config(self) -> WorkspaceConfig:
        from shared.services.workspace_config import WorkspaceConfig

        return WorkspaceConfig(self.store, self.settings.config_cache_seconds)

    @cached_property
    def processor(self) -> Processor:
        from shared.services.process import Processor

        return Processor(
            self.store,
            self.event_store,
            self.publisher,
            self.workspace_config,
            self.delivery_topics.topic,
            validator=self.contract_validator,
            observers=(self.live,),
            privacy=self.privacy_filter,
            # Built on the first webhook request: other messages never load the sandbox.
            webhooks=lambda: self.webhook_mapper,
            claims=self.claims,
        )

    @cached_property
    def webhook_mapper(self) -> WebhookMapper:
        from shared.services.webhook_mapper import WebhookMapper

        return WebhookMapper(self.store, self.programs, self.settings.config_cache_seconds)

    @cached_property
    def programs(self) -> ProgramCache:
        """The sandbox's compiled programs, shared by destination and source transformations
        (one memory budget for the instance's calls)."""
        from shared.transform import ProgramCache

        return ProgramCache(transform_limits(self.settings))

    @cached_property
    def privacy_filter(self) -> PrivacyFilter:
        from shared.services.privacy import PrivacyFilter

        return PrivacyFilter(self.store, self.settings.config_cache_seconds)

    @cached_property
    def privacy_settings(self) -> PrivacySettings:
        from shared.services.privacy import PrivacySettings

        return PrivacySettings(self.store)

    @cached_property
    def regulations(self) -> Regulations:
        from shared.services.regulations import Regulations

        return Regulations(self.store, lambda: self.event_store, lambda: self.http_sender)

    @cached_property
    def audit(self) -> AuditLog:
        from shared.services.audit import AuditLog

        return AuditLog(self.store)

    @cached_property
    def live(self) -> LiveFeed:
        # Commit-time stamps make the live stream's order the order writes became visible.
        from shared.services.live import LiveFeed, StreamLimits

        return LiveFeed(
            self.store,
            commit_time=lambda: COMMIT_TIME,
            limits=StreamLimits(
                per_instance=self.settings.live_streams_per_instance,
                per_token=self.settings.live_streams_per_token,
            ),
            # Only a stream's opening reads the warehouse: process and deliver never build it.
            events=lambda: self.event_store,
        )

    @cached_property
    def volume(self) -> EventVolume:
        from shared.services.volume import EventVolume

        return EventVolume(self.event_store)

    @cached_property
    def event_queries(self) -> EventQueries:
        from shared.services.event_query import EventQueries

        return EventQueries(self.event_store)

    @cached_property
    def debugger(self) -> SourceDebugger:
        from shared.services.debugger import SourceDebugger

        return SourceDebugger(self.event_store, self.sources)

    @cached_property
    def deliverer(self) -> Deliverer:
        from shared.services.deliver import Deliverer

        return Deliverer(
            self.store,
            self.workspace_config,
            self.http_sender,
            self.publisher,
            self.topics.topic_path(self.settings.dead_letters_topic),
            self.settings.delivery_max_attempts,
            customer_publisher=self.customer_publisher,
            topic_guard=self.topic_guard,
            transformer=self.transformer,
            files=lambda: self.file_writer,
            pacer=self.pacer,
            observers=(self.live,),
            records=self.delivery_records,
        )

    @cached_property
    def pacer(self) -> Pacer:
        from shared.services.pacing import Pacer

        return Pacer(self.rate_limiter)

    @cached_property
    def transformer(self) -> SandboxTransformer:
        from shared.services.delivery_transformer import SandboxTransformer

        return SandboxTransformer(self.store, self.programs, self.settings.config_cache_seconds)

    @cached_property
    def transformations(self) -> Transformations:
        from shared.services.transformations import Transformations

        return Transformations(
            self.store,
            self.forwarding_rules,
            lambda: self.event_store,
            transform_limits(self.settings),
        )

    @cached_property
    def dead_letters(self) -> DeadLetters:
        from shared.services.dead_letters import DeadLetters

        return DeadLetters(
            self.store,
            self.publisher,
            self.delivery_topics.topic,
            self.event_log,
            records=self.delivery_records,
        )

    @cached_property
    def delivery_topics(self) -> DeliveryTopics:
        from shared.services.delivery_topics import DeliveryTopics

        return DeliveryTopics(self.topics, deliver_push_policy(self.settings, self.topics))

    @cached_property
    def reconciler(self) -> Reconciler:
        from shared.services.reconcile import Reconciler
        from shared.services.topology import DEAD_LETTERS_SUBSCRIPTION

        return Reconciler(
            self.store,
            self.topics,
            self.sources,
            self.delivery_topics,
            process_push_policy(self.settings, self.topics),
            deliver_push_policy(self.settings, self.topics),
            terraform_names=(self.settings.dead_letters_topic, DEAD_LETTERS_SUBSCRIPTION),
        )

    @cached_property
    def traces(self) -> Traces:
        from shared.services.trace import Traces

        return Traces(self.store, self.event_log, self.delivery_records)

    @cached_property
    def forwarding_rules(self) -> ForwardingRules:
        from shared.services.forwarding_rules import ForwardingRules

        return ForwardingRules(self.store)

    @cached_property
    def contract_validator(self) -> ContractValidator:
        from shared.services.contract_validator import ContractValidator

        return ContractValidator(self.store, self.settings.config_cache_seconds)

    @cached_property
    def contracts(self) -> EventContracts:
        from shared.services.contracts import EventContracts

        return EventContracts(self.store)

    @cached_property
    def quarantine(self) -> Quarantine:
        from shared.services.quarantine import Quarantine

        return Quarantine(self.store, self.publisher, self.contract_validator, self.event_log)

    @cached_property
    def claims(self) -> Claims:
        """The deduplication window: Valkey when STREAMS_VALKEY_URL names one, else Firestore."""
        if self.valkey is None:
            from shared.services.claims import StoreClaims

            return StoreClaims(self.store)
        from shared.adapters.valkey_claims import ValkeyClaims

        return ValkeyClaims(self.valkey)

    @cached_property
    def valkey(self) -> valkey.Valkey | None:
        """The deduplication store's client, when STREAMS_VALKEY_URL names one."""
        if self.settings.valkey_url is None:
            return None
        from shared.adapters.valkey_claims import new_client

        return new_client(self.settings.valkey_url, self.settings.valkey_iam_auth)

    @cached_property
    def delivery_records(self) -> DeliveryRecords:
        """Deliver's records: with Valkey, a mark there for each message accepted at once."""
        from shared.services.delivery_records import DeliveryRecords

        if self.valkey is None:
            return DeliveryRecords(self.store)
        from shared.adapters.valkey_marks import ValkeyMarks

        return DeliveryRecords(self.store, ValkeyMarks(self.valkey))

    @cached_property
    def event_log(self) -> EventLog:
        from shared.services.event_log import EventLog

        return EventLog(self.store, self.claims)

    @cached_property
    def rate_limiter(self) -> RateLimiter:
        # The counter store is built when a limited source (or destination) first sends.
        from shared.services.rate_limiter import RateLimiter

        return RateLimiter(lambda: self.rest_counters if self.rest_clients else self.counters)

    @cached_property
    def ingest(self) -> Ingest:
        from shared.services.ingest import Ingest

        sources: WriteKeyResolver
        if self.rest_clients:
            from shared.services.sources import WriteKeys

            sources, publisher, store = (
                WriteKeys(self.rest_store),
                self.rest_publisher,
                self.rest_store,
            )
        else:
            sources, publisher, store = self.sources, self.publisher, self.store
        return Ingest(
            sources,
            publisher,
            store,
            self.settings.write_key_cache_seconds,
            rate_limiter=self.rate_limiter,
            geo=self.geo_locator,
            cookieless=self.cookieless_ids,
        )

    @cached_property
    def geo_locator(self) -> GeoLocator | None:
        """The City database of STREAMS_GEO_DATABASE, opened once; None: no geo enrichment."""
        if not self.settings.geo_database:
            return None  # maxminddb is never imported (~0.05 s of ingest's cold start)
        from shared.adapters.geoip import open_geo_locator

        return open_geo_locator(self.settings.geo_database)

    @cached_property
    def cookieless_ids(self) -> CookielessIds | None:
        from shared.domain.cookieless import CookielessIds

        key = self.settings.cookieless_key
        return CookielessIds(key) if key is not None else None

    @cached_property
    def sdk_settings(self) -> SdkSettings:
        from shared.services.sdk_settings import SdkSettings

        return SdkSettings(
            self.ingest, self.sources, self.contracts, self.settings.config_cache_seconds
        )


def transform_limits(settings: Settings) -> Limits:
    """The sandbox limits of every transformation call."""
    from shared.transform import Limits

    return Limits(
        cpu_ms=settings.transform_cpu_ms,
        memory_bytes=settings.transform_memory_mb * 1024 * 1024,
        output_bytes=settings.transform_output_kb * 1024,
        sandbox_bytes=settings.transform_sandbox_memory_mb * 1024 * 1024,
    )


def process_push_policy(settings: Settings, topics: TopicAdmin) -> PushPolicy | None:
    """How source topics push to `process`; None where no endpoint is configured (unit tests).

    After `process_max_attempts` failed pushes Pub/Sub forwards a message to the dead-letter
    topic, where `dead_letters` records its events for replay: no message is retried forever
    (docs/ARCHITECTURE.md computes how long an outage the default rides out)."""
    if settings.process_push_endpoint is None:
        return None
    return PushPolicy(
        endpoint=settings.process_push_endpoint,
        min_backoff_seconds=1,
        max_backoff_seconds=settings.process_max_backoff_seconds,
        dead_letter_topic=topics.topic_path(settings.dead_letters_topic),
        max_delivery_attempts=settings.process_max_attempts,
        service_account=settings.push_service_account,
    )


def deliver_push_policy(settings: Settings, topics: TopicAdmin) -> PushPolicy | None:
    """How each destination's deliveries topic pushes to `deliver`: backoff between attempts,
    and Pub/Sub's own dead-lettering for deliveries that crash `deliver` itself (deliver
    dead-letters after `delivery_max_attempts`, so Pub/Sub's limit sits just above it)."""
    if settings.deliver_push_endpoint is None:
        return None
    return PushPolicy(
        endpoint=settings.deliver_push_endpoint,
        min_backoff_seconds=settings.delivery_min_backoff_seconds,
        max_backoff_seconds=settings.delivery_max_backoff_seconds,
        dead_letter_topic=topics.topic_path(settings.dead_letters_topic),
        max_delivery_attempts=min(100, max(5, settings.delivery_max_attempts + 2)),
        service_account=settings.push_service_account,
    )


_services: Services | None = None


def get_services(rest_clients: bool = False) -> Services:
    """The process-wide services, built on first use (`rest_clients`: see `Services`)."""
    global _services
    if _services is None:
        _services = Services(get_settings(), rest_clients=rest_clients)
    return _services


def set_services(services: Services | None) -> None:
    """Replace the process-wide services (tests); None rebuilds them from settings on next use."""
    global _services
    _services = services
