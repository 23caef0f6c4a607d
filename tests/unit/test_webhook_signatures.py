"""Each provider's documented signature scheme, computed here from its documentation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest

from shared.domain.errors import Unauthorized
from shared.domain.webhook_signatures import delivery_id, sign, verify
from shared.domain.webhooks import WebhookSettings

NOW = int(time.time())

# GitHub's own test vector ("Validating webhook deliveries"): this secret and payload must give
# this X-Hub-Signature-256.
GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_PAYLOAD = b"Hello, World!"
GITHUB_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

# Stripe's sample event (Event object, `payment_intent.succeeded`), as its JSON arrives.
STRIPE_SECRET = "whsec_test_secret"
STRIPE_EVENT = json.dumps(
    {
        "id": "evt_1NG8Du2eZvKYlo2CUI79vXWy",
        "object": "event",
        "api_version": "2019-02-19",
        "created": 1686089970,
        "data": {"object": {"id": "pi_1", "object": "payment_intent", "amount": 2000}},
        "livemode": False,
        "type": "payment_intent.succeeded",
    },
    indent=2,
).encode()

# Shopify's orders/create sample (abridged), signed with the app's client secret.
SHOPIFY_SECRET = "shpss_test_secret"
SHOPIFY_ORDER = b'{"id":820982911946154508,"email":"jon@example.com","total_price":"199.65"}'


def stripe_header(payload: bytes, secret: str, timestamp: int) -> str:
    """Stripe's documented scheme: v1 = hex HMAC-SHA256 of "<t>.<payload>"."""
    signed = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={signed.hexdigest()}"


def shopify_header(payload: bytes, secret: str) -> str:
    """Shopify's documented scheme: base64 of the HMAC-SHA256 of the raw body."""
    return base64.b64encode(hmac.new(secret.encode(), payload, hashlib.sha256).digest()).decode()


def settings(signature: str, secret: str, **fields: object) -> WebhookSettings:
    return WebhookSettings.model_validate({"signature": signature, "secret": secret, **fields})


def refusal(
    config: WebhookSettings, headers: dict[str, str], payload: bytes, now: int = NOW
) -> Unauthorized:
    with pytest.raises(Unauthorized) as raised:
        verify(config, headers, payload, now)
    return raised.value


def test_github_documented_test_vector() -> None:
    github = settings("github", GITHUB_SECRET)
    assert sign(github, GITHUB_PAYLOAD, NOW) == {"X-Hub-Signature-256": GITHUB_SIGNATURE}
    verify(github, {"x-hub-signature-256": GITHUB_SIGNATURE}, GITHUB_PAYLOAD, NOW)


@pytest.mark.parametrize(
    ("secret", "payload", "signature"),
    [
        ("another secret", GITHUB_PAYLOAD, GITHUB_SIGNATURE),
        (GITHUB_SECRET, b"Hello, World?", GITHUB_SIGNATURE),
        (GITHUB_SECRET, GITHUB_PAYLOAD, GITHUB_SIGNATURE.removeprefix("sha256=")),
    ],
    ids=["wrong secret", "tampered body", "no sha256= prefix"],
)
def test_github_refusals_name_the_header(secret: str, payload: bytes, signature: str) -> None:
    error = refusal(settings("github", secret), {"x-hub-signature-256": signature}, payload)
    assert error.field == "X-Hub-Signature-256" and error.status == 401


def test_stripe_signature_within_tolerance() -> None:
    stripe = settings("stripe", STRIPE_SECRET)
    header = stripe_header(STRIPE_EVENT, STRIPE_SECRET, NOW - 60)
    verify(stripe, {"stripe-signature": header}, STRIPE_EVENT, NOW)
    # Several v1 signatures (while a secret is rolled, v0 for test mode): any one may match.
    old_signature = stripe_header(STRIPE_EVENT, "whsec_old", NOW - 60).split(",")[1]
    rolled = f"{header.split(',')[0]},{old_signature},{header.split(',')[1]},v0=ab"
    verify(stripe, {"stripe-signature": rolled}, STRIPE_EVENT, NOW)
    assert sign(stripe, STRIPE_EVENT, NOW) == {
        "Stripe-Signature": stripe_header(STRIPE_EVENT, STRIPE_SECRET, NOW)
    }


