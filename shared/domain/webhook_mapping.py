"""Webhook requests to events, the pure part (issue 26; the shape is in `webhooks.py`).

- `calls_without_code`: the one track call a request makes under its source's settings.
- `calls_from_output`: what a source transformation returned, checked: a call, an array of calls
  (fan-out) or null (the request is ignored).
- `request_events`: those calls as canonical events, normalised as ingest normalises SDK calls,
  with messageIds derived from the request's (`call_message_ids`) and `context.webhook`.

Every problem raises `MappingError` with a sentence a person can act on: process dead-letters
the raw request with it, and a replay of that dead letter maps the request again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.domain.errors import StreamsError
from shared.domain.event import CanonicalEvent
from shared.domain.events import CALL_TYPES, IngestContext, normalise_request, parse_timestamp
from shared.domain.validation_messages import json_kind
from shared.domain.webhooks import WEBHOOK_REQUEST_TYPE, WebhookRequest, WebhookSettings

# The reason code of a webhook request's dead letter: its mapping to events failed.
WEBHOOK_MAPPING_FAILED = "webhook_mapping_failed"
# `context.library` of every event a webhook request becomes (unless its transformation set one).
WEBHOOK_LIBRARY = {"name": "streams-webhook"}
IGNORED_REASON = "the source transformation returned null: the request was ignored"
# Where a call of a transformation's result says what it is.
CALL_TYPE_LIST = ", ".join(sorted(CALL_TYPES))


class MappingError(ValueError):
    """A webhook request cannot become events; the message says why."""


def is_webhook_request(event: Mapping[str, Any]) -> bool:
    return event.get("type") == WEBHOOK_REQUEST_TYPE


@dataclass(frozen=True)
class RequestItem:
    """A webhook request as it rides a source message (see `webhooks.py`)."""

    message_id: str
    received_at: datetime
    context: dict[str, Any]
    request: WebhookRequest

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> RequestItem:
        """Read the item ingest published; MappingError when it is not one (a hand-made message)."""
        message_id = event.get("messageId")
        received_at = event.get("receivedAt")
        moment = parse_timestamp(received_at) if isinstance(received_at, str) else None
        raw = event.get("request")
        if not isinstance(message_id, str) or not message_id or moment is None:
            raise MappingError("the webhook request lacks its messageId or receivedAt")
        if not isinstance(raw, dict):
            raise MappingError("the webhook request holds no `request` object")
        headers, query = raw.get("headers") or {}, raw.get("query") or {}
        if not isinstance(headers, dict) or not isinstance(query, dict):
            raise MappingError("the webhook request's headers or query are not objects")
        delivery_id = raw.get("delivery_id")
        context = event.get("context")
        return cls(
            message_id=message_id,
            received_at=moment,
            # Ingest's own context of the request (its client IP), carried to every event.
            context=dict(context) if isinstance(context, dict) else {},
            request=WebhookRequest(
                headers={str(k).lower(): str(v) for k, v in headers.items()},
                query={str(k): str(v) for k, v in query.items()},
                body=raw.get("body"),
                content_type=str(raw.get("content_type") or ""),
                delivery_id=delivery_id if isinstance(delivery_id, str) else None,
            ),
        )

    def transform_input(self) -> dict[str, Any]:
        """What `transform(request)` receives."""
        return {
            "headers": self.request.headers,
            "query": self.request.query,
            "body": self.request.body,
        }


def read_path(body: Any, path: str, purpose: str) -> tuple[bool, Any]:
    """(found, value) of a dotted path in the body (`data.object.customer`; a list is indexed
    by a number: `items.0.id`). MappingError when the body is no object to read a path in."""
    if not isinstance(body, dict):
        raise MappingError(
            f"the request body is not a JSON object, so {purpose} path {path!r} cannot be read"
        )
    value: Any = body
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return False, None
    return True, value


def calls_without_code(item: RequestItem, settings: WebhookSettings) -> list[dict[str, Any]]:
    """The one track call a request makes without code: named per the settings, the body as its
    properties, the user from `user_id_path` (else anonymous: `request_events` gives it the
    request's messageId)."""
    body = item.request.body
    call: dict[str, Any] = {
        "type": "track",
        "event": _event_name(item, settings),
        # A form is a dict of its fields already; a JSON array or scalar has no field names.
        "properties": body if isinstance(body, dict) else {"body": body},
    }
    if settings.user_id_path:
        found, user_id = read_path(body, settings.user_id_path, "the user id")
        if found and user_id is not None:
            if isinstance(user_id, bool) or not isinstance(user_id, str | int | float):
                raise MappingError(
                    f"user_id_path {settings.user_id_path!r} names a value that is not text "
                    "or a number"
                )
            call["userId"] = user_id
    return [call]


def _event_name(item: RequestItem, settings: WebhookSettings) -> str:
    where = settings.event_name
    if settings.event_name_from == "fixed":
        return where
    if settings.event_name_from == "header":
        name = item.request.headers.get(where.lower())
        if not name:
            raise MappingError(f"the request has no {where} header to name the event by")
        return name
    found, value = read_path(item.request.body, where, "the event name")
    if not found or value is None or value == "":
        raise MappingError(f"the request body has no {where!r} to name the event by")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise MappingError(f"the event name at {where!r} is not text")
    return str(value)


def calls_from_output(output: Any) -> list[dict[str, Any]]:
    """The calls a source transformation returned: an object is one, an array several, null
    none (the request is ignored). A call without `type` is a track."""
    if output is None:
        return []
    items = output if isinstance(output, list) else [output]
    if not isinstance(output, list | dict):
        raise MappingError(
            f"transform returned {json_kind(output)}: return a call object, an array of calls, "
            "or null to ignore the request"
        )
    calls = []
    for index, call in enumerate(items):
        where = "the returned call" if isinstance(output, dict) else f"call {index}"
        if not isinstance(call, dict):
            raise MappingError(f"{where} is {json_kind(call)}, not a call object")
        kind = call.get("type", "track")
        if kind not in CALL_TYPES:
            raise MappingError(f"{where} has type {kind!r}; it must be one of {CALL_TYPE_LIST}")
        calls.append({**call, "type": kind})
    return calls


def call_message_ids(request_id: str, calls: list[dict[str, Any]]) -> list[str]:
    """The messageId of each call: one keeps the request's, several get `<id>:<n>` (n from 0);
    a messageId the code set itself stays. A provider's retry of a delivery thus repeats every
    id, and each of its events is a duplicate."""
    ids = []
    for index, call in enumerate(calls):
        own = call.get("messageId", call.get("message_id"))
        if isinstance(own, str) and own:
            ids.append(own)
        else:
            ids.append(request_id if len(calls) == 1 else f"{request_id}:{index}")
    return ids


def request_events(
    item: RequestItem,
    calls: list[dict[str, Any]],
    workspace_id: str,
    source_id: str,
    provider: str | None,
) -> list[CanonicalEvent]:
    """The calls as canonical events, normalised as ingest normalises an SDK's calls; a call
    ingest would refuse (a track without a name, a group without groupId...) is a MappingError
    naming it."""
    ctx = IngestContext(workspace_id, source_id, item.received_at, item.context.get("ip"))
    webhook = {
        "request_id": item.message_id,
        "delivery_id": item.request.delivery_id,
        "provider": provider,
    }
    events: list[CanonicalEvent] = []
    message_ids = call_message_ids(item.message_id, calls)
    for index, (call, message_id) in enumerate(zip(calls, message_ids, strict=True)):
        where = "the event" if len(calls) == 1 else f"event {index}"
        own_context = call.get("context") or {}
        if not isinstance(own_context, dict):
            raise MappingError(f"{where}: context must be an object")
        context = {
            **item.context,
            "library": dict(WEBHOOK_LIBRARY),
            **own_context,
            # Always the server's: which request this event came from.
            "webhook": webhook,
        }
        body = {**call, "messageId": message_id, "context": context}
        if not any(call.get(key) for key in ("userId", "user_id", "anonymousId", "anonymous_id")):
            body["anonymousId"] = item.message_id
        try:
            batch = normalise_request(body, call["type"], ctx)
        except StreamsError as exc:  # a request-level refusal: too large, not an object
            raise MappingError(f"{where}: {exc.message}") from None
        if batch.rejections:
            rejection = batch.rejections[0]
            field = f" ({rejection.field})" if rejection.field else ""
            raise MappingError(f"{where}: {rejection.reason}{field}")
        events.extend(batch.events)
    return events
