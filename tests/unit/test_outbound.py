"""SSRF-safe sending: the guard's address rules, and the sender against a local HTTP server."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from shared.destinations import outbound
from shared.destinations.base import OutboundRequest
from shared.destinations.outbound import (
    MAX_RESPONSE_BYTES,
    HttpSender,
    UnresolvableDestination,
    UnsafeDestination,
    UrlGuard,
    classify,
)
from shared.domain.errors import InvalidRequest


@dataclass
class Received:
    """What the local server saw."""

    paths: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)


class Handler(BaseHTTPRequestHandler):
    received: Received

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None):
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.received.paths.append(self.path)
        self.received.hosts.append(self.headers.get("Host", ""))
        self.received.bodies.append(self.rfile.read(length))
        path = self.path.split("?")[0]
        if path == "/ok":
            self._answer(200, b'{"ok":true}')
        elif path.startswith("/status/"):
            status = int(path.rsplit("/", 1)[1])
            headers = {"Retry-After": "7"} if status == 429 else None
            self._answer(status, f"error {status} for key=leaky-secret-1".encode(), headers)
        elif path == "/redirect":
            self._answer(302, b"", {"Location": "/ok"})
        elif path == "/slow":
            time.sleep(1.5)
            self._answer(200, b"late")
        elif path == "/big":
            self._answer(200, b"x" * (MAX_RESPONSE_BYTES * 4))
        else:
            self._answer(404, b"no such path")

    do_PUT = do_POST


@pytest.fixture
def server() -> Iterator[tuple[str, Received]]:
    received = Received()
    handler = type("BoundHandler", (Handler,), {"received": received})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", received
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def sender() -> Iterator[HttpSender]:
    http = HttpSender(UrlGuard(allow_private=True), default_timeout=5)
    yield http
    http.close()


def post(url: str, body: bytes = b"{}", **kw: Any) -> OutboundRequest:
    return OutboundRequest("POST", url, {"Content-Type": "application/json"}, body, **kw)


class FixedResolver:
    """A resolver answering every name with these addresses, recording the names asked."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = list(addresses)
        self.calls: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        return list(self.addresses)


# ---- the guard


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://localhost/",
        "http://10.1.2.3/",
        "http://192.168.0.10/",
        "http://172.16.5.5/",
        "http://100.64.0.1/",  # carrier-grade NAT
        "http://0.0.0.0/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:10.0.0.1]/",
        "http://[fc00::1]/",
        "http://[2002:7f00:1::]/",  # 6to4 around 127.0.0.1
        "http://[64:ff9b::a00:1]/",  # NAT64 around 10.0.0.1
        "http://2130706433/",  # 127.0.0.1 written as one number
        "http://0x7f.1/",
        "http://224.0.0.1/",
        "http://240.0.0.1/",
    ],
)
def test_private_addresses_refused(url: str) -> None:
    with pytest.raises(UnsafeDestination) as caught:
        UrlGuard(allow_private=False).check(url)
    assert caught.value.field == "config.url"
    assert isinstance(caught.value, InvalidRequest)


# Every block of IANA's IPv4 and IPv6 special-purpose address registries whose "Globally
# Reachable" is False (as of 2025), and the deprecated site-local fec0::/10 (RFC 3879), which
# the guard let through: none may be a destination in production.
NOT_GLOBALLY_REACHABLE = (
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",  # deprecated 6to4 relay anycast
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "240.0.0.0/4",
    "255.255.255.255/32",
    "::1/128",
    "::/128",
    "::ffff:0:0/96",
    "64:ff9b:1::/48",
    "100::/64",
    "100:0:0:1::/64",
    "2001::/23",
    "2001:2::/48",
    "2001:10::/28",
    "2001:20::/28",
    "2001:db8::/32",
    "3fff::/20",
    "5f00::/16",
    "fc00::/7",
    "fe80::/10",
    "fec0::/10",
)


@pytest.mark.parametrize("block", NOT_GLOBALLY_REACHABLE)
def test_every_block_that_is_not_globally_reachable_is_refused(block: str) -> None:
    network = ipaddress.ip_network(block)
    guard = UrlGuard(allow_private=False)
    for address in (network[0], network[-1]):
        assert guard.refusal(address), f"{address} ({block}) was allowed"


