"""Streams' own Pub/Sub messages travel deflated: Pub/Sub bills the bytes published and pushed,
and SDK batches of JSON events shrink about 4 to 6 times (docs/COST.md).

`SignedPublisher` deflates what it publishes to Streams' own topics (before signing: the
signature covers the bytes on the wire) and the pushed functions inflate what they receive
(after verifying it), so services see and publish plain JSON. Messages published without the
attribute (before this change, or too small to gain) are read as they are. Customers' topics
(`pubsub` destinations) get plain JSON: they are never deflated.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping

from shared.domain.errors import InvalidMessage

ENCODING_ATTRIBUTE = "content_encoding"
DEFLATE = "deflate"
# Below this, Pub/Sub's 1 KB minimum per push takes most of the gain.
MIN_DEFLATE_BYTES = 512
# zlib's fastest level: about 2 microseconds per event of a 10-event batch; level 6 takes half
# as long again for a few percent less.
LEVEL = 1
# A Streams message is at most Pub/Sub's 10 MB before deflating; anything inflating past this
# was not made by Streams.
MAX_INFLATED_BYTES = 16 * 1024 * 1024


def deflated(data: bytes, attributes: Mapping[str, str]) -> tuple[bytes, dict[str, str]]:
    """The message as it goes on the wire: deflated when that makes it smaller."""
    plain = {k: v for k, v in attributes.items() if k != ENCODING_ATTRIBUTE}
    if len(data) < MIN_DEFLATE_BYTES:
        return data, plain
    packed = zlib.compress(data, LEVEL)
    if len(packed) >= len(data):
        return data, plain
    return packed, {**plain, ENCODING_ATTRIBUTE: DEFLATE}


def inflated(data: bytes, attributes: Mapping[str, str]) -> tuple[bytes, dict[str, str]]:
    """The message as it was published; `InvalidMessage` when it cannot be read."""
    encoding = attributes.get(ENCODING_ATTRIBUTE)
    plain = {k: v for k, v in attributes.items() if k != ENCODING_ATTRIBUTE}
    if encoding is None:
        return data, plain
    if encoding != DEFLATE:
        raise InvalidMessage(f"unknown {ENCODING_ATTRIBUTE} {encoding!r}")
    inflater = zlib.decompressobj()
    try:
        unpacked = inflater.decompress(data, MAX_INFLATED_BYTES)
    except zlib.error as exc:
        raise InvalidMessage(f"the message does not inflate: {exc}") from None
    if inflater.unconsumed_tail or not inflater.eof:
        raise InvalidMessage("the message inflates past 16 MiB or is cut short")
    return unpacked, plain
