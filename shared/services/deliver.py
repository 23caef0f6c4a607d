"""Deliver: send one event to one rule's destination, once, with retries and dead letters."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from shared.destinations import connector_for, validate_config
from shared.destinations.base import OutboundMessage, OutboundRequest
from shared.destinations.outbound import HttpSender, SendResult
from shared.domain import ids
from shared.domain.errors import InvalidRequest, StreamsError
from shared.domain.pipeline import (
    FINAL_STATUSES,
    HISTORY_LIMIT,
    RECORD_RETENTION_DAYS,
    DeliveryMessage,
    delivery_path,
)
from shared.domain.routing import Destination
from shared.ports import ConfigStore, Document, Publisher, Write
from shared.services.workspace_config import WorkspaceConfig

log = logging.getLogger("streams.deliver")


@dataclass(frozen=True)
class TransformOutcome:
    """What a forwarding rule's transformation made of an event.

    `events` empty means dropped (recorded, never silent); several mean fan-out; `error` set
    means the code failed, and the delivery is dead-lettered with it.
    """

    events: list[dict[str, Any]]
    error: str | None = None
    logs: list[str] = field(default_factory=list)


class Transformer(Protocol):
    """Runs a rule's transformation on the event before it is sent."""

    def transform(self, message: DeliveryMessage, destination: Destination) -> TransformOutcome: ...


@dataclass(frozen=True)
class Attempt:
    """One attempt's result: delivered, skipped, dropped, retry or failed (with a reason code)."""

    status: str
    detail: str
    http_status: int | None = None
    code: str | None = None
    logs: list[str] = field(default_factory=list)


# What an attempt's result leaves the delivery as; anything else is dead-lettered.
FINAL_STATUS = {
    "delivered": "delivered",
    "skipped": "skipped",
    "dropped": "dropped",
    "retry": "retrying",
}
# Console lines of the transformation kept with each attempt, for the trace.
TRACE_LOG_LINES = 20


class RetryDelivery(Exception):
    """A transient failure: the function fails so that Pub/Sub redelivers after a backoff."""


@dataclass(frozen=True)
class DeliveryOutcome:
    """Where a delivery ended after this attempt."""

    status: str
    attempts: int
    detail: str