def test_a_site_local_address_is_refused_by_name_too() -> None:
    """fec0::/10 is `is_global` to Python 3.11 and 3.12: it passed the guard."""
    guard = UrlGuard(allow_private=False, resolve=FixedResolver("fec0::1"))
    with pytest.raises(UnsafeDestination, match="reserved address fec0::1"):
        guard.check("https://intranet.example.com/")


@pytest.mark.parametrize(
    "address",
    [
        "::ffff:10.0.0.1",  # IPv4-mapped
        "::10.0.0.1",  # IPv4-compatible (deprecated)
        "::ffff:0:10.0.0.1",  # IPv4-translated
        "2002:a00:1::1",  # 6to4
        "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo, client 10.0.0.1
        "2001:0:a00:1:8000:63bf:bec6:33f8",  # Teredo, server 10.0.0.1, client public
        "64:ff9b::10.0.0.1",  # NAT64
    ],
)
def test_a_private_ipv4_address_wrapped_in_ipv6_is_refused(address: str) -> None:
    assert UrlGuard(allow_private=False).refusal(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address",
    [
        "::ffff:169.254.169.254",
        "::169.254.169.254",
        "::ffff:0:169.254.169.254",
        "2002:a9fe:a9fe::1",
        "2001:0:4136:e378:8000:63bf:5601:5601",  # Teredo, client 169.254.169.254
        "64:ff9b::169.254.169.254",
    ],
)
@pytest.mark.parametrize("allow_private", [False, True])
def test_the_metadata_server_wrapped_in_ipv6_is_refused_always(
    address: str, allow_private: bool
) -> None:
    refusal = UrlGuard(allow_private=allow_private).refusal(ipaddress.ip_address(address))
    assert refusal == "a link-local or metadata address"


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "2606:4700:4700::1111", "64:ff9b::8.8.8.8", "2002:808:808::1", "192.0.1.1"],
)
def test_public_addresses_stay_allowed(address: str) -> None:
    assert UrlGuard(allow_private=False).refusal(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize("address", ["::8.8.8.8", "::ffff:0:8.8.8.8"])
def test_deprecated_ipv4_forms_are_refused_even_around_a_public_address(address: str) -> None:
    assert UrlGuard(allow_private=False).refusal(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/computeMetadata/v1/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://METADATA.google.internal./",
        "http://metadata/",
        "http://169.254.1.1/",
        "http://[fe80::1]/",
        "http://[fd20:ce::254]/",
        "http://[::ffff:169.254.169.254]/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://0.0.0.0/",
        "http://[::]/",
    ],
)
@pytest.mark.parametrize("allow_private", [False, True])
def test_metadata_server_refused_always(url: str, allow_private: bool) -> None:
    with pytest.raises(UnsafeDestination):
        UrlGuard(allow_private=allow_private).check(url)


def test_metadata_name_refused_without_resolving() -> None:
    resolve = FixedResolver("8.8.8.8")
    with pytest.raises(UnsafeDestination, match="metadata"):
        UrlGuard(allow_private=True, resolve=resolve).check("http://metadata.google.internal/")
    assert resolve.calls == []


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/", "file:///etc/passwd", "gopher://x/", "http:///x", "http://x:99999/"],
)
def test_other_schemes_and_bad_urls_refused(url: str) -> None:
    with pytest.raises(UnsafeDestination):
        UrlGuard(allow_private=True).check(url)


def test_loopback_allowed_with_allow_private() -> None:
    assert UrlGuard(allow_private=True).check("http://127.0.0.1:8080/x") == ["127.0.0.1"]


def test_public_address_allowed() -> None:
    guard = UrlGuard(
        allow_private=False, resolve=FixedResolver("93.184.215.14", "2606:2800:21f:cb07::1")
    )
    assert guard.check("https://example.com/") == ["93.184.215.14", "2606:2800:21f:cb07::1"]


