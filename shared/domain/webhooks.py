"""Webhook sources (issue 26): any service's webhook requests become events.

The shape every part agrees on:

- A source of type `webhook` has `WebhookSettings` (how a request becomes events, how its
  signature is checked). They are stored on the source and, for ingest's one-read lookup, on its
  write key record; the secret is write-only (never answered, never logged).
- Ingest (`POST /v1/webhook/{writeKey}`, or `?writeKey=`) verifies the signature on the raw
  body, then publishes the request, unmapped, as one *webhook request* inside the ordinary source
  message: a `CanonicalEvent`-shaped dict with `type` `WEBHOOK_REQUEST_TYPE`, its `messageId` the
  provider's delivery id when there is one (else a new id), `workspaceId`, `sourceId`,
  `receivedAt`, and `request` = `WebhookRequest.as_json()`.
- Process maps each webhook request to events before anything else (no code: `map_request`;
  with code: the source's transformation in the sandbox). A request that cannot be mapped is
  dead-lettered whole, with the reason, and a replay of that dead letter maps it again.
- The events' messageIds derive from the request's: one event keeps it, several get `:<n>`
  suffixes, so a provider's retry of the same delivery is a duplicate of every event it made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr

# The `type` of a webhook request while it rides a source message to process.
WEBHOOK_REQUEST_TYPE = "webhook_request"

WebhookProvider = Literal["none", "stripe", "github", "shopify", "hmac"]
EventNameFrom = Literal["path", "header", "fixed"]


class WebhookSettings(BaseModel):
    """How a webhook source's requests are verified and mapped."""

    # Where the track event's name comes from: a dotted JSON path in the body ("type" for
    # Stripe), a request header ("X-GitHub-Event"), or a fixed name.
    event_name_from: EventNameFrom = "fixed"
    event_name: str = Field(default="Webhook Received", min_length=1, max_length=200)
    # A dotted JSON path in the body to the user id (e.g. "data.object.customer"); None: the
    # events are anonymous, their anonymousId the request's messageId.
    user_id_path: str | None = Field(default=None, max_length=200)
    # A transformation (`function transform(request)`) mapping a request to Segment calls;
    # None maps without code, by the fields above.
    transformation_id: str | None = None
    signature: WebhookProvider = "none"
    # The header holding the signature, for `hmac` (hex HMAC-SHA256 of the raw body).
    signature_header: str | None = Field(default=None, max_length=100)
    # Write-only: verified against, never answered.
    secret: SecretStr | None = None
    # Stripe's timestamp tolerance.
    tolerance_seconds: int = Field(default=300, ge=1, le=86_400)

    def stored(self) -> dict[str, Any]:
        """The settings for storage, the secret revealed: never for answers or logs."""
        data = self.model_dump(exclude={"secret"})
        data["secret"] = self.secret.get_secret_value() if self.secret is not None else None
        return data

    def public(self) -> dict[str, Any]:
        """The settings as the API answers them: without the secret."""
        return self.model_dump(mode="json", exclude={"secret"})


@dataclass(frozen=True)
class WebhookRequest:
    """A verified webhook request, as ingest publishes it: header names lower-cased (without
    credentials: Authorization and the signature header are left out), the query without the
    write key, the body parsed (JSON, or a form as a dict of strings)."""

    headers: dict[str, str]
    query: dict[str, str]
    body: Any
    content_type: str
    delivery_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "headers": self.headers,
            "query": self.query,
            "body": self.body,
            "content_type": self.content_type,
            "delivery_id": self.delivery_id,
        }


def request_item(
    request: WebhookRequest,
    message_id: str,
    workspace_id: str,
    source_id: str,
    received_at: str,
    client_ip: str | None,
) -> dict[str, Any]:
    """The webhook request as ingest publishes it in a source message. `context.ip` holds the
    sender's address so that the source's IP policy applies to it as to any event's."""
    return {
        "type": WEBHOOK_REQUEST_TYPE,
        "messageId": message_id,
        "workspaceId": workspace_id,
        "sourceId": source_id,
        "receivedAt": received_at,
        "timestamp": received_at,
        "context": {"ip": client_ip} if client_ip else {},
        "request": request.as_json(),
    }
