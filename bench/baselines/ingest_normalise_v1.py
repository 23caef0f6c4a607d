"""FROZEN BASELINE, bench only: ingest's normalisation as it was when issue 19 was filed.

Issue 19 item 3 compares ingest with "today's implementation": the WSGI entry point
(`bench/baselines/ingest_wsgi_v1.py`) *and* the normalisation it ran per request. This module
is `normalise_request` and every function it calls, copied verbatim from
shared/domain/events.py and shared/domain/storable.py at commit 96f1f10 (functionally as at the
issue: only typing and naming commits touched them since), before issue 19's CPU work changed
them. The WSGI baseline entry points `Ingest.normalise` at it, so the live code can get faster
without speeding up the baseline it is measured against.

Imported from the live tree: the request and result types (`IngestContext`, `NormalisedBatch`,
`Rejection`: plain data), the limits and error types, `OversizedInteger` (what the JSON reader
produces) and `new_id`. tests/unit/test_ingest_baseline_normalise.py shows this copy and the live
code give the same events, message bytes and rejections on a varied corpus.
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
from shared.domain.events import IngestContext, NormalisedBatch, Rejection
from shared.domain.ids import new_id
from shared.domain.storable import OversizedInteger

# From shared/domain/storable.py.
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Unstorable:
    """Why a value cannot be carried, and where (a field path such as `properties.items[0]`)."""

    reason: str
    field: str | None


def find_unstorable(
    value: Any,
    max_depth: int,
    path: Path = (),
    check_strings: bool = True,
    check_paths: bool = True,
    *,
    nested_arrays: bool = True,
) -> Unstorable | None:
    """The first reason `value` (found at `path` in its event) cannot be stored, or None.

    Runs on every ingested event, so callers skip what they know holds: `check_strings=False`
    for a value orjson encoded (every string is then Unicode, every integer within 64 bits
    unsigned), `check_paths=False` for one whose compact JSON is at most `MAX_FIELD_PATH_BYTES`
    (every key path is shorter than the text holding it).
    """
    if value.__class__ is not dict and value.__class__ is not list:
        return _scalar(value, path, check_strings)
    # Each entry: a container, its depth, its key path's size (+1, see below), where it is.
    # `where` is a linked list (parent_where, key): built per container, joined only to report.
    stack: list[tuple[Any, int, int, Any]] = [(value, len(path), _path_bytes(path), _linked(path))]
    pop, push = stack.pop, stack.append
    nested: Unstorable | None = None
    while stack:
        current, depth, used, where = pop()
        if depth >= max_depth:
            return Unstorable(limits.TOO_DEEP, None)
        depth += 1
        if current.__class__ is dict:
            for key, child in current.items():
                if not key:
                    return Unstorable(limits.EMPTY_KEY, _name(where))
                if key[0] == "_" and key[:2] == "__" and key[-2:] == "__" and len(key) >= 4:
                    return Unstorable(limits.RESERVED_KEY, _name((where, key)))
                size = 0
                if check_paths or check_strings:
                    if key.isascii():
                        size = used + len(key) + 1
                    elif check_strings and not_unicode(key):
                        return Unstorable(limits.NOT_UNICODE, _name((where, key)))
                    else:
                        size = used + len(key.encode("utf-8")) + 1
                    # The sizes count a dot before every key, the first included: one over.
                    if check_paths and size > limits.MAX_FIELD_PATH_BYTES + 1:
                        return Unstorable(limits.FIELD_PATH_TOO_LONG, _name((where, key)))
                kind = child.__class__
                if kind is dict or kind is list:
                    push((child, depth, size, (where, key)))
                elif kind is int:
                    if child > INT64_MAX or child < INT64_MIN:
                        return Unstorable(limits.INTEGER_OUT_OF_RANGE, _name((where, key)))
                elif check_strings and kind is not float and kind is not bool:
                    # Strings, None and unreadable integers: only where orjson refused the value.
                    problem = _scalar(child, (*_path(where), key), check_strings)
                    if problem is not None:
                        return problem
        else:
            for index, child in enumerate(current):
                kind = child.__class__
                if kind is dict:
                    push((child, depth, used, (where, index)))
                elif kind is list and not nested_arrays:
                    # Reported once the walk is over: nesting too deep says more, and is found
                    # only by walking on.
                    nested = nested or Unstorable(limits.NESTED_ARRAY, _name((where, index)))
                    push((child, depth, used, (where, index)))
                elif kind is list:
                    push((child, depth, used, (where, index)))
                elif kind is int:
                    if child > INT64_MAX or child < INT64_MIN:
                        return Unstorable(limits.INTEGER_OUT_OF_RANGE, _name((where, index)))
                elif check_strings and kind is not float and kind is not bool:
                    # Strings, None and unreadable integers: only where orjson refused the value.
                    problem = _scalar(child, (*_path(where), index), check_strings)
                    if problem is not None:
                        return problem
    return nested


def _linked(path: Path) -> Any:
    where: Any = None
    for part in path:
        where = (where, part)
    return where


def _path(where: Any) -> Path:
    parts: list[str | int] = []
    while where is not None:
        where, part = where
        parts.append(part)
    return tuple(reversed(parts))


def _name(where: Any) -> str | None:
    return field_name(_path(where))


def field_name(path: Path) -> str | None:
    """A field path in plain words: `properties.items[0].name`; None for the event itself.
    Text that is not Unicode is shown as its escape, so the name can always be answered."""
    name = ""
    for part in path:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            text = part if part.isascii() else part.encode("utf-8", "backslashreplace").decode()
            name += f".{text}" if name else text
    return name or None


def _scalar(value: Any, path: Path, check_strings: bool) -> Unstorable | None:
    """What is wrong with a value that is not a container, if anything."""
    kind = value.__class__
    if kind is int:
        if not INT64_MIN <= value <= INT64_MAX:
            return Unstorable(limits.INTEGER_OUT_OF_RANGE, field_name(path))
    elif kind is OversizedInteger:
        return Unstorable(limits.INTEGER_OUT_OF_RANGE, field_name(path))
    elif kind is str and check_strings and not_unicode(value):
        return Unstorable(limits.NOT_UNICODE, field_name(path))
    return None


def not_unicode(text: str) -> bool:
    """Whether `text` holds a lone surrogate (the only str that UTF-8 cannot encode)."""
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _path_bytes(path: Path) -> int:
    # Counted as in the walk: each key's UTF-8 bytes and a dot, so one more than the path's size.
    return sum(
        len(part.encode("utf-8", "surrogatepass")) + 1 for part in path if isinstance(part, str)
    )


# From shared/domain/events.py.

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
    sent_at: datetime | None
    sent_at_iso: str | None


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


def parse_timestamp(value: str) -> datetime | None:
    """An ISO-8601 string as a naive UTC datetime truncated to milliseconds; None if invalid.

    Naive inputs are UTC. Naive UTC (not aware) because it formats twice as fast.
    """
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
    sent_at = None
    if envelope is not None:
        context = _envelope_object(envelope, "context")
        integrations = _envelope_object(envelope, "integrations")
        raw_sent_at = _pick(envelope, "sentAt", "sent_at")
        if raw_sent_at is not None:
            sent_at = parse_timestamp(raw_sent_at) if isinstance(raw_sent_at, str) else None
            if sent_at is None:
                raise InvalidRequest(limits.BAD_TIMESTAMP.format("sentAt"), field="sentAt")
    return _Request(
        ctx,
        received_at,
        format_timestamp(received_at),
        new_message_id,
        context,
        integrations,
        sent_at,
        None if sent_at is None else format_timestamp(sent_at),
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
        encoded = orjson.dumps(item)
    except TypeError:
        # orjson refuses exactly what no store takes (a lone surrogate, an integer beyond 64
        # bits, nesting past its 254 levels, a number too long to read): find which, and where.
        found = find_unstorable(item, limits.MAX_EVENT_DEPTH)
        refusal = found or Unstorable(limits.NOT_ENCODABLE, None)
        raise _Reject(refusal.reason, refusal.field) from None
    if _too_large(item, encoded):
        raise _Reject(limits.TOO_LARGE)
    # orjson wrote it, so its text is Unicode; and no key path is longer than the whole text.
    check_paths = len(encoded) > limits.MAX_FIELD_PATH_BYTES
    if problem := find_unstorable(item, limits.MAX_EVENT_DEPTH, (), False, check_paths):
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
    original, field = _client_timestamp(item)
    sent_at = _timestamp(item, "sentAt", "sent_at")
    if sent_at is None:
        sent_at, sent_at_iso = req.sent_at, req.sent_at_iso
    else:
        sent_at_iso = format_timestamp(sent_at)
    if sent_at is None:
        skew_ms = None
        timestamp = req.received_at if original is None else original
    else:
        skew = sent_at - req.received_at
        skew_ms = skew // _MS
        try:
            timestamp = req.received_at if original is None else original - skew
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
        "timestamp": format_timestamp(timestamp),
        "originalTimestamp": None if original is None else format_timestamp(original),
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
        under = merged.get(key)
        if isinstance(value, dict) and isinstance(under, dict):
            merged[key] = deep_merge(under, value)
        else:
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
    value = _pick(item, camel, snake)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return str(int(value)) if value.is_integer() else repr(value)
    raise _Reject(limits.NOT_AN_ID.format(camel), camel)


def _timestamp(item: dict[str, Any], camel: str, snake: str) -> datetime | None:
    value = _pick(item, camel, snake)
    if value is None:
        return None
    moment = parse_timestamp(value) if isinstance(value, str) else None
    if moment is None:
        raise _Reject(limits.BAD_TIMESTAMP.format(camel), camel)
    return moment


def _client_timestamp(item: dict[str, Any]) -> tuple[datetime | None, str]:
    """The client's event time: `timestamp`, else `originalTimestamp` (RudderStack sends it)."""
    value = item.get("timestamp")
    if value is not None and value != "":
        return _timestamp(item, "timestamp", "timestamp"), "timestamp"
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