class Deliverer:
    """Sends deliveries through their destination's connector and records every attempt."""

    def __init__(
        self,
        store: ConfigStore,
        config: WorkspaceConfig,
        sender: HttpSender,
        publisher: Publisher,
        dead_letters_topic: str,
        max_attempts: int,
        transformer: Transformer | None = None,
        clock: Callable[[], datetime] = ids.utcnow,
    ):
        self._store = store
        self._config = config
        self._sender = sender
        self._publisher = publisher
        self._dead_letters_topic = dead_letters_topic
        self._max_attempts = max_attempts
        self._transformer = transformer
        self._clock = clock

    def deliver(self, message: DeliveryMessage) -> DeliveryOutcome:
        """One attempt. Raises `RetryDelivery` when Pub/Sub should try again later."""
        path = delivery_path(message.workspace_id, message.delivery_id)
        record = self._store.get(path)
        if record and record["status"] in FINAL_STATUSES:
            # Already accepted (or skipped): a redelivery or a replay must not send it twice.
            return DeliveryOutcome(record["status"], record["attempts"], "already done")
        if record and record["status"] in ("dead_lettered", "failed") and not message.replay:
            return DeliveryOutcome(record["status"], record["attempts"], "already dead-lettered")
        # A replay starts counting afresh; its own retries count on from there.
        if record is None or (message.replay and record["status"] in ("dead_lettered", "failed")):
            attempts = 1
        else:
            attempts = int(record["attempts"]) + 1
        destination = self._config.destination(message.workspace_id, message.destination_id)
        attempt = self._attempt(message, destination)
        if attempt.status == "retry" and attempts >= self._max_attempts:
            attempt = replace(
                attempt,
                status="failed",
                code="retries_exhausted",
                detail=f"gave up after {attempts} attempts: {attempt.detail}",
            )
        final = FINAL_STATUS.get(attempt.status, "dead_lettered")
        detail, http_status = attempt.detail, attempt.http_status
        if final == "dead_lettered":
            # Before the record: if recording fails, the redelivery dead-letters again (the
            # dead letter is keyed by delivery, so twice is once) instead of never.
            self._dead_letter(
                message, destination, attempt.code or "failed", detail, attempts, http_status
            )
        self._record(path, record, message, destination, final, attempts, attempt)
        log.info("delivery %s %s (attempt %d): %s", message.delivery_id, final, attempts, detail)
        if final == "retrying":
            raise RetryDelivery(detail)
        return DeliveryOutcome(final, attempts, detail)

    def _attempt(self, message: DeliveryMessage, destination: Destination | None) -> Attempt:
        if destination is None:
            return Attempt("failed", "the destination no longer exists", code="destination_missing")
        if destination.status != "active":
            return Attempt("failed", "the destination is inactive", code="destination_inactive")
        events = [message.event]
        logs: list[str] = []
        if message.transformation_id is not None:
            if self._transformer is None:
                return Attempt("failed", "no transformation runtime", code="transformation_error")
            transformed = self._transformer.transform(message, destination)
            logs = transformed.logs
            if transformed.error is not None:
                detail = f"transformation failed: {transformed.error}"
                return Attempt("failed", detail, code="transformation_error", logs=logs)
            if not transformed.events:
                return Attempt("dropped", "the transformation dropped the event", logs=logs)
            events = transformed.events
        try:
            config = validate_config(destination.type, destination.config)
            connector = connector_for(destination.type)
            built = [connector.build(event, config, now=self._clock()) for event in events]
        except InvalidRequest as exc:
            detail = f"invalid destination config: {exc.message}"
            return Attempt("failed", detail, code="invalid_config", logs=logs)
        results = [
            Attempt("skipped", f"{destination.type} does not take {event['type']} events")
            if request is None
            else self._publish(request)
            if isinstance(request, OutboundMessage)
            else self._send(request)
            for event, request in zip(events, built, strict=True)
        ]
        # A fan-out succeeds only whole: the first retry or failure decides the attempt.
        decisive = next((r for r in results if r.status in ("retry", "failed")), results[0])
        return replace(decisive, logs=logs)

    def _send(self, request: OutboundRequest) -> Attempt:
        result: SendResult = self._sender.send(request, request.timeout_seconds)
        code = None
        if result.status == "failed":
            code = "http_error" if result.http_status else "unsafe_destination"
        return Attempt(result.status, result.detail, result.http_status, code)

    def _publish(self, message: OutboundMessage) -> Attempt:
        try:
            [server_id] = self._publisher.publish(
                message.topic, [(message.data, message.attributes)]
            )
        except StreamsError as exc:
            return Attempt("retry", exc.message)
        return Attempt("delivered", f"published as {server_id}")

    def _record(
        self,
        path: str,
        record: Document | None,
        message: DeliveryMessage,
        destination: Destination | None,
        status: str,
        attempts: int,
        attempt: Attempt,
    ) -> None:
        now = ids.isoformat(self._clock())
        detail, http_status = attempt.detail, attempt.http_status
        history = list(record.get("history", [])) if record else []
        entry: dict[str, Any] = {
            "at": now,
            "status": status,
            "detail": detail,
            "http_status": http_status,
            "replay": message.replay,
        }
        if attempt.logs:
            entry["logs"] = attempt.logs[-TRACE_LOG_LINES:]
        history.append(entry)
        document: dict[str, Any] = {
            "delivery_id": message.delivery_id,
            "workspace_id": message.workspace_id,
            "message_id": message.message_id,
            "rule_id": message.rule_id,
            "destination_id": message.destination_id,
            "destination_type": destination.type if destination else None,
            "status": status,
            "attempts": attempts,
            "last_detail": detail,
            "last_http_status": http_status,
            "history": history[-HISTORY_LIMIT:],
            "created_at": record["created_at"] if record else now,
            "updated_at": now,
            "delivered_at": now if status == "delivered" else None,
            # A timestamp: Firestore TTL policies expire only on timestamp fields.
            "expires_at": self._clock() + timedelta(days=RECORD_RETENTION_DAYS),
        }
        self._store.commit([Write("set", path, document)])

    def _dead_letter(
        self,
        message: DeliveryMessage,
        destination: Destination | None,
        code: str,
        detail: str,
        attempts: int,
        http_status: int | None,
    ) -> None:
        envelope = {
            "delivery": json.loads(message.to_json()),
            "reason_code": code,
            "reason": detail,
            "attempts": attempts,
            "last_http_status": http_status,
            "destination_type": destination.type if destination else None,
            "dead_lettered_at": ids.isoformat(self._clock()),
        }
        data = json.dumps(envelope, separators=(",", ":")).encode()
        self._publisher.publish(self._dead_letters_topic, [(data, message.attributes())])
