"""Webhook signatures and delivery ids: each provider's documented scheme, on the raw body.

Every scheme is an HMAC-SHA256 keyed with the source's secret, computed over the body's bytes
exactly as they arrived (parsing and re-encoding would change them):

- Stripe: `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]`, the HMAC of
  `"<t>.<body>"`; every `v1` is a candidate (Stripe sends several while a secret is rolled), and
  `t` must be within the source's tolerance of now, so a captured request cannot be replayed.
- GitHub: `X-Hub-Signature-256: sha256=<hex HMAC of the body>`.
- Shopify: `X-Shopify-Hmac-Sha256: <base64 HMAC of the body>`.
- hmac (any other sender): the hex HMAC of the body in the header the source names.

Signatures are compared in constant time (`hmac.compare_digest`): a comparison that stops at the
first differing character tells an attacker, by its timing, how much of a forgery is right.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from shared.domain.errors import Unauthorized
from shared.domain.webhooks import WebhookProvider, WebhookSettings

# The header each provider signs in (the `hmac` scheme's is the source's own setting).
SIGNATURE_HEADERS: dict[WebhookProvider, str] = {
    "stripe": "Stripe-Signature",
    "github": "X-Hub-Signature-256",
    "shopify": "X-Shopify-Hmac-Sha256",
}
# The header carrying each provider's delivery id, the same on every retry of one delivery
# (Stripe's is the event's `id` in the body instead).
DELIVERY_ID_HEADERS: dict[WebhookProvider, str] = {
    "github": "X-GitHub-Delivery",
    "shopify": "X-Shopify-Webhook-Id",
}
GITHUB_PREFIX = "sha256="


def signature_header(settings: WebhookSettings) -> str | None:
    """The header holding the request's signature; None when the source checks none."""
    if settings.signature == "hmac":
        return settings.signature_header
    return SIGNATURE_HEADERS.get(settings.signature)


def _digest(secret: str, payload: bytes) -> bytes:
    return hmac.new(secret.encode(), payload, hashlib.sha256).digest()


def verify(settings: WebhookSettings, headers: Mapping[str, str], body: bytes, now: int) -> None:
    """Check the request's signature (`headers` keyed by lower-cased name, `body` the raw bytes,
    `now` in Unix seconds); `Unauthorized` naming the header when it is missing or wrong."""
    header = signature_header(settings)
    if settings.signature == "none" or header is None:
        return
    sent = headers.get(header.lower(), "").strip()
    if not sent:
        raise Unauthorized(f"{header}: the signature header is missing", field=header)
    if settings.secret is None:
        # The settings API refuses this; a record stored otherwise must still never pass.
        raise Unauthorized(f"{header}: this source has no secret to verify with", field=header)
    secret = settings.secret.get_secret_value()
    if settings.signature == "stripe":
        _verify_stripe(header, sent, secret, body, now, settings.tolerance_seconds)
        return
    expected = _digest(secret, body)
    if settings.signature == "shopify":
        matches = hmac.compare_digest(sent.encode(), base64.b64encode(expected))
    else:
        if settings.signature == "github":
            if not sent.startswith(GITHUB_PREFIX):
                raise Unauthorized(f"{header}: must start with {GITHUB_PREFIX}", field=header)
            sent = sent.removeprefix(GITHUB_PREFIX)
        # Hex digits in either case are the same signature.
        matches = hmac.compare_digest(sent.lower().encode(), expected.hex().encode())
    if not matches:
        raise Unauthorized(f"{header}: the signature does not match the body", field=header)


def _verify_stripe(
    header: str, sent: str, secret: str, body: bytes, now: int, tolerance_seconds: int
) -> None:
    timestamp: int | None = None
    candidates: list[str] = []
    for element in sent.split(","):
        name, _, value = element.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise Unauthorized(f"{header}: needs a timestamp t= and a v1= signature", field=header)
    if abs(now - timestamp) > tolerance_seconds:
        raise Unauthorized(
            f"{header}: the timestamp is more than {tolerance_seconds} s from now "
            "(a replayed or delayed request)",
            field=header,
        )
    expected = _digest(secret, f"{timestamp}.".encode() + body).hex().encode()
    # Every candidate is compared, even after a match, so timing says nothing of which matched.
    matched = [hmac.compare_digest(candidate.encode(), expected) for candidate in candidates]
    if not any(matched):
        raise Unauthorized(f"{header}: no v1 signature matches the body", field=header)


def sign(settings: WebhookSettings, body: bytes, now: int) -> dict[str, str]:
    """The signature header the provider would send with `body` (none when the source checks
    none): the test request signs itself with the stored secret, so it passes `verify` exactly
    as the provider's would."""
    header = signature_header(settings)
    if settings.signature == "none" or header is None or settings.secret is None:
        return {}
    secret = settings.secret.get_secret_value()
    if settings.signature == "stripe":
        signed = _digest(secret, f"{now}.".encode() + body).hex()
        return {header: f"t={now},v1={signed}"}
    digest = _digest(secret, body)
    if settings.signature == "shopify":
        return {header: base64.b64encode(digest).decode()}
    if settings.signature == "github":
        return {header: GITHUB_PREFIX + digest.hex()}
    return {header: digest.hex()}


def delivery_id(provider: WebhookProvider, headers: Mapping[str, str], body: Any) -> str | None:
    """The provider's id of this delivery, the same on each of its retries; None when the
    provider sends none (each request is then its own delivery). `headers` lower-cased."""
    if provider == "stripe":
        # A Stripe event's id (`evt_...`): each retry resends the same event.
        event_id = body.get("id") if isinstance(body, dict) else None
        return event_id if isinstance(event_id, str) and event_id else None
    header = DELIVERY_ID_HEADERS.get(provider)
    if header is None:
        return None
    return headers.get(header.lower(), "").strip() or None
