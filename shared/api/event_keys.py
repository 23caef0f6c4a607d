"""Event Sources API (seed: /api/v1/workspaces/{id}/event-keys)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from shared.api.crud import PAGE_HEADERS, list_filter, list_query, page_reply, status_of
from shared.api.models import AllowedOrigins, Input, Name, Timestamp
from shared.domain.errors import InvalidRequest, NotFound
from shared.domain.paging import page_of
from shared.domain.privacy import IpPolicy
from shared.domain.rate_limit import MAX_BURST, MAX_EVENTS_PER_SECOND, WINDOW_SECONDS, RateLimit
from shared.domain.sources import BotPolicy, EventSource, SourceStatus, SourceType
from shared.domain.webhooks import WebhookSettings
from shared.http.request import ApiRequest, Reply
from shared.http.routing import Route

FUNCTION = "event_keys"
BASE = "/api/v1/workspaces/{workspace_id}/event-keys"


IP_POLICY_DESCRIPTION = (
    "What ingest does with context.ip before publishing: keep, truncate (IPv4 /24, IPv6 /48) "
    "or remove (docs/PRIVACY.md). An extension of the seed; default keep"
)


BOT_POLICY_DESCRIPTION = (
    "What process does with events whose context.userAgent is a bot's or crawler's: keep "
    "(tagged context.bot = true), store_only (stored, never forwarded) or drop (recorded as "
    "dropped with its reason, never stored or forwarded; docs/PRIVACY.md). Default keep"
)
COOKIELESS_DESCRIPTION = (
    "Whether ingest replaces each event's anonymousId by a salted hash of its IP address and "
    "user agent that changes every UTC day (docs/PRIVACY.md). Default false"
)


SOURCE_TYPE_DESCRIPTION = (
    "What sends to the source: javascript, server or mobile SDKs (the Segment-compatible "
    "endpoints), or webhook (any service's webhooks, at /v1/webhook/<key> only; docs/WEBHOOKS.md)"
)


class EventSourceCreate(Input):
    name: Name
    type: SourceType = Field("server", description=SOURCE_TYPE_DESCRIPTION)
    ip_policy: IpPolicy = Field("keep", description=IP_POLICY_DESCRIPTION)
    bot_policy: BotPolicy = Field("keep", description=BOT_POLICY_DESCRIPTION)
    cookieless: bool = Field(False, strict=True, description=COOKIELESS_DESCRIPTION)
    allowed_origins: AllowedOrigins = []


class SourceOriginsUpdate(Input):
    allowed_origins: AllowedOrigins


class SourceOrigins(BaseModel):
    """The web origins that may send with a source's key (apart from the seed's object, as
    its privacy settings are)."""

    source_id: str
    allowed_origins: list[str]
    updated_at: Timestamp


class SourcePrivacyUpdate(Input):
    """The source's privacy settings, whole: an omitted one takes its default."""

    ip_policy: IpPolicy = Field(description=IP_POLICY_DESCRIPTION)
    bot_policy: BotPolicy = Field("keep", description=BOT_POLICY_DESCRIPTION)
    cookieless: bool = Field(False, strict=True, description=COOKIELESS_DESCRIPTION)


class SourcePrivacy(BaseModel):
    """A source's privacy settings (kept apart so the seed's Event Source Object stays exact)."""

    source_id: str
    ip_policy: IpPolicy
    bot_policy: BotPolicy
    cookieless: bool
    updated_at: Timestamp


class RateLimitInput(Input):
    """A source's rate limit as set through the API (whole numbers only)."""

    events_per_second: int = Field(
        ge=1,
        le=MAX_EVENTS_PER_SECOND,
        strict=True,
        description="Events per second ingest admits for the source: a batch counts each of "
        "its accepted events, a single call one",
    )
    burst: int | None = Field(
        None,
        ge=1,
        le=MAX_BURST,
        strict=True,
        description="Events admitted at once after a quiet spell; default events_per_second",
    )

    def limit(self) -> RateLimit:
        return RateLimit(
            events_per_second=self.events_per_second,
            burst=self.events_per_second if self.burst is None else self.burst,
        )


