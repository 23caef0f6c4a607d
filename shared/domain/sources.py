"""Event sources and workspaces: the records that own write keys, topics and tokens."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from shared.domain.privacy import IpPolicy
from shared.domain.rate_limit import RateLimit
from shared.domain.webhooks import WebhookSettings

SourceStatus = Literal["active", "revoked"]
SourceType = Literal["javascript", "server", "mobile", "webhook"]
# What process does with a bot's or crawler's events (docs/PRIVACY.md): `keep` them (tagged
# context.bot = true), store them only (never forwarded), or drop them (recorded, counted).
BotPolicy = Literal["keep", "store_only", "drop"]
BOT_POLICIES: tuple[BotPolicy, ...] = ("keep", "store_only", "drop")


class Workspace(BaseModel):
    """A tenant: every configuration record belongs to exactly one."""

    id: str
    name: str
    created_at: str


class ApiToken(BaseModel):
    """A management API token's stored record (the token itself is never stored)."""

    id: str
    workspace_id: str
    name: str
    created_at: str
    # Refused from then on; None never expires.
    expires_at: str | None = None
    # Written at most once a minute per instance (shared/services/workspaces.py).
    last_used_at: str | None = None


class EventSource(BaseModel):
    """A source of events: a write key, a status and the Pub/Sub topic its events go to."""

    id: str
    workspace_id: str
    name: str
    type: SourceType = "server"
    key: str
    status: SourceStatus
    pubsub_topic: str
    last_used_at: str | None = None
    created_by: str
    created_at: str
    updated_at: str
    # What ingest does with `context.ip` (docs/PRIVACY.md); not part of the seed's object.
    ip_policy: IpPolicy = "keep"
    # What process does with bots' events, and whether ingest replaces the anonymousId by a
    # daily-rotating hash (docs/PRIVACY.md); not part of the seed's object either.
    bot_policy: BotPolicy = "keep"
    cookieless: bool = False
    # The web pages' origins that may send with this key (canonical, shared/domain/origins.py);
    # empty: any. Not part of the seed's object either.
    allowed_origins: list[str] = Field(default_factory=list)
    # The events per second ingest admits for this source (shared/domain/rate_limit.py); None:
    # no limit. Not part of the seed's object either.
    rate_limit: RateLimit | None = None
    # A webhook source's settings (shared/domain/webhooks.py); None for the other types, and
    # for a webhook source not configured yet (it then maps without code and checks no
    # signature).
    webhook: WebhookSettings | None = None
    # Webhook requests refused for their signature: ingest adds to it (at most one write per
    # source and interval), the webhook settings' GET answers it.
    webhook_signature_failures: int = 0

    def write_key_record(self) -> WriteKey:
        """What ingest needs to accept events for this source."""
        return WriteKey(
            workspace_id=self.workspace_id,
            source_id=self.id,
            status=self.status,
            pubsub_topic=self.pubsub_topic,
            ip_policy=self.ip_policy,
            cookieless=self.cookieless,
            bot_policy=self.bot_policy,
            allowed_origins=list(self.allowed_origins),
            rate_limit=self.rate_limit,
            type=self.type,
            webhook=self.webhook,
        )

    def stored(self) -> dict[str, Any]:
        """The source's document, the webhook secret revealed: for storage only."""
        return _stored(self)


class WriteKey(BaseModel):
    """What ingest needs of a write key; stored under the key itself, for one-read lookups."""

    workspace_id: str
    source_id: str
    status: SourceStatus
    pubsub_topic: str
    ip_policy: IpPolicy = "keep"
    # Whether ingest replaces the anonymousId by a daily-rotating hash (docs/PRIVACY.md).
    cookieless: bool = False
    # Carried to process in each message's attributes, so that applying it costs no read.
    bot_policy: BotPolicy = "keep"
    # Carried here, in the record ingest caches, so the origin check costs no read of its own.
    allowed_origins: list[str] = Field(default_factory=list)
    # Carried here too, so that enforcing the rate limit costs no read either.
    rate_limit: RateLimit | None = None
    # Carried here so that ingest tells webhook sources from the others, and verifies a webhook
    # request's signature, with the one read it already makes.
    type: SourceType = "server"
    webhook: WebhookSettings | None = None

    def stored(self) -> dict[str, Any]:
        """The write key's document, the webhook secret revealed: for storage only."""
        return _stored(self)


def _stored(record: EventSource | WriteKey) -> dict[str, Any]:
    # model_dump keeps a SecretStr as it is, which no store can hold (and which must never be
    # dumped for an answer): the secret is revealed here, for the store alone.
    data = record.model_dump(exclude={"webhook"})
    data["webhook"] = record.webhook.stored() if record.webhook is not None else None
    return data


def source_topic_id(source_id: str) -> str:
    """The Pub/Sub topic id of a source (topic ids must start with a letter)."""
    return f"streams-source-{source_id}"


def process_subscription_id(source_id: str) -> str:
    """The subscription that pushes a source's topic to the process function."""
    return f"streams-process-{source_id}"


WRITE_KEYS = "write_keys"


def workspace_path(workspace_id: str) -> str:
    return f"workspaces/{workspace_id}"


def source_path(workspace_id: str, source_id: str) -> str:
    return f"{sources_collection(workspace_id)}/{source_id}"


def sources_collection(workspace_id: str) -> str:
    return f"workspaces/{workspace_id}/event_sources"


def write_key_path(key: str) -> str:
    return f"{WRITE_KEYS}/{key}"


def token_path(hashed: str) -> str:
    return f"api_tokens/{hashed}"
