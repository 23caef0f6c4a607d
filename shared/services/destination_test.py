"""Send one test event to a destination, now, and answer what the destination said.

The event goes through the destination's own connector and the very `Sender` (and so the same
`UrlGuard`) and topic guard that `deliver` uses: a test can reach nothing a delivery could not.
Nothing is recorded: a test is not a delivery, so it leaves no delivery record, dead letter or
trace, and costs no Firestore write.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from shared.destinations import connector_for, validate_config
from shared.destinations.base import EventRejected, build_requests
from shared.destinations.pubsub import TopicGuard
from shared.domain import ids
from shared.domain.errors import InvalidRequest
from shared.domain.event import CanonicalEvent
from shared.domain.events import IngestContext, normalise_request
from shared.domain.poison import DATA_ERRORS, failure_reason
from shared.ports import FileWriter, Publisher, Sender
from shared.services.destinations import Destinations
from shared.services.outlets import Outlets

# delivered: the destination took it; retry: it failed in a way a delivery would retry
# (5xx, 429, timeout, no answer); failed: refused for good (4xx, an address the guard refuses);
# skipped: this destination type takes no such event; rejected: the event lacks what the
# destination needs (an identity), so nothing was sent.
TestOutcome = Literal["delivered", "retry", "failed", "skipped", "rejected"]
# What the test event's messageId starts with, so a receiver can tell it from real traffic.
TEST_MESSAGE_PREFIX = "streams-destination-test-"
# The sample sent when the caller gives no event: a recognisable track any destination takes.
SAMPLE_EVENT: dict[str, Any] = {
    "type": "track",
    "event": "Streams Test Event",
    "userId": "streams-test-user",
    "anonymousId": "streams-test-event",
    "properties": {"test": True},
    "context": {"library": {"name": "streams-destination-test", "version": "1"}},
}
# The source named by a test event: none sent it, and no source id looks like this.
TEST_SOURCE_ID = "destination-test"


@dataclass(frozen=True)
class TestResult:
    """What the destination answered one test event. `detail` is the sender's description:
    for HTTP, the status line and up to 300 characters of the answer's body, secrets scrubbed."""

    outcome: TestOutcome
    http_status: int | None
    detail: str
    duration_ms: float | None
    message_id: str
    event: CanonicalEvent


class DestinationTester:
    """Sends test events to a workspace's destinations."""

    def __init__(
        self,
        destinations: Destinations,
        sender: Sender,
        customer_publisher: Publisher,
        topic_guard: TopicGuard,
        files: Callable[[], FileWriter] | None = None,
        clock: Callable[[], datetime] = ids.utcnow,
    ):
        self._destinations = destinations
        self._outlets = Outlets(sender, customer_publisher, topic_guard, files)
        self._clock = clock

    def send_test(
        self, workspace_id: str, destination_id: str, event: dict[str, Any] | None = None
    ) -> TestResult:
        """Send `event` (a Segment call; the sample track when None) to the destination, once,
        whatever its status: a disabled destination can be tried before it is enabled."""
        destination = self._destinations.get(workspace_id, destination_id)
        canonical = self._canonical(workspace_id, event)
        message_id = str(canonical.get("messageId"))
        config = validate_config(destination.type, destination.config)
        connector = connector_for(destination.type)
        try:
            built = build_requests(connector, canonical, config, now=self._clock())
        except EventRejected as exc:
            return TestResult("rejected", None, str(exc), None, message_id, canonical)
        except DATA_ERRORS as exc:
            reason = failure_reason("building the request", exc)
            return TestResult("rejected", None, reason, None, message_id, canonical)
        if not built:
            detail = f"{destination.type} destinations take no {canonical.get('type')} events"
            return TestResult("skipped", None, detail, None, message_id, canonical)
        # An event that makes several requests (a profile and an event) is sent whole; the
        # first that is not delivered is the answer.
        for outbound in built:
            sent = self._outlets.send(connector, outbound)
            if sent.status != "delivered":
                break
        return TestResult(
            sent.status, sent.http_status, sent.detail, sent.duration_ms, message_id, canonical
        )

    def _canonical(self, workspace_id: str, event: dict[str, Any] | None) -> CanonicalEvent:
        """The event as ingest would have made it, with a test messageId unless one is given."""
        item = dict(SAMPLE_EVENT if event is None else event)
        now = self._clock()
        context = IngestContext(workspace_id, TEST_SOURCE_ID, now, None)
        call_type = item.get("type", "track")
        if not isinstance(call_type, str):
            raise InvalidRequest("event.type must be a string", field="event.type")
        try:
            batch = normalise_request(
                item, call_type, context, new_message_id=lambda: TEST_MESSAGE_PREFIX + ids.new_id()
            )
        except InvalidRequest as exc:
            # Ingest's request-level refusal, about the test's `event` field here.
            field = f"event.{exc.field}" if exc.field else "event"
            raise InvalidRequest(f"{field}: {exc.message}", field=field) from None
        if batch.rejections:
            [rejection] = batch.rejections
            field = f"event.{rejection.field}" if rejection.field else "event"
            raise InvalidRequest(f"{field}: {rejection.reason}", field=field)
        [canonical] = batch.events
        return canonical
