from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared.domain.events import IngestContext, normalise_request
from shared.domain.limits import TOO_DEEP
from shared.domain.nesting import nests_deeper_than


def nested(depth: int) -> Any:
    value: Any = 1
    for level in range(depth):
        value = [value] if level % 2 else {"x": value}
    return value


def test_depth_is_counted_in_containers() -> None:
    assert not nests_deeper_than(1, 0)
    assert not nests_deeper_than({"a": 1, "b": [1, 2]}, 2)
    assert nests_deeper_than({"a": {"b": [1]}}, 2)
    assert not nests_deeper_than(nested(16), 16)
    assert nests_deeper_than(nested(17), 16)


def test_hostile_depth_needs_no_recursion() -> None:
    assert nests_deeper_than(nested(100_000), 32)


def test_events_nested_too_deeply_are_rejected_per_event() -> None:
    ctx = IngestContext("w", "s", datetime(2024, 1, 1, tzinfo=UTC), None)
    shallow = {"type": "track", "event": "ok", "userId": "u", "properties": {"x": nested(10)}}
    deep = {"type": "track", "event": "deep", "userId": "u", "properties": {"x": nested(15)}}
    batch = normalise_request({"batch": [shallow, deep]}, None, ctx)
    assert [e["event"] for e in batch.events] == ["ok"]
    assert [(r.index, r.reason) for r in batch.rejections] == [(1, TOO_DEEP)]
