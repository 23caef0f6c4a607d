"""Signatures on Streams' own Pub/Sub messages: only Streams can put a message on its topics.

Every message Streams publishes to one of its own topics (source topics, deliveries topics, the
dead-letter topic) carries an HMAC-SHA256 of its data under a key customers never see. The
pushed functions (`process`, `deliver`, `dead_letters`) act only on messages whose signature
verifies, so a message that reached an internal topic any other way (a tenant's `pubsub`
destination, a leaked publisher grant) cannot name another workspace, destination or rule.
Pub/Sub keeps data and attributes when it forwards a message to a dead-letter topic, so a
forwarded message still verifies.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import Protocol

from shared.domain.message_encoding import deflated

SIGNATURE_ATTRIBUTE = "streams-signature"
# What a key must at least hold: 32 bytes of randomness, as 64 hex or ~43 base64 characters.
MIN_KEY_CHARS = 32


class MessageSigner:
    """Signs and verifies message data with one deployment-wide key."""

    def __init__(self, key: str, *, accept_unsigned: bool = False):
        if len(key) < MIN_KEY_CHARS:
            raise ValueError(f"a message signing key needs at least {MIN_KEY_CHARS} characters")
        self._key = key.encode()
        # Only while upgrading a deployment whose topics still hold unsigned messages.
        self.accept_unsigned = accept_unsigned

    def signature(self, data: bytes) -> str:
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()

    def sign(
        self, messages: Iterable[tuple[bytes, Mapping[str, str]]]
    ) -> list[tuple[bytes, dict[str, str]]]:
        """The messages with their signature attribute (any forged one is replaced)."""
        return [
            (data, {**attributes, SIGNATURE_ATTRIBUTE: self.signature(data)})
            for data, attributes in messages
        ]

    def refusal(self, data: bytes, attributes: Mapping[str, str]) -> str | None:
        """Why a pushed message must not be acted on, or None when it is Streams' own."""
        claimed = attributes.get(SIGNATURE_ATTRIBUTE)
        if claimed is None:
            return None if self.accept_unsigned else "the message is not signed"
        if not hmac.compare_digest(claimed, self.signature(data)):
            return "the message's signature does not verify"
        return None


class _Publisher(Protocol):
    """The `Publisher` port (shared/ports.py) as `SignedPublisher` uses it. Declared here rather
    than imported: the ports use the domain's types (the canonical event), so the domain must
    not import the ports (no two sibling packages import each other, pyproject.toml)."""

    def publish(
        self, topic: str, messages: Iterable[tuple[bytes, Mapping[str, str]]]
    ) -> list[str]: ...


class SignedPublisher:
    """A `Publisher` for Streams' own topics: every message leaves deflated when that makes it
    smaller (shared/domain/message_encoding.py), and signed as it goes on the wire."""

    def __init__(self, publisher: _Publisher, signer: MessageSigner):
        self._publisher = publisher
        self._signer = signer

    def publish(self, topic: str, messages: Iterable[tuple[bytes, Mapping[str, str]]]) -> list[str]:
        wire = (deflated(data, attributes) for data, attributes in messages)
        return self._publisher.publish(topic, self._signer.sign(wire))