def test_any_private_answer_refuses_the_host() -> None:
    guard = UrlGuard(allow_private=False, resolve=FixedResolver("93.184.215.14", "10.0.0.5"))
    with pytest.raises(UnsafeDestination, match="private"):
        guard.check("https://mixed.example.com/", field="config.endpoint")


def test_unresolvable_host() -> None:
    def fail(host: str, port: int) -> list[str]:
        raise socket.gaierror("Name or service not known")

    with pytest.raises(UnresolvableDestination):
        UrlGuard(resolve=fail).check("https://nx.example.com/")


def test_refusal_reasons() -> None:
    guard = UrlGuard(allow_private=False)
    assert guard.refusal(ipaddress.ip_address("8.8.8.8")) is None
    assert guard.refusal(ipaddress.ip_address("127.0.0.1")) == "a loopback address"
    assert guard.refusal(ipaddress.ip_address("::ffff:192.168.1.1")) == "a private address"


# ---- classification


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, "delivered"),
        (202, "delivered"),
        (204, "delivered"),
        (301, "failed"),
        (400, "failed"),
        (401, "failed"),
        (404, "failed"),
        (408, "retry"),
        (413, "failed"),
        (429, "retry"),
        (500, "retry"),
        (503, "retry"),
    ],
)
def test_classify(status: int, expected: str) -> None:
    assert classify(status) == expected


# ---- the sender against a local server


def test_loopback_refused_when_private_not_allowed(server: tuple[str, Received]) -> None:
    base, received = server
    result = HttpSender(UrlGuard(allow_private=False)).send(post(f"{base}/ok"))
    assert result.status == "failed"
    assert result.http_status is None
    assert "loopback" in result.detail
    assert received.paths == []


def test_delivered(server: tuple[str, Received], sender: HttpSender) -> None:
    base, received = server
    result = sender.send(post(f"{base}/ok?x=1", b'{"a":1}'))
    assert (result.status, result.http_status) == ("delivered", 200)
    assert result.detail == 'HTTP 200: {"ok":true}'
    assert result.duration_ms > 0
    assert received.paths == ["/ok?x=1"]
    assert received.bodies == [b'{"a":1}']
    assert received.hosts == [base.removeprefix("http://")]


@pytest.mark.parametrize(
    ("status", "expected"), [(500, "retry"), (503, "retry"), (429, "retry"), (404, "failed")]
)
def test_status_classified(
    server: tuple[str, Received], sender: HttpSender, status: int, expected: str
) -> None:
    base, _ = server
    result = sender.send(post(f"{base}/status/{status}"))
    assert (result.status, result.http_status) == (expected, status)
    assert result.detail.startswith(f"HTTP {status}: error {status}")
    if status == 429:
        assert result.retry_after_seconds == 7


def test_detail_redacts_secrets_a_response_echoes(
    server: tuple[str, Received], sender: HttpSender
) -> None:
    base, _ = server
    result = sender.send(post(f"{base}/status/400", redact=("leaky-secret-1",)))
    assert "leaky-secret-1" not in result.detail
    assert "[redacted]" in result.detail


def test_detail_never_contains_request_headers_or_query(
    server: tuple[str, Received], sender: HttpSender
) -> None:
    base, _ = server
    request = OutboundRequest(
        "POST", f"{base}/nowhere?api_secret=q-secret", {"Authorization": "Bearer h-secret"}, b"{}"
    )
    result = sender.send(request)
    assert result.status == "failed"
    assert "q-secret" not in result.detail and "h-secret" not in result.detail


def test_redirect_not_followed(server: tuple[str, Received], sender: HttpSender) -> None:
    base, received = server
    result = sender.send(post(f"{base}/redirect"))
    assert (result.status, result.http_status) == ("failed", 302)
    assert "redirects are not followed" in result.detail
    assert received.paths == ["/redirect"]


def test_timeout_is_retried(server: tuple[str, Received], sender: HttpSender) -> None:
    base, _ = server
    started = time.monotonic()
    result = sender.send(post(f"{base}/slow"), timeout=0.3)
    assert result.status == "retry"
    assert result.http_status is None
    assert "timed out" in result.detail
    assert time.monotonic() - started < 1.4


