"""HubSpot: identifies as contact upserts, mapped track events as custom behavioral events.

- identify -> `POST /crm/v3/objects/contacts/batch/upsert`, up to 100 inputs a request, each
  {id, idProperty, properties}. By default contacts are keyed by email (idProperty "email", id =
  traits.email); an identify without an email is refused. With config `id_property` set to a
  custom unique contact property, the contact is keyed by userId instead (an identify without a
  userId is refused). Properties: Segment's reserved traits renamed to HubSpot's contact
  properties (firstName -> firstname, title -> jobtitle, address.city -> city, ...), plus the
  traits named in config `properties` (trait -> HubSpot internal name). Other traits are not sent:
  HubSpot refuses a whole batch that names a property the portal lacks. Values are strings, as
  HubSpot stores them (booleans "true"/"false"). Two identifies of one contact in the same batch
  are merged (HubSpot refuses duplicate ids in a batch), the later event's values winning.
- track -> `POST /events/v3/send/batch` (inputs of {eventName, email, occurredAt, uuid,
  properties}) when config `events` maps the event name to a HubSpot fully qualified event name
  (`pe<portal id>_<name>`); unmapped events are skipped. HubSpot links an occurrence to a contact
  by email (or its own record id/utk, which Segment events do not carry): the email comes from
  context.traits.email, else properties.email; a mapped event without one is refused.
  uuid = messageId (a stable UUIDv5 of it when it is not a UUID): HubSpot keeps the first
  occurrence with a uuid, so a redelivered batch is harmless. Properties: scalar properties whose
  names are valid HubSpot internal names (lowercase a-z, 0-9, _, at most 50), at most 50.
- page, screen, group, alias -> not sent: HubSpot records page views only through its own
  tracking code, has no alias, and companies have no unique key a Segment groupId maps to.

Batching: both endpoints take one request per batch; deliver's limits are per type, so both use
the contacts endpoint's 100 (the events endpoint takes 500).
User deletion: `POST /crm/v3/objects/contacts/gdpr-delete` {objectId: email, idProperty: "email"}
when the subject's userId is an email address; HubSpot's GDPR delete knows contacts only by email
or HubSpot record id, so any other subject needs manual deletion in HubSpot.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, Field, SecretStr, field_validator

from shared.destinations.base import (
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
    scalar,
    text,
)
from shared.domain.event import CanonicalEvent
from shared.ports import SendResult, SendStatus

BASE_URL = "https://api.hubapi.com"
CONTACTS_PATH = "/crm/v3/objects/contacts/batch/upsert"
EVENTS_PATH = "/events/v3/send/batch"
GDPR_DELETE_PATH = "/crm/v3/objects/contacts/gdpr-delete"
MAX_CONTACTS_PER_BATCH = 100
MAX_EVENT_PROPERTIES = 50

# HubSpot's rules: a fully qualified custom event name, and an internal property name.
EVENT_NAME = re.compile(r"^pe\d+_[a-z0-9_]{1,100}$")
PROPERTY_NAME = re.compile(r"^[a-z][a-z0-9_]{0,49}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Namespace of the UUIDv5 that stands for a messageId which is not itself a UUID.
MESSAGE_ID_NAMESPACE = uuid.UUID("6b1f0c52-7d0e-4f53-9a55-2c1d0e3f4a61")

# HubSpot contact property <- dotted path in the identify's traits (Segment's reserved traits).
CONTACT_PROPERTIES = {
    "email": "email",
    "firstname": "firstName",
    "lastname": "lastName",
    "phone": "phone",
    "jobtitle": "title",
    "website": "website",
    "company": "company",
    "address": "address.street",
    "city": "address.city",
    "state": "address.state",
    "zip": "address.postalCode",
    "country": "address.country",
}
# The same traits as Segment's snake_case libraries send them.
SNAKE_ALIASES = {"firstname": "first_name", "lastname": "last_name"}

# Answers worth another attempt besides 408/429/5xx: 423 Locked (HubSpot locks a record for 2 s
# under a burst of writes) and 477 Migration in Progress (the portal is moving data centres; the
# answer's Retry-After says when to come back).
RETRY_STATUSES = frozenset({423, 477})


class HubSpotConfig(DestinationConfig):
    """Private app access token (write-only), contact key, event and property maps, endpoint."""

    ADDRESS_FIELDS: ClassVar[tuple[str, ...]] = ("endpoint",)
    SENT_SECRETS: ClassVar[tuple[str, ...]] = ("access_token",)

    access_token: Annotated[SecretStr, Field(min_length=1, max_length=512)]
    # The unique contact property identifies upsert by: "email" (traits.email), or a custom
    # unique property that holds Segment's userId.
    id_property: Annotated[str, Field(min_length=1, max_length=50)] = "email"
    # Segment event name -> HubSpot fully qualified custom event name (pe<portal id>_<name>).
    events: Annotated[dict[str, str], Field(max_length=100)] = {}
    # Further traits to send: trait name -> HubSpot contact property internal name.
    properties: Annotated[dict[str, str], Field(max_length=200)] = {}
    # Base URL replacing https://api.hubapi.com (a proxy, or a local receiver in tests).
    endpoint: str | None = None

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        return None if value is None else check_http_url(value).rstrip("/")

    @field_validator("id_property")
    @classmethod
    def _id_property(cls, value: str) -> str:
        if not PROPERTY_NAME.match(value):
            raise ValueError("must be a HubSpot property internal name (a-z, 0-9, _)")
        return value

    @field_validator("events")
    @classmethod
    def _events(cls, value: dict[str, str]) -> dict[str, str]:
        for name, hubspot_name in value.items():
            if not name or len(name) > 200:
                raise ValueError("event names must be 1 to 200 characters")
            if not EVENT_NAME.match(hubspot_name):
                raise ValueError(
                    "HubSpot event names must be fully qualified: pe<portal id>_<name>"
                )
        return value

    @field_validator("properties")
    @classmethod
    def _properties(cls, value: dict[str, str]) -> dict[str, str]:
        for trait, prop in value.items():
            if not trait or len(trait) > 200:
                raise ValueError("trait names must be 1 to 200 characters")
            if not PROPERTY_NAME.match(prop):
                raise ValueError("HubSpot property names are lowercase a-z, 0-9 and _")
        return value


def _value(value: Any) -> str | None:
    """A trait as HubSpot stores property values: a string (None when not a scalar)."""
    plain = scalar(value)
    if isinstance(plain, bool):
        return "true" if plain else "false"
    return None if plain is None else str(plain)


def _email(event: CanonicalEvent) -> str | None:
    context_traits = obj(obj(event.get("context")).get("traits"))
    for source in (obj(event.get("traits")), context_traits, obj(event.get("properties"))):
        email = text(source.get("email"))
        if email:
            return email
    return None


def _contact(event: CanonicalEvent, cfg: HubSpotConfig) -> dict[str, Any]:
    traits = {**obj(obj(event.get("context")).get("traits")), **obj(event.get("traits"))}
    properties: dict[str, str] = {}
    for prop, path in CONTACT_PROPERTIES.items():
        value = _value(dig(traits, path))
        if value is None and prop in SNAKE_ALIASES:
            value = _value(traits.get(SNAKE_ALIASES[prop]))
        if value is None and prop == "company":
            value = _value(dig(traits, "company.name"))  # Segment's company trait may be an object
        if value is not None:
            properties[prop] = value
    for trait, prop in cfg.properties.items():
        value = _value(traits.get(trait))
        if value is not None:
            properties[prop] = value
    if cfg.id_property == "email":
        key = properties.get("email")
        if not key:
            raise EventRejected(
                "HubSpot upserts contacts by email, and this identify has no email trait"
            )
    else:
        key = text(event.get("userId"))
        if not key:
            raise EventRejected(
                f"HubSpot upserts contacts by {cfg.id_property} (the userId), "
                "and this identify has no userId"
            )
        properties[cfg.id_property] = key
    return {"id": key, "idProperty": cfg.id_property, "properties": properties}


def _iso(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds, as HubSpot's examples write occurredAt."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _occurrence_uuid(message_id: Any) -> str | None:
    if not isinstance(message_id, str) or not message_id:
        return None
    try:
        return str(uuid.UUID(message_id))
    except ValueError:
        return str(uuid.uuid5(MESSAGE_ID_NAMESPACE, message_id))


def _occurrence(event: CanonicalEvent, name: str, now: datetime) -> dict[str, Any]:
    email = _email(event)
    if not email:
        raise EventRejected(
            "HubSpot links custom events to contacts by email, and this event has no "
            "context.traits.email or properties.email"
        )
    properties: dict[str, str] = {}
    for key, value in obj(event.get("properties")).items():
        plain = _value(value)
        if plain is not None and PROPERTY_NAME.match(key) and key != "email":
            properties[key] = plain
        if len(properties) == MAX_EVENT_PROPERTIES:
            break  # HubSpot refuses an occurrence with more
    occurrence: dict[str, Any] = {
        "eventName": name,
        "email": email,
        "occurredAt": _iso(event_time(event, now)),
        "properties": properties,
    }
    occurrence_id = _occurrence_uuid(event.get("messageId"))
    if occurrence_id:
        occurrence["uuid"] = occurrence_id
    return occurrence


def _merged(inputs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One input per contact, in first-seen order, later properties winning."""
    by_id: dict[str, dict[str, Any]] = {}
    for item in inputs:
        seen = by_id.get(item["id"])
        if seen is None:
            by_id[item["id"]] = {**item, "properties": dict(item["properties"])}
        else:
            seen["properties"].update(item["properties"])
    return list(by_id.values())


