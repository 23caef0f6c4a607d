"""PostHog: canonical events through the capture batch endpoint, `POST <host>/batch/` with the
project API key in the body; one request carries up to 1,000 events (PostHog takes up to 20 MB).

Mapping (PostHog's documented event types):
- track -> event = event name, properties = the event's properties
- page -> "$pageview" ($current_url, $pathname, $referrer, $title from properties.url/path/
  referrer/title, else context.page; name)
- screen -> "$screen" with $screen_name = name
- identify -> "$identify" with $set = traits, and $anon_distinct_id = anonymousId when the
  event also has a userId (PostHog then merges the anonymous person into the identified one)
- group -> "$groupidentify" with $group_type = config `group_type`, $group_key = groupId,
  $group_set = traits
- alias -> "$create_alias" with alias = previousId (the id merged into distinct_id = userId)
distinct_id = userId, else anonymousId; timestamp = the event's timestamp (ISO 8601); uuid =
messageId when it is a UUID, else a UUID derived from it (stable, so a redelivery carries the same
uuid and PostHog deduplicates it). Context rides along as PostHog's own properties: $lib and
$lib_version (context.library), $ip, $current_url, $pathname, $referrer, $title (context.page),
$raw_user_agent, $os, $os_version, $device_manufacturer, $device_model, $app_name,
$app_version, $app_build, $screen_width, $screen_height, $locale, $timezone; context.traits as
$set on track/page/screen events.
User deletion: the persons API, `POST /api/projects/<project_id>/persons/bulk_delete/` on the
private host (us.posthog.com, eu.posthog.com or the self-hosted host) with a personal API key
(Bearer, scope person:write), by distinct_id (a userId or an anonymousId), events included; it
needs the optional `personal_api_key` and `project_id`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator

from shared.destinations.base import (
    About,
    Batching,
    DeletionSubject,
    DestinationConfig,
    EventRejected,
    OutboundRequest,
    Part,
    check_http_url,
    compact,
    dig,
    event_time,
    expect_config,
    json_bytes,
    obj,
    require_identity,
    scalar,
    text,
)
from shared.domain.event import CanonicalEvent

# Public (capture) and private (API) hosts per PostHog Cloud region.
CAPTURE_HOSTS = {"us": "https://us.i.posthog.com", "eu": "https://eu.i.posthog.com"}
API_HOSTS = {"us": "https://us.posthog.com", "eu": "https://eu.posthog.com"}
BATCH_PATH = "/batch/"
# Namespace of the uuids derived from messageIds that are not UUIDs themselves.
UUID_NAMESPACE = uuid.UUID("6b0e2c1e-8f0a-5d7e-9c4b-3a2f1e0d9c8b")

# PostHog property <- dotted path in the canonical event's context.
CONTEXT_PROPERTIES = {
    "$lib": "library.name",
    "$lib_version": "library.version",
    "$ip": "ip",
    "$current_url": "page.url",
    "$pathname": "page.path",
    "$referrer": "page.referrer",
    "$title": "page.title",
    "$raw_user_agent": "userAgent",
    "$os": "os.name",
    "$os_version": "os.version",
    "$device_manufacturer": "device.manufacturer",
    "$device_model": "device.model",
    "$app_name": "app.name",
    "$app_version": "app.version",
    "$app_build": "app.build",
    "$screen_width": "screen.width",
    "$screen_height": "screen.height",
    "$locale": "locale",
    "$timezone": "timezone",
}


class PosthogConfig(DestinationConfig):
    """Project API key (write-only), cloud region or self-hosted host, and deletion access."""

    ADDRESS_FIELDS: ClassVar[tuple[str, ...]] = ("host",)
    SENT_SECRETS: ClassVar[tuple[str, ...]] = ("api_key", "personal_api_key")

    api_key: Annotated[SecretStr, Field(min_length=1, max_length=256)]
    region: Literal["us", "eu"] = "us"
    # Base URL of a self-hosted PostHog (or a proxy, or a local receiver in tests); replaces the
    # region's hosts for capture and for deletion.
    host: str | None = None
    # The group type `group` calls set properties on (PostHog's group analytics).
    group_type: Annotated[str, Field(min_length=1, max_length=100)] = "company"
    # Only for user deletion: a personal API key with person:write, and the project's id.
    personal_api_key: Annotated[SecretStr, Field(min_length=1, max_length=256)] | None = None
    project_id: Annotated[str, Field(pattern=r"^[0-9]{1,20}$")] | None = None

    @field_validator("host")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        return None if value is None else check_http_url(value).rstrip("/")


def event_uuid(message_id: Any) -> str | None:
    """The messageId if it is a UUID, else a stable UUID derived from it: PostHog refuses a
    whole batch over one uuid that does not parse."""
    if not isinstance(message_id, str) or not message_id:
        return None
    try:
        return str(uuid.UUID(message_id))
    except ValueError:
        return str(uuid.uuid5(UUID_NAMESPACE, message_id))


def _context_properties(context: dict[str, Any]) -> dict[str, Any]:
    return compact({key: scalar(dig(context, path)) for key, path in CONTEXT_PROPERTIES.items()})


def _capture(event: CanonicalEvent, cfg: PosthogConfig, now: datetime) -> dict[str, Any] | None:
    kind = event.get("type")
    context = obj(event.get("context"))
    properties = obj(event.get("properties"))
    traits = obj(event.get("traits"))
    context_traits = obj(context.get("traits"))
    distinct_id = text(event.get("userId")) or text(event.get("anonymousId"))
    name: str
    own: dict[str, Any] = {}
    if kind == "track":
        name = str(event.get("event") or "")
        if not name.strip():
            raise EventRejected("PostHog needs an event name, and this track event has none")
        own = {**properties, "$set": context_traits or None}
    elif kind == "page":
        name = "$pageview"
        own = {
            **properties,
            # The page's own fields win over context.page (Segment sends both).
            "$current_url": text(properties.get("url")),
            "$pathname": text(properties.get("path")),
            "$referrer": text(properties.get("referrer")),
            "$title": text(properties.get("title")),
            "name": text(event.get("name")),
            "$set": context_traits or None,
        }
    elif kind == "screen":
        name = "$screen"
        own = {
            **properties,
            "$screen_name": text(event.get("name")),
            "$set": context_traits or None,
        }
    elif kind == "identify":
        name = "$identify"
        anonymous = text(event.get("anonymousId"))
        own = {
            "$set": {**context_traits, **traits} or None,
            "$anon_distinct_id": anonymous if anonymous != distinct_id else None,
        }
    elif kind == "group":
        group_key = text(event.get("groupId"))
        if group_key is None:
            raise EventRejected("PostHog needs a groupId for a group event")
        name = "$groupidentify"
        own = {"$group_type": cfg.group_type, "$group_key": group_key, "$group_set": traits}
    elif kind == "alias":
        previous = text(event.get("previousId"))
        if previous is None or not text(event.get("userId")):
            raise EventRejected("PostHog needs a previousId and a userId for an alias event")
        name = "$create_alias"
        own = {"alias": previous}
    else:
        return None
    require_identity(event, "PostHog")
    merged = {**_context_properties(context), **{k: v for k, v in own.items() if v is not None}}
    return compact(
        {
            "event": name,
            "distinct_id": distinct_id,
            "properties": merged,
            "timestamp": event_time(event, now).isoformat().replace("+00:00", "Z"),
            "uuid": event_uuid(event.get("messageId")),
        }
    )


class PosthogConnector:
    """PostHog capture batch API; every Segment call has a PostHog equivalent."""

    type = "posthog"
    config_model = PosthogConfig
    about = About(
        description="Product analytics: events, persons and groups (capture batch API)",
        docs_url="https://posthog.com/docs/api/post-only-endpoints",
        event_types=("track", "identify", "page", "screen", "group", "alias"),
        # PostHog sets no event count per batch, only a 20 MB body; 1,000 events keeps a
        # refused batch (one bad event fails all) small. The envelope takes less than 1 KB.
        batching=Batching(max_parts=1000, max_bytes=20_000_000 - 1_000),
        # The capture endpoints are not rate limited (PostHog's API overview); a 429 means
        # the project's billing limit or ingestion throttling and is retried.
        rate_limit=None,
    )

    def parts(self, event: CanonicalEvent, config: BaseModel, *, now: datetime) -> list[Part]:
        cfg = expect_config(config, PosthogConfig)
        captured = _capture(event, cfg, now)
        return [] if captured is None else [Part("batch", captured)]

    def request(
        self, key: str, payloads: Sequence[Any], config: BaseModel, *, now: datetime
    ) -> OutboundRequest:
        cfg = expect_config(config, PosthogConfig)
        api_key = cfg.api_key.get_secret_value()
        host = cfg.host or CAPTURE_HOSTS[cfg.region]
        return OutboundRequest(
            method="POST",
            url=f"{host}{BATCH_PATH}",
            headers={"Content-Type": "application/json"},
            body=json_bytes({"api_key": api_key, "batch": list(payloads)}),
            redact=(api_key,),
        )

    def delete_user(self, subject: DeletionSubject, config: BaseModel) -> OutboundRequest | str:
        cfg = expect_config(config, PosthogConfig)
        if cfg.personal_api_key is None or cfg.project_id is None:
            return (
                "config.personal_api_key and config.project_id are not both set: PostHog's "
                "persons API needs them"
            )
        host = cfg.host or API_HOSTS[cfg.region]
        key = cfg.personal_api_key.get_secret_value()
        return OutboundRequest(
            method="POST",
            url=f"{host}/api/projects/{cfg.project_id}/persons/bulk_delete/",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
            # Both a userId and an anonymousId are distinct_ids in PostHog.
            body=json_bytes({"distinct_ids": [subject.value], "delete_events": True}),
            redact=(key,),
        )