class SourceRateLimitUpdate(Input):
    rate_limit: RateLimitInput | None = Field(
        description="The limit, or null for none (the default). Over it, ingest answers 429 "
        "with Retry-After and publishes nothing of the request"
    )


class SourceRateLimit(BaseModel):
    """A source's rate limit (apart from the seed's object, as its privacy settings are)."""

    source_id: str
    rate_limit: RateLimit | None
    # The span over which every ingest instance together keeps to the limit (docs/INGEST.md).
    window_seconds: int
    updated_at: Timestamp


class EventSourceObject(BaseModel):
    """The seed's Event Source Object, field for field."""

    id: str
    workspace_id: str
    name: str
    # Not in the seed's Event Source Object: the stream sources' types, which decide where the
    # key is accepted.
    type: SourceType = Field(description=SOURCE_TYPE_DESCRIPTION)
    key: str
    status: Literal["active", "revoked"]
    pubsub_topic: str
    last_used_at: Timestamp | None
    created_by: str
    created_at: Timestamp
    updated_at: Timestamp


SourceListQuery = list_query("EventSourceListQuery", SourceStatus)


def list_sources(request: ApiRequest) -> Reply:
    # Firestore: one read per source of the workspace, whatever the page (crud.Collection.list).
    sources = request.services.sources.list(request.workspace_id)
    return page_reply(request, page_of(sources, list_filter(request), status_of))


def create_source(request: ApiRequest) -> EventSource:
    body: EventSourceCreate = request.body
    assert request.token is not None
    return request.services.sources.create(
        request.workspace_id,
        body.name,
        request.token.id,
        type=body.type,
        ip_policy=body.ip_policy,
        allowed_origins=body.allowed_origins,
        bot_policy=body.bot_policy,
        cookieless=body.cookieless,
    )


def get_source(request: ApiRequest) -> EventSource:
    return request.services.sources.get(request.workspace_id, request.params["key_id"])


def source_privacy(source: EventSource) -> SourcePrivacy:
    return SourcePrivacy(
        source_id=source.id,
        ip_policy=source.ip_policy,
        bot_policy=source.bot_policy,
        cookieless=source.cookieless,
        updated_at=source.updated_at,
    )


def get_source_privacy(request: ApiRequest) -> SourcePrivacy:
    return source_privacy(get_source(request))


def update_source_privacy(request: ApiRequest) -> SourcePrivacy:
    body: SourcePrivacyUpdate = request.body
    source = request.services.sources.set_privacy(
        request.workspace_id,
        request.params["key_id"],
        ip_policy=body.ip_policy,
        bot_policy=body.bot_policy,
        cookieless=body.cookieless,
    )
    return source_privacy(source)


def source_origins(source: EventSource) -> SourceOrigins:
    return SourceOrigins(
        source_id=source.id, allowed_origins=source.allowed_origins, updated_at=source.updated_at
    )


def get_source_origins(request: ApiRequest) -> SourceOrigins:
    return source_origins(get_source(request))


def update_source_origins(request: ApiRequest) -> SourceOrigins:
    body: SourceOriginsUpdate = request.body
    source = request.services.sources.set_allowed_origins(
        request.workspace_id, request.params["key_id"], body.allowed_origins
    )
    return source_origins(source)


def source_rate_limit(source: EventSource) -> SourceRateLimit:
    return SourceRateLimit(
        source_id=source.id,
        rate_limit=source.rate_limit,
        window_seconds=WINDOW_SECONDS,
        updated_at=source.updated_at,
    )


def get_source_rate_limit(request: ApiRequest) -> SourceRateLimit:
    return source_rate_limit(get_source(request))


def update_source_rate_limit(request: ApiRequest) -> SourceRateLimit:
    body: SourceRateLimitUpdate = request.body
    limit = body.rate_limit.limit() if body.rate_limit is not None else None
    source = request.services.sources.set_rate_limit(
        request.workspace_id, request.params["key_id"], limit
    )
    return source_rate_limit(source)


def revoke_source(request: ApiRequest) -> EventSource:
    return request.services.sources.revoke(request.workspace_id, request.params["key_id"])