class HubSpotConnector:
    """HubSpot CRM contacts and custom behavioral events; page/screen/group/alias skipped."""

    type = "hubspot"
    config_model = HubSpotConfig
    about = About(
        description="CRM: contacts upserted from identify, custom behavioral events from track",
        docs_url="https://developers.hubspot.com/docs/api-reference/legacy/crm/objects/contacts/batch/upsert-contacts",
        event_types=("track", "identify"),
        batching=Batching(max_parts=MAX_CONTACTS_PER_BATCH),
        # Private apps: 100 requests per 10 s on Free/Starter portals (190 on Professional and
        # Enterprise), shared by every app of the portal: the lowest tier's limit.
        rate_limit=RateLimit(requests=100, per_seconds=10.0),
    )

    def parts(self, event: CanonicalEvent, config: BaseModel, *, now: datetime) -> list[Part]:
        cfg = expect_config(config, HubSpotConfig)
        kind = event.get("type")
        if kind == "identify":
            return [Part("contacts", _contact(event, cfg))]
        if kind == "track":
            name = cfg.events.get(str(event.get("event")))
            if name is None:
                return []
            return [Part("events", _occurrence(event, name, now))]
        return []

    def request(
        self, key: str, payloads: Sequence[Any], config: BaseModel, *, now: datetime
    ) -> OutboundRequest:
        cfg = expect_config(config, HubSpotConfig)
        base = cfg.endpoint or BASE_URL
        inputs = _merged(payloads) if key == "contacts" else list(payloads)
        path = CONTACTS_PATH if key == "contacts" else EVENTS_PATH
        return self._post(cfg, f"{base}{path}", {"inputs": inputs})

    def classify(self, result: SendResult) -> SendStatus | None:
        status = result.http_status
        if status in RETRY_STATUSES:
            return "retry"
        if status == 409:
            # A unique value (an email, the id property) already belongs to another contact:
            # the same request conflicts again, however often it is sent.
            return "failed"
        return None

    def delete_user(self, subject: DeletionSubject, config: BaseModel) -> OutboundRequest | str:
        cfg = expect_config(config, HubSpotConfig)
        if subject.kind != "user_id" or not EMAIL.match(subject.value):
            return (
                "HubSpot's GDPR delete finds contacts by email or HubSpot record id only, "
                "and this subject is neither: delete the contact in HubSpot"
            )
        body = {"objectId": subject.value, "idProperty": "email"}
        return self._post(cfg, f"{cfg.endpoint or BASE_URL}{GDPR_DELETE_PATH}", body)

    @staticmethod
    def _post(cfg: HubSpotConfig, url: str, body: Any) -> OutboundRequest:
        token = cfg.access_token.get_secret_value()
        return OutboundRequest(
            method="POST",
            url=url,
            headers={
                "Content-Type": "application/json",
                "Accept": "application/json",
                "Authorization": f"Bearer {token}",
            },
            body=json_bytes(body),
            redact=(token,),
        )
