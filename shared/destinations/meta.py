"""Meta Conversions API (CAPI): canonical events as server events on a pixel, `POST
https://graph.facebook.com/<api_version>/<pixel_id>/events`, up to 1,000 events per request.

Mapping (Segment e-commerce spec -> Meta standard events; Meta's server event parameters):
- track -> event_name: Order Completed -> Purchase, Product Viewed -> ViewContent, Product Added
  -> AddToCart, Product Added to Wishlist -> AddToWishlist, Checkout Started -> InitiateCheckout,
  Payment Info Entered -> AddPaymentInfo, Products Searched -> Search, Signed Up ->
  CompleteRegistration; any other name is sent as a custom event (at most 50 characters).
- page -> PageView.
- screen, identify, group, alias -> skipped: CAPI takes only conversion events (a screen would
  be an app event, which needs Meta's app_data that Segment events do not carry).
event_time = timestamp in seconds; event_id = messageId (Meta deduplicates it against the
pixel's eventID); action_source = config (default "website"); event_source_url =
context.page.url (page: properties.url first).
user_data, normalised and SHA-256 hashed as Meta requires (from context.traits, and a track's
properties.email): em (trimmed, lowercase), ph (digits only), fn/ln (lowercase, no punctuation),
ge (f/m), db (YYYYMMDD), ct (lowercase letters only), st (lowercase letters), zp (lowercase, no
spaces, US ZIP+4 cut to 5), country (ISO 3166-1 alpha-2, lowercase), external_id (userId, else
anonymousId); sent as they are: client_ip_address (context.ip), client_user_agent
(context.userAgent), fbc/fbp (context or properties; fbc built from a `fbclid` in the page URL
as Meta documents).
custom_data: value (revenue, else total, else value, else price), currency (default USD where a
value is sent), content_ids/contents/num_items from products (or the single product's
product_id/sku), content_type "product", content_name, content_category, order_id,
search_string (query).
Events Meta refuses for the whole request are refused here one by one instead (EventRejected):
no matching key in user_data, a website event without a user agent, an event_time over 7 days
old, a Purchase without a value.
User deletion: Meta offers no API to delete Conversions API events per user; `delete_user`
answers why.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator

from shared.destinations.base import (
    About,
    Batching,
    DestinationConfig,
    EventRejected,
    OutboundRequest,
    Part,
    RateLimit,
    check_http_url,
    compact,
    dig,
    epoch_ms,
    event_time,
    expect_config,
    json_bytes,
    obj,
    scalar,
    text,
)
from shared.domain.event import CanonicalEvent
from shared.ports import SendResult, SendStatus

GRAPH_URL = "https://graph.facebook.com"

# Segment e-commerce event -> Meta standard event.
STANDARD_EVENTS = {
    "Order Completed": "Purchase",
    "Product Viewed": "ViewContent",
    "Product Added": "AddToCart",
    "Product Added to Wishlist": "AddToWishlist",
    "Checkout Started": "InitiateCheckout",
    "Payment Info Entered": "AddPaymentInfo",
    "Products Searched": "Search",
    "Signed Up": "CompleteRegistration",
}
MAX_CUSTOM_NAME = 50
MAX_AGE = timedelta(days=7)
# physical_store conversions may be uploaded up to 62 days after they happened.
MAX_AGE_PHYSICAL_STORE = timedelta(days=62)

# Graph API error codes (error.code) read by `classify`: temporary downtime and throttling are
# retried; a bad token, a bad parameter or a missing permission is permanent.
RETRY_CODES = frozenset({1, 2, 4, 17, 32, 341, 368, 613, 80004})
FAILED_CODES = frozenset({10, 100, 102, 190, *range(200, 300)})

ActionSource = Literal[
    "website",
    "app",
    "email",
    "phone_call",
    "chat",
    "physical_store",
    "system_generated",
    "business_messaging",
    "other",
]


class MetaConfig(DestinationConfig):
    """Pixel (dataset) id, its Conversions API access token (write-only), and send options."""

    ADDRESS_FIELDS: ClassVar[tuple[str, ...]] = ("endpoint",)
    SENT_SECRETS: ClassVar[tuple[str, ...]] = ("access_token",)

    pixel_id: Annotated[str, Field(pattern=r"^[0-9]{1,20}$")]
    access_token: Annotated[SecretStr, Field(min_length=1, max_length=1024)]
    # Graph API version; each stays supported for at least two years after its release.
    api_version: Annotated[str, Field(pattern=r"^v[0-9]{1,3}\.[0-9]$")] = "v23.0"
    action_source: ActionSource = "website"
    # Routes events to Events Manager's Test Events tab instead of the live dataset.
    test_event_code: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    # Full URL replacing https://graph.facebook.com/<version>/<pixel_id>/events (a proxy, or a
    # local receiver in tests).
    endpoint: str | None = None

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        return None if value is None else check_http_url(value)


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _letters(value: str) -> str:
    """Lowercase letters only (any script): Meta's form of names, cities and states."""
    return "".join(c for c in value.lower() if c.isalpha())


