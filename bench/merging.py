"""`python -m bench.merging`: how many single-event requests share a source message at steady
request rates on one ingest instance (ingest's merged messages, docs/INGEST.md), and what that
leaves of the Firestore operations per event of single-event traffic.

Every source message costs downstream whatever it carries: process's event-log record (a write
and its TTL delete) among the rest (docs/COST.md). Requests meet in a message only when they
reach ingest while the previous Publish RPC to their topic is on the wire, so how many do depends
on the request rate an instance sees and on Pub/Sub's latency (the emulator's here, on this
machine; production's is larger, which merges more).

Starts (or reuses) the emulators, a workspace and source of its own (dismantled at the end),
ingest on functions-framework's production server with one worker (one instance), and a pull
subscription on the source's topic. For each rate it sends `POST /v1/track` on
bench/pipeline's schedule (event i due at start + i / rate, from `--senders` keep-alive
connections) for `--duration` seconds, then pulls what reached the topic. Writes
bench/results/merging-<UTC>.json and merging-latest.json. Exit status 1 when a request failed or
an accepted event did not reach the topic.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any

from bench.measuring import machine_info
from bench.pipeline.sending import Schedule, Senders
from bench.reporting import REPO_ROOT, report_head, write_report
from bench.running import HOST, catch_interrupts, free_port, function_server, wait_answering_200
from bench.workspace import own_workspace
from emulators.stack import default_state_dir, start_stack

INGEST_SOURCE = REPO_ROOT / "functions" / "ingest" / "main.py"
# process's event-log record of each source message: a write, then its TTL delete.
EVENT_LOG_OPERATIONS_PER_MESSAGE = 2
PULL_SECONDS = 30.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.merging", description=__doc__)
    parser.add_argument("--rates", type=float, nargs="+", default=[30, 100, 200, 400])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per rate")
    parser.add_argument("--senders", type=int, default=32, help="keep-alive connections")
    parser.add_argument(
        "--latency-ms",
        type=float,
        nargs="+",
        default=[0.0, 20.0],
        help="round trips added between ingest and Pub/Sub (a delaying proxy), one run each",
    )
    args = parser.parse_args(argv)
    catch_interrupts()
    started_at = datetime.now(UTC)
    state_dir = default_state_dir()
    stack = start_stack(state_dir=state_dir)
    rates: list[dict[str, Any]] = []
    try:
        env = stack.env()
        os.environ.update(env)
        for latency in args.latency_ms:
            with DelayingProxy(env["PUBSUB_EMULATOR_HOST"], latency / 2000) as proxy:
                server_env = {**env, "PUBSUB_EMULATOR_HOST": proxy.address}
                rows = measure(args, server_env, state_dir)
            rates += [{"added_round_trip_ms": latency, **row} for row in rows]
    finally:
        stack.stop()
    report = {
        **report_head("merging", started_at, machine_info()),
        "settings": {
            "server": "functions-framework production server, ingest ASGI, 1 worker",
            "duration_s": args.duration,
            "senders": args.senders,
            "pubsub": "emulator",
        },
        "rates": rates,
    }
    write_report("merging", report)
    for row in rates:
        print(
            f"+{row['added_round_trip_ms']:g} ms, {row['rate']:>4g} req/s: "
            f"{row['accepted']} accepted, {row['messages']} messages, "
            f"{row['requests_per_message']:.2f} requests a message, event-log operations "
            f"{row['event_log_operations_per_event']:.2f} an event",
            flush=True,
        )
    failed = any(r["accepted"] != r["requests"] or r["events"] != r["accepted"] for r in rates)
    return 1 if failed else 0


def measure(args: argparse.Namespace, env: dict[str, str], state_dir: Any) -> list[dict[str, Any]]:
    from google.cloud import pubsub_v1

    from shared.bootstrap import Services
    from shared.config import Settings

    services = Services(Settings.from_env())
    rows = []
    with ExitStack() as cleanup:
        workspace = cleanup.enter_context(own_workspace(services, "merging"))
        topic = services.sources.get(workspace.workspace_id, workspace.source_id).pubsub_topic
        subscriber = pubsub_v1.SubscriberClient()
        subscription = (
            topic.replace("/topics/", "/subscriptions/") + f"-merging-{uuid.uuid4().hex[:6]}"
        )
        subscriber.create_subscription(request={"name": subscription, "topic": topic})
        cleanup.callback(subscriber.delete_subscription, request={"subscription": subscription})
        port = free_port()
        server = function_server(
            "merging-ingest",
            "ingest",
            INGEST_SOURCE,
            port,
            {**env, "WORKERS": "1", "GUNICORN_LOG_LEVEL": "error"},
            state_dir,
            REPO_ROOT,
        )
        cleanup.callback(server.stop)
        server.start()
        url = f"http://{HOST}:{port}/v1/track"
        headers = {"Content-Type": "application/json", "Authorization": _basic(workspace.write_key)}
        probe = json.dumps({"event": "Probe", "userId": "u"}).encode()
        wait_answering_200(url, lambda: probe, headers, 60.0, process=server)
        for rate in args.rates:
            schedule = Schedule(time.monotonic() + 0.5, rate, 0.0, args.duration)
            senders = Senders()
            senders.start_raw(url, headers, schedule, args.senders)
            senders.join()
            accepted = sum(event.accepted for event in schedule.events)
            sent = {event.message_id for event in schedule.events if event.accepted}
            messages, events = _pull(subscriber, subscription, sent)
            late = sorted(max(0.0, e.sent - e.due) for e in schedule.events)
            rows.append(
                {
                    "rate": rate,
                    "requests": len(schedule.events),
                    "accepted": accepted,
                    "messages": messages,
                    "events": events,
                    "requests_per_message": events / messages if messages else 0.0,
                    "event_log_operations_per_event": (
                        EVENT_LOG_OPERATIONS_PER_MESSAGE * messages / events if events else 0.0
                    ),
                    "send_lag_p99_ms": round(late[int(0.99 * (len(late) - 1))] * 1000, 1),
                }
            )
            print(f"{rate:g} req/s: {rows[-1]}", flush=True)
    return rows


class DelayingProxy:
    """A TCP proxy to `upstream` that holds every chunk `delay` seconds each way, in order (a
    round trip to Pub/Sub as long as production's, which the emulator's local one is not)."""

    def __init__(self, upstream: str, delay: float):
        self._host, port = upstream.rsplit(":", 1)
        self._port = int(port)
        self._delay = delay
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.address = ""

    def __enter__(self) -> DelayingProxy:
        self._thread.start()
        server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._connection, HOST, 0), self._loop
        ).result()
        self.address = f"{HOST}:{server.sockets[0].getsockname()[1]}"
        return self

    def __exit__(self, *_: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    async def _connection(self, reader: Any, writer: Any) -> None:
        up_reader, up_writer = await asyncio.open_connection(self._host, self._port)
        await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))

    async def _pump(self, reader: Any, writer: Any) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, chunk = await queue.get()
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                if not chunk:
                    writer.close()
                    return
                writer.write(chunk)
                await writer.drain()

        sender = asyncio.ensure_future(deliver())
        try:
            while chunk := await reader.read(65536):
                queue.put_nowait((time.monotonic() + self._delay, chunk))
        except OSError:
            pass
        queue.put_nowait((time.monotonic() + self._delay, b""))
        await sender


def _pull(subscriber: Any, subscription: str, expected: set[str]) -> tuple[int, int]:
    """The messages carrying the `expected` messageIds, and how many of those arrived, pulled
    until all did (or PULL_SECONDS passed); anything else on the topic (the probe) is left out."""
    from shared.domain.message_encoding import inflated

    messages = events = 0
    deadline = time.monotonic() + PULL_SECONDS
    while events < len(expected) and time.monotonic() < deadline:
        response = subscriber.pull(
            request={"subscription": subscription, "max_messages": 1000}, timeout=5
        )
        for item in response.received_messages:
            data, _ = inflated(item.message.data, dict(item.message.attributes))
            ours = sum(event.get("messageId") in expected for event in json.loads(data))
            if ours:
                events += ours
                messages += 1
        if response.received_messages:
            subscriber.acknowledge(
                request={
                    "subscription": subscription,
                    "ack_ids": [item.ack_id for item in response.received_messages],
                }
            )
    return messages, events


def _basic(write_key: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()


if __name__ == "__main__":
    sys.exit(main())
