"""Ingest normalisation: Segment-style request bodies to canonical events (pure, no I/O).

docs/EVENTS.md describes the canonical event and every rule applied here. Outputs share nested
objects (`properties`, `traits`, parts of `context`) with the input body and, for envelope
context, with each other: treat them as read-only. Inputs are never mutated.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from shared.domain import limits
from shared.domain.errors import InvalidRequest, PayloadTooLarge
from shared.domain.event import CanonicalEvent, EventKey
from shared.domain.ids import new_id
from shared.domain.storable import Unstorable, find_unstorable, plainly_storable

CALL_TYPES = frozenset({"track", "identify", "page", "screen", "group", "alias"})

# Calls that need a field EventInput (POST /v1/streams/events) lacks, with its spellings: there,
# without it, the type is a custom event name (a track), as the seed's `purchase` is.
CALL_REQUIRED_FIELDS = {
    "track": ("event",),
    "group": ("groupId", "group_id"),
    "alias": ("previousId", "previous_id"),
}
# Calls whose attributes are traits, not properties.
TRAIT_CALLS = frozenset({"identify", "group"})

# The seed's snake_case spellings; when both spellings carry a value, camelCase wins.
SNAKE_TO_CAMEL = {
    "user_id": "userId",
    "anonymous_id": "anonymousId",
    "message_id": "messageId",
    "group_id": "groupId",
    "previous_id": "previousId",
    "sent_at": "sentAt",
    "original_timestamp": "originalTimestamp",
}
# Known context keys sent in snake_case (the seed's `context.user_agent`); camelCase wins.
CONTEXT_SNAKE_TO_CAMEL = {
    "user_agent": "userAgent",
    "user_agent_data": "userAgentData",
    "group_id": "groupId",
}
# Set by the server: a client-sent value is ignored, never copied (writeKey is read by auth).
SERVER_OWNED_KEYS = frozenset(
    {"receivedAt", "received_at", "clockSkewMs", "workspaceId", "workspace_id", "sourceId"}
    | {"source_id", "writeKey", "write_key"}
)
# Every top-level input key normalisation reads; any other key is kept verbatim in `extras`.
KNOWN_KEYS = (
    frozenset({"type", "event", "name", "properties", "traits", "context", "integrations"})
    | frozenset({"timestamp", *SNAKE_TO_CAMEL, *SNAKE_TO_CAMEL.values()})
    | SERVER_OWNED_KEYS
)
# The canonical event's keys, in order; every key is always present (null when absent).
# fmt: off
CANONICAL_FIELDS: tuple[EventKey, ...] = (
    "messageId", "type", "event", "name", "userId", "anonymousId", "groupId", "previousId",
    "properties", "traits", "context", "integrations", "timestamp", "originalTimestamp",
    "sentAt", "receivedAt", "clockSkewMs", "workspaceId", "sourceId", "extras",
)
# fmt: on

_MS = timedelta(milliseconds=1)
_compact_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


@dataclass(frozen=True, slots=True)
class Rejection:
    """One event refused at ingest: its messageId as sent, why, and its index in the request."""

    message_id: str | None
    reason: str
    index: int
    field: str | None = None


@dataclass(frozen=True, slots=True)
class NormalisedBatch:
    """The outcome of one request: accepted canonical events and rejected items, in order."""

    events: list[CanonicalEvent]
    rejections: list[Rejection]


@dataclass(frozen=True, slots=True)
class IngestContext:
    """What the server knows about a request: whose it is, when it arrived, from where."""

    workspace_id: str
    source_id: str
    received_at: datetime
    request_ip: str | None


class _Reject(Exception):
    """Internal: one item is refused (never escapes this module)."""

    def __init__(self, reason: str, field: str | None = None):
        self.reason = reason
        self.field = field


@dataclass(frozen=True, slots=True)
class _Request:
    """Per-request values computed once and shared by every item."""

    ctx: IngestContext
    received_at: datetime
    received_at_iso: str
    new_message_id: Callable[[], str]
    context: dict[str, Any]
    integrations: dict[str, Any]
    sent_at_iso: str | None
    # `sent_at - received_at` in milliseconds (both are whole milliseconds): the request's
    # clock skew, for every item without a sentAt of its own (None without a sentAt).
    skew_ms: int | None


def normalise_request(
    body: Any,
    call_type: str | None,
    ctx: IngestContext,
    new_message_id: Callable[[], str] = new_id,
) -> NormalisedBatch:
    """Normalise a `/v1/<call_type>` body, or (call_type None) a `/v1/events` or `/v1/batch` one.

    Raises InvalidRequest / PayloadTooLarge for request-level problems; a bad item is a Rejection.
    """
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    if call_type is not None and call_type not in CALL_TYPES:
        raise InvalidRequest(f"unknown call type {call_type!r}", field="type")
    if call_type is None and "batch" in body:
        items = body["batch"]
        if not isinstance(items, list):
            raise InvalidRequest("batch must be a list", field="batch")
        if len(items) > limits.MAX_BATCH_EVENTS:
            raise PayloadTooLarge(
                f"batch has {len(items)} events; at most {limits.MAX_BATCH_EVENTS} are accepted",
                field="batch",
            )
        req = _request(ctx, new_message_id, body)
    else:
        items = [body]
        req = _request(ctx, new_message_id, None)
    events: list[CanonicalEvent] = []
    rejections: list[Rejection] = []
    for index, item in enumerate(items):
        try:
            events.append(_normalise_item(item, call_type, req))
        except _Reject as reject:
            rejections.append(Rejection(_raw_message_id(item), reject.reason, index, reject.field))
    return NormalisedBatch(events, rejections)


def normalise_stream_event(
    body: Any, ctx: IngestContext, new_message_id: Callable[[], str] = new_id
) -> CanonicalEvent | Rejection:
    """Normalise the /v1/streams API's `EventInput`: a free `type` becomes a track of that name."""
    if not isinstance(body, dict):
        return Rejection(None, limits.NOT_AN_OBJECT, 0)
    source_id = body.get("sourceId") or body.get("source_id")
    if not source_id:
        return Rejection(_raw_message_id(body), limits.SOURCE_ID_REQUIRED, 0, "sourceId")
    if source_id != ctx.source_id:
        return Rejection(_raw_message_id(body), limits.SOURCE_ID_MISMATCH, 0, "sourceId")
    event_type = body.get("type")
    if not isinstance(event_type, str) or not event_type:
        return Rejection(_raw_message_id(body), limits.TYPE_REQUIRED, 0, "type")
    if _is_call(event_type, body):
        call_type, item = event_type, body
    else:
        call_type, item = "track", {**body, "type": "track", "event": event_type}
    if call_type in TRAIT_CALLS and "traits" not in item and "properties" in item:
        # EventInput has only `properties`: an identify's or group's are its traits, which
        # is where destinations and the event query look for them.
        item = {**item, "traits": item["properties"], "properties": None}
    try:
        return _normalise_item(
            item, call_type, _request(ctx, new_message_id, None), identity_required=False
        )
    except _Reject as reject:
        return Rejection(_raw_message_id(body), reject.reason, 0, reject.field)


