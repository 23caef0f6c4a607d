"""Amplitude: canonical events as HTTP V2 API uploads (`POST /2/httpapi`), up to 2,000 events and
1 MB per upload.

Mapping (Segment/RudderStack conventions, Amplitude's documented event keys):
- track -> event_type = event; page/screen -> "Viewed <name> Page/Screen" or "Loaded a Page/Screen"
- identify -> "$identify" with user_properties {"$set": traits}
- group -> two events in one upload: "$identify" with `groups` {group_type: groupId} (puts the
  user in the group) and "$groupidentify" with group_properties {"$set": traits}
- alias -> not sent (Amplitude's user mapping is a separate, enterprise-only API)
user_id = userId, device_id = anonymousId, time = timestamp in ms, insert_id = messageId (Amplitude
deduplicates on it for 7 days, so a retried delivery is harmless), device/os/app/location/ip from
`context`, library = "<context.library.name>/<version>", revenue = properties.revenue (a number);
context.traits ride along as user_properties {"$set": ...}.

User deletion (regulations, docs/PRIVACY.md): the User Privacy API v1, `POST /api/2/deletions/users`
with HTTP Basic `api_key:secret_key`, by user_id only; it needs the optional `secret_key`.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

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
    dig,
    epoch_ms,
    event_time,
    expect_config,
    json_bytes,
    obj,
    page_or_screen_name,
    require_identity,
    scalar,
    text,
)
from shared.domain.event import CanonicalEvent

ENDPOINTS = {
    "us": "https://api2.amplitude.com/2/httpapi",
    "eu": "https://api.eu.amplitude.com/2/httpapi",
}

DELETION_ENDPOINTS = {
    "us": "https://amplitude.com/api/2/deletions/users",
    "eu": "https://analytics.eu.amplitude.com/api/2/deletions/users",
}
DELETION_PATH = "/api/2/deletions/users"

# Amplitude event key <- dotted path in the canonical event's context.
CONTEXT_KEYS = {
    "ip": "ip",
    "os_name": "os.name",
    "os_version": "os.version",
    "device_model": "device.model",
    "device_manufacturer": "device.manufacturer",
    "device_brand": "device.brand",
    "platform": "device.type",
    "carrier": "network.carrier",
    "app_version": "app.version",
    "language": "locale",
    "country": "location.country",
    "region": "location.region",
    "city": "location.city",
    "location_lat": "location.latitude",
    "location_lng": "location.longitude",
}


class AmplitudeConfig(DestinationConfig):
    """Project API key (write-only), data residency, and an optional endpoint override."""

    ADDRESS_FIELDS: ClassVar[tuple[str, ...]] = ("endpoint",)
    SENT_SECRETS: ClassVar[tuple[str, ...]] = ("api_key", "secret_key")

    api_key: Annotated[SecretStr, Field(min_length=1, max_length=256)]
    # Only for user deletion (the User Privacy API authenticates with api_key:secret_key).
    secret_key: Annotated[SecretStr, Field(min_length=1, max_length=256)] | None = None
    region: Literal["us", "eu"] = "us"
    # Full URL replacing the region's endpoint (a proxy, or a local receiver in tests).
    endpoint: str | None = None
    # Amplitude drops user/device ids shorter than 5 characters unless this option lowers it.
    min_id_length: Annotated[int, Field(ge=1, le=255)] | None = None
    # The group type that `group` calls put the user in (Amplitude groups are type -> value).
    group_type: Annotated[str, Field(min_length=1, max_length=100)] = "group"

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        return None if value is None else check_http_url(value)


def _library(context: dict[str, Any]) -> str | None:
    name = text(dig(context, "library.name"))
    version = text(dig(context, "library.version"))
    if name and version:
        return f"{name}/{version}"
    return name


def _base(event: CanonicalEvent, event_type: str, now: datetime) -> dict[str, Any]:
    """The keys every Amplitude event carries: ids, time, insert_id, device and location."""
    context = obj(event.get("context"))
    fields: dict[str, Any] = {
        "event_type": event_type,
        "user_id": text(event.get("userId")),
        "device_id": text(event.get("anonymousId")),
        "time": epoch_ms(event_time(event, now)),
        "insert_id": text(event.get("messageId")),
    }
    for key, path in CONTEXT_KEYS.items():
        fields[key] = scalar(dig(context, path))
    fields["library"] = _library(context)
    return compact(fields)


def _events(event: CanonicalEvent, cfg: AmplitudeConfig, now: datetime) -> list[dict[str, Any]]:
    kind = event.get("type")
    properties = obj(event.get("properties"))
    traits = obj(event.get("traits"))
    context_traits = obj(obj(event.get("context")).get("traits"))
    if kind == "track" or kind in ("page", "screen"):
        name = str(event.get("event")) if kind == "track" else page_or_screen_name(event)
        amp = _base(event, name, now)
        amp["event_properties"] = properties
        revenue = properties.get("revenue")
        if isinstance(revenue, int | float) and not isinstance(revenue, bool):
            amp["revenue"] = revenue  # Amplitude counts revenue only from this top-level key
        if context_traits:
            amp["user_properties"] = {"$set": context_traits}
        return [amp]
    if kind == "identify":
        amp = _base(event, "$identify", now)
        amp["user_properties"] = {"$set": {**context_traits, **traits}}
        return [amp]
    if kind == "group":
        group_id = str(event.get("groupId"))
        groups = {cfg.group_type: group_id}
        member = _base(event, "$identify", now)
        member["groups"] = groups
        member["user_properties"] = {"$set": groups}
        group = _base(event, "$groupidentify", now)
        group["insert_id"] = f"{group.get('insert_id', '')}-group"
        group["groups"] = groups
        group["group_properties"] = {"$set": traits}
        return [member, group]
    return []  # alias


class AmplitudeConnector:
    """Amplitude HTTP V2; alias events are skipped."""

    type = "amplitude"
    config_model = AmplitudeConfig
    about = About(
        description="Product analytics: events, user and group properties (HTTP V2 API)",
        docs_url="https://amplitude.com/docs/apis/analytics/http-v2",
        event_types=("track", "identify", "page", "screen", "group"),
        # 2,000 events and 1 MB per upload (less the envelope).
        batching=Batching(max_parts=2000, max_bytes=1_000_000 - 1_000),
        # Amplitude throttles per device at 30 events/s and answers 429 past 1,000 events/s
        # per project; ten uploads a second per instance stays inside the latter.
        rate_limit=RateLimit(requests=10, per_seconds=1.0),
    )

    def parts(self, event: CanonicalEvent, config: BaseModel, *, now: datetime) -> list[Part]:
        cfg = expect_config(config, AmplitudeConfig)
        events = _events(event, cfg, now)
        if events:
            # Amplitude refuses an event with neither user_id nor device_id (400).
            require_identity(event, "Amplitude")
        return [Part("httpapi", amp) for amp in events]

    def request(
        self, key: str, payloads: Sequence[Any], config: BaseModel, *, now: datetime
    ) -> OutboundRequest:
        cfg = expect_config(config, AmplitudeConfig)
        api_key = cfg.api_key.get_secret_value()
        upload: dict[str, Any] = {"api_key": api_key, "events": list(payloads)}
        if cfg.min_id_length is not None:
            upload["options"] = {"min_id_length": cfg.min_id_length}
        return OutboundRequest(
            method="POST",
            url=cfg.endpoint or ENDPOINTS[cfg.region],
            headers={"Content-Type": "application/json", "Accept": "*/*"},
            body=json_bytes(upload),
            redact=(api_key,),
        )

    def delete_user(self, subject: DeletionSubject, config: BaseModel) -> OutboundRequest | str:
        cfg = expect_config(config, AmplitudeConfig)
        if subject.kind != "user_id":
            return "Amplitude deletes by user_id or Amplitude ID only: delete this device there"
        if cfg.secret_key is None:
            return "config.secret_key is not set: the User Privacy API needs it"
        if cfg.endpoint:
            # An endpoint override (a proxy, a test receiver) takes the deletion calls too.
            parts = urlsplit(cfg.endpoint)
            url = f"{parts.scheme}://{parts.netloc}{DELETION_PATH}"
        else:
            url = DELETION_ENDPOINTS[cfg.region]
        api_key = cfg.api_key.get_secret_value()
        secret_key = cfg.secret_key.get_secret_value()
        basic = base64.b64encode(f"{api_key}:{secret_key}".encode()).decode("ascii")
        return OutboundRequest(
            method="POST",
            url=url,
            headers={"Content-Type": "application/json", "Authorization": f"Basic {basic}"},
            body=json_bytes({"user_ids": [subject.value], "requester": subject.requester}),
            redact=(api_key, secret_key, basic),
        )
