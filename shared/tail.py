"""`streams tail`: a workspace's live stream in the terminal, one readable line per event.

Reads the SSE endpoint (/api/v1/workspaces/{id}/events/live) with the standard library only. It
starts with the latest events (the server's backlog) and shows every outcome: a blocked,
duplicate, suppressed, dead-lettered or dropped event ends its line with its status and reason.
It reconnects with Last-Event-ID whenever the stream ends (the server ends each after 5 minutes),
after the server's Retry-After when it has no stream to spare (429).
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

DEV_FILE = "dev.json"  # in $STREAMS_STATE_DIR, else .streams/, as `make dev` writes it
# ANSI colours per call type, so that a busy stream can be read at a glance.
COLOURS = {
    "track": "36",
    "page": "32",
    "screen": "32",
    "identify": "35",
    "group": "33",
    "alias": "34",
}
DIM = "2"
OUTCOME_COLOUR = "31"  # an event that went no further than its status says
READ_TIMEOUT_SECONDS = 60.0  # > the 5 s heartbeat: silence this long means a dead connection
MAX_BACKOFF_SECONDS = 30.0
MAX_RETRY_AFTER_SECONDS = 300.0  # a longer Retry-After is a misconfigured server, not a plan
PROPERTIES_WIDTH = 120


@dataclass(frozen=True)
class SseMessage:
    """One dispatched block of a Server-Sent Events stream."""

    id: str | None = None
    data: str | None = None
    retry_ms: int | None = None
    event: str | None = None  # the `event:` field: None for a message (a stored event)


def parse_sse(lines: Iterable[str]) -> Iterator[SseMessage]:
    """Blocks of an SSE stream (lines without their endings); comments are skipped."""
    data: list[str] = []
    event_id: str | None = None
    retry: int | None = None
    kind: str | None = None
    for line in lines:
        if not line:
            if data or event_id is not None or retry is not None:
                yield SseMessage(event_id, "\n".join(data) if data else None, retry, kind)
            data, event_id, retry, kind = [], None, None, None
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        elif name == "id" and "\0" not in value:
            event_id = value
        elif name == "retry" and value.isdigit():
            retry = int(value)
        elif name == "event":
            kind = value or None


@dataclass(frozen=True)
class TailOptions:
    gateway_url: str
    token: str
    workspace_id: str
    source_id: str | None = None
    event_type: str | None = None
    event_name: str | None = None
    raw_json: bool = False
    colour: bool = False
    max_events: int | None = None

    @property
    def url(self) -> str:
        filters = {
            "source_id": self.source_id,
            "event_type": self.event_type,
            "event_name": self.event_name,
        }
        query = urllib.parse.urlencode({k: v for k, v in filters.items() if v})
        base = f"{self.gateway_url.rstrip('/')}/api/v1/workspaces/{self.workspace_id}/events/live"
        return f"{base}?{query}" if query else base


def options_from(args: Any, environ: dict[str, str] | None = None) -> TailOptions:
    """Flags first, then `.streams/dev.json` (what `make dev` wrote)."""
    env = os.environ if environ is None else environ
    dev: dict[str, Any] = {}
    dev_file = Path(args.dev_file or Path(env.get("STREAMS_STATE_DIR") or ".streams") / DEV_FILE)
    if dev_file.exists():
        dev = json.loads(dev_file.read_text())
    values: dict[str, str] = {
        "gateway_url": args.gateway or dev.get("gateway_url") or "",
        "token": args.token or env.get("STREAMS_TOKEN") or dev.get("admin_token") or "",
        "workspace_id": args.workspace or dev.get("workspace_id") or "",
    }
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise ValueError(
            f"missing {', '.join(missing)}: pass --gateway/--token/--workspace or run `make dev`"
        )
    colour = not args.no_color and sys.stdout.isatty() and "NO_COLOR" not in env
    return TailOptions(
        gateway_url=values["gateway_url"],
        token=values["token"],
        workspace_id=values["workspace_id"],
        source_id=args.source_id,
        event_type=args.event_type,
        event_name=args.event_name,
        raw_json=args.json,
        colour=colour,
        max_events=args.max_events,
    )


def format_message(message: SseMessage, colour: bool = False) -> str:
    """A stored event's line; another outcome's (an `outcome` event) ends with its status and
    reason."""
    data = json.loads(message.data or "null")
    if message.event != "outcome":
        return format_event(data, colour)
    line = format_event(data.get("event") or {}, colour)
    verdict = f"[{data.get('status')}] {data.get('reason') or ''}".rstrip()
    return f"{line}  {_paint(verdict, OUTCOME_COLOUR) if colour else verdict}"


def format_event(event: dict[str, Any], colour: bool = False) -> str:
    """`HH:MM:SS.mmm  type  name  user  source  properties` on one line."""
    received = str(event.get("receivedAt") or "")[11:23]
    call = str(event.get("type") or "?")
    name = event.get("event") or event.get("name") or ""
    user = event.get("userId") or (
        f"anon:{event['anonymousId']}" if event.get("anonymousId") else ""
    )
    source = str(event.get("sourceId") or "")[:8]
    payload = event.get("traits") if call in ("identify", "group") else event.get("properties")
    details = json.dumps(payload or {}, separators=(",", ":"), ensure_ascii=False)
    if len(details) > PROPERTIES_WIDTH:
        details = details[: PROPERTIES_WIDTH - 1] + "…"
    columns = [received, f"{call:<8}", f"{name:<24}", f"{user:<20}", source, details]
    if colour:
        columns[0] = _paint(columns[0], DIM)
        columns[1] = _paint(columns[1], COLOURS.get(call, "0"))
        columns[4] = _paint(columns[4], DIM)
    return "  ".join(columns).rstrip()


def _paint(text: str, code: str) -> str:
    return f"\x1b[{code}m{text}\x1b[0m"


class TailError(Exception):
    """The server refused the stream for a reason reconnecting will not fix (4xx)."""


def tail(
    options: TailOptions,
    out: IO[str] = sys.stdout,
    err: IO[str] = sys.stderr,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Print events until interrupted (or `max_events`); reconnect with Last-Event-ID."""
    last_id: str | None = None
    retry_seconds = 1.0
    failures = 0
    shown = 0
    while True:
        wait: float | None = None
        headers = {"Authorization": f"Bearer {options.token}", "Accept": "text/event-stream"}
        if last_id:
            headers["Last-Event-ID"] = last_id
        request = urllib.request.Request(options.url, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=READ_TIMEOUT_SECONDS) as response:
                failures = 0
                for message in parse_sse(_lines(response)):
                    if message.retry_ms is not None:
                        retry_seconds = message.retry_ms / 1000
                    if message.id:
                        last_id = message.id
                    if message.data is None:
                        continue
                    if options.raw_json:
                        out.write(message.data + "\n")
                    else:
                        out.write(format_message(message, options.colour) + "\n")
                    out.flush()
                    shown += 1
                    if options.max_events is not None and shown >= options.max_events:
                        return 0
        except urllib.error.HTTPError as error:
            body = error.read().decode(errors="replace")
            if error.code < 500 and error.code != 429:
                raise TailError(f"{error.code}: {_message(body)}") from None
            failures += 1
            wait = _retry_after(error.headers.get("Retry-After"))
            reason = f" ({_message(body)})" if error.code == 429 else ""
            err.write(f"stream answered {error.code}{reason}; reconnecting\n")
        except (OSError, ValueError) as error:
            failures += 1
            err.write(f"stream interrupted ({error}); reconnecting\n")
        # A stream that ended normally reconnects after `retry`; failures back off, at least as
        # long as the server asked (429 and 503 carry Retry-After).
        backoff = min(retry_seconds * 2**failures, MAX_BACKOFF_SECONDS)
        sleep(max(backoff, wait or 0.0))


def _lines(response: Any) -> Iterator[str]:
    while raw := response.readline():
        yield raw.decode("utf-8").rstrip("\r\n")


def _retry_after(header: str | None) -> float | None:
    # Only the delay-seconds form: Streams never sends an HTTP date.
    if header is None or not header.strip().isdigit():
        return None
    return min(float(header), MAX_RETRY_AFTER_SECONDS)


def _message(body: str) -> str:
    try:
        return str(json.loads(body)["message"])
    except (ValueError, KeyError, TypeError):
        return body[:200]