def _is_call(event_type: str, body: dict[str, Any]) -> bool:
    """Whether an EventInput `type` names a Segment call: identify, page and screen always do;
    track, group and alias only with the field that call requires (`event`, `groupId`,
    `previousId`), which EventInput lacks, so without it they are custom event names."""
    if event_type not in CALL_TYPES:
        return False
    required = CALL_REQUIRED_FIELDS.get(event_type)
    return required is None or any(body.get(key) not in (None, "") for key in required)


def parse_timestamp(value: str) -> datetime | None:
    """An ISO-8601 string as a naive UTC datetime truncated to milliseconds; None if invalid.

    Naive inputs are UTC. Naive UTC (not aware) because it formats twice as fast.
    """
    moment = _canonical_moment(value)
    if moment is not None:
        return moment
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        if value[-1:] != "z":
            return None
        try:
            moment = datetime.fromisoformat(value[:-1] + "Z")
        except ValueError:
            return None
    if moment.tzinfo is not None:
        try:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:
            return None
    micro = moment.microsecond
    return moment.replace(microsecond=micro - micro % 1000) if micro % 1000 else moment


def format_timestamp(moment: datetime) -> str:
    """A naive UTC datetime (whole milliseconds) as `YYYY-MM-DDTHH:MM:SS.mmmZ`."""
    text = moment.isoformat()
    return text[:23] + "Z" if moment.microsecond else text + ".000Z"


