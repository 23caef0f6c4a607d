"""Sending to customer-chosen URLs without becoming an SSRF proxy.

`UrlGuard.check` resolves a URL's host once and refuses it if any address is internal.
`HttpSender.send` then connects to exactly the checked address (DNS rebinding between check and
connect cannot reach anything else), with the original Host header and TLS SNI/certificate name,
follows no redirects, reads at most 64 KB of the answer, and classifies the outcome.

Always refused, even with `allow_private` (local development): the metadata server by name
(metadata.google.internal, metadata) and by address (the whole link-local ranges 169.254.0.0/16
and fe80::/10, GCE's IPv6 fd20:ce::254, AWS's fd00:ec2::254), multicast and unspecified
addresses. Refused unless `allow_private`: every address that is not globally routable (private,
loopback, shared, reserved, documentation, deprecated site-local fec0::/10, ...; `NOT_GLOBAL`
adds what Python misses of IANA's special-purpose registries), also when wrapped in IPv6
(IPv4-mapped, -translated and -compatible, 6to4, Teredo, NAT64).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import urllib3
from urllib3 import exceptions as u3

from shared.domain.errors import InvalidRequest
from shared.ports import OutboundRequest, Sender, SendResult, SendStatus

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

MAX_RESPONSE_BYTES = 64 * 1024
EXCERPT_CHARS = 300
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata"})
ALWAYS_REFUSED = tuple(
    ipaddress.ip_network(net)
    for net in (
        "169.254.0.0/16",  # link-local, holds the metadata server 169.254.169.254
        "fe80::/10",  # IPv6 link-local
        "fd20:ce::254/128",  # GCE metadata server over IPv6
        "fd00:ec2::254/128",  # AWS metadata server over IPv6
    )
)
# Not globally reachable per IANA's special-purpose registries (and RFC 3879 for site-local),
# yet `is_global` in Python 3.11 and 3.12: refused like private addresses. The rest of both
# registries Python classifies itself (tests/unit/test_outbound.py walks them).
NOT_GLOBAL = tuple(
    ipaddress.ip_network(net)
    for net in (
        "192.0.0.0/24",  # IETF protocol assignments (Python knows only parts of it)
        "192.88.99.0/24",  # 6to4 relay anycast, deprecated (RFC 7526): a relay to anywhere
        "fec0::/10",  # site-local, deprecated (RFC 3879) but still routed inside some networks
        "3fff::/20",  # documentation (RFC 9637)
        "64:ff9b:1::/48",  # local-use NAT64 (RFC 8215): translates into the local network
    )
)
NAT64 = ipaddress.ip_network("64:ff9b::/96")
# IPv4-translated addresses (RFC 2765): ::ffff:0:a.b.c.d.
IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
# Statuses worth retrying: the receiver timed out, throttled us, or failed on its side.
RETRY_STATUSES = frozenset({408, 429})


class UnsafeDestination(InvalidRequest):
    """The URL points somewhere Streams must not send to (internal, metadata, bad scheme)."""


class UnresolvableDestination(InvalidRequest):
    """The URL's host does not resolve (possibly transient)."""


