"""Klaviyo: canonical events through the bulk Events and bulk Profile Import APIs (JSON:API).

Both go through Klaviyo's batch endpoints, with a private API key (`Authorization:
Klaviyo-API-Key pk_...`) and the pinned `revision` header:
- track/page/screen -> `POST /api/event-bulk-create-jobs`, up to 1,000 events and 5 MB a request.
  Each event is one `event-bulk-create` entry: its profile (identifiers only) and one event:
  metric name = event (track), "Viewed <name> Page/Screen" or "Loaded a Page/Screen" (page/screen);
  properties = the event's properties; time = timestamp; unique_id = messageId (Klaviyo keeps one
  event per profile, metric and unique_id, so a redelivery is harmless); value = properties
  revenue, else value, else total (a number); value_currency = properties.currency.
- identify -> `POST /api/profile-bulk-import-jobs` (create or update, up to 10,000 profiles and
  5 MB; Streams sends at most 1,000, the shared batch size). Traits (context.traits, then the
  call's traits) -> profile attributes: email, phone -> phone_number (E.164), userId ->
  external_id, firstName/first_name, lastName/last_name, title, avatar -> image, company (or
  company.name) -> organization, address {street, city, state, postalCode, country} ->
  location {address1, city, region, zip, country}, context.timezone/context.ip -> location
  timezone/ip, context.locale -> locale; every other trait -> properties.
- group, alias -> not sent (Klaviyo has no account objects nor profile merging in its API).

Profile identifiers: userId -> external_id, anonymousId -> anonymous_id (events only: the profile
import takes none), email and phone from context.traits (for identify, also traits; for events,
else properties.email / properties.phone). An event needs one of them, an identify one of email,
phone or userId; a malformed email or a phone that is not E.164 after removing spaces, dashes,
dots and parentheses is refused here: in a batch, Klaviyo's 400 would refuse every event with it.

Errors (JSON:API `errors[]`): 429 (code "throttled") and 5xx are retried after Retry-After;
400 (invalid), 401, 403 and other 4xx are permanent, dead-lettered with `errors[0].detail`.
User deletion: `POST /api/data-privacy-deletion-jobs` deletes by email, phone number or Klaviyo
profile id only, never by external_id: a userId that is an email address or an E.164 number is
deleted by it; any other subject needs manual action in Klaviyo.
"""

from __future__ import annotations

import json
import re
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
    compact,
    event_time,
    expect_config,
    json_bytes,
    obj,
    page_or_screen_name,
    scalar,
    text,
)
from shared.domain.event import CanonicalEvent
from shared.ports import SendResult, SendStatus

BASE_URL = "https://a.klaviyo.com"
# Klaviyo versions its API by date; a revision is supported for two years after release.
REVISION = "2026-07-15"
EVENTS_PATH = "/api/event-bulk-create-jobs"
PROFILES_PATH = "/api/profile-bulk-import-jobs"
DELETION_PATH = "/api/data-privacy-deletion-jobs"
CONTENT_TYPE = "application/vnd.api+json"

# Bulk Create Events: 1,000 events and 5 MB per request; Bulk Import Profiles: 10,000 profiles
# and 5 MB. One batch size serves both keys, so the smaller.
MAX_PARTS = 1000
MAX_BYTES = 5_000_000 - 10_000  # less the JSON:API envelope

E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
PHONE_PUNCTUATION = re.compile(r"[\s().\-]")
# The shape Klaviyo accepts, checked loosely: one @, no spaces, a dotted domain.
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

# Segment traits mapped to Klaviyo's profile attributes, not copied into `properties`.
MAPPED_TRAITS = frozenset(
    {
        "email",
        "phone",
        "firstName",
        "first_name",
        "lastName",
        "last_name",
        "title",
        "avatar",
        "company",
        "address",
    }
)
# Klaviyo location <- Segment address trait key.
ADDRESS_KEYS = {
    "address1": "street",
    "city": "city",
    "region": "state",
    "zip": "postalCode",
    "country": "country",
}


