"""Google Analytics 4: one canonical event as a Measurement Protocol hit (`POST /mp/collect`).

Body: client_id (anonymousId, else userId), user_id, timestamp_micros, user_properties
({name: {value}} from context.traits, plus traits on identify), and one event {name, params}:
- track -> the event name sanitised (below); Segment e-commerce names map to GA4's recommended
  events (Order Completed -> purchase, ...), products -> items, order_id -> transaction_id,
  value = properties value, else total, else revenue.
- page -> page_view (page_location / page_title / page_referrer from properties, else context.page)
- screen -> screen_view (screen_name)
- identify -> `login` carrying the user properties (GA4 records user properties only alongside
  an event; `login` is the recommended event closest to an identify)
- group -> join_group (group_id); alias -> not sent (GA4 has no alias).
Names: snake_cased (firstName -> first_name), [a-z0-9_], starting with a letter, at most 40
characters (24 for user properties); reserved names and prefixes (session_start, ga_, firebase_,
...) get a `custom_` prefix, reserved user properties (user_id, first_open_time, ...) are dropped.
Params: scalar properties only (GA4 drops nested values; `items` is the one documented array),
booleans as "true"/"false", strings cut to 100 characters (page_* to their own limits), at most
25, with engagement_time_msec=1 so the hit counts as engaged; session_id from context.sessionId.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlencode

from pydantic import BaseModel, Field, SecretStr, field_validator

from shared.destinations.base import (
    About,
    DestinationConfig,
    OutboundRequest,
    PerEventConnector,
    check_http_url,
    epoch_micros,
    event_time,
    expect_config,
    json_bytes,
    obj,
    require_identity,
    scalar,
    text,
)
from shared.domain.event import CanonicalEvent

ENDPOINTS = {
    "global": "https://www.google-analytics.com/mp/collect",
    "eu": "https://region1.google-analytics.com/mp/collect",
}
MAX_NAME_CHARS = 40
MAX_USER_PROPERTY_NAME_CHARS = 24
MAX_USER_PROPERTY_VALUE_CHARS = 36
MAX_PARAMS = 25
MAX_USER_PROPERTIES = 25
MAX_VALUE_CHARS = 100
# GA4's longer limits for these three parameters.
VALUE_LIMITS = {"page_location": 1000, "page_title": 300, "page_referrer": 420}
# Event names the Measurement Protocol refuses (GA4 reserves them for automatic collection).
RESERVED_EVENTS = frozenset(
    {
        "ad_activeview",
        "ad_click",
        "ad_exposure",
        "ad_impression",
        "ad_query",
        "ad_reward",
        "adunit_exposure",
        "app_background",
        "app_clear_data",
        "app_exception",
        "app_install",
        "app_remove",
        "app_store_refund",
        "app_store_subscription_cancel",
        "app_store_subscription_convert",
        "app_store_subscription_renew",
        "app_update",
        "app_upgrade",
        "dynamic_link_app_open",
        "dynamic_link_app_update",
        "dynamic_link_first_open",
        "error",
        "first_open",
        "first_visit",
        "in_app_purchase",
        "notification_dismiss",
        "notification_foreground",
        "notification_open",
        "notification_receive",
        "os_update",
        "session_start",
        "session_start_with_rollout",
        "user_engagement",
    }
)
RESERVED_USER_PROPERTIES = frozenset(
    {"first_open_time", "first_visit_time", "last_deep_link_referrer", "user_id"}
    | {"first_open_after_install"}
)
RESERVED_PREFIXES = ("firebase_", "ga_", "google_", "gtag")
# Segment e-commerce spec event -> GA4 recommended event.
ECOMMERCE_EVENTS = {
    "Products Searched": "search",
    "Product List Viewed": "view_item_list",
    "Product Clicked": "select_item",
    "Product Viewed": "view_item",
    "Product Added": "add_to_cart",
    "Product Removed": "remove_from_cart",
    "Cart Viewed": "view_cart",
    "Checkout Started": "begin_checkout",
    "Payment Info Entered": "add_payment_info",
    "Order Completed": "purchase",
    "Order Refunded": "refund",
    "Promotion Viewed": "view_promotion",
    "Promotion Clicked": "select_promotion",
    "Product Added to Wishlist": "add_to_wishlist",
    "Product Shared": "share",
    "Signed Up": "sign_up",
    "Signed In": "login",
}
# Segment spec property -> GA4 parameter, applied before the generic copy.
RENAMED_PARAMS = {"order_id": "transaction_id", "query": "search_term"}
# Where GA4's `value` comes from, first found wins (Segment: total, else revenue).
VALUE_PROPERTIES = ("value", "total", "revenue")
# Segment product -> GA4 item field.
ITEM_FIELDS = {
    "product_id": "item_id",
    "sku": "item_id",
    "name": "item_name",
    "brand": "item_brand",
    "category": "item_category",
    "variant": "item_variant",
    "coupon": "coupon",
    "price": "price",
    "quantity": "quantity",
    "position": "index",
}
INVALID_NAME_CHARS = re.compile(r"[^a-z0-9_]+")
CAMEL_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")  # firstName -> first_name


class Ga4Config(DestinationConfig):
    """Measurement ID, API secret (write-only), collection region, optional endpoint override."""

    ADDRESS_FIELDS: ClassVar[tuple[str, ...]] = ("endpoint",)
    SENT_SECRETS: ClassVar[tuple[str, ...]] = ("api_secret",)

    measurement_id: Annotated[str, Field(pattern=r"^G-[A-Z0-9]{4,20}$")]
    api_secret: Annotated[SecretStr, Field(min_length=1, max_length=256)]
    region: Literal["global", "eu"] = "global"
    # Collect URL replacing the region's; measurement_id and api_secret are added as its query.
    endpoint: str | None = None

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        check_http_url(value)
        if "?" in value:
            raise ValueError("must not contain a query string")
        return value


def sanitise_name(
    raw: str, limit: int = MAX_NAME_CHARS, reserved: frozenset[str] = RESERVED_EVENTS
) -> str:
    """A GA4-valid name: snake_case [a-z0-9_], starting with a letter, <= limit characters;
    reserved names and prefixes get `custom_`."""
    name = CAMEL_HUMP.sub("_", raw.strip())
    name = INVALID_NAME_CHARS.sub("_", name.lower()).strip("_")
    name = re.sub(r"^[^a-z]+", "", name)
    if not name:
        name = "event"
    if name in reserved or name.startswith(RESERVED_PREFIXES):
        name = f"custom_{name}"
    return name[:limit].rstrip("_")


def _value(value: Any, limit: int = MAX_VALUE_CHARS) -> str | int | float | None:
    value = scalar(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value[:limit]
    return value


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _items(products: Any) -> list[dict[str, Any]]:
    items = []
    for product in products if isinstance(products, list) else []:
        if isinstance(product, dict):
            item = {}
            for source, target in ITEM_FIELDS.items():
                if target not in item and (value := _value(product.get(source))) is not None:
                    item[target] = value
            items.append(item)
    return items[:200]


def _params(first: dict[str, Any], properties: dict[str, Any]) -> dict[str, Any]:
    """`first` (already GA4 names), then the scalar properties, within GA4's limits."""
    params: dict[str, Any] = {}
    for name, raw in first.items():
        value = raw if name == "items" else _value(raw, VALUE_LIMITS.get(name, MAX_VALUE_CHARS))
        if value is not None and value != []:
            params[name] = value
    for key, raw in properties.items():
        name = RENAMED_PARAMS.get(key) or sanitise_name(key, reserved=frozenset())
        value = _value(raw, VALUE_LIMITS.get(name, MAX_VALUE_CHARS))
        if value is not None and name not in params and len(params) < MAX_PARAMS:
            params[name] = value
    return dict(list(params.items())[:MAX_PARAMS])


