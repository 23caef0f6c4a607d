"""Where connectors' requests go, for deliveries and test events alike.

HTTP requests go through the `Sender` (its URL guard) and are classified by the connector's own
reading of the vendor's answer; Pub/Sub messages go to customers' topics through the customer
publisher, after the topic guard; files go to customers' buckets through the `FileWriter`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from shared.destinations.base import (
    Connector,
    Outbound,
    OutboundFile,
    OutboundMessage,
    classify_result,
)
from shared.destinations.pubsub import TopicGuard
from shared.domain.errors import InvalidRequest, StreamsError
from shared.ports import FileWriter, OutboundRequest, Publisher, Sender, SendResult, SendStatus


def send_http(
    connector: Connector, sender: Sender, request: OutboundRequest
) -> tuple[SendStatus, SendResult]:
    """Send, make the one further request the answer may call for (the connector's
    `follow_up`: Intercom's update of a contact that already exists, or its deletion once found),
    and classify the last answer as the connector reads it."""
    result = sender.send(request, request.timeout_seconds)
    follow_up = getattr(connector, "follow_up", None)
    then = None
    if follow_up is not None and result.http_status is not None:
        then = follow_up(request, result)
    if then is not None:
        result = sender.send(then, then.timeout_seconds)
    return classify_result(connector, result), result


@dataclass(frozen=True)
class Sent:
    """One request's outcome; `code` says why a refusal is for good."""

    status: SendStatus
    detail: str
    http_status: int | None = None
    duration_ms: float | None = None
    code: str | None = None


class Outlets:
    """Sends any connector's request where it goes; never raises for the destination's faults."""

    def __init__(
        self,
        sender: Sender,
        customer_publisher: Publisher,
        topic_guard: TopicGuard,
        files: Callable[[], FileWriter] | None = None,
    ) -> None:
        """`files` makes the writer on first use: its client is loaded only by deployments
        that have a Cloud Storage destination."""
        self._sender = sender
        self._customer_publisher = customer_publisher
        self._topic_guard = topic_guard
        self._files = files

    def send(self, connector: Connector, outbound: Outbound) -> Sent:
        if isinstance(outbound, OutboundMessage):
            return self._timed(lambda: self._publish(outbound))
        if isinstance(outbound, OutboundFile):
            return self._timed(lambda: self._write(outbound))
        status, result = send_http(connector, self._sender, outbound)
        code = None
        if status == "failed":
            code = "http_error" if result.http_status else "unsafe_destination"
        return Sent(status, result.detail, result.http_status, result.duration_ms, code)

    @staticmethod
    def _timed(send: Callable[[], Sent]) -> Sent:
        started = time.monotonic()
        sent = send()
        elapsed = round((time.monotonic() - started) * 1000, 3)
        return Sent(sent.status, sent.detail, sent.http_status, elapsed, sent.code)

    def _publish(self, message: OutboundMessage) -> Sent:
        try:
            # Checked at send too: the config may predate the check, or the settings changed.
            self._topic_guard.check(message.topic)
        except InvalidRequest as exc:
            return Sent("failed", exc.message, code="unsafe_destination")
        try:
            [server_id] = self._customer_publisher.publish(
                message.topic, [(message.data, message.attributes)]
            )
        except StreamsError as exc:
            return Sent("retry", exc.message)
        return Sent("delivered", f"published as {server_id}")

    def _write(self, file: OutboundFile) -> Sent:
        if self._files is None:
            return Sent("failed", "this deployment writes no files", code="no_file_writer")
        try:
            written = self._files().write(file)
        except InvalidRequest as exc:
            return Sent("failed", exc.message, code="file_refused")
        except StreamsError as exc:
            return Sent("retry", exc.message)
        return Sent("delivered", f"wrote {written}")