class TestEventAccepted(BaseModel):
    """The test event's id: trace it, or watch for it in the live stream and debugger."""

    messageId: str
    status: Literal["accepted"]


def send_test_event(request: ApiRequest) -> TestEventAccepted:
    source = request.services.sources.get(request.workspace_id, request.params["key_id"])
    message_id = request.services.ingest.send_test_event(source, request.client_ip)
    return TestEventAccepted(messageId=message_id, status="accepted")


class WebhookSettingsUpdate(WebhookSettings):
    """A webhook source's settings as sent: every field optional (an omitted one takes its
    default), except that an omitted `secret` keeps the stored one and `null` clears it."""

    model_config = ConfigDict(extra="forbid")

    secret: SecretStr | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="The signing secret the provider shows (Stripe's whsec_..., GitHub's and "
        "Shopify's webhook secret): write-only, never answered; omitted: the stored one stays",
    )


class WebhookSettingsAnswer(BaseModel):
    """A webhook source's settings, the secret only as `secret_set`."""

    source_id: str
    url_path: str = Field(description="Where the provider posts: the ingest host + this path")
    settings: dict[str, Any] = Field(
        description="The WebhookSettings fields (docs/WEBHOOKS.md), without the secret"
    )
    secret_set: bool
    signature_failures: int = Field(
        description="Requests refused for their signature (ingest adds them within 10 s)"
    )
    updated_at: Timestamp


def webhook_answer(source: EventSource) -> WebhookSettingsAnswer:
    settings = source.webhook or WebhookSettings()
    return WebhookSettingsAnswer(
        source_id=source.id,
        url_path=f"/v1/webhook/{source.key}",
        settings=settings.public(),
        secret_set=settings.secret is not None,
        signature_failures=source.webhook_signature_failures,
        updated_at=source.updated_at,
    )


def get_webhook(request: ApiRequest) -> WebhookSettingsAnswer:
    source = request.services.sources.webhook_source(request.workspace_id, request.params["key_id"])
    return webhook_answer(source)


def update_webhook(request: ApiRequest) -> WebhookSettingsAnswer:
    body: WebhookSettingsUpdate = request.body
    # The source first: another workspace's source is a 404 whatever the body says.
    request.services.sources.webhook_source(request.workspace_id, request.params["key_id"])
    if body.transformation_id is not None:
        try:
            request.services.transformations.get(request.workspace_id, body.transformation_id)
        except NotFound:
            raise InvalidRequest(
                f"transformation_id: no transformation {body.transformation_id} in this workspace",
                field="transformation_id",
            ) from None
    settings = WebhookSettings.model_validate(body.model_dump())
    source = request.services.sources.set_webhook(
        request.workspace_id,
        request.params["key_id"],
        settings,
        keep_secret="secret" not in body.model_fields_set,
    )
    return webhook_answer(source)


class TestWebhookRequest(Input):
    body: Any = Field(
        None, description="The request's JSON body; omitted: a sample (a small JSON object)"
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Headers to send with it (e.g. X-GitHub-Event); the signature is added",
    )


class TestWebhookAccepted(BaseModel):
    """The test request's messageId: trace it, or watch for it in the debugger."""

    status: Literal[200]
    message_id: str


def send_test_webhook(request: ApiRequest) -> TestWebhookAccepted:
    body: TestWebhookRequest = request.body
    source = request.services.sources.get(request.workspace_id, request.params["key_id"])
    message_id = request.services.ingest.send_test_webhook(
        source, body.body, body.headers, request.client_ip
    )
    return TestWebhookAccepted(status=200, message_id=message_id)


