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


def token_hash(token: str) -> str:
    """The stored form of an API token (tokens are random, so an unsalted SHA-256 is enough)."""
    return hashlib.sha256(token.encode()).hexdigest()


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def isoformat(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds and a `Z`: sortable as a string, parsed by every SDK."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )
