"""Whether the client of a long response (a live stream) is still connected, from its socket.

A WSGI server notices a closed client only when a write fails, and the first write after the
close usually succeeds: a stream writing a heartbeat every few seconds would hold its thread that
long again. Asking the socket (a zero-timeout poll) notices within one check.
"""

from __future__ import annotations

import select
import socket
import ssl
from collections.abc import Callable, Mapping
from typing import Any

# Where WSGI servers expose the client's socket: gunicorn (functions-framework's production
# server) and werkzeug's development server (`functions-framework --debug`).
SOCKET_KEYS = ("gunicorn.socket", "werkzeug.socket")
# The peer closed (or reset) the connection. POLLRDHUP (Linux) reports a FIN without data.
GONE = getattr(select, "POLLRDHUP", 0) | select.POLLHUP | select.POLLERR | select.POLLNVAL


def always_connected() -> bool:
    return True


def connection_check(environ: Mapping[str, Any]) -> Callable[[], bool]:
    """A cheap `connected()` for the request's client; always true where the socket is unknown.

    Unknown: test clients, TLS sockets (a peek would read encrypted records) and HTTP/2 (one
    socket carries many streams). There the stream's heartbeats find a closed client instead.
    """
    sock = next((environ[key] for key in SOCKET_KEYS if key in environ), None)
    if not isinstance(sock, socket.socket) or environ.get("HTTP_VERSION") == "2":
        return always_connected
    return socket_check(sock)


def socket_check(sock: socket.socket) -> Callable[[], bool]:
    """`connected()` for one plain TCP connection: False once its peer has closed or reset it."""
    if isinstance(sock, ssl.SSLSocket) or not hasattr(select, "poll"):
        return always_connected
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN | GONE)
    except (OSError, ValueError):
        return always_connected

    def connected() -> bool:
        try:
            for _, mask in poller.poll(0):
                if mask & GONE:
                    return False
                # Readable: the next request of a keep-alive client, or an end of file.
                if mask & select.POLLIN and not sock.recv(1, socket.MSG_PEEK):
                    return False
        except OSError:
            return False
        return True

    return connected