ROUTES = (
    Route(
        "GET",
        BASE,
        FUNCTION,
        "listEventSources",
        "List event sources",
        list_sources,
        query=SourceListQuery,
        response=list[EventSourceObject],
        response_headers=PAGE_HEADERS,
        tag="Event Sources",
    ),
    Route(
        "POST",
        BASE,
        FUNCTION,
        "createEventSource",
        "Create an event source (and its Pub/Sub topic)",
        create_source,
        body=EventSourceCreate,
        response=EventSourceObject,
        status=201,
        tag="Event Sources",
    ),
    Route(
        "GET",
        BASE + "/{key_id}",
        FUNCTION,
        "getEventSource",
        "Get an event source",
        get_source,
        response=EventSourceObject,
        tag="Event Sources",
    ),
    Route(
        "DELETE",
        BASE + "/{key_id}",
        FUNCTION,
        "revokeEventSource",
        "Revoke an event source: its key stops working for ingest within 10 s",
        revoke_source,
        response=EventSourceObject,
        tag="Event Sources",
    ),
    Route(
        "POST",
        BASE + "/{key_id}/test-event",
        FUNCTION,
        "sendTestEvent",
        "Send a test event through the source (409 when the source is revoked)",
        send_test_event,
        rate_limited=True,
        response=TestEventAccepted,
        status=202,
        tag="Event Sources",
    ),
    Route(
        "GET",
        BASE + "/{key_id}/privacy",
        FUNCTION,
        "getEventSourcePrivacy",
        "Get an event source's privacy settings: IP policy, bot policy, cookieless mode",
        get_source_privacy,
        response=SourcePrivacy,
        tag="Event Sources",
    ),
    Route(
        "PUT",
        BASE + "/{key_id}/privacy",
        FUNCTION,
        "updateEventSourcePrivacy",
        "Set an event source's privacy settings: they apply within 10 s (the IP policy and "
        "cookieless mode in ingest, before publishing; the bot policy in process)",
        update_source_privacy,
        body=SourcePrivacyUpdate,
        response=SourcePrivacy,
        tag="Event Sources",
    ),
    Route(
        "GET",
        BASE + "/{key_id}/origins",
        FUNCTION,
        "getEventSourceOrigins",
        "Get the web origins that may send with an event source's key",
        get_source_origins,
        response=SourceOrigins,
        tag="Event Sources",
    ),
    Route(
        "PUT",
        BASE + "/{key_id}/origins",
        FUNCTION,
        "updateEventSourceOrigins",
        "Set the web origins that may send with an event source's key (empty: any); ingest "
        "applies them within 10 s",
        update_source_origins,
        body=SourceOriginsUpdate,
        response=SourceOrigins,
        tag="Event Sources",
    ),
    Route(
        "GET",
        BASE + "/{key_id}/rate-limit",
        FUNCTION,
        "getEventSourceRateLimit",
        "Get an event source's rate limit (events per second; null: none)",
        get_source_rate_limit,
        response=SourceRateLimit,
        tag="Event Sources",
    ),
    Route(
        "PUT",
        BASE + "/{key_id}/rate-limit",
        FUNCTION,
        "updateEventSourceRateLimit",
        "Set an event source's rate limit (null: none); ingest applies it within 10 s, "
        "answering 429 with Retry-After over it",
        update_source_rate_limit,
        body=SourceRateLimitUpdate,
        response=SourceRateLimit,
        tag="Event Sources",
    ),
    Route(
        "GET",
        BASE + "/{key_id}/webhook",
        FUNCTION,
        "getEventSourceWebhook",
        "Get a webhook source's URL and settings (409 for a source of another type)",
        get_webhook,
        response=WebhookSettingsAnswer,
        tag="Event Sources",
    ),
    Route(
        "PUT",
        BASE + "/{key_id}/webhook",
        FUNCTION,
        "updateEventSourceWebhook",
        "Set a webhook source's mapping and signature settings (the secret is write-only); "
        "ingest applies them within 10 s",
        update_webhook,
        body=WebhookSettingsUpdate,
        response=WebhookSettingsAnswer,
        tag="Event Sources",
    ),
    Route(
        "POST",
        BASE + "/{key_id}/test-webhook",
        FUNCTION,
        "sendTestWebhook",
        "Post a test request through a webhook source's own path, signed with its secret",
        send_test_webhook,
        body=TestWebhookRequest,
        body_required=False,
        rate_limited=True,
        response=TestWebhookAccepted,
        tag="Event Sources",
    ),
)
