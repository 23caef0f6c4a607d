"""Pub/Sub-triggered entry points: unwrap the pushed message, decide ack or retry."""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.domain.errors import InvalidMessage
from shared.domain.message_encoding import inflated
from shared.domain.signing import MessageSigner

log = logging.getLogger("streams.pubsub")


@dataclass(frozen=True)
class PushedMessage:
    """A Pub/Sub message as the function received it."""

    message_id: str
    data: bytes
    attributes: dict[str, str]


def unwrap(cloud_event: Any) -> PushedMessage:
    """The message inside a CloudEvent: Eventarc's, or functions-framework's conversion of an
    emulator push (`subscription` is optional: the conversion drops it)."""
    message = (cloud_event.data or {}).get("message") or {}
    return PushedMessage(
        message_id=str(message.get("messageId") or message.get("message_id") or ""),
        data=base64.b64decode(message.get("data") or ""),
        attributes=dict(message.get("attributes") or {}),
    )


def handle_push(
    cloud_event: Any, handler: Callable[[PushedMessage], object], signer: MessageSigner
) -> None:
    """Run `handler` on a message Streams signed, as it was published (inflated:
    shared/domain/message_encoding.py); a message that can never succeed (unsigned,
    forged, unparseable) is logged and acknowledged, anything else that fails propagates, so
    functions-framework answers 500 and Pub/Sub redelivers."""
    message = unwrap(cloud_event)
    refusal = signer.refusal(message.data, message.attributes)
    if refusal is not None:
        # Not Streams' own: whatever it names (workspace, destination, rule) is not to be trusted.
        log.warning("refusing message %s: %s", message.message_id, refusal)
        return
    try:
        data, attributes = inflated(message.data, message.attributes)
        handler(PushedMessage(message.message_id, data, attributes))
    except InvalidMessage as error:
        log.error("dropping unprocessable message %s: %s", message.message_id, error.message)