def _canonical_moment(value: str) -> datetime | None:
    """`value` as a naive UTC datetime when it is written exactly as `format_timestamp` writes
    (`YYYY-MM-DDTHH:MM:SS.mmmZ`, what SDKs send), else None (then `parse_timestamp` decides).

    Such text reads as its naive part (the same moment, in UTC), and formats back to itself:
    the caller may keep the text instead of formatting the moment (~1.7 us an event, where
    reading the naive part takes ~0.4 and the aware reading with its conversion ~2.5).
    """
    if (
        len(value) == 24
        and value[23] == "Z"
        and value[4:20:3] == "--T::."  # the separators at 4, 7, 10, 13, 16 and 19
        and value[5] != "W"  # an ISO week date ("2024-W03-1") reads as another day
    ):
        try:
            return datetime.fromisoformat(value[:-1])
        except ValueError:
            return None
    return None


def _moment(value: Any) -> tuple[datetime, str] | None:
    """A client's timestamp as a naive UTC datetime and its canonical text; None if invalid."""
    if not isinstance(value, str):
        return None
    moment = _canonical_moment(value)
    if moment is not None:
        return moment, value
    moment = parse_timestamp(value)
    return None if moment is None else (moment, format_timestamp(moment))


def _request(
    ctx: IngestContext, new_message_id: Callable[[], str], envelope: dict[str, Any] | None
) -> _Request:
    """Per-request values; envelope problems (bad context, integrations, sentAt) raise."""
    received_at = ctx.received_at
    if received_at.tzinfo is not None:
        received_at = received_at.astimezone(UTC).replace(tzinfo=None)
    received_at = received_at.replace(microsecond=received_at.microsecond // 1000 * 1000)
    context: dict[str, Any] = {}
    integrations: dict[str, Any] = {}
    sent_at = skew_ms = None
    if envelope is not None:
        context = _envelope_object(envelope, "context")
        integrations = _envelope_object(envelope, "integrations")
        raw_sent_at = _pick(envelope, "sentAt", "sent_at")
        if raw_sent_at is not None:
            sent_at = parse_timestamp(raw_sent_at) if isinstance(raw_sent_at, str) else None
            if sent_at is None:
                raise InvalidRequest(limits.BAD_TIMESTAMP.format("sentAt"), field="sentAt")
            skew_ms = (sent_at - received_at) // _MS
    return _Request(
        ctx,
        received_at,
        format_timestamp(received_at),
        new_message_id,
        context,
        integrations,
        None if sent_at is None else format_timestamp(sent_at),
        skew_ms,
    )


def _envelope_object(envelope: dict[str, Any], key: str) -> dict[str, Any]:
    value = envelope.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequest(limits.NOT_AN_OBJECT_FIELD.format(key), field=key)
    # Merged into every event of the batch: what no store takes here would fail them all.
    if problem := find_unstorable(value, limits.MAX_EVENT_DEPTH, (key,)):
        raise InvalidRequest(problem.reason, field=problem.field or key)
    return value


def _normalise_item(
    item: Any, endpoint_type: str | None, req: _Request, identity_required: bool = True
) -> CanonicalEvent:
    """One canonical event from one item, or _Reject.

    Segment's calls need `userId` or `anonymousId`; /v1/streams' EventInput needs neither,
    so its events may carry no identity (destinations that need one refuse them per delivery).
    """
    if not isinstance(item, dict):
        raise _Reject(limits.NOT_AN_OBJECT)
    try:
        # Integers within 53 bits (nearly every event's): the text then holds none beyond 64.
        encoded = orjson.dumps(item, option=orjson.OPT_STRICT_INTEGER)
        wide_integers = False
    except TypeError:
        try:
            encoded = orjson.dumps(item)
        except TypeError:
            # orjson refuses exactly what no store takes (a lone surrogate, an integer beyond
            # 64 bits, nesting past its 254 levels, a number too long to read): find which,
            # and where.
            found = find_unstorable(item, limits.MAX_EVENT_DEPTH)
            refusal = found or Unstorable(limits.NOT_ENCODABLE, None)
            raise _Reject(refusal.reason, refusal.field) from None
        wide_integers = True
    if _too_large(item, encoded):
        raise _Reject(limits.TOO_LARGE)
    # orjson wrote it, so its text is Unicode; and no key path is longer than the whole text.
    check_paths = len(encoded) > limits.MAX_FIELD_PATH_BYTES
    # The walk only where the text cannot rule out what it looks for (and for long key paths).
    if (check_paths or not plainly_storable(encoded, limits.MAX_EVENT_DEPTH, wide_integers)) and (
        problem := find_unstorable(item, limits.MAX_EVENT_DEPTH, (), False, check_paths)
    ):
        raise _Reject(problem.reason, problem.field)
    call_type = _call_type(item.get("type"), endpoint_type)
    properties = _object(item, "properties")
    traits = _object(item, "traits")
    context = _context(_object(item, "context"), req)
    integrations = _object(item, "integrations")
    if req.integrations:
        integrations = deep_merge(req.integrations, integrations)

    user_id = _id(item, "userId", "user_id")
    anonymous_id = _id(item, "anonymousId", "anonymous_id")
    group_id = _id(item, "groupId", "group_id")
    previous_id = _id(item, "previousId", "previous_id")
    message_id = _id(item, "messageId", "message_id")
    if message_id is not None and len(message_id) > limits.MAX_MESSAGE_ID_CHARS:
        raise _Reject(limits.MESSAGE_ID_TOO_LONG, "messageId")

    # timestamp = receivedAt - (sentAt - originalTimestamp) = originalTimestamp - clockSkewMs
    client, field = _client_timestamp(item)
    own_sent_at = _timestamp(item, "sentAt", "sent_at")
    if own_sent_at is None:
        sent_at_iso, skew_ms = req.sent_at_iso, req.skew_ms
    else:
        sent_at, sent_at_iso = own_sent_at
        skew_ms = (sent_at - req.received_at) // _MS
    # Each moment is formatted only when it is not already text at hand. Every moment here is
    # whole milliseconds, so the skew is exactly `skew_ms`.
    original_iso = None
    if client is None:
        timestamp_iso = req.received_at_iso
    else:
        original, original_iso = client
        if not skew_ms:  # no sentAt, or no skew
            timestamp_iso = original_iso
        elif 0 <= (millis := original.microsecond // 1000 - skew_ms) < 1000:
            # Within the same second (a skew of a few ms, the usual): only the milliseconds of
            # the canonical text change, at a third of formatting's cost.
            timestamp_iso = f"{original_iso[:20]}{millis:03d}Z"
        else:
            try:
                timestamp_iso = format_timestamp(original - timedelta(milliseconds=skew_ms))
            except OverflowError:
                raise _Reject(limits.CORRECTION_OUT_OF_RANGE, field) from None

    if identity_required and user_id is None and anonymous_id is None:
        raise _Reject(limits.IDENTITY_REQUIRED, "userId")
    event = item.get("event")
    name = item.get("name")
    extras = None if item.keys() <= KNOWN_KEYS else _extras(item)
    if call_type == "track":
        if not isinstance(event, str) or not event:
            raise _Reject(limits.EVENT_REQUIRED, "event")
    elif event is not None:
        extras = {**(extras or {}), "event": event}
        event = None
    if call_type == "page" or call_type == "screen":
        if name is not None and not isinstance(name, str):
            raise _Reject(limits.NAME_NOT_A_STRING, "name")
    elif name is not None:
        extras = {**(extras or {}), "name": name}
        name = None
    if call_type == "group" and group_id is None:
        raise _Reject(limits.GROUP_ID_REQUIRED, "groupId")
    if call_type == "alias":
        if previous_id is None:
            raise _Reject(limits.PREVIOUS_ID_REQUIRED, "previousId")
        if user_id is None:
            raise _Reject(limits.USER_ID_REQUIRED, "userId")

    ctx = req.ctx
    return {
        "messageId": req.new_message_id() if message_id is None else message_id,
        "type": call_type,
        "event": event,
        "name": name,
        "userId": user_id,
        "anonymousId": anonymous_id,
        "groupId": group_id,
        "previousId": previous_id,
        "properties": properties,
        "traits": traits,
        "context": context,
        "integrations": integrations,
        "timestamp": timestamp_iso,
        "originalTimestamp": original_iso,
        "sentAt": sent_at_iso,
        "receivedAt": req.received_at_iso,
        "clockSkewMs": skew_ms,
        "workspaceId": ctx.workspace_id,
        "sourceId": ctx.source_id,
        "extras": extras or {},
    }


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """A new dict: `base` with `override` on top, nested objects merged (override wins)."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict):
            under = merged.get(key)
            if isinstance(under, dict):
                value = deep_merge(under, value)
        merged[key] = value
    return merged


def _too_large(item: dict[str, Any], encoded: bytes) -> bool:
    # orjson writes what the standard compact encoder writes except for numbers' spelling, and
    # none of its tokens grows by more than 9/4 in the standard spelling ("null" for NaN vs
    # "-Infinity"; "1e-9" vs "1e-09"). So an item whose orjson form (`encoded`) is under 4/9 of
    # the limit (nearly every item) is settled ~10x faster; anything else is measured exactly.
    if len(encoded) * 9 <= limits.MAX_EVENT_BYTES * 4:
        return False
    text = _compact_json(item)
    size = len(text)  # characters; UTF-8 bytes are between 1x and 4x that
    if size * 4 <= limits.MAX_EVENT_BYTES or size > limits.MAX_EVENT_BYTES:
        return size > limits.MAX_EVENT_BYTES
    return len(text.encode("utf-8")) > limits.MAX_EVENT_BYTES


def _call_type(raw: Any, endpoint_type: str | None) -> str:
    if raw is None or raw == "":
        if endpoint_type is None:
            raise _Reject(limits.TYPE_REQUIRED, "type")
        return endpoint_type
    if not isinstance(raw, str) or raw not in CALL_TYPES:
        raise _Reject(limits.TYPE_UNKNOWN, "type")
    if endpoint_type is not None and raw != endpoint_type:
        raise _Reject(limits.TYPE_MISMATCH, "type")
    return raw


def _object(item: dict[str, Any], key: str) -> dict[str, Any]:
    value = item.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Reject(limits.NOT_AN_OBJECT_FIELD.format(key), key)
    return value


def _context(own: dict[str, Any], req: _Request) -> dict[str, Any]:
    context = deep_merge(req.context, own) if req.context else dict(own)
    ip = req.ctx.request_ip
    if ip and not context.get("ip"):
        context["ip"] = ip
    if context.keys().isdisjoint(CONTEXT_SNAKE_TO_CAMEL):
        return context  # the usual: one look instead of one per spelling
    for snake, camel in CONTEXT_SNAKE_TO_CAMEL.items():
        if snake in context:
            value = context.pop(snake)
            if context.get(camel) is None:
                context[camel] = value
    return context


def _pick(item: dict[str, Any], camel: str, snake: str) -> Any:
    """The camelCase value, else the snake_case one; None and "" count as absent."""
    value = item.get(camel)
    if value is None or value == "":
        value = item.get(snake)
        if value == "":
            return None
    return value


def _id(item: dict[str, Any], camel: str, snake: str) -> str | None:
    """An id as a string: numbers (SDKs send them) are coerced; other types are refused."""
    value = item.get(camel)
    if value.__class__ is str and value:
        return value  # the common case, first
    if value is None and snake not in item:
        return None  # the next most common: absent in both spellings
    value = _pick(item, camel, snake)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return str(int(value)) if value.is_integer() else repr(value)
    raise _Reject(limits.NOT_AN_ID.format(camel), camel)


def _timestamp(item: dict[str, Any], camel: str, snake: str) -> tuple[datetime, str] | None:
    """The moment and its canonical text; None when absent."""
    value = _pick(item, camel, snake)
    if value is None:
        return None
    moment = _moment(value)
    if moment is None:
        raise _Reject(limits.BAD_TIMESTAMP.format(camel), camel)
    return moment


def _client_timestamp(item: dict[str, Any]) -> tuple[tuple[datetime, str] | None, str]:
    """The client's event time (moment and canonical text) and its field: `timestamp`, else
    `originalTimestamp` (RudderStack sends it)."""
    value = item.get("timestamp")
    if value is not None and value != "":
        moment = _moment(value)
        if moment is None:
            raise _Reject(limits.BAD_TIMESTAMP.format("timestamp"), "timestamp")
        return moment, "timestamp"
    return _timestamp(item, "originalTimestamp", "original_timestamp"), "originalTimestamp"


def _extras(item: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in item.items() if key not in KNOWN_KEYS}


def _raw_message_id(item: Any) -> str | None:
    """The messageId as sent, for reporting a rejection (None when absent or not an id)."""
    if not isinstance(item, dict):
        return None
    try:
        return _id(item, "messageId", "message_id")
    except _Reject:
        return None