@pytest.mark.parametrize(
    ("header", "payload", "message"),
    [
        (stripe_header(STRIPE_EVENT, "whsec_wrong", NOW), STRIPE_EVENT, "no v1 signature"),
        (stripe_header(STRIPE_EVENT, STRIPE_SECRET, NOW), STRIPE_EVENT + b" ", "no v1 signature"),
        (stripe_header(STRIPE_EVENT, STRIPE_SECRET, NOW - 301), STRIPE_EVENT, "300 s from now"),
        (stripe_header(STRIPE_EVENT, STRIPE_SECRET, NOW + 301), STRIPE_EVENT, "300 s from now"),
        (f"t={NOW}", STRIPE_EVENT, "needs a timestamp t= and a v1="),
        ("v1=abc", STRIPE_EVENT, "needs a timestamp t= and a v1="),
    ],
    ids=["wrong secret", "tampered body", "too old", "too far ahead", "no v1", "no t"],
)
def test_stripe_refusals(header: str, payload: bytes, message: str) -> None:
    error = refusal(settings("stripe", STRIPE_SECRET), {"stripe-signature": header}, payload)
    assert error.field == "Stripe-Signature" and message in error.message


def test_stripe_tolerance_is_the_sources() -> None:
    header = stripe_header(STRIPE_EVENT, STRIPE_SECRET, NOW - 3600)
    lenient = settings("stripe", STRIPE_SECRET, tolerance_seconds=7200)
    verify(lenient, {"stripe-signature": header}, STRIPE_EVENT, NOW)
    refusal(settings("stripe", STRIPE_SECRET), {"stripe-signature": header}, STRIPE_EVENT)


def test_shopify_signature() -> None:
    shopify = settings("shopify", SHOPIFY_SECRET)
    header = shopify_header(SHOPIFY_ORDER, SHOPIFY_SECRET)
    verify(shopify, {"x-shopify-hmac-sha256": header}, SHOPIFY_ORDER, NOW)
    assert sign(shopify, SHOPIFY_ORDER, NOW) == {"X-Shopify-Hmac-Sha256": header}
    tampered = SHOPIFY_ORDER.replace(b"199.65", b"0.01")
    error = refusal(shopify, {"x-shopify-hmac-sha256": header}, tampered)
    assert error.field == "X-Shopify-Hmac-Sha256"
    wrong = shopify_header(SHOPIFY_ORDER, "another secret")
    refusal(shopify, {"x-shopify-hmac-sha256": wrong}, SHOPIFY_ORDER)


def test_generic_hmac_in_the_configured_header() -> None:
    generic = settings("hmac", "a shared secret", signature_header="X-Signature")
    hex_digest = hmac.new(b"a shared secret", b'{"a":1}', hashlib.sha256).hexdigest()
    verify(generic, {"x-signature": hex_digest}, b'{"a":1}', NOW)
    verify(generic, {"x-signature": hex_digest.upper()}, b'{"a":1}', NOW)
    assert refusal(generic, {"x-signature": hex_digest}, b'{"a":2}').field == "X-Signature"


@pytest.mark.parametrize("provider", ["stripe", "github", "shopify"])
def test_a_missing_header_is_refused(provider: str) -> None:
    error = refusal(settings(provider, "secret"), {"content-type": "application/json"}, b"{}")
    assert (
        error.field is not None
        and error.message == f"{error.field}: the signature header is missing"
    )


def test_no_signature_checks_nothing() -> None:
    verify(WebhookSettings(), {}, b"anything", NOW)
    assert sign(WebhookSettings(), b"anything", NOW) == {}


def test_delivery_ids() -> None:
    assert delivery_id("stripe", {}, json.loads(STRIPE_EVENT)) == "evt_1NG8Du2eZvKYlo2CUI79vXWy"
    github = {"x-github-delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"}
    assert delivery_id("github", github, {}) == "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    shopify = {"x-shopify-webhook-id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"}
    assert delivery_id("shopify", shopify, {}) == "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    assert delivery_id("hmac", github, {"id": "x"}) is None
    assert delivery_id("stripe", {}, ["not", "an", "event"]) is None
