"""Webhook: POST (or PUT) the canonical event as JSON to a customer URL, signed with HMAC-SHA256.

Signature scheme (Stripe-style, replay-resistant). Every request carries

    X-Streams-Timestamp: <unix seconds when the request was built>
    X-Streams-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body bytes>")>

A receiver recomputes the HMAC over the timestamp header, a literal ".", and the exact body bytes
(before any JSON parsing), compares in constant time, and rejects timestamps outside a tolerance
(5 minutes by default) so a captured request cannot be replayed later. `verify_signature` does all
three. `Idempotency-Key` and `X-Streams-Message-Id` carry the event's messageId: a retried delivery
repeats it, so receivers can deduplicate.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator

from shared.destinations.base import (
    HEADER_NAME,
    About,
    DestinationConfig,
    OutboundRequest,
    PerEventConnector,
    check_http_url,
    expect_config,
    json_bytes,
)
from shared.domain.event import CanonicalEvent

USER_AGENT = "Streams/1"
SIGNATURE_HEADER = "X-Streams-Signature"
TIMESTAMP_HEADER = "X-Streams-Timestamp"
MESSAGE_ID_HEADER = "X-Streams-Message-Id"
DEFAULT_TOLERANCE_SECONDS = 300
MAX_EXTRA_HEADERS = 20
MAX_HEADER_VALUE_CHARS = 4096

# Headers Streams sets itself, or that control message framing: a custom header may not
# replace them (a forged signature or a smuggled Content-Length would defeat their purpose).
RESERVED_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "content-encoding",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "expect",
        "host",
        "user-agent",
        "idempotency-key",
    }
)
RESERVED_HEADER_PREFIXES = ("x-streams-", "proxy-")


class WebhookConfig(DestinationConfig):
    """Where to send, how to sign; `secret` and `headers` are write-only."""

    ADDRESS_FIELDS: ClassVar[tuple[str, ...]] = ("url",)
    # Custom headers usually carry credentials for `url`; the HMAC secret itself is never sent.
    SENT_SECRETS: ClassVar[tuple[str, ...]] = ("headers",)

    url: str
    secret: Annotated[SecretStr, Field(min_length=16, max_length=256)]
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    method: Literal["POST", "PUT"] = "POST"
    timeout_seconds: Annotated[int, Field(ge=1, le=30)] = 10

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_http_url(value)

    @field_validator("method", mode="before")
    @classmethod
    def _method(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        if len(value) > MAX_EXTRA_HEADERS:
            raise ValueError(f"at most {MAX_EXTRA_HEADERS} headers")
        seen: set[str] = set()
        for name, secret in value.items():
            lowered = name.lower()
            if not HEADER_NAME.match(name) or len(name) > 100:
                raise ValueError(f"{name[:100]!r} is not a valid header name")
            if lowered in RESERVED_HEADERS or lowered.startswith(RESERVED_HEADER_PREFIXES):
                raise ValueError(f"{name!r} is set by Streams and cannot be overridden")
            if lowered in seen:
                raise ValueError(f"{name!r} is given twice")
            seen.add(lowered)
            header_value = secret.get_secret_value()
            # CR/LF/NUL would let a value inject headers; other controls are invalid too.
            if any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in header_value):
                raise ValueError(f"the value of {name!r} contains control characters")
            # HTTP sends header values as bytes: beyond ASCII there is no encoding every server
            # reads alike (and one deliver cannot encode stops every delivery of the config).
            if not header_value.isascii():
                raise ValueError(f"the value of {name!r} must be plain ASCII text")
            if len(header_value) > MAX_HEADER_VALUE_CHARS:
                raise ValueError(f"the value of {name!r} is too long")
        return value


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The X-Streams-Signature value for a body sent at `timestamp` (unix seconds)."""
    payload = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(
    secret: str,
    timestamp: int | str,
    body: bytes,
    header: str,
    *,
    tolerance_seconds: int | None = DEFAULT_TOLERANCE_SECONDS,
    now: datetime | None = None,
) -> bool:
    """True if `header` signs `body` at `timestamp` with `secret`, and the timestamp is fresh.

    `header` may list several comma-separated `sha256=` values (one per secret during a
    rotation); any match is enough. `tolerance_seconds=None` skips the freshness check.
    """
    try:
        sent_at = int(str(timestamp).strip())
    except ValueError:
        return False
    if tolerance_seconds is not None:
        current = (now or datetime.now(UTC)).timestamp()
        if abs(current - sent_at) > tolerance_seconds:
            return False
    expected = sign(secret, sent_at, body)
    candidates = [part.strip() for part in header.split(",")]
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)


class WebhookConnector(PerEventConnector):
    """Sends the canonical event unchanged; every event type is delivered."""

    type = "webhook"
    config_model = WebhookConfig
    about = About(
        description="The canonical event as signed JSON to any HTTPS endpoint",
        docs_url="docs/DESTINATIONS.md#webhook",
        event_types=("track", "identify", "page", "screen", "group", "alias"),
    )

    def build(self, event: CanonicalEvent, config: BaseModel, *, now: datetime) -> OutboundRequest:
        cfg = expect_config(config, WebhookConfig)
        body = json_bytes(event)
        timestamp = int(now.timestamp())
        secret = cfg.secret.get_secret_value()
        message_id = str(event.get("messageId") or "")
        headers = {name: value.get_secret_value() for name, value in cfg.headers.items()}
        headers.update(
            {
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                "Idempotency-Key": message_id,
                MESSAGE_ID_HEADER: message_id,
                TIMESTAMP_HEADER: str(timestamp),
                SIGNATURE_HEADER: sign(secret, timestamp, body),
            }
        )
        return OutboundRequest(
            method=cfg.method,
            url=cfg.url,
            headers=headers,
            body=body,
            timeout_seconds=float(cfg.timeout_seconds),
            redact=(secret, *(v.get_secret_value() for v in cfg.headers.values())),
        )
