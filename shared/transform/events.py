"""What a transformation's result means: forward one event, fan out several, or drop."""

from __future__ import annotations

from typing import Any, TypeGuard

from shared.domain.event import CanonicalEvent
from shared.domain.events import CALL_TYPES
from shared.domain.limits import MAX_MESSAGE_ID_CHARS
from shared.domain.validation_messages import json_kind

TYPES = ", ".join(sorted(CALL_TYPES))


def output_events(output: Any) -> list[dict[str, Any]]:
    """The events a result stands for: an object is one, an array several, null none (drop).

    Raises ValueError naming the problem when the result is none of these.
    """
    if output is None:
        return []
    if isinstance(output, dict):
        return [output]
    if isinstance(output, list):
        for index, item in enumerate(output):
            if not isinstance(item, dict):
                kind = json_kind(item)
                raise ValueError(
                    f"element {index} of the returned array is {kind}, not an event object"
                )
        return output
    raise ValueError(
        f"transform returned {json_kind(output)}: return an event object, an array of events, "
        "or null to drop the event"
    )


def event_problem(event: dict[str, Any]) -> str | None:
    """Why a returned object cannot be delivered as an event, or None when it can."""
    kind = event.get("type")
    if kind not in CALL_TYPES:
        shown = "missing" if kind is None else repr(kind)
        return f"type is {shown}; it must be one of {TYPES}"
    message_id = event.get("messageId")
    if not isinstance(message_id, str) or not message_id:
        return "messageId must be a non-empty string"
    if len(message_id) > MAX_MESSAGE_ID_CHARS:
        return f"messageId is longer than {MAX_MESSAGE_ID_CHARS} characters"
    return None


def is_deliverable(event: dict[str, Any]) -> TypeGuard[CanonicalEvent]:
    """Whether a returned object can be delivered: its `type` and `messageId` are all that the
    pipeline relies on (its other keys are the transformation's to choose: see CanonicalEvent)."""
    return event_problem(event) is None


def valid_events(output: Any) -> list[CanonicalEvent]:
    """`output_events`, each deliverable; ValueError names the first that is not."""
    events = output_events(output)
    valid: list[CanonicalEvent] = []
    for index, event in enumerate(events):
        if not is_deliverable(event):
            where = (
                "the returned event"
                if len(events) == 1 and isinstance(output, dict)
                else (f"event {index} of the returned array")
            )
            raise ValueError(f"{where} is not a valid event: {event_problem(event)}")
        valid.append(event)
    return valid
