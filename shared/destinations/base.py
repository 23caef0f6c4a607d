"""What every destination connector shares: outbound shapes, the config base, payload helpers."""

from __future__ import annotations

import builtins
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal, Protocol, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

from shared.domain.event import CanonicalEvent

# The request a `Sender` sends, declared with that port; connectors build it.
from shared.ports import OutboundRequest as OutboundRequest

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_URL_CHARS = 2048

ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True)
class OutboundMessage:
    """One Pub/Sub message for a customer topic; the caller publishes it."""

    topic: str
    data: bytes
    attributes: dict[str, str]


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
    """One destination type: validates its config and maps a canonical event to a request."""

    @property
    def type(self) -> str: ...

    @property
    def config_model(self) -> builtins.type[DestinationConfig]: ...

    def build(
        self, event: CanonicalEvent, config: BaseModel, *, now: datetime
    ) -> OutboundRequest | OutboundMessage | None:
        """The destination's payload for one event; None when this type takes no such event."""
        ...


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
    """Compact UTF-8 JSON, the form every connector sends."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


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