def test_request_timeout_used_when_no_override(
    server: tuple[str, Received], sender: HttpSender
) -> None:
    base, _ = server
    result = sender.send(post(f"{base}/slow", timeout_seconds=0.3))
    assert result.status == "retry"


def test_connection_refused_is_retried(sender: HttpSender) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = sender.send(post(f"http://127.0.0.1:{port}/ok"))
    assert result.status == "retry"
    assert result.http_status is None
    assert "could not connect" in result.detail


def test_response_read_at_most_64_kb(server: tuple[str, Received], sender: HttpSender) -> None:
    base, _ = server
    reads: list[int] = []
    original = HttpSender._read

    def spy(response: Any, deadline: float) -> bytes:
        body = original(response, deadline)
        reads.append(len(body))
        return body

    sender._read = spy  # type: ignore[method-assign]
    result = sender.send(post(f"{base}/big"))
    assert result.status == "delivered"
    assert reads == [MAX_RESPONSE_BYTES]
    assert len(result.detail) < 400
    # The half-read connection was discarded: the next request still works.
    assert sender.send(post(f"{base}/ok")).status == "delivered"


def test_connects_to_the_checked_address_with_the_original_host(
    server: tuple[str, Received],
) -> None:
    """DNS rebinding: the name resolves once, and the connection goes to that answer."""
    base, received = server
    port = base.rsplit(":", 1)[1]
    resolve = FixedResolver("127.0.0.1")
    sender = HttpSender(UrlGuard(allow_private=True, resolve=resolve))
    result = sender.send(post(f"http://hooks.customer.test:{port}/ok"))
    assert result.status == "delivered"
    assert resolve.calls == ["hooks.customer.test"]
    assert received.hosts == [f"hooks.customer.test:{port}"]
    sender.close()


def test_rebinding_to_a_private_address_is_refused() -> None:
    answers = iter([["93.184.215.14"], ["127.0.0.1"]])
    guard = UrlGuard(allow_private=False, resolve=lambda host, port: next(answers))
    assert guard.check("https://rebind.example.com/") == ["93.184.215.14"]
    with pytest.raises(UnsafeDestination):
        guard.check("https://rebind.example.com/")


def test_https_pins_the_checked_address_and_verifies_the_hostname(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, Any] = {}

    class FakePool:
        def __init__(self, host: str, port: int, **kw: Any) -> None:
            seen.update(host=host, port=port, **kw)

        def urlopen(self, *args: Any, **kw: Any) -> Any:
            seen.update(urlopen=(args, kw))
            raise outbound.u3.NewConnectionError(None, "refused")  # type: ignore[arg-type]

        def close(self) -> None:
            pass

    monkeypatch.setattr(outbound.urllib3, "HTTPSConnectionPool", FakePool)
    sender = HttpSender(UrlGuard(allow_private=False, resolve=FixedResolver("93.184.215.14")))
    result = sender.send(post("https://api2.amplitude.com/2/httpapi"))
    assert result.status == "retry"
    assert seen["host"] == "93.184.215.14" and seen["port"] == 443
    assert seen["server_hostname"] == "api2.amplitude.com"
    assert seen["assert_hostname"] == "api2.amplitude.com"
    assert seen["cert_reqs"] == "CERT_REQUIRED"
    args, kw = seen["urlopen"]
    assert args[:2] == ("POST", "/2/httpapi")
    assert kw["headers"]["Host"] == "api2.amplitude.com"
    assert kw["redirect"] is False and kw["retries"] is False


def test_unsafe_destination_is_a_permanent_failure() -> None:
    sender = HttpSender(UrlGuard(allow_private=True))
    result = sender.send(post("http://169.254.169.254/computeMetadata/v1/"))
    assert result.status == "failed"
    assert "metadata" in result.detail


def test_unresolvable_destination_is_retried() -> None:
    def fail(host: str, port: int) -> list[str]:
        raise socket.gaierror("temporary failure in name resolution")

    result = HttpSender(UrlGuard(resolve=fail)).send(post("https://nx.example.com/"))
    assert result.status == "retry"
