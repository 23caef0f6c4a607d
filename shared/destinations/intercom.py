"""Intercom: identifies as contacts, tracks as data events, groups as companies (REST API 2.x).

Intercom's API takes one object per request (no batch endpoint for these), so one event is one
request. Every request carries `Authorization: Bearer <access token>` and `Intercom-Version`.
- identify -> `POST /contacts` {role: "user", external_id: userId, email, phone, name, avatar,
  signed_up_at (createdAt, Unix seconds), custom_attributes: the other scalar traits}. An
  identify with neither userId nor email is refused (a user contact needs one). Intercom has no
  upsert for contacts: an identify of a contact that already exists is answered 409 "conflict"
  ("A contact matching those details already exists with id=<id>"), and the connector's
  `follow_up` then updates that contact (`PUT /contacts/<id>` with the same body), whose answer
  is the delivery's outcome. A conflict naming no id is permanent.
  Custom attributes must exist in the workspace (Intercom answers 400 otherwise); names holding
  "." or "$", which Intercom refuses, are left out.
- track -> `POST /events` {event_name, created_at (Unix seconds), user_id = userId, else email
  (traits/context.traits), metadata}. Metadata: at most 10 keys, scalar values (booleans as
  "true"/"false", strings cut to 255 characters), and `price` {amount in cents, currency} from
  properties.revenue. A track with neither userId nor email is refused (anonymous visitors exist
  in Intercom only through its Messenger).
- group -> `POST /companies` (create or update by company_id = groupId): name, plan, size
  (employees), website, industry, monthly_spend, remote_created_at, custom_attributes. Attaching
  the user to the company needs Intercom's own contact id, which events do not carry.
- page, screen, alias -> not sent (Intercom records page views only through its Messenger, and
  has no alias).
User deletion: Intercom deletes a contact by its own id only (`DELETE /contacts/{id}`), so a
regulation searches the contact by external_id = userId (`POST /contacts/search`) and the
connector's `follow_up` deletes the contact found (none found: nothing to delete). An anonymousId
subject needs manual deletion (Streams sends no anonymous contacts to Intercom).
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator

from shared.destinations.base import (
    About,
    DeletionSubject,
    DestinationConfig,
    EventRejected,
    OutboundRequest,
    PerEventConnector,
    RateLimit,
    check_http_url,
    compact,
    event_time,
    expect_config,
    json_bytes,
    obj,
    scalar,
    text,
)
from shared.domain.event import CanonicalEvent
from shared.ports import SendResult, SendStatus

BASE_URLS = {
    "us": "https://api.intercom.io",
    "eu": "https://api.eu.intercom.io",
    "au": "https://api.au.intercom.io",
}
MAX_METADATA_KEYS = 10
MAX_STRING_CHARS = 255

# Contact fields <- traits (Segment's reserved traits).
CONTACT_FIELDS = {"email": "email", "phone": "phone", "name": "name", "avatar": "avatar"}
# Company fields <- group traits; integers where Intercom wants them.
COMPANY_FIELDS = {"name": "name", "plan": "plan", "website": "website", "industry": "industry"}
COMPANY_NUMBERS = {"size": "employees", "monthly_spend": "monthly_spend"}
RESERVED_TRAITS = frozenset(
    {"email", "phone", "name", "avatar", "createdAt", "created_at", "id", "userId", "user_id"}
)
RESERVED_GROUP_TRAITS = frozenset(
    {"name", "plan", "website", "industry", "employees", "monthly_spend", "createdAt", "id"}
)

# Intercom's error codes documented as transient ("retry later"), whatever HTTP status carries
# them (developers.intercom.com/docs/references/rest-api/errors/error-codes).
RETRY_CODES = frozenset(
    {
        "rate_limit_exceeded",
        "too_many_requests",
        "request_timeout",
        "service_unavailable",
        "server_error",
    }
)


class IntercomConfig(DestinationConfig):
    """Access token (write-only), data residency, API version and an optional endpoint."""

    ADDRESS_FIELDS: ClassVar[tuple[str, ...]] = ("endpoint",)
    SENT_SECRETS: ClassVar[tuple[str, ...]] = ("access_token",)

    access_token: Annotated[SecretStr, Field(min_length=1, max_length=512)]
    region: Literal["us", "eu", "au"] = "us"
    api_version: Literal["2.9", "2.10", "2.11", "2.12", "2.13", "2.14"] = "2.11"
    # Base URL replacing the region's (paths /contacts, /events, /companies are appended).
    endpoint: str | None = None

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        return None if value is None else check_http_url(value).rstrip("/")


def _seconds(value: Any) -> int | None:
    """An ISO 8601 date (or a number of seconds) as Unix seconds."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
        return int(moment.timestamp()) if moment.tzinfo else None
    return None