def normalise_email(value: str) -> str | None:
    email = value.strip().lower()
    return email if "@" in email else None


def normalise_phone(value: str) -> str | None:
    # Digits only, without the leading zeros of an international 00 prefix. Meta needs the
    # country code in the number: one written without it cannot be completed here.
    digits = re.sub(r"[^0-9]", "", value).lstrip("0")
    return digits or None


def normalise_zip(value: str) -> str | None:
    zp = re.sub(r"\s", "", value.lower())
    if re.fullmatch(r"[0-9]{5}-?[0-9]{4}", zp):
        zp = zp[:5]  # a US ZIP+4: Meta matches on the first five digits
    return zp.replace("-", "") or None


def normalise_gender(value: str) -> str | None:
    first = value.strip().lower()[:1]
    return first if first in ("f", "m") else None


def normalise_birthday(value: str) -> str | None:
    match = re.match(r"^([0-9]{4})-?([0-9]{2})-?([0-9]{2})", value.strip())
    return "".join(match.groups()) if match else None


def normalise_country(value: str) -> str | None:
    country = _letters(value)
    return country if len(country) == 2 else None  # only an ISO 3166-1 alpha-2 code matches


def _name(value: str) -> str | None:
    return _letters(value) or None


def _trait(traits: dict[str, Any], *names: str) -> str | None:
    for name in names:
        value = scalar(dig(traits, name))
        if value is not None and not isinstance(value, bool):
            return str(value)
    return None


# user_data key -> (trait names, normaliser); every value is hashed after normalising.
HASHED_TRAITS = {
    "em": (("email",), normalise_email),
    "ph": (("phone",), normalise_phone),
    "fn": (("firstName", "first_name"), _name),
    "ln": (("lastName", "last_name"), _name),
    "ge": (("gender",), normalise_gender),
    "db": (("birthday",), normalise_birthday),
    "ct": (("address.city", "city"), _name),
    "st": (("address.state", "state"), _name),
    "zp": (("address.postal_code", "address.postalCode", "postal_code", "zip"), normalise_zip),
    "country": (("address.country", "country"), normalise_country),
}
# Keys Meta can match a person on (client_ip_address and client_user_agent count only together).
MATCH_KEYS = ("em", "ph", "external_id", "fbc", "fbp")


def _fbc(event: CanonicalEvent, page_url: str | None, moment: datetime) -> str | None:
    context = obj(event.get("context"))
    properties = obj(event.get("properties"))
    given = text(context.get("fbc")) or text(properties.get("fbc"))
    if given or not page_url:
        return given
    # Meta's documented fbc format for a landing URL carrying a click id: fb.1.<ms>.<fbclid>.
    clicks = parse_qs(urlsplit(page_url).query).get("fbclid")
    return f"fb.1.{epoch_ms(moment)}.{clicks[0]}" if clicks and clicks[0] else None


