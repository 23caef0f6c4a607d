"""Streams' own messages travel deflated and are read back as published."""

from __future__ import annotations

import json
import random
import zlib

import pytest

from shared.domain.errors import InvalidMessage
from shared.domain.message_encoding import (
    DEFLATE,
    ENCODING_ATTRIBUTE,
    MIN_DEFLATE_BYTES,
    deflated,
    inflated,
)
from shared.domain.signing import MessageSigner, SignedPublisher
from tests.fakes import FakePublisher

KEY = "a-deployment-signing-key-of-40-characters"
BATCH = json.dumps(
    [{"type": "track", "event": f"Item {n} Added", "properties": {"sku": n}} for n in range(10)]
).encode()


def test_a_batch_goes_deflated_smaller_and_comes_back_as_published() -> None:
    data, attributes = deflated(BATCH, {"workspace_id": "ws"})

    assert attributes == {"workspace_id": "ws", ENCODING_ATTRIBUTE: DEFLATE}
    assert len(data) < len(BATCH) / 3
    assert inflated(data, attributes) == (BATCH, {"workspace_id": "ws"})


def test_a_small_message_goes_as_it_is_and_any_stale_encoding_attribute_is_dropped() -> None:
    small = b'[{"type":"track"}]'
    assert len(small) < MIN_DEFLATE_BYTES

    assert deflated(small, {"a": "1", ENCODING_ATTRIBUTE: DEFLATE}) == (small, {"a": "1"})
    # What was published before messages were deflated reads as it is.
    assert inflated(small, {"a": "1"}) == (small, {"a": "1"})


def test_what_does_not_shrink_goes_as_it_is() -> None:
    noise = random.Random(7).randbytes(2 * MIN_DEFLATE_BYTES)  # random bytes do not shrink
    assert len(noise) >= MIN_DEFLATE_BYTES

    assert deflated(noise, {}) == (noise, {})


@pytest.mark.parametrize(
    ("data", "attributes", "reason"),
    [
        (b"not deflate", {ENCODING_ATTRIBUTE: DEFLATE}, "does not inflate"),
        (zlib.compress(BATCH)[:-8], {ENCODING_ATTRIBUTE: DEFLATE}, "cut short"),
        (zlib.compress(b"\0" * (17 * 1024 * 1024)), {ENCODING_ATTRIBUTE: DEFLATE}, "past 16 MiB"),
        (BATCH, {ENCODING_ATTRIBUTE: "br"}, "unknown content_encoding 'br'"),
    ],
    ids=["garbage", "truncated", "bomb", "unknown encoding"],
)
def test_what_cannot_be_inflated_is_an_invalid_message(
    data: bytes, attributes: dict[str, str], reason: str
) -> None:
    with pytest.raises(InvalidMessage, match=reason):
        inflated(data, attributes)


def test_the_signed_publisher_signs_the_bytes_on_the_wire() -> None:
    signer = MessageSigner(KEY)
    publisher = FakePublisher()

    SignedPublisher(publisher, signer).publish("t", [(BATCH, {"a": "1"})])

    [(wire, attributes)] = publisher.published["t"]
    assert attributes[ENCODING_ATTRIBUTE] == DEFLATE
    assert signer.refusal(wire, attributes) is None
    assert inflated(wire, attributes)[0] == BATCH
