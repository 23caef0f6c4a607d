"""Braze: canonical events as User Track API calls (`POST <rest endpoint>/users/track`), batched.

Mapping (Segment's Braze destination, Braze's documented objects):
- identify -> an `attributes` object: the traits (context.traits beneath them) with Segment's
  reserved traits renamed to Braze's standard attributes (firstName -> first_name, lastName ->
  last_name, birthday -> dob as YYYY-MM-DD, avatar -> image_url, address.city -> home_city,
  address.country -> country, gender -> M/F/O/N/P, a value Braze does not know is left out);
  `id` (the external_id already) and `address` (expanded) are not sent as custom attributes.
- track -> an `events` object: name = event, time = timestamp (ISO 8601), properties.
  "Order Completed" with `products` -> one `purchases` object per product (product_id = the
  product's product_id, id, sku or name; currency = the order's or the product's, else USD;
  price; quantity, default 1; properties = the product's other fields and the order_id), as
  Segment's Braze destination does. Products without an id or a numeric price cannot be
  purchases (Braze requires both); an order with none left is sent as the custom event.
- page/screen -> an `events` object named "Viewed <name> Page/Screen" (or "Loaded a
  Page/Screen"), only when config `track_pages` is on (Braze bills each event as data points).
- group -> an `attributes` object with the custom attribute `ab_segment_group_<groupId>`: true
  (Segment's Braze destination).
- alias -> not sent. Braze's `/users/merge` deletes the merged profile irreversibly, and an alias
  call does not say which of its ids names an existing Braze profile.
Every object names its user by `external_id` = userId, else by `user_alias` {alias_name:
anonymousId, alias_label: config `alias_label`} with `_update_existing_only: false` (Braze
creates alias-only profiles only so). An event with neither is refused.

Batching: Braze takes up to 75 objects per array per request (its limits page now says 75 in
all, combined, for accounts on the new limits). Every part of an event goes under one key and
`max_parts` is 75, so a request carries at most 75 objects in all, and no array can exceed 75
under either rule; `request` sorts the parts into their arrays.

User deletion: `POST <rest endpoint>/users/delete` with {external_ids: [userId]} or
{user_aliases: [{alias_name: anonymousId, alias_label}]}; the API key needs users.delete.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, Field, SecretStr, field_validator

from shared.destinations.base import (
    About,
    Batching,
    DeletionSubject,
    DestinationConfig,
    OutboundRequest,
    Part,
    RateLimit,
    check_http_url,
    compact,
    event_time,
    expect_config,
    json_bytes,
    obj,
    page_or_screen_name,
    require_identity,
    text,
)
from shared.domain.event import CanonicalEvent
from shared.ports import SendResult, SendStatus

TRACK_PATH = "/users/track"
DELETE_PATH = "/users/delete"
# Braze's documented per-request cap on /users/track objects (see the module docstring).
MAX_OBJECTS = 75
ARRAYS = ("attributes", "events", "purchases")

# Segment's reserved traits whose Braze standard attribute has another name.
TRAIT_NAMES = {
    "firstName": "first_name",
    "lastName": "last_name",
    "avatar": "image_url",
}
# Braze's gender codes, from the values Segment's spec and SDKs use.
GENDERS = {
    "m": "M",
    "male": "M",
    "man": "M",
    "f": "F",
    "female": "F",
    "woman": "F",
    "o": "O",
    "other": "O",
    "n": "N",
    "not applicable": "N",
    "p": "P",
    "prefer not to say": "P",
}
# Product fields that become the purchase object's own keys, not its properties.
PURCHASE_KEYS = ("product_id", "id", "sku", "currency", "price", "quantity")
# Braze's fatal answers carry another `message` than these (docs: API errors and responses);
# "queued" is its 202 during maintenance: received, processed later.
ACCEPTED_MESSAGES = ("success", "queued")


class BrazeConfig(DestinationConfig):
    """REST API key (write-only), the workspace's REST endpoint, and mapping options."""

    ADDRESS_FIELDS: ClassVar[tuple[str, ...]] = ("rest_endpoint",)
    SENT_SECRETS: ClassVar[tuple[str, ...]] = ("api_key",)

    # A REST API key with users.track (and users.delete for regulations).
    api_key: Annotated[SecretStr, Field(min_length=1, max_length=256)]
    # The workspace's instance, e.g. https://rest.iad-01.braze.com or https://rest.fra-01.braze.eu
    # (a proxy or a local receiver in tests works the same way).
    rest_endpoint: str
    # The app_id sent with events and purchases, to attribute them to one app of the workspace.
    app_id: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    # Send page and screen calls as custom events (each is billed as a data point).
    track_pages: bool = False
    # Only update profiles that exist (Braze's `_update_existing_only`) for users with a userId.
    update_existing_only: bool = False
    # The user alias label that anonymousIds are sent under.
    alias_label: Annotated[str, Field(min_length=1, max_length=100)] = "anonymous_id"

    @field_validator("rest_endpoint")
    @classmethod
    def _rest_endpoint(cls, value: str) -> str:
        return check_http_url(value).rstrip("/")


