"""The canonical event as a type: what ingest publishes and every later step reads.

docs/EVENTS.md describes each field; `shared/domain/events.py` builds it. The type lets mypy
check event keys: `event["usrId"]` is an error, and so is `event.get("usrId")` (the project's
mypy plugin, `tools/mypy_typeddict_keys.py`, since mypy itself lets any key through `.get`).
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict


class CanonicalEvent(TypedDict, total=False):
    """One event, with camelCase keys in the order ingest writes them.

    Ingest always writes every key (null when absent), with these value types. Every key is
    optional to the type checker all the same, because not every event the pipeline holds came
    from ingest as it is now:
    - a forwarding rule's transformation may return any object whose `type` is a call type and
      whose `messageId` is text (`shared/transform/events.py` checks only these): it may drop
      keys, add keys this type does not list, and give the others values of any JSON type. Only
      connectors see such events, and they do not rely on these value types (they read values
      through `text`, `obj` and `scalar` of shared/destinations/base.py, or send them as sent);
    - an event read back from a source message (`parse_source_message`) is only checked by
      `process` for `messageId`, `type` and `receivedAt` as text; one that fails is dead-lettered
      as it came, held in this type too.
    `type` is text rather than the six call types for the same reason: ingest and
    transformations write only `CALL_TYPES`, but a source message is not checked for it.
    """

    messageId: str
    type: str
    event: str | None
    name: str | None
    userId: str | None
    anonymousId: str | None
    groupId: str | None
    previousId: str | None
    properties: dict[str, Any]
    traits: dict[str, Any]
    context: dict[str, Any]
    integrations: dict[str, Any]
    timestamp: str
    originalTimestamp: str | None
    sentAt: str | None
    receivedAt: str
    clockSkewMs: int | None
    workspaceId: str
    sourceId: str
    extras: dict[str, Any]


# A key of the canonical event, for code that reads a key chosen at run time (a contract's
# target, the columns of a row): mypy checks such a key only when it is typed with this.
# tests/unit/test_event_type.py checks that it names exactly CanonicalEvent's keys.
EventKey = Literal[
    "messageId",
    "type",
    "event",
    "name",
    "userId",
    "anonymousId",
    "groupId",
    "previousId",
    "properties",
    "traits",
    "context",
    "integrations",
    "timestamp",
    "originalTimestamp",
    "sentAt",
    "receivedAt",
    "clockSkewMs",
    "workspaceId",
    "sourceId",
    "extras",
]
