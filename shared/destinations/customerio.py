"""Customer.io: canonical events as Track API v2 operations, batched on `POST /api/v2/batch`.

Every operation names a person by `identifiers: {id: userId}` (v2 has no anonymous person
operations), so an event without a userId is refused. Mapping (Customer.io's Track v2 API):
- identify -> person `identify`; attributes = the traits (context.traits beneath them), with
  `createdAt`/`created_at` as `created_at` in Unix seconds and `anonymous_id` = anonymousId
  (Customer.io then joins that anonymous activity to the person); timestamp in Unix seconds.
- track -> person `event`: name = event, attributes = properties, timestamp.
- page -> person `page`: name = the page URL (properties.url, else context.page.url, else the
  page's name), as Customer.io names page views by URL; attributes = properties.
- screen -> person `screen`: name = the screen's name (else "Loaded a Screen").
- group -> object `identify` of the group (object_type_id = config `object_type_id`, object_id =
  groupId, attributes = traits) with the person in `cio_relationships`; skipped without an
  `object_type_id` (Customer.io objects are typed by a numeric id set up in the workspace).
- alias -> person `merge`: primary {id: userId}, secondary {id: previousId}. Customer.io keeps
  the primary and deletes the secondary: Segment's alias says the two are one person.
`id` (Customer.io's deduplication key, a ULID) = messageId when it is a ULID.

Batching: a batch must be under 500 KB and each operation at most 32 KB; an operation larger
than that is refused before sending. Errors: 200 ok; 207 some operations refused (the others
are accepted, so the request is not retried; the answer lists the refused ones); 400 malformed,
401 bad credentials: permanent; 429 and 5xx retried.

User deletion: v2 person `delete` on `POST /api/v2/entity`, by userId only.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator

from shared.destinations.base import (
    EPOCH,
    About,
    Batching,
    DeletionSubject,
    DestinationConfig,
    EventRejected,
    OutboundRequest,
    Part,
    RateLimit,
    check_http_url,
    dig,
    event_time,
    expect_config,
    json_bytes,
    obj,
    page_or_screen_name,
    text,
)
from shared.domain.event import CanonicalEvent

BASE_URLS = {"us": "https://track.customer.io", "eu": "https://track-eu.customer.io"}
BATCH_PATH = "/api/v2/batch"
ENTITY_PATH = "/api/v2/entity"
# Customer.io's documented limits: 500 KB a batch, 32 KB an operation.
MAX_BATCH_BYTES = 500_000
MAX_OPERATION_BYTES = 32_000
ENVELOPE_BYTES = 1_000
ULID = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$")


class CustomerioConfig(DestinationConfig):
    """Site ID and Track API key (write-only), region, endpoint override, group object type."""

    ADDRESS_FIELDS: ClassVar[tuple[str, ...]] = ("endpoint",)
    SENT_SECRETS: ClassVar[tuple[str, ...]] = ("api_key",)

    site_id: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")]
    api_key: Annotated[SecretStr, Field(min_length=1, max_length=256)]
    region: Literal["us", "eu"] = "us"
    # Base URL replacing the region's (a proxy, or a local receiver in tests); paths appended.
    endpoint: str | None = None
    # The object type (its numeric id in the workspace, e.g. "1" for Companies) that `group`
    # calls put people in; None skips group calls.
    object_type_id: Annotated[str, Field(pattern=r"^[0-9]{1,10}$")] | None = None

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        return None if value is None else check_http_url(value).rstrip("/")


def unix_seconds(moment: datetime) -> int:
    """Whole seconds since the epoch, as Customer.io's timestamps are."""
    return int((moment - EPOCH).total_seconds())


