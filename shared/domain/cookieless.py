"""Cookieless sources (pure): the anonymousId ingest computes in place of the SDK's, from the
sender's address and user agent under a salt that changes every UTC day. docs/PRIVACY.md
("Cookieless sources") says what such ids can and cannot measure.

The salt is derived from a secret key (STREAMS_COOKIELESS_KEY, in Secret Manager) and the date,
in memory only: nothing per day is stored, so once a day has passed its ids can no longer be
recomputed from an address and user agent by anyone without the key, and a new key version
unlinks every past day at once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Callable
from datetime import date
from typing import Any

from shared.domain.event import CanonicalEvent

ID_PREFIX = "ck_"
# 128 bits: collisions between a source's visitors of one day are negligible.
ID_HEX_CHARS = 32
# Separates the salt's input from any other use of the same key.
SALT_LABEL = b"streams-cookieless-salt:"


def daily_salt(key: bytes, day: date) -> bytes:
    """The salt of one UTC day: HMAC-SHA256 of the key over the date."""
    return hmac.new(key, SALT_LABEL + day.isoformat().encode(), hashlib.sha256).digest()


def cookieless_id(salt: bytes, source_id: str, ip: str, user_agent: str) -> str:
    """The anonymousId of a sender on one source and day: `ck_` and 32 hex characters."""
    # A JSON array keeps the three apart whatever they hold: ("a", "bc") is not ("ab", "c").
    message = json.dumps([source_id, ip, user_agent], ensure_ascii=False).encode()
    digest = hmac.new(salt, message, hashlib.sha256).hexdigest()
    return ID_PREFIX + digest[:ID_HEX_CHARS]


class CookielessIds:
    """Computes cookieless ids with the salt of the day asked for, deriving it once per day and
    instance; the key and salts never leave this object (its repr shows neither)."""

    def __init__(self, key: str | bytes):
        self._key = key.encode() if isinstance(key, str) else key
        self._lock = threading.Lock()
        self._day: date | None = None
        self._salt = b""

    def anonymous_id(self, day: date, source_id: str, ip: str, user_agent: str) -> str:
        return cookieless_id(self._salt_of(day), source_id, ip, user_agent)

    def _salt_of(self, day: date) -> bytes:
        with self._lock:
            if day != self._day:
                self._day, self._salt = day, daily_salt(self._key, day)
            return self._salt

    def __repr__(self) -> str:
        return "CookielessIds(key=<secret>)"


def with_cookieless_id(
    event: CanonicalEvent, anonymous_id: Callable[[str, str], str]
) -> CanonicalEvent:
    """The event with its anonymousId replaced by `anonymous_id(ip, user_agent)` of its
    `context.ip` and `context.userAgent`; its userId is kept. A value that is missing or not
    text counts as "": the SDK's own id is replaced all the same, since passing it on would let a
    client-side identifier through (docs/PRIVACY.md). A new event: the input is not changed."""
    context = event.get("context")
    ip = _text(context.get("ip")) if isinstance(context, dict) else ""
    user_agent = _text(context.get("userAgent")) if isinstance(context, dict) else ""
    return {**event, "anonymousId": anonymous_id(ip, user_agent)}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""
