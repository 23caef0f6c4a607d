"""Browser origins: the `allowed_origins` of a source, kept in the form browsers send `Origin`."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence

MAX_ALLOWED_ORIGINS = 100
"""Most origins one source lists (a shop's domains, not a directory of the web)."""

MAX_ORIGIN_CHARS = 300

# scheme "://" host [":" port] and nothing else: no user, path, query or fragment. Any scheme,
# so hybrid apps' pages (`capacitor://localhost`) can be listed as well as websites.
ORIGIN = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<host>\[[0-9a-f:.]+\]|[^/:?#@\[\]\s]+)(?::(?P<port>\d+))?",
    re.IGNORECASE,
)
HOST_LABELS = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*")
# Browsers leave the scheme's default port out of `Origin` (RFC 6454 section 6.2).
DEFAULT_PORTS = {"http": 80, "https": 443}
ORIGIN_FORM = "an origin is scheme://host[:port] with no path, e.g. https://shop.example.com"


def canonical_origin(text: str) -> str:
    """`text` as a browser serialises the origin (lowercase, punycode host, default port left
    out), so that a request's `Origin` is checked by plain comparison; ValueError otherwise."""
    found = ORIGIN.fullmatch(text.strip()) if len(text) <= MAX_ORIGIN_CHARS else None
    if found is None:
        raise ValueError(ORIGIN_FORM)
    scheme = found["scheme"].lower()
    host = _host(found["host"])
    port = found["port"]
    if port is None:
        return f"{scheme}://{host}"
    number = int(port)
    if not 0 < number < 65536:
        raise ValueError(f"port {port} is not between 1 and 65535")
    if DEFAULT_PORTS.get(scheme) == number:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{number}"


def _host(text: str) -> str:
    if text.startswith("["):
        try:
            return f"[{ipaddress.IPv6Address(text[1:-1]).compressed}]"
        except ValueError:
            raise ValueError(f"{text} is not an IPv6 address") from None
    try:
        # Browsers send an internationalised host name in its ASCII (punycode) form.
        host = text.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise ValueError(f"{text} is not a host name") from None
    if not HOST_LABELS.fullmatch(host):
        raise ValueError(f"{text} is not a host name")
    return host


def origin_allowed(allowed: Sequence[str], origin: str | None) -> bool:
    """Whether a request with this `Origin` may use a source that lists `allowed`.

    An empty list allows every origin. A request without `Origin` does not come from a web page
    (a server or a mobile app), and the list is not about those: only a browser reports where a
    page comes from truthfully, so the list keeps a key copied onto another website useless
    there, and is no substitute for keeping a server's key secret.
    """
    return not allowed or origin is None or origin in allowed
