"""Requests that reach a source's topic together travel as one message: their events joined in
order, each request told the id of the message that carried it."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from shared.adapters.pubsub_rest import AsyncGroupPublisher
from shared.domain.pipeline import (
    MERGED_MAX_BYTES,
    MERGED_MAX_EVENTS,
    merge_source_messages,
    parse_source_message,
)


def message(source: str, *events: dict[str, Any], **extra: str) -> tuple[bytes, dict[str, str]]:
    attributes = {
        "schema": "streams.events.v1",
        "workspace_id": "ws-1",
        "source_id": source,
        "event_count": str(len(events)),
        "bot_policy": "keep",
        **extra,
    }
    return json.dumps(list(events), separators=(",", ":")).encode(), attributes


def event(n: int, size: int = 0) -> dict[str, Any]:
    return {"workspaceId": "ws-1", "messageId": f"m-{n}", "type": "track", "pad": "x" * size}


def test_messages_of_one_source_join_in_order_and_each_names_its_carrier() -> None:
    batch = [
        message("s-1", event(1)),
        message("s-2", event(2)),
        message("s-1", event(3), event(4)),
        message("s-1", event(5), replay="q-1"),  # a replay is not the same kind of message
        message("s-2", event(6)),
    ]

    merged, owners = merge_source_messages(batch)

    assert owners == [0, 1, 0, 2, 1]
    carried = [parse_source_message(data, attributes, "p") for data, attributes in merged]
    assert [[e["messageId"] for e in m.events] for m in carried] == [
        ["m-1", "m-3", "m-4"],
        ["m-2", "m-6"],
        ["m-5"],
    ]
    assert [attributes["event_count"] for _, attributes in merged] == ["3", "2", "1"]
    assert [m.source_id for m in carried] == ["s-1", "s-2", "s-1"]
    assert carried[2].replay == "q-1"


def test_a_merged_message_stays_within_what_one_request_may_carry() -> None:
    big = MERGED_MAX_BYTES // 3
    by_size, size_owners = merge_source_messages([message("s", event(n, big)) for n in range(5)])
    many = [message("s", *(event(n * 10 + k) for k in range(10))) for n in range(60)]
    by_count, count_owners = merge_source_messages(many)

    assert size_owners == [0, 0, 1, 1, 2]
    assert all(len(data) <= MERGED_MAX_BYTES for data, _ in by_size)
    assert [a["event_count"] for _, a in by_count] == [str(MERGED_MAX_EVENTS), "100"]
    assert count_owners == [0] * 50 + [1] * 10


def test_what_is_not_an_array_of_events_goes_as_it_is() -> None:
    odd = (b'{"not":"an array"}', {"source_id": "s", "event_count": "1"})
    uncounted = (b'[{"messageId":"m"}]', {"source_id": "s"})

    merged, owners = merge_source_messages([message("s", event(1)), odd, uncounted])

    assert owners == [0, 1, 2]
    assert merged[1:] == [odd, uncounted]


class HeldPublisher:
    """A `Publisher` whose first RPC waits until released, so that callers queue behind it."""

    def __init__(self) -> None:
        self.rpcs: list[list[tuple[bytes, Mapping[str, str]]]] = []
        self.release = threading.Event()

    def publish(self, topic: str, messages: Iterable[tuple[bytes, Mapping[str, str]]]) -> list[str]:
        if not self.rpcs:
            self.release.wait(5)
        self.rpcs.append(list(messages))
        return [f"id-{len(self.rpcs)}-{n}" for n in range(len(self.rpcs[-1]))]


def test_requests_queued_behind_an_rpc_share_one_message_and_its_id() -> None:
    publisher = HeldPublisher()
    group = AsyncGroupPublisher(publisher, merge=merge_source_messages)

    async def scenario() -> list[list[str]]:
        first = asyncio.ensure_future(group.publish("t", [message("s", event(0))]))
        await asyncio.sleep(0.05)  # the first RPC is on the wire, held
        rest = [
            asyncio.ensure_future(group.publish("t", [message("s", event(n))])) for n in range(1, 6)
        ]
        await asyncio.sleep(0.05)
        publisher.release.set()
        return [await first, *[await r for r in rest]]

    ids = asyncio.run(scenario())

    assert ids == [["id-1-0"]] + [["id-2-0"]] * 5
    [(data, attributes)] = publisher.rpcs[1]
    assert [e["messageId"] for e in json.loads(data)] == [f"m-{n}" for n in range(1, 6)]
    assert attributes["event_count"] == "5"