class KlaviyoConfig(DestinationConfig):
    """A private API key (write-only) and an optional base URL override."""

    ADDRESS_FIELDS: ClassVar[tuple[str, ...]] = ("endpoint",)
    SENT_SECRETS: ClassVar[tuple[str, ...]] = ("api_key",)

    # A private key: public keys (6-character site ids) cannot call /api/ endpoints.
    api_key: Annotated[SecretStr, Field(min_length=4, max_length=256)]
    # Base URL replacing https://a.klaviyo.com (the /api/... paths are appended).
    endpoint: str | None = None

    @field_validator("api_key")
    @classmethod
    def _private_key(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith("pk_"):
            raise ValueError("must be a Klaviyo private API key (it starts with pk_)")
        return value

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        return None if value is None else check_http_url(value).rstrip("/")


def _phone(value: Any) -> str | None:
    """The phone number in E.164, or None when absent; EventRejected when it cannot be."""
    if value is None or value == "":
        return None
    raw = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None
    phone = PHONE_PUNCTUATION.sub("", raw) if raw is not None else ""
    if not E164.match(phone):
        raise EventRejected(
            "Klaviyo needs phone numbers in E.164 form (+ and country code, e.g. +15005550006)"
        )
    return phone


def _email(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not EMAIL.match(value.strip()):
        raise EventRejected("Klaviyo refuses this email address: it is not name@domain")
    return value.strip()


def _iso(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds (Klaviyo truncates event times to the second)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _number(value: Any) -> int | float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _event_profile(event: CanonicalEvent) -> dict[str, Any]:
    """The identifiers of the profile an event belongs to."""
    context_traits = obj(obj(event.get("context")).get("traits"))
    properties = obj(event.get("properties"))
    email = context_traits.get("email") or properties.get("email")
    phone = context_traits.get("phone") or properties.get("phone")
    return compact(
        {
            "email": _email(email),
            "phone_number": _phone(phone),
            "external_id": text(event.get("userId")),
            "anonymous_id": text(event.get("anonymousId")),
        }
    )


def _event_entry(event: CanonicalEvent, now: datetime) -> dict[str, Any]:
    kind = event.get("type")
    name = str(event.get("event")) if kind == "track" else page_or_screen_name(event)
    profile = _event_profile(event)
    if not profile:
        raise EventRejected(
            "Klaviyo needs an email, a phone number, a userId or an anonymousId for the "
            "profile, and this event has none"
        )
    properties = obj(event.get("properties"))
    value = next(
        (
            number
            for key in ("revenue", "value", "total")
            if (number := _number(properties.get(key))) is not None
        ),
        None,
    )
    # `properties` is required, even empty (compact() would drop an empty object).
    attributes = {"properties": properties} | compact(
        {
            "time": _iso(event_time(event, now)),
            "value": value,
            "value_currency": text(properties.get("currency")) if value is not None else None,
            "unique_id": text(event.get("messageId")),
            "metric": {"data": {"type": "metric", "attributes": {"name": name}}},
        }
    )
    return {
        "type": "event-bulk-create",
        "attributes": {
            "profile": {"data": {"type": "profile", "attributes": profile}},
            "events": {"data": [{"type": "event", "attributes": attributes}]},
        },
    }


def _organization(company: Any) -> str | None:
    if isinstance(company, dict):
        return text(company.get("name"))
    return text(company)


def _profile(event: CanonicalEvent) -> dict[str, Any]:
    """An identify's traits as a Klaviyo profile upsert."""
    context = obj(event.get("context"))
    traits = {**obj(context.get("traits")), **obj(event.get("traits"))}
    address = obj(traits.get("address"))
    location = compact(
        {
            **{key: scalar(address.get(source)) for key, source in ADDRESS_KEYS.items()},
            "timezone": text(context.get("timezone")),
            "ip": text(context.get("ip")),
        }
    )
    company = traits.get("company")
    organization = _organization(company)
    rest = {key: value for key, value in traits.items() if key not in MAPPED_TRAITS}
    if company is not None and organization is None:
        rest["company"] = company  # a company object without a name stays a property
    attributes = compact(
        {
            "email": _email(traits.get("email")),
            "phone_number": _phone(traits.get("phone")),
            "external_id": text(event.get("userId")),
            "first_name": text(traits.get("firstName")) or text(traits.get("first_name")),
            "last_name": text(traits.get("lastName")) or text(traits.get("last_name")),
            "organization": organization,
            "title": text(traits.get("title")),
            "image": text(traits.get("avatar")),
            "locale": text(context.get("locale")),
            "location": location,
            "properties": rest,
        }
    )
    if not any(key in attributes for key in ("email", "phone_number", "external_id")):
        raise EventRejected(
            "Klaviyo's profile import needs an email, a phone number or a userId, "
            "and this identify has none"
        )
    return {"type": "profile", "attributes": attributes}


def _identity(entry: dict[str, Any]) -> str:
    """What makes a bulk event a duplicate: its profile, metric and unique_id."""
    attributes = entry["attributes"]
    [event] = attributes["events"]["data"]
    metric = event["attributes"]["metric"]["data"]["attributes"]["name"]
    profile = attributes["profile"]["data"]["attributes"]
    return json.dumps([profile, metric, event["attributes"].get("unique_id")], sort_keys=True)


def _first_error(body: bytes) -> dict[str, Any]:
    try:
        answer = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    errors = answer.get("errors") if isinstance(answer, dict) else None
    return obj(errors[0]) if isinstance(errors, list) and errors else {}


class KlaviyoConnector:
    """Klaviyo bulk Events and Profile Import; group and alias are skipped."""

    type = "klaviyo"
    config_model = KlaviyoConfig
    about = About(
        description="Email and SMS marketing: events and profiles (bulk Events, Profiles APIs)",
        docs_url="https://developers.klaviyo.com/en/reference/bulk_create_events",
        event_types=("track", "identify", "page", "screen"),
        batching=Batching(max_parts=MAX_PARTS, max_bytes=MAX_BYTES),
        # Both bulk endpoints allow 10 requests a second (burst) and 150 a minute (steady) per
        # account: a 10-request bucket refilled over 4 s keeps to both (2.5/s = 150/min).
        rate_limit=RateLimit(requests=10, per_seconds=4.0),
    )

    def parts(self, event: CanonicalEvent, config: BaseModel, *, now: datetime) -> list[Part]:
        expect_config(config, KlaviyoConfig)
        kind = event.get("type")
        if kind in ("track", "page", "screen"):
            return [Part("events", _event_entry(event, now))]
        if kind == "identify":
            return [Part("profiles", _profile(event))]
        return []  # group, alias

    def request(
        self, key: str, payloads: Sequence[Any], config: BaseModel, *, now: datetime
    ) -> OutboundRequest:
        cfg = expect_config(config, KlaviyoConfig)
        if key == "events":
            # Klaviyo refuses a whole bulk request that repeats a unique_id for the same profile
            # and metric: a redelivered event in the same batch is sent once.
            seen: set[str] = set()
            entries = []
            for entry in payloads:
                identity = _identity(entry)
                if identity not in seen:
                    seen.add(identity)
                    entries.append(entry)
            body: dict[str, Any] = {
                "type": "event-bulk-create-job",
                "attributes": {"events-bulk-create": {"data": entries}},
            }
            path = EVENTS_PATH
        else:
            body = {
                "type": "profile-bulk-import-job",
                "attributes": {"profiles": {"data": list(payloads)}},
            }
            path = PROFILES_PATH
        return self._post(cfg, path, {"data": body})

    def classify(self, result: SendResult) -> SendStatus | None:
        status = result.http_status
        if status is None or 200 <= status < 300:
            return None
        # Klaviyo's rate limit answer carries the code "throttled": whatever its status, it
        # passes (Retry-After says when). 408, 429 and 5xx keep their default: retried.
        if _first_error(result.body).get("code") == "throttled":
            return "retry"
        # 400 invalid, 401 not_authenticated, 403 permission_denied, 404, 413...: about the
        # request or the key, so permanent; the answer's errors[0].detail is in the detail.
        if 400 <= status < 500 and status not in (408, 429):
            return "failed"
        return None

    def delete_user(self, subject: DeletionSubject, config: BaseModel) -> OutboundRequest | str:
        cfg = expect_config(config, KlaviyoConfig)
        reason = (
            "Klaviyo deletes profiles by email, phone number or Klaviyo profile id only, not by "
            "external_id: delete this profile in Klaviyo"
        )
        if subject.kind != "user_id":
            return reason
        value = subject.value.strip()
        if EMAIL.match(value):
            identifier = {"email": value}
        elif E164.match(value):
            identifier = {"phone_number": value}
        else:
            return reason
        body = {
            "data": {
                "type": "data-privacy-deletion-job",
                "attributes": {"profile": {"data": {"type": "profile", "attributes": identifier}}},
            }
        }
        return self._post(cfg, DELETION_PATH, body)

    @staticmethod
    def _post(cfg: KlaviyoConfig, path: str, body: dict[str, Any]) -> OutboundRequest:
        api_key = cfg.api_key.get_secret_value()
        return OutboundRequest(
            method="POST",
            url=f"{cfg.endpoint or BASE_URL}{path}",
            headers={
                "Authorization": f"Klaviyo-API-Key {api_key}",
                "revision": REVISION,
                "Content-Type": CONTENT_TYPE,
                "Accept": CONTENT_TYPE,
            },
            body=json_bytes(body),
            redact=(api_key,),
        )