def _user_data(event: CanonicalEvent, page_url: str | None, moment: datetime) -> dict[str, Any]:
    context = obj(event.get("context"))
    traits = dict(obj(context.get("traits")))
    properties = obj(event.get("properties"))
    if "email" not in traits and text(properties.get("email")):
        traits["email"] = properties["email"]
    user: dict[str, Any] = {}
    for key, (names, normalise) in HASHED_TRAITS.items():
        raw = _trait(traits, *names)
        value = normalise(raw) if raw is not None else None
        if value:
            user[key] = [sha256(value)]
    external = text(event.get("userId")) or text(event.get("anonymousId"))
    if external:
        user["external_id"] = [sha256(external.strip())]
    user["client_ip_address"] = text(context.get("ip"))
    user["client_user_agent"] = text(context.get("userAgent"))
    user["fbc"] = _fbc(event, page_url, moment)
    user["fbp"] = text(context.get("fbp")) or text(properties.get("fbp"))
    return compact(user)


def _number(value: Any) -> int | float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return None


def _product_id(product: dict[str, Any]) -> str | None:
    value = scalar(product.get("product_id")) or scalar(product.get("sku"))
    return None if value is None or isinstance(value, bool) else str(value)


def _custom_data(properties: dict[str, Any]) -> dict[str, Any]:
    listed = properties.get("products")
    products = [p for p in listed if isinstance(p, dict)] if isinstance(listed, list) else []
    if not products and _product_id(properties):
        products = [properties]  # a single-product event (Product Viewed, Product Added)
    contents = []
    for product in products:
        product_id = _product_id(product)
        if product_id is None:
            continue
        quantity = _number(product.get("quantity"))
        contents.append(
            compact(
                {
                    "id": product_id,
                    "quantity": int(quantity) if quantity is not None else 1,
                    "item_price": _number(product.get("price")),
                }
            )
        )
    value = next(
        (
            v
            for v in (
                _number(properties.get(key)) for key in ("revenue", "total", "value", "price")
            )
            if v is not None
        ),
        None,
    )
    currency = text(properties.get("currency"))
    custom = {
        "value": value,
        # Segment's e-commerce spec assumes USD when a value comes without its currency.
        "currency": (currency or "USD").upper() if value is not None else currency,
        "content_ids": [c["id"] for c in contents] or None,
        "contents": contents or None,
        "content_type": "product" if contents else None,
        # A cart's size (Checkout Started, Order Completed), not a single product's.
        "num_items": sum(c["quantity"] for c in contents)
        if contents and isinstance(listed, list)
        else None,
        "content_name": text(properties.get("name")),
        "content_category": text(properties.get("category")),
        "order_id": scalar(properties.get("order_id")),
        "search_string": text(properties.get("query")),
    }
    return compact(custom)


def _event_name(event: CanonicalEvent) -> str | None:
    kind = event.get("type")
    if kind == "page":
        return "PageView"
    if kind != "track":
        return None
    name = str(event.get("event") or "").strip()
    if name in STANDARD_EVENTS:
        return STANDARD_EVENTS[name]
    if not name:
        raise EventRejected("Meta needs an event name, and this track event has none")
    if len(name) > MAX_CUSTOM_NAME:
        raise EventRejected(
            f"Meta takes custom event names of at most {MAX_CUSTOM_NAME} characters"
        )
    return name


