"""Segment-compatible HTTP: canonical events forwarded as calls of Segment's HTTP Tracking API
(`POST <endpoint>/v1/batch`) to another Segment workspace, a RudderStack data plane or another
Streams ingest, with the receiving source's write key.

Request: HTTP Basic `write_key:` (what the Segment and RudderStack SDKs send, and the second
place Streams' ingest reads a key from) and `writeKey` in the body too, as analytics-python sends
it (Segment's newer guidance prefers the body); body `{"batch": [calls], "sentAt": now,
"writeKey"}`. At most 100 calls a request (analytics-python's upload size), 500 KB a request and
32 KB a call (Segment's documented limits; Streams' ingest has the same ones).

Mapping: every call type is forwarded as itself (track, identify, page, screen, group, alias).
- kept as sent (when not null or empty): type, messageId (each receiver deduplicates on it, so a
  retried batch is harmless), userId, anonymousId, groupId, previousId, event, name, properties,
  traits, context (with `context.ip`, so the receiver does not record the forwarder's address),
  integrations;
- timestamp = the event's corrected `timestamp`, and originalTimestamp = that same instant: the
  receiver corrects clock skew as receivedAt - (sentAt - originalTimestamp), and with the batch's
  `sentAt` written by the same (server) clock that correction measures only the forwarding delay.
  The client's own clock reading and its skew stay in Streams;
- dropped (Streams' own): sentAt of the call (the batch's `sentAt` replaces it: a call's own
  would win over it at the receiver and undo the correction above), receivedAt, clockSkewMs,
  workspaceId, sourceId;
- `extras` (top-level keys Streams did not recognise: channel, version, _metadata, ...) and any
  top-level key a transformation added go back to the top level, as the client sent them, unless
  they would overwrite a field above or carry a write key (a call's own `writeKey` would send it
  to another source).

Refused (EventRejected): a call with neither userId nor anonymousId (Segment drops it, RudderStack
refuses the whole batch with 400, Streams' ingest rejects it), and a call over 32 KB.
No user deletion: the Tracking API takes none (Segment's deletions are regulations of its Public
API, RudderStack's of its Data Regulation API, Streams' of its own regulations API).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, ClassVar, get_args
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator

from shared.destinations.base import (
    About,
    Batching,
    DestinationConfig,
    EventRejected,
    OutboundRequest,
    Part,
    RateLimit,
    check_http_url,
    event_time,
    expect_config,
    json_bytes,
)
from shared.domain import ids
from shared.domain.event import CanonicalEvent, EventKey
from shared.ports import SendResult, SendStatus

BATCH_PATH = "/v1/batch"
MAX_CALL_BYTES = 32 * 1024
# Segment's 500 KB read as 500,000 bytes (Streams' 512,000 is larger), less room for the
# envelope (`sentAt`, `writeKey`) and the commas between calls, which `batched` does not count.
MAX_BATCH_BYTES = 500_000 - 2_000
MAX_CALLS = 100

# Copied from the event when not null and not empty, in this order.
KEPT = (
    "type",
    "messageId",
    "userId",
    "anonymousId",
    "groupId",
    "previousId",
    "event",
    "name",
    "properties",
    "traits",
    "context",
    "integrations",
)
# Streams' own fields, never forwarded (see the module docstring for sentAt).
STREAMS_ONLY = frozenset(
    {"sentAt", "receivedAt", "clockSkewMs", "workspaceId", "sourceId", "extras"}
)
# Keys an extra may not bring back: what the receiver reads as its auth or server-owned fields.
CANONICAL_KEYS = frozenset(get_args(EventKey))
NEVER_FORWARDED = frozenset(
    {"writeKey", "write_key", "sent_at", "received_at", "original_timestamp", "batch"}
)
# analytics-python retries 460 (an AWS load balancer's "client closed the connection") and
# never 501 or 505: neither will change on a retry.
TRANSIENT = frozenset({460})
PERMANENT_5XX = frozenset({501, 505})


class SegmentConfig(DestinationConfig):
    """Where to forward (the receiver's base URL) and the receiving source's write key."""

    ADDRESS_FIELDS: ClassVar[tuple[str, ...]] = ("endpoint",)
    SENT_SECRETS: ClassVar[tuple[str, ...]] = ("write_key",)

    # Base URL: https://api.segment.io, https://events.eu1.segmentapis.com (EU workspaces), a
    # RudderStack data plane URL, or another Streams' ingest URL; /v1/batch is appended.
    endpoint: str
    write_key: Annotated[SecretStr, Field(min_length=1, max_length=256)]

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        check_http_url(value)
        parts = urlsplit(value)
        if parts.query:
            raise ValueError("must be a base URL without a query (?...)")
        if parts.path.rstrip("/").endswith(BATCH_PATH):
            raise ValueError(
                f"must be the base URL (e.g. https://api.segment.io): {BATCH_PATH} is appended"
            )
        return value


def _present(value: Any) -> bool:
    return value is not None and value != "" and value != {}


def call(event: CanonicalEvent, now: datetime) -> dict[str, Any]:
    """The Segment call forwarding one canonical event (see the module docstring)."""
    source: dict[str, Any] = dict(event)
    forwarded = {key: source[key] for key in KEPT if _present(source.get(key))}
    moment = ids.isoformat(event_time(event, now))
    forwarded["timestamp"] = moment
    forwarded["originalTimestamp"] = moment
    extras = source.get("extras")
    added = {key: value for key, value in source.items() if key not in CANONICAL_KEYS}
    for key, value in [*(extras.items() if isinstance(extras, dict) else ()), *added.items()]:
        if key in forwarded or key in STREAMS_ONLY or key in NEVER_FORWARDED:
            continue
        forwarded[key] = value
    return forwarded


class SegmentConnector:
    """Segment's HTTP Tracking API `/v1/batch`; every call type, as itself."""

    type = "segment"
    config_model = SegmentConfig
    about = About(
        description=(
            "Forward events to another Segment, RudderStack or Streams source (Segment's HTTP "
            "Tracking API, batched)"
        ),
        docs_url="https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/",
        event_types=("track", "identify", "page", "screen", "group", "alias"),
        batching=Batching(max_parts=MAX_CALLS, max_bytes=MAX_BATCH_BYTES),
        # Segment asks for at most 1,000 requests a second per workspace; a tenth of it per
        # deliver instance keeps ten instances inside it (100 requests of 100 calls is already
        # 10,000 events a second).
        rate_limit=RateLimit(requests=100, per_seconds=1.0),
        manual_deletion=(
            "Segment's Tracking API takes no deletions: delete the user in the receiving "
            "workspace (Segment's Public API regulations, RudderStack's Data Regulation API, "
            "or Streams' regulations)"
        ),
    )

    def parts(self, event: CanonicalEvent, config: BaseModel, *, now: datetime) -> list[Part]:
        expect_config(config, SegmentConfig)
        forwarded = call(event, now)
        if not _present(forwarded.get("userId")) and not _present(forwarded.get("anonymousId")):
            # Not require_identity: a transformation may leave a numeric id, which receivers take.
            raise EventRejected(
                "a Segment-compatible endpoint needs a userId or an anonymousId, and this event "
                "has neither (Segment drops such a call, RudderStack refuses its whole batch)"
            )
        size = len(json_bytes(forwarded))
        if size > MAX_CALL_BYTES:
            raise EventRejected(
                f"a Segment-compatible endpoint takes calls of at most {MAX_CALL_BYTES} bytes "
                f"(32 KB), and this one is {size} bytes"
            )
        return [Part("batch", forwarded)]

    def request(
        self, key: str, payloads: Sequence[Any], config: BaseModel, *, now: datetime
    ) -> OutboundRequest:
        cfg = expect_config(config, SegmentConfig)
        write_key = cfg.write_key.get_secret_value()
        basic = base64.b64encode(f"{write_key}:".encode()).decode("ascii")
        body = {"batch": list(payloads), "sentAt": ids.isoformat(now), "writeKey": write_key}
        return OutboundRequest(
            method="POST",
            url=cfg.endpoint.rstrip("/") + BATCH_PATH,
            headers={"Content-Type": "application/json", "Authorization": f"Basic {basic}"},
            body=json_bytes(body),
            redact=(write_key, basic),
        )

    def classify(self, result: SendResult) -> SendStatus | None:
        """Segment answers 200 for what it accepts (and drops bad calls silently), 400 for a
        malformed or oversized request; RudderStack 401 for a bad write key, 404 for a disabled
        source, 413 for a body too large; all permanent, as the default has it. Streams' ingest
        answers 200 with a `rejected` entry per refused call: permanent for those calls, so the
        batch fails with the receiver's reasons (the accepted calls, resent on a replay, are
        dropped as duplicates of their messageId)."""
        status = result.http_status
        if status is None:
            return None
        if status in TRANSIENT:
            return "retry"
        if status in PERMANENT_5XX:
            return "failed"
        if 200 <= status < 300 and _rejected(result.body):
            return "failed"
        return None


def _rejected(body: bytes) -> bool:
    """Whether an answer lists refused calls, as Streams' ingest does (`"rejected": [...]`)."""
    if not body.lstrip().startswith(b"{"):
        return False
    try:
        answer = json.loads(body)
    except ValueError:
        return False
    return isinstance(answer, dict) and bool(answer.get("rejected"))