def _user_properties(traits: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, raw in traits.items():
        name = sanitise_name(key, MAX_USER_PROPERTY_NAME_CHARS, frozenset())
        value = _value(raw, MAX_USER_PROPERTY_VALUE_CHARS)
        if value is None or name in result or name in RESERVED_USER_PROPERTIES:
            continue
        if len(result) < MAX_USER_PROPERTIES:
            result[name] = {"value": value}
    return result


def _event(event: CanonicalEvent) -> dict[str, Any] | None:
    kind = event.get("type")
    properties = obj(event.get("properties"))
    context = obj(event.get("context"))
    common: dict[str, Any] = {"engagement_time_msec": 1, "session_id": context.get("sessionId")}
    if kind == "track":
        raw_name = str(event.get("event"))
        name = ECOMMERCE_EVENTS.get(raw_name) or sanitise_name(raw_name)
        value = next((v for k in VALUE_PROPERTIES if _number(v := properties.get(k))), None)
        first = {**common, "items": _items(properties.get("products")), "value": value}
        dropped = ("products", *VALUE_PROPERTIES)
        rest = {k: v for k, v in properties.items() if k not in dropped}
        return {"name": name, "params": _params(first, rest)}
    if kind == "page":
        page = obj(context.get("page"))
        first = {
            "page_location": properties.get("url") or page.get("url"),
            "page_title": properties.get("title") or page.get("title") or event.get("name"),
            "page_referrer": properties.get("referrer") or page.get("referrer"),
            **common,
        }
        rest = {k: v for k, v in properties.items() if k not in ("url", "title", "referrer")}
        return {"name": "page_view", "params": _params(first, rest)}
    if kind == "screen":
        first = {"screen_name": event.get("name"), **common}
        return {"name": "screen_view", "params": _params(first, properties)}
    if kind == "identify":
        return {"name": "login", "params": _params(common, {})}
    if kind == "group":
        first = {"group_id": event.get("groupId"), **common}
        return {"name": "join_group", "params": _params(first, {})}
    return None  # alias


class Ga4Connector(PerEventConnector):
    """GA4 Measurement Protocol; alias events are skipped."""

    type = "ga4"
    config_model = Ga4Config
    about = About(
        description="Google Analytics 4 events and user properties (Measurement Protocol)",
        docs_url="https://developers.google.com/analytics/devguides/collection/protocol/ga4",
        event_types=("track", "identify", "page", "screen", "group"),
    )

    def build(
        self, event: CanonicalEvent, config: BaseModel, *, now: datetime
    ) -> OutboundRequest | None:
        cfg = expect_config(config, Ga4Config)
        ga_event = _event(event)
        if ga_event is None:
            return None
        # The Measurement Protocol requires a client_id (anonymousId, else userId).
        require_identity(event, "GA4")
        user_id = text(event.get("userId"))
        traits = obj(obj(event.get("context")).get("traits"))
        if event.get("type") == "identify":
            traits = {**traits, **obj(event.get("traits"))}
        body: dict[str, Any] = {"client_id": text(event.get("anonymousId")) or user_id}
        if user_id:
            body["user_id"] = user_id
        body["timestamp_micros"] = epoch_micros(event_time(event, now))
        if user_properties := _user_properties(traits):
            body["user_properties"] = user_properties
        body["events"] = [ga_event]
        secret = cfg.api_secret.get_secret_value()
        query = urlencode({"measurement_id": cfg.measurement_id, "api_secret": secret})
        return OutboundRequest(
            method="POST",
            url=f"{cfg.endpoint or ENDPOINTS[cfg.region]}?{query}",
            headers={"Content-Type": "application/json"},
            body=json_bytes(body),
            redact=(secret,),
        )