def _attribute(value: Any) -> str | int | float | None:
    """A value Intercom takes as an attribute or metadata: numbers, strings (cut), no objects."""
    plain = scalar(value)
    if isinstance(plain, bool):
        return "true" if plain else "false"
    if isinstance(plain, str):
        return plain[:MAX_STRING_CHARS]
    return plain


def _custom(source: dict[str, Any], reserved: frozenset[str]) -> dict[str, Any]:
    return compact(
        {
            key: _attribute(value)
            for key, value in source.items()
            if key not in reserved and "." not in key and "$" not in key
        }
    )


def _email(event: CanonicalEvent) -> str | None:
    context_traits = obj(obj(event.get("context")).get("traits"))
    return text(obj(event.get("traits")).get("email")) or text(context_traits.get("email"))


def _contact(event: CanonicalEvent) -> dict[str, Any]:
    traits = {**obj(obj(event.get("context")).get("traits")), **obj(event.get("traits"))}
    user_id = text(event.get("userId"))
    if not user_id and not text(traits.get("email")):
        raise EventRejected("Intercom users need a userId or an email, and this event has neither")
    contact: dict[str, Any] = {"role": "user", "external_id": user_id}
    for field, trait in CONTACT_FIELDS.items():
        value = text(traits.get(trait))
        contact[field] = value[:MAX_STRING_CHARS] if value else None
    if not contact["name"]:
        first, last = text(traits.get("firstName")), text(traits.get("lastName"))
        contact["name"] = " ".join(part for part in (first, last) if part) or None
    contact["signed_up_at"] = _seconds(traits.get("createdAt") or traits.get("created_at"))
    reserved = RESERVED_TRAITS | {"firstName", "lastName"}
    contact["custom_attributes"] = _custom(traits, reserved)
    return compact(contact)


def _metadata(properties: dict[str, Any]) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    revenue = properties.get("revenue")
    if isinstance(revenue, int | float) and not isinstance(revenue, bool):
        # Intercom's monetary metadata: an amount in cents and a currency.
        currency = text(properties.get("currency")) or "usd"
        metadata["price"] = {"amount": round(revenue * 100), "currency": currency.lower()}
    for key, value in properties.items():
        if len(metadata) >= MAX_METADATA_KEYS:
            break  # Intercom takes at most 10 metadata keys per event
        if key in ("revenue", "currency") and "price" in metadata:
            continue
        plain = _attribute(value)
        if plain is not None and key not in metadata and "." not in key and "$" not in key:
            metadata[key] = plain
    return metadata


def _data_event(event: CanonicalEvent, now: datetime) -> dict[str, Any]:
    user_id = text(event.get("userId"))
    email = None if user_id else _email(event)
    if not user_id and not email:
        raise EventRejected(
            "Intercom data events need a userId or an email, and this event has neither"
        )
    return compact(
        {
            "event_name": str(event.get("event")),
            "created_at": int(event_time(event, now).timestamp()),
            "user_id": user_id,
            "email": email,
            "metadata": _metadata(obj(event.get("properties"))),
        }
    )


def _company(event: CanonicalEvent) -> dict[str, Any]:
    traits = obj(event.get("traits"))
    company: dict[str, Any] = {"company_id": str(event.get("groupId"))}
    for field, trait in COMPANY_FIELDS.items():
        value = text(traits.get(trait))
        company[field] = value[:MAX_STRING_CHARS] if value else None
    for field, trait in COMPANY_NUMBERS.items():
        number = traits.get(trait)
        if isinstance(number, int | float) and not isinstance(number, bool):
            company[field] = int(number)  # Intercom keeps whole numbers only here
    company["remote_created_at"] = _seconds(traits.get("createdAt"))
    company["custom_attributes"] = _custom(traits, RESERVED_GROUP_TRAITS)
    return compact(company)