def braze_time(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds, as Braze's `time` takes it."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _identity(event: CanonicalEvent, cfg: BrazeConfig) -> dict[str, Any]:
    user_id = text(event.get("userId"))
    if user_id:
        if cfg.update_existing_only:
            return {"external_id": user_id, "_update_existing_only": True}
        return {"external_id": user_id}
    alias = {"alias_name": str(event.get("anonymousId")), "alias_label": cfg.alias_label}
    return {"user_alias": alias, "_update_existing_only": False}


def _dob(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10]).isoformat()
    except ValueError:
        return None


def _attributes(traits: dict[str, Any]) -> dict[str, Any]:
    """Segment traits as Braze attributes: standard ones renamed, unknown values left out."""
    attributes: dict[str, Any] = {}
    for key, value in traits.items():
        if key in ("id", "address", "birthday", "gender"):
            continue
        attributes[TRAIT_NAMES.get(key, key)] = value
    address = obj(traits.get("address"))
    attributes["home_city"] = text(address.get("city")) or attributes.get("home_city")
    attributes["country"] = text(address.get("country")) or attributes.get("country")
    if "birthday" in traits or "dob" in traits:
        attributes["dob"] = _dob(traits.get("birthday", traits.get("dob")))
    gender = traits.get("gender")
    if isinstance(gender, str):
        attributes["gender"] = GENDERS.get(gender.strip().lower())
    return {k: v for k, v in attributes.items() if v is not None}


def _number(value: Any) -> int | float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return None


def _purchases(
    event: CanonicalEvent, cfg: BrazeConfig, identity: dict[str, Any], time: str
) -> list[dict[str, Any]]:
    properties = obj(event.get("properties"))
    products = properties.get("products")
    purchases: list[dict[str, Any]] = []
    for product in products if isinstance(products, list) else []:
        item = obj(product)
        product_id = next(
            (str(item[k]) for k in ("product_id", "id", "sku", "name") if text(item.get(k))), None
        )
        price = _number(item.get("price"))
        if product_id is None or price is None:
            continue  # Braze refuses a purchase without both
        quantity = item.get("quantity")
        extra = {k: v for k, v in item.items() if k not in PURCHASE_KEYS}
        purchases.append(
            {
                **identity,
                **compact({"app_id": cfg.app_id}),
                "product_id": product_id,
                "currency": text(properties.get("currency")) or text(item.get("currency")) or "USD",
                "price": price,
                "quantity": quantity if isinstance(quantity, int) and quantity > 0 else 1,
                "time": time,
                **compact(
                    {"properties": compact({"order_id": properties.get("order_id"), **extra})}
                ),
            }
        )
    return purchases


