"""What every destination connector shares: outbound shapes, the config base, the catalogue
facts, batching, and payload helpers.

A connector maps one canonical event to `Part`s (its share of requests) and joins the parts of
many events into requests (`request`), within its `Batching` limits: `batched` does the joining
for deliver, `build_requests` for one event (the golden files, the test endpoint). A connector
whose API takes one event per request derives from `PerEventConnector` and only writes `build`.
"""

from __future__ import annotations

import builtins
import json
import re
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal, Protocol, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

from shared.domain.event import CanonicalEvent

# The request a `Sender` sends, declared with that port; connectors build it.
from shared.ports import OutboundFile as OutboundFile
from shared.ports import OutboundRequest as OutboundRequest
from shared.ports import SendResult, SendStatus

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_URL_CHARS = 2048

ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True)
class OutboundMessage:
    """One Pub/Sub message for a customer topic; the caller publishes it."""

    topic: str
    data: bytes
    attributes: dict[str, str]


Outbound = OutboundRequest | OutboundMessage | OutboundFile

EventType = Literal["track", "identify", "page", "screen", "group", "alias"]
EVENT_TYPES: tuple[EventType, ...] = ("track", "identify", "page", "screen", "group", "alias")


@dataclass(frozen=True)
class Batching:
    """How many events' parts one request may carry: at most `max_parts` parts, and at most
    `max_bytes` of parts' compact JSON when set (the vendor's body limit, less the envelope)."""

    max_parts: int = 1
    max_bytes: int | None = None


@dataclass(frozen=True)
class RateLimit:
    """The vendor's documented request rate per destination (per API key), which each deliver
    instance keeps to; a 429 beyond it is retried after the vendor's Retry-After."""

    requests: int
    per_seconds: float


@dataclass(frozen=True)
class About:
    """What the catalogue (`GET .../destination-types`) says of a type besides its config."""

    description: str
    docs_url: str
    event_types: tuple[EventType, ...]
    batching: Batching = Batching()
    rate_limit: RateLimit | None = None
    # Without a `delete_user` hook: how to delete a user there instead (regulations list the
    # destination for manual action with it).
    manual_deletion: str | None = None


@dataclass(frozen=True)
class Part:
    """One event's share of a request: `request` joins parts with the same `key` (an endpoint,
    or whatever must be the same for parts to share a request) into one."""

    key: str
    payload: Any


@dataclass(frozen=True)
class DeletionSubject:
    """Whose data to delete, and who asks (destinations that keep a requester record it)."""

    kind: Literal["user_id", "anonymous_id"]
    value: str
    requester: str


class DestinationConfig(BaseModel):
    """Base of every connector's config: unknown fields refused, secrets typed SecretStr."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    # Fields naming where requests go. When an update changes one of them, the secrets in
    # SENT_SECRETS must be re-entered: a stored credential never follows a new address.
    ADDRESS_FIELDS: ClassVar[tuple[str, ...]] = ()
    # Fields naming a Pub/Sub topic published to (checked against Streams' own topics).
    TOPIC_FIELDS: ClassVar[tuple[str, ...]] = ()
    SENT_SECRETS: ClassVar[tuple[str, ...]] = ()


class EventRejected(Exception):
    """The destination cannot take this event as it is (it needs an identity the event lacks):
    the delivery fails with this reason, rather than send what the destination would refuse or
    invent a value for it."""


def require_identity(event: CanonicalEvent, destination: str) -> None:
    """Refuse an event with neither `userId` nor `anonymousId` (POST /v1/streams/events takes
    such events) for a destination that keys everything by user."""
    if not text(event.get("userId")) and not text(event.get("anonymousId")):
        raise EventRejected(
            f"{destination} needs a userId or an anonymousId, and this event has neither"
        )


class Connector(Protocol):
    """One destination type: its config, its catalogue facts, and how events become requests.

    Optional hooks, found by `hasattr`: `classify(result) -> SendStatus | None` reads a vendor's
    documented error answers (None keeps the HTTP status's class: 2xx delivered; 408, 429, 5xx
    retried; other 4xx permanent); `follow_up(request, result) -> OutboundRequest | None` makes
    the one further request an answer calls for (an update after "already exists", a deletion
    once a search found the record), whose answer is then the outcome; and `delete_user`
    (shared/destinations/deletion.py).
    """

    @property
    def type(self) -> str: ...

    @property
    def config_model(self) -> builtins.type[DestinationConfig]: ...

    @property
    def about(self) -> About: ...

    def parts(self, event: CanonicalEvent, config: BaseModel, *, now: datetime) -> list[Part]:
        """The event's shares of requests; [] when this type takes no such event. Raises
        EventRejected when the destination cannot take the event as it is."""
        ...

    def request(
        self, key: str, payloads: Sequence[Any], config: BaseModel, *, now: datetime
    ) -> Outbound:
        """One request carrying `payloads` (parts with this key, within `about.batching`)."""
        ...


class PerEventConnector:
    """A connector whose API takes one event per request: `build` makes it, whole."""

    def build(self, event: CanonicalEvent, config: BaseModel, *, now: datetime) -> Outbound | None:
        """The event's request; None when this type takes no such event."""
        raise NotImplementedError

    def parts(self, event: CanonicalEvent, config: BaseModel, *, now: datetime) -> list[Part]:
        built = self.build(event, config, now=now)
        return [] if built is None else [Part("event", built)]

    def request(
        self, key: str, payloads: Sequence[Any], config: BaseModel, *, now: datetime
    ) -> Outbound:
        [built] = payloads
        return typing.cast(Outbound, built)