SEARCH_PATH = "/contacts/search"


def _first_contact_id(body: bytes) -> str | None:
    """The id of the first contact a search answered, if any."""
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    found = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(found, list) or not found or not isinstance(found[0], dict):
        return None
    contact_id = found[0].get("id")
    return contact_id if isinstance(contact_id, str) and SAFE_ID.match(contact_id) else None


# Intercom's conflict message on a create: "... already exists with id=<contact id>".
EXISTING_CONTACT = re.compile(r"already exists with id=([0-9A-Za-z_-]{1,64})")
SAFE_ID = re.compile(r"^[0-9A-Za-z_-]{1,64}$")


def _codes(result: SendResult) -> set[str]:
    try:
        answer = json.loads(result.body)
    except ValueError:
        return set()
    errors = answer.get("errors") if isinstance(answer, dict) else None
    if not isinstance(errors, list):
        return set()
    return {str(e.get("code")) for e in errors if isinstance(e, dict)}


class IntercomConnector(PerEventConnector):
    """Intercom contacts, data events and companies; page/screen/alias skipped."""

    type = "intercom"
    config_model = IntercomConfig
    about = About(
        description="Customer messaging: contacts, data events and companies (REST API 2.x)",
        docs_url="https://developers.intercom.com/docs/references/rest-api/api.intercom.io/data-events",
        event_types=("track", "identify", "group"),
        # 10,000 calls a minute per app, enforced in 10-second windows of 1,666.
        rate_limit=RateLimit(requests=1666, per_seconds=10.0),
    )

    def build(
        self, event: CanonicalEvent, config: BaseModel, *, now: datetime
    ) -> OutboundRequest | None:
        cfg = expect_config(config, IntercomConfig)
        kind = event.get("type")
        if kind == "identify":
            path, body = "/contacts", _contact(event)
        elif kind == "track":
            path, body = "/events", _data_event(event, now)
        elif kind == "group":
            path, body = "/companies", _company(event)
        else:
            return None
        return self._request(cfg, path, body)

    @staticmethod
    def _request(cfg: IntercomConfig, path: str, body: dict[str, Any]) -> OutboundRequest:
        token = cfg.access_token.get_secret_value()
        return OutboundRequest(
            method="POST",
            url=f"{cfg.endpoint or BASE_URLS[cfg.region]}{path}",
            headers={
                "Content-Type": "application/json",
                "Accept": "application/json",
                "Authorization": f"Bearer {token}",
                "Intercom-Version": cfg.api_version,
            },
            body=json_bytes(body),
            redact=(token,),
        )

    def follow_up(self, request: OutboundRequest, result: SendResult) -> OutboundRequest | None:
        """The update of the existing contact a create conflicted with, by the id Intercom
        names in its answer; or the deletion of the contact a deletion's search found."""
        if request.url.endswith(SEARCH_PATH) and result.http_status == 200:
            contact_id = _first_contact_id(result.body)
            if contact_id is None:
                return None
            base = request.url.removesuffix(SEARCH_PATH)
            return replace(request, method="DELETE", url=f"{base}/contacts/{contact_id}", body=b"")
        if result.http_status != 409 or not request.url.endswith("/contacts"):
            return None
        found = EXISTING_CONTACT.search(result.body.decode("utf-8", errors="replace"))
        if found is None:
            return None
        return replace(request, method="PUT", url=f"{request.url}/{found.group(1)}")

    def delete_user(self, subject: DeletionSubject, config: BaseModel) -> OutboundRequest | str:
        """The search for the user's contact; `follow_up` deletes what it finds."""
        if subject.kind != "user_id":
            return "Intercom holds no anonymous contacts from Streams: delete leads there"
        return self._request(
            expect_config(config, IntercomConfig),
            SEARCH_PATH,
            {"query": {"field": "external_id", "operator": "=", "value": subject.value}},
        )

    def classify(self, result: SendResult) -> SendStatus | None:
        codes = _codes(result)
        if codes & RETRY_CODES:
            return "retry"
        if result.http_status == 409 or codes & {"conflict", "resource_conflict"}:
            return "failed"  # the contact exists: the same create conflicts again
        return None
