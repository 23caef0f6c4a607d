"""Identifiers, secrets and timestamps, formatted one way across the product."""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import uuid
from datetime import UTC, datetime

WRITE_KEY_PREFIX = "wk_"
API_TOKEN_PREFIX = "stk_"
# 32 random bytes: 256 bits, far beyond guessing, and URL-safe so keys paste anywhere.
SECRET_BYTES = 32
# What `secrets.token_urlsafe(SECRET_BYTES)` writes: unpadded URL-safe base64.
_SECRET = f"[A-Za-z0-9_-]{{{math.ceil(SECRET_BYTES * 4 / 3)}}}"
# Credentials as minted. Anything else is refused before any lookup: a write key is a Firestore
# document id, where `/`, `..` or a lone surrogate would fail the read instead of missing.
WRITE_KEY_SYNTAX = re.compile(re.escape(WRITE_KEY_PREFIX) + _SECRET)
API_TOKEN_SYNTAX = re.compile(re.escape(API_TOKEN_PREFIX) + _SECRET)
# Firestore's rules for a document id (https://firebase.google.com/docs/firestore/quotas): at
# most 1,500 bytes of UTF-8, no `/`, not `.` or `..`, not of the reserved form `__.*__`.
MAX_DOCUMENT_ID_BYTES = 1_500
RESERVED_DOCUMENT_ID = re.compile(r"__.*__", re.DOTALL)


def new_id() -> str:
    """A random UUID string, the id of every resource."""
    return str(uuid.uuid4())


def new_write_key() -> str:
    """A source's write key: public, but unguessable so one source cannot be spoofed by guessing."""
    return WRITE_KEY_PREFIX + secrets.token_urlsafe(SECRET_BYTES)


def new_api_token() -> str:
    """A management API token; only its hash is ever stored."""
    return API_TOKEN_PREFIX + secrets.token_urlsafe(SECRET_BYTES)


def is_write_key(text: str) -> bool:
    """Whether `text` is shaped like a minted write key (it may still be unknown)."""
    return WRITE_KEY_SYNTAX.fullmatch(text) is not None


def is_api_token(text: str) -> bool:
    """Whether `text` is shaped like a minted API token (it may still be unknown)."""
    return API_TOKEN_SYNTAX.fullmatch(text) is not None


def is_document_id(text: str) -> bool:
    """Whether `text` can name a Firestore document. Every id Streams mints can; one that
    cannot names nothing, so it is not found, and is never sent to Firestore (which refuses
    the request instead of answering that nothing is there)."""
    if not text or text in (".", "..") or "/" in text:
        return False
    if RESERVED_DOCUMENT_ID.fullmatch(text):
        return False
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate: no UTF-8 form, so no Firestore id
        return False
    return size <= MAX_DOCUMENT_ID_BYTES


def is_document_path(path: str) -> bool:
    """Whether `path` (`collection/id/collection/id...`) can name a Firestore document."""
    parts = path.split("/")
    return len(parts) % 2 == 0 and all(is_document_id(part) for part in parts)


def is_collection_path(path: str) -> bool:
    """Whether `path` (`collection` or `collection/id/collection...`) can name a collection."""
    parts = path.split("/")
    return len(parts) % 2 == 1 and all(is_document_id(part) for part in parts)


def token_hash(token: str) -> str:
    """The stored form of an API token (tokens are random, so an unsalted SHA-256 is enough)."""
    return hashlib.sha256(token.encode()).hexdigest()


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def isoformat(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds and a `Z`: sortable as a string, parsed by every SDK."""
    # The year padded by hand: strftime's %Y writes the year 381 as "381", not RFC 3339's "0381".
    utc = moment.astimezone(UTC)
    return f"{utc.year:04d}" + utc.strftime("-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
