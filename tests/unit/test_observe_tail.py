"""`streams tail`: SSE parsing, formatting, and reconnecting with Last-Event-ID."""

from __future__ import annotations

import argparse
import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from shared.tail import (
    SseMessage,
    TailError,
    TailOptions,
    format_event,
    format_message,
    options_from,
    parse_sse,
    tail,
)


def test_parse_sse_blocks() -> None:
    lines = [
        "retry: 1000",
        ": connected",
        "",
        "id: 1",
        'data: {"a":1}',
        "",
        ": heartbeat",
        "",
        ": heartbeat",
        "id: 2",
        "",
        "data:two",
        "data: lines",
        "",
        "id: 3",
        "event: outcome",
        'data: {"status":"blocked"}',
        "",
    ]
    assert list(parse_sse(lines)) == [
        SseMessage(retry_ms=1000),
        SseMessage("1", '{"a":1}'),
        SseMessage("2"),
        SseMessage(None, "two\nlines"),
        SseMessage("3", '{"status":"blocked"}', event="outcome"),
    ]


def test_an_outcome_s_line_ends_with_its_status_and_reason() -> None:
    event = {"type": "track", "event": "Order Completed", "receivedAt": "2024-01-15T14:03:22.1Z"}
    data = {"status": "blocked", "reason": "blocked by a contract: total: is required"}
    outcome = SseMessage("1", json.dumps({**data, "event": event}), event="outcome")
    line = format_message(outcome)
    assert line.startswith(format_event(event))
    assert line.endswith("[blocked] blocked by a contract: total: is required")
    assert format_message(SseMessage("2", json.dumps(event))) == format_event(event)


def test_format_event_is_one_readable_line() -> None:
    event = {
        "type": "track",
        "event": "Order Completed",
        "userId": "u1",
        "sourceId": "0123456789abcdef",
        "receivedAt": "2024-01-15T14:03:22.123Z",
        "properties": {"total": 5},
    }
    line = format_event(event)
    assert line.split() == [
        "14:03:22.123",
        "track",
        "Order",
        "Completed",
        "u1",
        "01234567",
        '{"total":5}',
    ]
    coloured = format_event(event, colour=True)
    assert "\x1b[36mtrack" in coloured and "\n" not in coloured
    anonymous = format_event({"type": "identify", "anonymousId": "a1", "traits": {"plan": "pro"}})
    assert "anon:a1" in anonymous and '{"plan":"pro"}' in anonymous


class SseServer:
    """Serves two short streams, recording each request's Last-Event-ID; refusals go first."""

    def __init__(self) -> None:
        self.seen_last_ids: list[str | None] = []
        # (status, Retry-After, message) answered before any stream
        self.refusals: list[tuple[int, str, str]] = []
        self.streams = [
            'retry: 10\n\nid: c1\ndata: {"type":"track","event":"A","messageId":"m1"}\n\n'
            ": heartbeat\nid: c2\n\n",
            'id: c3\ndata: {"type":"page","name":"Home","messageId":"m2"}\n\n',
        ]
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.seen_last_ids.append(self.headers.get("Last-Event-ID"))
                if self.headers.get("Authorization") != "Bearer t":
                    body = json.dumps({"message": "bad token"}).encode()
                    self.send_response(401)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if outer.refusals:
                    status, retry_after, message = outer.refusals.pop(0)
                    body = json.dumps({"message": message}).encode()
                    self.send_response(status)
                    self.send_header("Retry-After", retry_after)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                body = outer.streams.pop(0).encode() if outer.streams else b""
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def sse_server() -> Iterator[SseServer]:
    server = SseServer()
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_tail_reconnects_with_the_last_event_id(sse_server: SseServer) -> None:
    out = io.StringIO()
    options = TailOptions(
        sse_server.url, "t", "ws", event_type="track", raw_json=True, max_events=2
    )
    sleeps: list[float] = []
    assert tail(options, out=out, err=io.StringIO(), sleep=sleeps.append) == 0
    assert [json.loads(line)["messageId"] for line in out.getvalue().splitlines()] == ["m1", "m2"]
    # The heartbeat's id (past filtered-out events) is where the second connection resumed.
    assert sse_server.seen_last_ids == [None, "c2"]
    assert sleeps == [0.01]


def test_tail_waits_as_long_as_a_busy_server_asks(sse_server: SseServer) -> None:
    sse_server.refusals = [(429, "7", "this API token already has 4 live streams open")]
    err = io.StringIO()
    sleeps: list[float] = []
    options = TailOptions(sse_server.url, "t", "ws", raw_json=True, max_events=1)
    assert tail(options, out=io.StringIO(), err=err, sleep=sleeps.append) == 0
    assert sleeps == [7.0], "Retry-After, not the 2 s backoff"
    assert "429 (this API token already has 4 live streams open)" in err.getvalue()


def test_tail_stops_on_a_refusal(sse_server: SseServer) -> None:
    with pytest.raises(TailError, match="401: bad token"):
        tail(TailOptions(sse_server.url, "wrong", "ws"), out=io.StringIO(), err=io.StringIO())


def test_options_come_from_flags_then_the_dev_file(tmp_path: Path) -> None:
    dev = tmp_path / "dev.json"
    dev.write_text(json.dumps({"gateway_url": "http://g", "admin_token": "t", "workspace_id": "w"}))
    args = argparse.Namespace(
        gateway=None,
        token=None,
        workspace="w2",
        dev_file=str(dev),
        source_id="s",
        event_type=None,
        event_name="Order Completed",
        json=False,
        no_color=True,
        max_events=None,
    )
    options = options_from(args, environ={})
    assert (
        options.url
        == "http://g/api/v1/workspaces/w2/events/live?source_id=s&event_name=Order+Completed"
    )
    assert options.token == "t" and not options.colour
    with pytest.raises(ValueError, match="gateway_url, token, workspace_id"):
        options_from(
            argparse.Namespace(
                **{**vars(args), "workspace": None, "dev_file": str(tmp_path / "none")}
            ),
            environ={},
        )