@dataclass(frozen=True)
class Batch:
    """One request and the owners (indices into `batched`'s input) of the parts it carries."""

    request: Outbound
    owners: tuple[int, ...]


def batched(
    connector: Connector,
    config: BaseModel,
    parts_by_owner: Sequence[Sequence[Part]],
    *,
    now: datetime,
) -> list[Batch]:
    """The requests carrying every part, in order: parts with the same key are joined up to the
    connector's batching limits. A part larger than `max_bytes` alone still gets a request (the
    vendor then answers why it refuses it, for that owner only)."""
    limits = connector.about.batching
    open_batches: dict[str, tuple[list[Any], list[int], int]] = {}
    done: list[tuple[str, list[Any], list[int]]] = []
    for owner, parts in enumerate(parts_by_owner):
        for part in parts:
            size = len(json_bytes(part.payload)) if limits.max_bytes is not None else 0
            payloads, owners, total = open_batches.get(part.key, ([], [], 0))
            full = len(payloads) >= limits.max_parts or (
                limits.max_bytes is not None and bool(payloads) and total + size > limits.max_bytes
            )
            if full:
                done.append((part.key, payloads, owners))
                payloads, owners, total = [], [], 0
            payloads.append(part.payload)
            if owner not in owners:
                owners.append(owner)
            open_batches[part.key] = (payloads, owners, total + size)
    done.extend((key, payloads, owners) for key, (payloads, owners, _) in open_batches.items())
    return [
        Batch(connector.request(key, payloads, config, now=now), tuple(owners))
        for key, payloads, owners in done
    ]


def build_requests(
    connector: Connector, event: CanonicalEvent, config: BaseModel, *, now: datetime
) -> list[Outbound]:
    """The requests one event alone makes; [] when the type takes no such event."""
    parts = connector.parts(event, config, now=now)
    return [batch.request for batch in batched(connector, config, [parts], now=now)]


def classify_result(connector: Connector, result: SendResult) -> SendStatus:
    """The send's status after the connector's own reading of the vendor's answer, if any.
    Only an answer is read: a refused address or a dropped connection keeps its class."""
    classify = getattr(connector, "classify", None)
    if classify is None or result.http_status is None:
        return result.status
    status: SendStatus | None = classify(result)
    return status or result.status


def expect_config(config: BaseModel, model: type[ModelT]) -> ModelT:
    """The config as its connector's model; a mismatch is a wiring bug, not a user error."""
    if not isinstance(config, model):
        raise TypeError(f"expected {model.__name__}, got {type(config).__name__}")
    return config


def check_http_url(value: str) -> str:
    """An absolute http(s) URL without credentials or fragment (the SSRF check is at send time)."""
    if len(value) > MAX_URL_CHARS:
        raise ValueError(f"must be at most {MAX_URL_CHARS} characters")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):
        raise ValueError("must not contain spaces or control characters")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 -- raises ValueError on a bad port
    except ValueError:
        raise ValueError("must be a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("must be an http or https URL")
    if not parts.hostname:
        raise ValueError("must include a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not contain credentials (user:password@)")
    if parts.fragment:
        raise ValueError("must not contain a fragment (#...)")
    return value


def json_bytes(value: Any) -> bytes:
    """Compact UTF-8 JSON, the form every connector sends. Text UTF-8 cannot encode (a lone
    surrogate, which events may hold) is sent escaped (ASCII JSON), never refused here."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, separators=(",", ":")).encode("ascii")


def event_time(event: CanonicalEvent, now: datetime) -> datetime:
    """The event's corrected `timestamp` as an aware datetime, or `now` if it is unusable."""
    raw = event.get("timestamp")
    if isinstance(raw, str):
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            parsed = None
        if parsed is not None:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return now


def epoch_ms(moment: datetime) -> int:
    """Whole milliseconds since the epoch, exact (no float rounding)."""
    return (moment - EPOCH) // timedelta(milliseconds=1)


def epoch_micros(moment: datetime) -> int:
    """Whole microseconds since the epoch, exact."""
    return (moment - EPOCH) // timedelta(microseconds=1)


def obj(value: Any) -> dict[str, Any]:
    """The value if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def dig(source: Any, path: str) -> Any:
    """The value at a dotted path through nested objects, or None."""
    for key in path.split("."):
        if not isinstance(source, dict):
            return None
        source = source.get(key)
    return source


def scalar(value: Any) -> str | int | float | bool | None:
    """The value if it is a non-empty JSON scalar, else None."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool | int | float):
        return value
    return None


def text(value: Any) -> str | None:
    """A non-empty string value, else None."""
    return value if isinstance(value, str) and value else None


def compact(mapping: dict[str, Any]) -> dict[str, Any]:
    """The mapping without None values and empty objects."""
    return {k: v for k, v in mapping.items() if v is not None and v != {}}


def page_or_screen_name(event: CanonicalEvent) -> str:
    """Segment's default names: 'Viewed <name> Page/Screen', or 'Loaded a Page/Screen'."""
    noun = "Page" if event.get("type") == "page" else "Screen"
    name = text(event.get("name"))
    return f"Viewed {name} {noun}" if name else f"Loaded a {noun}"


HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # RFC 9110 token
