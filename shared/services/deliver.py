"""Deliver: send one event to one rule's destination, once, with retries and dead letters."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from shared.destinations import connector_for, validate_config
from shared.destinations.base import OutboundMessage, OutboundRequest
from shared.destinations.outbound import HttpSender, SendResult
from shared.domain import ids
from shared.domain.errors import InvalidRequest, StreamsError
from shared.domain.pipeline import (
    FINAL_STATUSES,
    HISTORY_LIMIT,
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
        status, detail, http_status, code = self._attempt(message, destination)
        if status == "retry" and attempts >= self._max_attempts:
            status, code = "failed", "retries_exhausted"
            detail = f"gave up after {attempts} attempts: {detail}"
        final = {
            "delivered": "delivered",
            "skipped": "skipped",
            "dropped": "dropped",
            "retry": "retrying",
        }.get(status, "dead_lettered")
        if final == "dead_lettered":
            # Before the record: if recording fails, the redelivery dead-letters again (the
            # dead letter is keyed by delivery, so twice is once) instead of never.
            self._dead_letter(message, destination, code or "failed", detail, attempts, http_status)
        self._record(path, record, message, destination, final, attempts, detail, http_status)
        log.info("delivery %s %s (attempt %d): %s", message.delivery_id, final, attempts, detail)
        if final == "retrying":
            raise RetryDelivery(detail)
        return DeliveryOutcome(final, attempts, detail)

    def _attempt(
        self, message: DeliveryMessage, destination: Destination | None
    ) -> tuple[str, str, int | None, str | None]:
        """(delivered|skipped|retry|failed, detail, http status, reason code)."""
        if destination is None:
            return "failed", "the destination no longer exists", None, "destination_missing"
        if destination.status != "active":
            return "failed", "the destination is inactive", None, "destination_inactive"
        events = [message.event]
        if message.transformation_id is not None:
            if self._transformer is None:
                return "failed", "no transformation runtime", None, "transformation_error"
            transformed = self._transformer.transform(message, destination)
            if transformed.error is not None:
                detail = f"transformation failed: {transformed.error}"
                return "failed", detail, None, "transformation_error"
            if not transformed.events:
                return "dropped", "the transformation dropped the event", None, None
            events = transformed.events
        try:
            config = validate_config(destination.type, destination.config)
            connector = connector_for(destination.type)
            built = [connector.build(event, config, now=self._clock()) for event in events]
        except InvalidRequest as exc:
            return "failed", f"invalid destination config: {exc.message}", None, "invalid_config"
        results = [
            ("skipped", f"{destination.type} does not take {event['type']} events", None, None)
            if request is None
            else self._publish(request)
            if isinstance(request, OutboundMessage)
            else self._send(request)
            for event, request in zip(events, built, strict=True)
        ]
        # A fan-out succeeds only whole: the first retry or failure decides the attempt.
        return next((r for r in results if r[0] in ("retry", "failed")), results[0])

    def _send(self, request: OutboundRequest) -> tuple[str, str, int | None, str | None]:
        result: SendResult = self._sender.send(request, request.timeout_seconds)
        code = None
        if result.status == "failed":
            code = "http_error" if result.http_status else "unsafe_destination"
        return result.status, result.detail, result.http_status, code

    def _publish(self, message: OutboundMessage) -> tuple[str, str, int | None, str | None]:
        try:
            [server_id] = self._publisher.publish(
                message.topic, [(message.data, message.attributes)]
            )
        except StreamsError as exc:
            return "retry", exc.message, None, None
        return "delivered", f"published as {server_id}", None, None

    def _record(
        self,
        path: str,
        record: Document | None,
        message: DeliveryMessage,
        destination: Destination | None,
        status: str,
        attempts: int,
        detail: str,
        http_status: int | None,
    ) -> None:
        now = ids.isoformat(self._clock())
        history = list(record.get("history", [])) if record else []
        history.append(
            {
                "at": now,
                "status": status,
                "detail": detail,
                "http_status": http_status,
                "replay": message.replay,
            }
        )
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