class BrazeConnector:
    """Braze User Track API; page/screen only with `track_pages`; alias events are skipped."""

    type = "braze"
    config_model = BrazeConfig
    about = About(
        description="Customer engagement: profiles, custom events and purchases (/users/track)",
        docs_url="https://www.braze.com/docs/api/endpoints/user_data/post_user_track",
        event_types=("track", "identify", "page", "screen", "group"),
        batching=Batching(max_parts=MAX_OBJECTS),
        # /users/track allows 3,000 requests per 3 seconds per workspace; each instance keeps to
        # a third of it, leaving room for the customer's other callers (a 429 is retried).
        rate_limit=RateLimit(requests=1000, per_seconds=3.0),
    )

    def parts(self, event: CanonicalEvent, config: BaseModel, *, now: datetime) -> list[Part]:
        cfg = expect_config(config, BrazeConfig)
        kind = event.get("type")
        if kind == "alias" or (kind in ("page", "screen") and not cfg.track_pages):
            return []
        require_identity(event, "Braze")  # every Braze object names its user
        identity = _identity(event, cfg)
        time = braze_time(event_time(event, now))
        if kind == "identify":
            context_traits = obj(obj(event.get("context")).get("traits"))
            traits = {**context_traits, **obj(event.get("traits"))}
            return [Part("users/track", ("attributes", {**identity, **_attributes(traits)}))]
        if kind == "group":
            group_attribute = f"ab_segment_group_{event.get('groupId')}"
            return [Part("users/track", ("attributes", {**identity, group_attribute: True}))]
        if kind == "track" and event.get("event") == "Order Completed":
            purchases = _purchases(event, cfg, identity, time)
            if purchases:
                return [Part("users/track", ("purchases", p)) for p in purchases]
        name = str(event.get("event")) if kind == "track" else page_or_screen_name(event)
        braze_event = {
            **identity,
            **compact({"app_id": cfg.app_id}),
            "name": name,
            "time": time,
            "properties": obj(event.get("properties")),
        }
        return [Part("users/track", ("events", braze_event))]

    def request(
        self, key: str, payloads: Sequence[Any], config: BaseModel, *, now: datetime
    ) -> OutboundRequest:
        cfg = expect_config(config, BrazeConfig)
        arrays: dict[str, list[Any]] = {name: [] for name in ARRAYS}
        for array, item in payloads:
            arrays[array].append(item)
        api_key = cfg.api_key.get_secret_value()
        return OutboundRequest(
            method="POST",
            url=f"{cfg.rest_endpoint}{TRACK_PATH}",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"},
            body=json_bytes({name: items for name, items in arrays.items() if items}),
            redact=(api_key,),
        )

    def classify(self, result: SendResult) -> SendStatus | None:
        """A 2xx whose `message` is neither "success" nor "queued" is Braze's fatal error form
        ({"message": <fatal error>, "errors": [...]}): refused for good. "success" with an
        `errors` array is delivered (the objects not named there were processed)."""
        status = result.http_status or 0
        if 200 <= status < 300:
            message = _message(result.body)
            if message is not None and message not in ACCEPTED_MESSAGES:
                return "failed"
        return None

    def delete_user(self, subject: DeletionSubject, config: BaseModel) -> OutboundRequest | str:
        cfg = expect_config(config, BrazeConfig)
        body: dict[str, Any]
        if subject.kind == "user_id":
            body = {"external_ids": [subject.value]}
        else:
            body = {"user_aliases": [{"alias_name": subject.value, "alias_label": cfg.alias_label}]}
        api_key = cfg.api_key.get_secret_value()
        return OutboundRequest(
            method="POST",
            url=f"{cfg.rest_endpoint}{DELETE_PATH}",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"},
            body=json_bytes(body),
            redact=(api_key,),
        )


def _message(body: bytes) -> str | None:
    """The `message` of a Braze JSON answer, if it has one."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    return text(parsed.get("message")) if isinstance(parsed, dict) else None
