"""Slack: one message per event to an incoming webhook, from a template per event name.

Config: `webhook_url` (write-only: the URL carries the webhook's token), `templates` {event name:
template}, an optional `default_template` for names without one, and `event_types` (the calls
that may post; all six by default). The name an event's template is looked up by:
- track -> its event name ("Order Completed");
- page/screen -> "Viewed <name> Page/Screen", or "Loaded a Page/Screen" without a name;
- identify, group, alias -> the call's type: "identify", "group", "alias".
An event whose type is filtered out, or with neither a template nor a default, is skipped.

Templates: `{{path.to.value}}` is replaced by the value at that dotted path in the canonical
event (properties.total, traits.email, context.page.url, userId, event, products.0.name for list
items); a missing value is empty text, an object or list is compact JSON. Nothing else is
interpreted: no expressions, no filters, no code. Substituted values are escaped for Slack (&,
< and > as &amp; &lt; &gt;), so an event cannot inject a mention (<!channel>) or a link; the
template's own text is the author's, and may use Slack's mrkdwn. Request: `POST webhook_url`,
`{"text": message}` (Slack truncates text past 40,000 characters; Streams cuts it there itself).

Slack allows 1 message a second per webhook (short bursts tolerated) and answers 429 past it.
Errors are a status with a plain-text code: 400 invalid_payload / no_text / user_not_found,
403 action_prohibited / invalid_token, 404 channel_not_found / no_service, 410
channel_is_archived are permanent; 429 and 5xx (rollup_error) are retried.
No deletion hook: a webhook cannot delete messages, and Slack keeps them by channel, not by
user, so the catalogue lists no deletion and a regulation names Slack for manual action.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, ClassVar
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, StringConstraints, field_validator

from shared.destinations.base import (
    EVENT_TYPES,
    About,
    Batching,
    DestinationConfig,
    EventType,
    OutboundRequest,
    Part,
    RateLimit,
    check_http_url,
    expect_config,
    json_bytes,
    page_or_screen_name,
)
from shared.domain.event import CanonicalEvent
from shared.ports import SendResult, SendStatus

MAX_TEXT_CHARS = 40_000
MAX_TEMPLATES = 200
MAX_TEMPLATE_CHARS = 4_000

PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")

# Slack's documented webhook error codes (the answer's plain-text body).
PERMANENT_ERRORS = frozenset(
    {
        "invalid_payload",
        "no_text",
        "user_not_found",
        "action_prohibited",
        "invalid_token",
        "posting_to_general_channel_denied",
        "team_disabled",
        "channel_not_found",
        "no_service",
        "no_active_hooks",
        "channel_is_archived",
    }
)
TRANSIENT_ERRORS = frozenset({"rollup_error"})

TemplateName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Template = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEMPLATE_CHARS)]


class SlackConfig(DestinationConfig):
    """The incoming webhook URL (write-only), message templates and the event types to post."""

    # The URL is itself the secret: a new URL is a new secret, entered with it, so no stored
    # credential can follow a changed address (and an update may omit it to keep it).
    ADDRESS_FIELDS: ClassVar[tuple[str, ...]] = ()
    SENT_SECRETS: ClassVar[tuple[str, ...]] = ()

    webhook_url: SecretStr
    templates: Annotated[dict[TemplateName, Template], Field(max_length=MAX_TEMPLATES)] = Field(
        default_factory=dict
    )
    default_template: Template | None = None
    event_types: Annotated[list[EventType], Field(min_length=1)] = Field(
        default_factory=lambda: list(EVENT_TYPES)
    )

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: SecretStr) -> SecretStr:
        # https://hooks.slack.com/services/... in practice; any http(s) URL for proxies and tests
        # (the send-time guard still refuses private addresses).
        check_http_url(value.get_secret_value())
        return value

    @field_validator("event_types")
    @classmethod
    def _unique(cls, value: list[EventType]) -> list[EventType]:
        if len(set(value)) != len(value):
            raise ValueError("must not repeat an event type")
        return value


def template_name(event: CanonicalEvent) -> str:
    """The name an event's template is looked up by."""
    kind = str(event.get("type"))
    if kind == "track":
        return str(event.get("event"))
    if kind in ("page", "screen"):
        return page_or_screen_name(event)
    return kind


def escape(value: str) -> str:
    """Slack's three control characters, escaped as its formatting docs require."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _lookup(event: CanonicalEvent, path: str) -> Any:
    current: Any = event
    for segment in path.split("."):
        key = segment.strip()
        if isinstance(current, dict):
            current = current.get(key)
        elif (
            isinstance(current, list)
            and key.isascii()
            and key.isdigit()
            and int(key) < len(current)
        ):
            current = current[int(key)]
        else:
            return None
    return current


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return json_bytes(value).decode("utf-8")


def render(template: str, event: CanonicalEvent) -> str:
    """The template with each {{path}} replaced by the escaped value (empty when missing)."""
    text = PLACEHOLDER.sub(lambda match: escape(_as_text(_lookup(event, match[1]))), template)
    if len(text) <= MAX_TEXT_CHARS:
        return text
    cut = text[:MAX_TEXT_CHARS]
    # Never end on half an escape (&amp; cut to &am): Slack would show the fragment.
    ampersand = cut.rfind("&", max(0, len(cut) - 5))
    if ampersand != -1 and ";" not in cut[ampersand:]:
        cut = cut[:ampersand]
    return cut


class SlackConnector:
    """Slack incoming webhooks: one templated message per event, one request each."""

    type = "slack"
    config_model = SlackConfig
    about = About(
        description="Chat alerts: a templated message per event to a Slack incoming webhook",
        docs_url="https://docs.slack.dev/messaging/sending-messages-using-incoming-webhooks",
        event_types=EVENT_TYPES,
        batching=Batching(max_parts=1),
        # Slack's limit for incoming webhooks: 1 message per second, short bursts allowed.
        rate_limit=RateLimit(requests=1, per_seconds=1.0),
    )

    def parts(self, event: CanonicalEvent, config: BaseModel, *, now: datetime) -> list[Part]:
        cfg = expect_config(config, SlackConfig)
        if event.get("type") not in cfg.event_types:
            return []
        template = cfg.templates.get(template_name(event), cfg.default_template)
        if template is None:
            return []
        return [Part("message", {"text": render(template, event)})]

    def request(
        self, key: str, payloads: Sequence[Any], config: BaseModel, *, now: datetime
    ) -> OutboundRequest:
        cfg = expect_config(config, SlackConfig)
        [message] = payloads  # max_parts 1: a webhook posts one message per request
        url = cfg.webhook_url.get_secret_value()
        token_path = urlsplit(url).path
        return OutboundRequest(
            method="POST",
            url=url,
            headers={"Content-Type": "application/json"},
            body=json_bytes(message),
            redact=tuple(secret for secret in (url, token_path) if len(secret) > 1),
        )

    def classify(self, result: SendResult) -> SendStatus | None:
        code = result.body[:100].decode("utf-8", errors="replace").strip()
        if code in TRANSIENT_ERRORS:
            return "retry"
        # Slack's documented refusals are permanent whatever status carries them (a 5xx with
        # one would otherwise be retried for hours); 429 and other 5xx keep their default.
        if code in PERMANENT_ERRORS:
            return "failed"
        return None