def _resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, translated, compatible, 6to4, Teredo
    server and client, NAT64): traffic to it may reach them."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    if _is_deprecated_ipv4_form(address) or address in NAT64:
        return [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
    if address.sixtofour is not None:
        return [address.sixtofour]
    if address.teredo is not None:
        return list(address.teredo)
    return []


def _is_deprecated_ipv4_form(address: IPAddress) -> bool:
    """IPv4-translated (RFC 2765) or IPv4-compatible (RFC 4291, not `::` or `::1`)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return False
    return address in IPV4_TRANSLATED or (int(address) >> 32 == 0 and int(address) > 1)


class UrlGuard:
    """Decides whether a URL may be sent to, and which addresses to connect to."""

    def __init__(self, allow_private: bool = False, *, resolve: Resolver | None = None) -> None:
        self.allow_private = allow_private
        self._resolve = resolve or _resolve

    def check(self, url: str, *, field: str = "config.url") -> list[str]:
        """The host's checked addresses; UnsafeDestination if any of them is refused."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise UnsafeDestination("the URL is not valid", field=field) from None
        if parts.scheme not in ("http", "https"):
            raise UnsafeDestination("only http and https URLs can be sent to", field=field)
        host = (parts.hostname or "").rstrip(".").lower()
        if not host:
            raise UnsafeDestination("the URL has no host", field=field)
        if host in METADATA_HOSTS or host.endswith(".metadata.google.internal"):
            raise UnsafeDestination("the metadata server is never a destination", field=field)
        try:
            resolved = self._resolve(host, port or (443 if parts.scheme == "https" else 80))
        except (OSError, UnicodeError):
            raise UnresolvableDestination(f"{host} does not resolve", field=field) from None
        addresses = list(dict.fromkeys(address.split("%", 1)[0] for address in resolved))
        if not addresses:
            raise UnresolvableDestination(f"{host} does not resolve", field=field)
        for address in addresses:
            reason = self.refusal(ipaddress.ip_address(address))
            if reason:
                raise UnsafeDestination(f"{host} resolves to {reason} {address}", field=field)
        return addresses

    def refusal(self, address: IPAddress) -> str | None:
        """Why this address is refused (e.g. "a private address"), or None if allowed."""
        embedded = _embedded_ipv4(address)
        if embedded:
            reason = next(filter(None, map(self.refusal, embedded)), None)
            if reason is None and not self.allow_private and _is_deprecated_ipv4_form(address):
                reason = "a reserved address"  # forms no network should route any more
            return reason
        if any(address in net for net in ALWAYS_REFUSED if net.version == address.version):
            return "a link-local or metadata address"
        if address.is_multicast:
            return "a multicast address"
        if address.is_unspecified:
            return "an unspecified address"
        if self.allow_private:
            return None
        if address.is_loopback:
            return "a loopback address"
        if address.is_private:
            return "a private address"
        if address.is_reserved or not address.is_global:
            return "a reserved address"
        if any(address in net for net in NOT_GLOBAL if net.version == address.version):
            return "a reserved address"
        return None


def classify(http_status: int) -> SendStatus:
    """2xx delivered; 408, 429 and 5xx retry; anything else (3xx, 4xx) is permanent."""
    if 200 <= http_status < 300:
        return "delivered"
    if http_status in RETRY_STATUSES or http_status >= 500:
        return "retry"
    return "failed"


def _ca_certs() -> str | None:
    try:
        import certifi
    except ImportError:  # the system store then
        return None
    return str(certifi.where())


def _retry_after(value: str | None) -> float | None:
    if value and value.strip().isdigit():
        return float(min(int(value.strip()), 3600))
    return None


def _scrub(detail: str, secrets: tuple[str, ...]) -> str:
    """The detail with every secret value replaced: a response may echo what it was sent."""
    for secret in secrets:
        if len(secret) >= 4:
            detail = detail.replace(secret, "[redacted]")
    return detail


def _describe(http_status: int, body: bytes) -> str:
    excerpt = " ".join(body[:EXCERPT_CHARS].decode("utf-8", errors="replace").split())
    detail = f"HTTP {http_status}"
    if 300 <= http_status < 400:
        detail += " (redirects are not followed)"
    return f"{detail}: {excerpt}" if excerpt else detail


class _Deadline(Exception):
    """The whole exchange took longer than the timeout (a slowly dripping response)."""


# status, HTTP status, detail, Retry-After seconds, the answer's body (for connectors' classify)
Outcome = tuple[SendStatus, int | None, str, float | None, bytes]


class HttpSender(Sender):
    """The `Sender` port over HTTP(S): sends through a UrlGuard; safe to share between threads."""

    MAX_POOLS = 64
    # Connections kept per destination address: deliver sends up to 8 deliveries at once.
    POOL_SIZE = 8

    def __init__(self, guard: UrlGuard, default_timeout: float = 10.0) -> None:
        self.guard = guard
        self.default_timeout = default_timeout
        self._pools: dict[tuple[str, str, int, str], urllib3.HTTPConnectionPool] = {}
        self._lock = threading.Lock()
        self._ca_certs = _ca_certs()

    def send(self, request: OutboundRequest, timeout: float | None = None) -> SendResult:
        """Send once and classify; never raises for network or destination problems."""
        started = time.monotonic()
        limit = timeout or request.timeout_seconds or self.default_timeout
        status, http_status, detail, retry_after, body = self._send(request, limit, started + limit)
        return SendResult(
            status=status,
            http_status=http_status,
            detail=_scrub(detail, request.redact),
            duration_ms=round((time.monotonic() - started) * 1000, 3),
            retry_after_seconds=retry_after,
            body=body,
        )

    def close(self) -> None:
        """Close every cached connection pool."""
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()

    def _pool(self, scheme: str, address: str, port: int, host: str) -> urllib3.HTTPConnectionPool:
        # Keyed by the checked address, so a cached connection never leads anywhere unchecked.
        key = (scheme, address, port, host)
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                if len(self._pools) >= self.MAX_POOLS:
                    for old in self._pools.values():
                        old.close()
                    self._pools.clear()
                if scheme == "https":
                    pool = urllib3.HTTPSConnectionPool(
                        address,
                        port,
                        maxsize=self.POOL_SIZE,
                        server_hostname=host,
                        assert_hostname=host,
                        cert_reqs="CERT_REQUIRED",
                        ca_certs=self._ca_certs,
                    )
                else:
                    pool = urllib3.HTTPConnectionPool(address, port, maxsize=self.POOL_SIZE)
                self._pools[key] = pool
            return pool

    def _send(self, request: OutboundRequest, limit: float, deadline: float) -> Outcome:
        try:
            addresses = self.guard.check(request.url)
        except UnsafeDestination as error:
            return "failed", None, error.message, None, b""
        except UnresolvableDestination as error:
            return "retry", None, error.message, None, b""
        parts = urlsplit(request.url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = {**request.headers, "Host": parts.netloc.rpartition("@")[2]}
        timeout = urllib3.Timeout(connect=min(limit, 10.0), read=limit)
        failure = "connection failed"
        for address in addresses:
            pool = self._pool(parts.scheme, address, port, host)
            try:
                response = pool.urlopen(
                    request.method,
                    target,
                    body=request.body,
                    headers=headers,
                    retries=False,
                    redirect=False,
                    assert_same_host=False,
                    preload_content=False,
                    timeout=timeout,
                )
            except (u3.NewConnectionError, u3.ConnectTimeoutError) as error:
                # Nothing was sent: the next address of the same host may answer.
                failure = f"could not connect ({type(error).__name__})"
                continue
            except u3.TimeoutError:
                return "retry", None, f"timed out after {limit:g} s", None, b""
            except u3.SSLError as error:
                return "retry", None, f"TLS error ({type(error).__name__})", None, b""
            except (u3.HTTPError, OSError) as error:
                return "retry", None, f"connection error ({type(error).__name__})", None, b""
            except ValueError as error:
                # The request cannot be written at all (a header value beyond what HTTP can
                # encode, in a config stored before that was refused): no retry can send it.
                return (
                    "failed",
                    None,
                    f"the request cannot be sent ({type(error).__name__})",
                    None,
                    b"",
                )
            try:
                body = self._read(response, deadline)
            except (_Deadline, u3.TimeoutError):
                return "retry", response.status, f"timed out after {limit:g} s", None, b""
            except (u3.HTTPError, OSError) as error:
                return (
                    "retry",
                    response.status,
                    f"connection error ({type(error).__name__})",
                    None,
                    b"",
                )
            status = response.status
            retry_after = _retry_after(response.headers.get("Retry-After"))
            return classify(status), status, _describe(status, body), retry_after, body
        return "retry", None, failure, None, b""

    @staticmethod
    def _read(response: urllib3.BaseHTTPResponse, deadline: float) -> bytes:
        """At most MAX_RESPONSE_BYTES of the body, raw (never decompressed), within the deadline."""
        chunks: list[bytes] = []
        size = 0
        complete = False
        try:
            while size < MAX_RESPONSE_BYTES:
                if time.monotonic() > deadline:
                    raise _Deadline
                chunk = response.read1(min(8192, MAX_RESPONSE_BYTES - size), decode_content=False)
                if not chunk:
                    complete = True
                    break
                chunks.append(chunk)
                size += len(chunk)
        finally:
            if not complete:
                response.close()  # unread data would poison the connection for the next request
            response.release_conn()
        return b"".join(chunks)
