"""What became of an event, as the live stream shows it: stored, or why not."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from shared.domain.event import CanonicalEvent

# `stored`: in the warehouse and routed. The others went no further, each for its reason:
# `blocked` by a contract (quarantined), `duplicate` of a messageId already received,
# `suppressed` by a privacy regulation, `dead_lettered` for its own content, and `dropped` by a
# forwarding rule's transformation (for that rule's destination only) or by the source's bot
# policy (for every destination). `mapped` is a webhook source's raw request, shown with the
# events it became (docs/WEBHOOKS.md).
EventStatus = Literal[
    "stored", "blocked", "duplicate", "suppressed", "dead_lettered", "dropped", "mapped"
]
EVENT_STATUSES: tuple[EventStatus, ...] = (
    "stored",
    "blocked",
    "duplicate",
    "suppressed",
    "dead_lettered",
    "dropped",
    "mapped",
)


@dataclass(frozen=True)
class Observed:
    """An event and its outcome, as the pipeline hands it to the live stream."""

    event: CanonicalEvent
    status: EventStatus = "stored"
    reason: str | None = None


class EventObserver(Protocol):
    """Sees events with their outcomes once final (the live stream): process hands it every
    event a message brought (stored after storage; blocked, suppressed, duplicate and
    dead-lettered with why), deliver the events a rule's transformation dropped.

    Best effort: an observer's failure is logged and never fails or retries the caller.
    """

    def observe(self, workspace_id: str, source_id: str, observed: list[Observed]) -> None: ...


def blocked_reason(violations: Iterable[Mapping[str, Any]]) -> str:
    """Why contracts blocked an event, from its blocking violations (`field`, `message`)."""
    # A violation's message names its field itself ("total is required").
    worded = [
        str(v.get("message") or ": ".join(str(p) for p in (v.get("field"), v.get("type")) if p))
        for v in violations
        if v.get("action", "blocked") == "blocked"
    ]
    return "blocked by a contract: " + ("; ".join(w for w in worded if w) or "no reason recorded")


def suppressed_reason(regulation_id: str | None) -> str:
    return (
        f"suppressed by privacy regulation {regulation_id}"
        if regulation_id
        else "suppressed by a privacy regulation"
    )


DUPLICATE_REASON = "a duplicate of a messageId already received: ignored"
BOT_DROPPED_REASON = (
    "a bot's or crawler's event (by context.userAgent): the source's bot policy drops it"
)
BOT_STORE_ONLY_REASON = (
    "a bot's or crawler's event (by context.userAgent): the source's bot policy stores it only"
)


def mapped_reason(message_ids: list[str]) -> str:
    """What a webhook request became, by the events' messageIds."""
    count = len(message_ids)
    return f"became {count} event{'' if count == 1 else 's'}: {', '.join(message_ids)}"