def server_event(event: CanonicalEvent, cfg: MetaConfig, now: datetime) -> dict[str, Any] | None:
    """The event as one CAPI server event; None for the types CAPI has no equivalent for."""
    name = _event_name(event)
    if name is None:
        return None
    moment = event_time(event, now)
    max_age = MAX_AGE_PHYSICAL_STORE if cfg.action_source == "physical_store" else MAX_AGE
    if now - moment > max_age:
        # One stale event_time makes Meta refuse the whole request of up to 1,000 events.
        raise EventRejected(f"Meta refuses events over {max_age.days} days old")
    properties = obj(event.get("properties"))
    page_url = (text(properties.get("url")) if event.get("type") == "page" else None) or text(
        dig(event.get("context"), "page.url")
    )
    user = _user_data(event, page_url, moment)
    has_match = any(key in user for key in MATCH_KEYS) or (
        "client_ip_address" in user and "client_user_agent" in user
    )
    if not has_match:
        raise EventRejected("Meta needs a customer identifier (userId, email, phone, fbp, fbc)")
    if cfg.action_source == "website" and "client_user_agent" not in user:
        raise EventRejected("Meta needs context.userAgent for a website event")
    custom = _custom_data(properties) if event.get("type") == "track" else {}
    if name == "Purchase" and "value" not in custom:
        raise EventRejected("Meta needs a value (properties.revenue or total) for a Purchase")
    return compact(
        {
            "event_name": name,
            "event_time": int(moment.timestamp()),
            "event_id": text(event.get("messageId")),
            "action_source": cfg.action_source,
            "event_source_url": page_url,
            "user_data": user,
            "custom_data": custom,
        }
    )


def _graph_error(body: bytes) -> dict[str, Any]:
    try:
        answer = json.loads(body)
    except ValueError:
        return {}
    return obj(obj(answer).get("error"))


class MetaConnector:
    """Meta Conversions API; screen, identify, group and alias events are skipped."""

    type = "meta"
    config_model = MetaConfig
    about = About(
        description="Meta (Facebook) Conversions API: conversions and page views for ads",
        docs_url="https://developers.facebook.com/docs/marketing-api/conversions-api",
        event_types=("track", "page"),
        # Meta takes up to 1,000 events in `data`; it documents no body size limit for it.
        batching=Batching(max_parts=1000),
        # Meta documents no fixed CAPI rate; its throttling (codes 4, 17, 613) is retried.
        # Assumed: ten requests a second per destination.
        rate_limit=RateLimit(requests=10, per_seconds=1.0),
        manual_deletion=(
            "Meta's Conversions API has no per-user deletion API: the events sent are kept "
            "under Meta's Business Tools Terms; ask Meta to delete them"
        ),
    )

    def parts(self, event: CanonicalEvent, config: BaseModel, *, now: datetime) -> list[Part]:
        cfg = expect_config(config, MetaConfig)
        built = server_event(event, cfg, now)
        return [] if built is None else [Part("events", built)]

    def request(
        self, key: str, payloads: Sequence[Any], config: BaseModel, *, now: datetime
    ) -> OutboundRequest:
        cfg = expect_config(config, MetaConfig)
        token = cfg.access_token.get_secret_value()
        body: dict[str, Any] = {"data": list(payloads), "access_token": token}
        if cfg.test_event_code:
            body["test_event_code"] = cfg.test_event_code
        url = cfg.endpoint or f"{GRAPH_URL}/{cfg.api_version}/{cfg.pixel_id}/events"
        return OutboundRequest(
            method="POST",
            url=url,
            # The token travels in the body, not the query string: URLs end up in proxy logs.
            headers={"Content-Type": "application/json"},
            body=json_bytes(body),
            redact=(token,),
        )

    def classify(self, result: SendResult) -> SendStatus | None:
        """Graph API errors: throttling and downtime retried, whatever the HTTP status (Meta
        answers code 4 or 17 with a 400); bad token or parameters permanent."""
        error = _graph_error(result.body)
        code = error.get("code")
        if not isinstance(code, int) or isinstance(code, bool):
            return None
        if code in RETRY_CODES or error.get("is_transient") is True:
            return "retry"
        if code in FAILED_CODES:
            return "failed"
        return None
