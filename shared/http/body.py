"""Reading request bodies the way real SDKs send them: any content type, maybe gzipped."""

from __future__ import annotations

import ipaddress
import json
import zlib
from typing import Any

from flask import Request

from shared.domain.errors import InvalidRequest, PayloadTooLarge
from shared.domain.storable import OversizedInteger

GZIP_MAGIC = b"\x1f\x8b"


def read_json(request: Request, max_bytes: int, required: bool = True) -> Any:
    """The body parsed as JSON whatever its Content-Type, gunzipped when needed, within limits;
    an empty body is `{}` when not `required`."""
    data = read_bytes(request, max_bytes)
    if not data.strip():
        if not required:
            return {}
        raise InvalidRequest("request body is empty; expected a JSON object")
    try:
        try:
            return json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise
        except ValueError:
            # An integer literal longer than Python reads (4,300 digits). Read again with a
            # placeholder in its place: the body is valid JSON, and what holds the number is
            # refused on its own (an event among good ones, or a management request's field).
            return json.loads(data, parse_int=_read_int)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidRequest(f"malformed JSON: {exc}") from None
    except RecursionError:
        raise InvalidRequest("JSON nested too deeply") from None


def read_bytes(request: Request, max_bytes: int) -> bytes:
    """The body's bytes, gunzipped when needed, within limits (413 beyond)."""
    if (request.content_length or 0) > max_bytes:
        raise PayloadTooLarge(f"request body exceeds {max_bytes} bytes")
    # Read at most one byte past the limit: a body without Content-Length cannot exhaust memory.
    data = request.stream.read(max_bytes + 1)
    encoding = request.headers.get("Content-Encoding", "").lower()
    if encoding in ("gzip", "x-gzip", "deflate") or data[:2] == GZIP_MAGIC:
        data = _inflate(data, max_bytes, gzip=encoding != "deflate" or data[:2] == GZIP_MAGIC)
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"request body exceeds {max_bytes} bytes")
    return data


def _read_int(text: str) -> int | OversizedInteger:
    try:
        return int(text)
    except ValueError:
        return OversizedInteger(len(text.lstrip("-")))


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


def client_ip(request: Request, trusted_proxy_hops: int) -> str | None:
    """The caller's address, as the proxies in front of Streams saw it.

    Each proxy appends to `X-Forwarded-For` what it saw (Google's load balancer appends
    `<client>,<load balancer>`, the local gateway `<client>`), after whatever the client sent
    itself, which anyone can forge. So the address is the entry `trusted_proxy_hops` from the
    right: the one the outermost trusted proxy wrote. With no trusted proxy the header is
    ignored, and with fewer entries than that, or not an address there, the peer is used.
    """
    if trusted_proxy_hops > 0:
        entries = ",".join(request.headers.getlist("X-Forwarded-For")).split(",")
        if len(entries) >= trusted_proxy_hops:
            candidate = entries[-trusted_proxy_hops].strip()
            try:
                return str(ipaddress.ip_address(candidate))
            except ValueError:
                pass
    return request.remote_addr