def _created_at(value: Any) -> int | float | None:
    """Segment's createdAt (ISO 8601 or a number) as Unix seconds, Customer.io's format."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return unix_seconds(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))
    return None


def _person_attributes(event: CanonicalEvent) -> dict[str, Any]:
    traits = {**obj(obj(event.get("context")).get("traits")), **obj(event.get("traits"))}
    created = traits.pop("createdAt", traits.pop("created_at", None))
    attributes = {k: v for k, v in traits.items() if k != "id"}
    created_at = _created_at(created)
    if created_at is not None:
        attributes["created_at"] = created_at
    anonymous_id = text(event.get("anonymousId"))
    if anonymous_id:
        attributes["anonymous_id"] = anonymous_id
    return attributes


def _operation(event: CanonicalEvent, cfg: CustomerioConfig, now: datetime) -> dict[str, Any]:
    """The event's v2 operation; {} when this type takes no such event."""
    kind = event.get("type")
    if kind == "group" and cfg.object_type_id is None:
        return {}
    user_id = text(event.get("userId"))
    if not user_id:
        raise EventRejected(
            "Customer.io's Track API v2 names every person by id, and this event has no userId"
        )
    person = {"type": "person", "identifiers": {"id": user_id}}
    timestamp = unix_seconds(event_time(event, now))
    properties = obj(event.get("properties"))
    if kind == "identify":
        return {
            **person,
            "action": "identify",
            "timestamp": timestamp,
            "attributes": _person_attributes(event),
        }
    if kind == "alias":
        return {
            "type": "person",
            "action": "merge",
            "primary": {"id": user_id},
            "secondary": {"id": str(event.get("previousId"))},
        }
    if kind == "group":
        return {
            "type": "object",
            "identifiers": {
                "object_type_id": cfg.object_type_id,
                "object_id": event.get("groupId"),
            },
            "action": "identify",
            "attributes": obj(event.get("traits")),
            "cio_relationships": [{"identifiers": {"id": user_id}}],
        }
    if kind == "track":
        name = str(event.get("event"))
    elif kind == "page":
        name = (
            text(properties.get("url"))
            or text(dig(event.get("context"), "page.url"))
            or page_or_screen_name(event)
        )
    else:
        name = text(event.get("name")) or page_or_screen_name(event)
    operation: dict[str, Any] = {**person, "action": "event" if kind == "track" else kind}
    message_id = text(event.get("messageId"))
    if message_id and ULID.match(message_id):
        operation["id"] = message_id  # Customer.io deduplicates on it: a retry is harmless
    return {**operation, "name": name, "timestamp": timestamp, "attributes": properties}


class CustomerioConnector:
    """Customer.io Track API v2 batches; group is skipped without an object type."""

    type = "customerio"
    config_model = CustomerioConfig
    about = About(
        description="Messaging automation: people, events, page/screen views, objects (Track API)",
        docs_url="https://docs.customer.io/integrations/api/track/",
        event_types=("track", "identify", "page", "screen", "group", "alias"),
        # 500 KB a batch (less the envelope); no count limit is documented, so bytes govern.
        batching=Batching(max_parts=1000, max_bytes=MAX_BATCH_BYTES - ENVELOPE_BYTES),
        # The Track API's fair use is 100 requests a second per workspace; each instance keeps
        # to half of it (a 429 is retried).
        rate_limit=RateLimit(requests=50, per_seconds=1.0),
    )

    def parts(self, event: CanonicalEvent, config: BaseModel, *, now: datetime) -> list[Part]:
        cfg = expect_config(config, CustomerioConfig)
        operation = _operation(event, cfg, now)
        if not operation:
            return []
        size = len(json_bytes(operation))
        if size > MAX_OPERATION_BYTES:
            raise EventRejected(
                f"Customer.io takes operations of at most 32 KB, and this event makes {size} bytes"
            )
        return [Part("batch", operation)]

    def request(
        self, key: str, payloads: Sequence[Any], config: BaseModel, *, now: datetime
    ) -> OutboundRequest:
        cfg = expect_config(config, CustomerioConfig)
        auth, secrets = _auth(cfg)
        return OutboundRequest(
            method="POST",
            url=f"{cfg.endpoint or BASE_URLS[cfg.region]}{BATCH_PATH}",
            headers={"Content-Type": "application/json", "Authorization": auth},
            body=json_bytes({"batch": list(payloads)}),
            redact=secrets,
        )

    def delete_user(self, subject: DeletionSubject, config: BaseModel) -> OutboundRequest | str:
        cfg = expect_config(config, CustomerioConfig)
        if subject.kind != "user_id":
            return "Customer.io deletes people by id only: delete this anonymous profile there"
        auth, secrets = _auth(cfg)
        operation = {"type": "person", "identifiers": {"id": subject.value}, "action": "delete"}
        return OutboundRequest(
            method="POST",
            url=f"{cfg.endpoint or BASE_URLS[cfg.region]}{ENTITY_PATH}",
            headers={"Content-Type": "application/json", "Authorization": auth},
            body=json_bytes(operation),
            redact=secrets,
        )


def _auth(cfg: CustomerioConfig) -> tuple[str, tuple[str, ...]]:
    """HTTP Basic site_id:api_key, and the secrets to scrub from any answer."""
    api_key = cfg.api_key.get_secret_value()
    basic = base64.b64encode(f"{cfg.site_id}:{api_key}".encode()).decode("ascii")
    return f"Basic {basic}", (api_key, basic)
