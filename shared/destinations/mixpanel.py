"""Mixpanel: one canonical event as an Ingestion API call.

- track/page/screen -> an event on `/track` (real-time; Mixpanel takes only the last 5 days), or on
  `/import?strict=1` with HTTP Basic `api_secret:` when `api_secret` is set (any age, validated).
  Properties: the event's properties, mapped context ($os, $model, $current_url, ...), then
  token, distinct_id (userId, else anonymousId), time (ms), $insert_id = messageId (Mixpanel
  deduplicates on it; an id Mixpanel would refuse, over 36 characters or not [A-Za-z0-9-], is
  replaced by a stable SHA-256 prefix), $user_id / $device_id (Simplified ID Merge links the
  two), ip.
  page/screen are named "Viewed <name> Page/Screen" or "Loaded a Page/Screen".
- identify -> `/engage` $set of the traits, Segment's reserved traits renamed ($email, $name, ...).
- group -> `/groups` $set of the traits on `$group_key` = config `group_key`; skipped without one.
- alias -> a `$create_alias` event on `/track` (distinct_id = previousId, alias = userId). Projects
  on Simplified ID Merge ignore it; they merge through $device_id/$user_id on events instead.
The IP Mixpanel geolocates is always the client's (`context.ip`), never Streams' own: `ip=0` on
/track, `$ip` = context.ip or "0" on /engage.
User deletion (regulations, docs/PRIVACY.md): the GDPR API v3, `POST /api/app/data-deletions/v3.0/`
with the project token and a Bearer GDPR OAuth token (the optional `gdpr_token`), by distinct_id
(userId, else anonymousId, as events are sent).
"""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import quote

from pydantic import BaseModel, Field, SecretStr, field_validator

