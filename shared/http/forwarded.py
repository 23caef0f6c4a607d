"""Where the client reached Streams: the scheme and host it used, through the proxies in front.

SDK settings name this deployment's ingest host (`apiHost`), and it must be the host the client
can reach, not the function's own: behind the local gateway, the production API gateway or a
load balancer on the customer's own domain, the function sees another `Host`.
"""

from __future__ import annotations

import re

from flask import Request

SCHEMES = ("http", "https")
# host or [IPv6] with an optional port: what may be written into a URL the SDKs build.
HOST = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?"
)


def public_host(request: Request, trusted_proxy_hops: int) -> str | None:
    """The host (and port) the client addressed; None when it is not a plain host[:port].

    With trusted proxies (`trusted_proxy_hops` > 0, as for `client_ip`), the nearest proxy's
    `X-Forwarded-Host` (the last value: a proxy that rewrites `Host` records the one it was
    sent there) wins over `Host`. Without, the header is anyone's to send and is ignored.
    """
    host = request.host
    if trusted_proxy_hops > 0:
        forwarded = _last(request, "X-Forwarded-Host")
        if forwarded:
            host = forwarded
    return host if HOST.fullmatch(host) else None


def public_scheme(request: Request, trusted_proxy_hops: int) -> str:
    """`https` or `http`, as the client used it.

    TLS ends before the function (Google's front end, a load balancer, the local gateway), so
    the request the function reads is plain HTTP either way; the nearest trusted proxy's
    `X-Forwarded-Proto` says what the client used. Without trusted proxies the header may
    still upgrade to https (Google's front end sets it; a forged one can only make a client
    use TLS), never downgrade.
    """
    forwarded = _last(request, "X-Forwarded-Proto").lower()
    if trusted_proxy_hops > 0 and forwarded in SCHEMES:
        return forwarded
    return "https" if "https" in (forwarded, request.scheme) else "http"


def _last(request: Request, header: str) -> str:
    values = ",".join(request.headers.getlist(header)).split(",")
    return values[-1].strip()
