"""Reading request bodies the way real SDKs send them: any content type, maybe gzipped."""

from __future__ import annotations

import json
import zlib
from typing import Any

from flask import Request

from shared.domain.errors import InvalidRequest, PayloadTooLarge

GZIP_MAGIC = b"\x1f\x8b"


def read_json(request: Request, max_bytes: int) -> Any:
    """The body parsed as JSON whatever its Content-Type, gunzipped when needed, within limits."""
    if (request.content_length or 0) > max_bytes:
        raise PayloadTooLarge(f"request body exceeds {max_bytes} bytes")
    # Read at most one byte past the limit: a body without Content-Length cannot exhaust memory.
    data = request.stream.read(max_bytes + 1)
    encoding = request.headers.get("Content-Encoding", "").lower()
    if encoding in ("gzip", "x-gzip", "deflate") or data[:2] == GZIP_MAGIC:
        data = _inflate(data, max_bytes, gzip=encoding != "deflate" or data[:2] == GZIP_MAGIC)
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"request body exceeds {max_bytes} bytes")
    if not data.strip():
        raise InvalidRequest("request body is empty; expected a JSON object")
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidRequest(f"malformed JSON: {exc}") from None
    except RecursionError:
        raise InvalidRequest("JSON nested too deeply") from None


def _inflate(data: bytes, max_bytes: int, gzip: bool) -> bytes:
    # Bounded output: a small compressed bomb cannot expand past the limit in memory.
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS if gzip else zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, max_bytes + 1)
    except zlib.error as exc:
        raise InvalidRequest(f"body is not valid compressed data: {exc}") from None
    if len(out) > max_bytes or inflater.unconsumed_tail:
        raise PayloadTooLarge(f"decompressed request body exceeds {max_bytes} bytes")
    return out


def client_ip(request: Request) -> str | None:
    """The caller's address: the first X-Forwarded-For hop (set by the gateway), else the peer."""
    forwarded = request.headers.get("X-Forwarded-For", "")
    first = forwarded.split(",", 1)[0].strip()
    return first or request.remote_addr