from shared.destinations.base import (
    About,
    DeletionSubject,
    DestinationConfig,
    OutboundRequest,
    PerEventConnector,
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

BASE_URLS = {
    "us": "https://api.mixpanel.com",
    "eu": "https://api-eu.mixpanel.com",
    "in": "https://api-in.mixpanel.com",
}

# Where the GDPR API lives, per data residency (not the ingestion hosts).
GDPR_BASE_URLS = {
    "us": "https://mixpanel.com",
    "eu": "https://eu.mixpanel.com",
    "in": "https://in.mixpanel.com",
}
DELETION_PATH = "/api/app/data-deletions/v3.0/"

# Mixpanel event property <- dotted path in the canonical event's context.
CONTEXT_PROPERTIES = {
    "$os": "os.name",
    "$os_version": "os.version",
    "$model": "device.model",
    "$manufacturer": "device.manufacturer",
    "$brand": "device.brand",
    "$carrier": "network.carrier",
    "$wifi": "network.wifi",
    "$screen_width": "screen.width",
    "$screen_height": "screen.height",
    "$current_url": "page.url",
    "$referrer": "page.referrer",
    "$app_version_string": "app.version",
    "$app_build_number": "app.build",
    "mp_lib": "library.name",
}

# Segment's reserved traits -> Mixpanel's reserved profile properties.
PROFILE_PROPERTIES = {
    "email": "$email",
    "name": "$name",
    "firstName": "$first_name",
    "first_name": "$first_name",
    "lastName": "$last_name",
    "last_name": "$last_name",
    "phone": "$phone",
    "avatar": "$avatar",
    "createdAt": "$created",
    "created_at": "$created",
    "username": "$username",
}


# Mixpanel's rule for $insert_id: at most 36 characters, letters, digits and "-".
INSERT_ID = re.compile(r"^[A-Za-z0-9-]{1,36}$")


def insert_id(message_id: Any) -> str | None:
    """messageId when Mixpanel accepts it as $insert_id, else a stable 32-hex digest of it."""
    if not isinstance(message_id, str) or not message_id:
        return None
    if INSERT_ID.match(message_id):
        return message_id
    return hashlib.sha256(message_id.encode("utf-8")).hexdigest()[:32]


class MixpanelConfig(DestinationConfig):
    """Project token and optional API secret (both write-only), residency, endpoint, group key."""

    ADDRESS_FIELDS: ClassVar[tuple[str, ...]] = ("endpoint",)
    SENT_SECRETS: ClassVar[tuple[str, ...]] = ("project_token", "api_secret", "gdpr_token")

    project_token: Annotated[SecretStr, Field(min_length=1, max_length=256)]
    api_secret: Annotated[SecretStr, Field(min_length=1, max_length=256)] | None = None
    # Only for user deletion: a GDPR OAuth token (Mixpanel personal settings, valid one year).
    gdpr_token: Annotated[SecretStr, Field(min_length=1, max_length=512)] | None = None
    region: Literal["us", "eu", "in"] = "us"
    # Base URL replacing the region's (paths /track, /import, /engage, /groups are appended).
    endpoint: str | None = None
    # Mixpanel group key (e.g. "company_id") that `group` calls update; None skips group calls.
    group_key: Annotated[str, Field(min_length=1, max_length=255)] | None = None

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        return None if value is None else check_http_url(value).rstrip("/")


def _event_properties(event: CanonicalEvent, token: str, now: datetime) -> dict[str, Any]:
    context = obj(event.get("context"))
    mapped = compact({key: scalar(dig(context, path)) for key, path in CONTEXT_PROPERTIES.items()})
    user_id = text(event.get("userId"))
    anonymous_id = text(event.get("anonymousId"))
    reserved = compact(
        {
            "token": token,
            # Mixpanel's rule for an event that belongs to no user: an empty distinct_id (left
            # out, it would hash the request's address into one invented user).
            "distinct_id": user_id or anonymous_id or "",
            "time": epoch_ms(event_time(event, now)),
            "$insert_id": insert_id(event.get("messageId")),
            "$user_id": user_id,
            "$device_id": anonymous_id,
            "ip": text(context.get("ip")),
        }
    )
    return {**mapped, **obj(event.get("properties")), **reserved}


def _profile(traits: dict[str, Any]) -> dict[str, Any]:
    return {PROFILE_PROPERTIES.get(key, key): value for key, value in traits.items()}


class MixpanelConnector(PerEventConnector):
    """Mixpanel ingestion; group is skipped without a group key."""

    type = "mixpanel"
    config_model = MixpanelConfig
    about = About(
        description="Product analytics: events, user profiles and group profiles (Ingestion API)",
        docs_url="https://developer.mixpanel.com/reference/ingestion-api",
        event_types=("track", "identify", "page", "screen", "group", "alias"),
        # Mixpanel's /import takes 2 GB of events an hour per project, /track a few hundred
        # requests a second: ten a second per instance stays inside both.
        rate_limit=RateLimit(requests=10, per_seconds=1.0),
    )

    def build(
        self, event: CanonicalEvent, config: BaseModel, *, now: datetime
    ) -> OutboundRequest | None:
        cfg = expect_config(config, MixpanelConfig)
        base = cfg.endpoint or BASE_URLS[cfg.region]
        token = cfg.project_token.get_secret_value()
        kind = event.get("type")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        redact: tuple[str, ...] = (token,)
        context = obj(event.get("context"))
        distinct_id = text(event.get("userId")) or text(event.get("anonymousId"))
        if kind in ("track", "page", "screen"):
            name = str(event.get("event")) if kind == "track" else page_or_screen_name(event)
            body: Any = [{"event": name, "properties": _event_properties(event, token, now)}]
            url = f"{base}/track?ip=0&verbose=1"
            if cfg.api_secret is not None:
                secret = cfg.api_secret.get_secret_value()
                basic = base64.b64encode(f"{secret}:".encode()).decode("ascii")
                headers["Authorization"] = f"Basic {basic}"
                redact = (token, secret, basic)
                url = f"{base}/import?strict=1"
        elif kind == "identify":
            require_identity(event, "Mixpanel")  # a profile update names the profile
            traits = {**obj(context.get("traits")), **obj(event.get("traits"))}
            profile = {
                "$token": token,
                "$distinct_id": distinct_id,
                "$ip": text(context.get("ip")) or "0",
                "$set": _profile(traits),
            }
            body, url = [profile], f"{base}/engage?verbose=1"
        elif kind == "group":
            if cfg.group_key is None:
                return None
            group = {
                "$token": token,
                "$group_key": cfg.group_key,
                "$group_id": event.get("groupId"),
                "$set": obj(event.get("traits")),
            }
            body, url = [group], f"{base}/groups?verbose=1"
        elif kind == "alias":
            alias = {
                "distinct_id": event.get("previousId"),
                "alias": event.get("userId"),
                "token": token,
            }
            body = [{"event": "$create_alias", "properties": alias}]
            url = f"{base}/track?ip=0&verbose=1"
        else:
            return None
        return OutboundRequest("POST", url, headers, json_bytes(body), redact=redact)

    def delete_user(self, subject: DeletionSubject, config: BaseModel) -> OutboundRequest | str:
        cfg = expect_config(config, MixpanelConfig)
        if cfg.gdpr_token is None:
            return "config.gdpr_token is not set: the GDPR API needs it"
        base = cfg.endpoint or GDPR_BASE_URLS[cfg.region]
        token = cfg.project_token.get_secret_value()
        gdpr_token = cfg.gdpr_token.get_secret_value()
        return OutboundRequest(
            method="POST",
            url=f"{base}{DELETION_PATH}?token={quote(token, safe='')}",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {gdpr_token}"},
            body=json_bytes({"distinct_ids": [subject.value], "compliance_type": "GDPR"}),
            redact=(token, gdpr_token),
        )
