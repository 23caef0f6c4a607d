"""Deliver's marks (`DeliveryMarks`) against a real valkey-server, and the same contract held by
the in-memory fake the unit tests use."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.adapters.valkey_claims import new_client
from shared.adapters.valkey_marks import RECENT_BATCHES, ValkeyMarks
from shared.domain.errors import Unavailable
from shared.domain.pipeline import DEDUP_HOURS
from shared.ports import RECORDED, DeliveryMarks, SettledBatch
from tests.fakes import InMemoryDeliveryMarks

WS = "ws-marks"
SETTLED = SettledBatch("2026-12-03T10:00:00.000000Z", 200, "HTTP 200", "webhook")


@pytest.fixture(params=["valkey", "fake"])
def marks(request: pytest.FixtureRequest, valkey_url: str) -> Iterator[DeliveryMarks]:
    if request.param == "valkey":
        client = new_client(valkey_url)
        client.flushdb()
        yield ValkeyMarks(client)
    else:
        yield InMemoryDeliveryMarks(RECENT_BATCHES)


def recent(n: int) -> dict[str, object]:
    return {
        "rule_id": "rule-1",
        "mark": [SETTLED.at, 200, "HTTP 200", "webhook"],
        "deliveries": [[f"d-{n}", f"msg-{n}"]],
    }


def test_a_mark_reads_back_as_written_and_per_workspace(marks: DeliveryMarks) -> None:
    marks.settle(WS, "b-1", "dest-1", SETTLED, recent(1))
    marks.mark_recorded(WS, "b-2")

    assert marks.get(WS, ["b-1", "b-2", "b-3"]) == {"b-1": SETTLED, "b-2": RECORDED, "b-3": None}
    assert marks.get("ws-other", ["b-1"]) == {"b-1": None}


def test_the_recent_list_is_newest_first_and_bounded(marks: DeliveryMarks) -> None:
    for n in range(RECENT_BATCHES + 5):
        marks.settle(WS, f"b-{n}", "dest-1", SETTLED, recent(n))

    listed = marks.recent(WS, "dest-1", RECENT_BATCHES + 10)

    assert len(listed) == RECENT_BATCHES
    assert listed[0] == recent(RECENT_BATCHES + 4)
    assert marks.recent(WS, "dest-1", 2) == [recent(RECENT_BATCHES + 4), recent(RECENT_BATCHES + 3)]
    assert marks.recent(WS, "dest-2", 10) == []


def test_marks_and_recent_lists_expire_with_the_window(valkey_url: str) -> None:
    client = new_client(valkey_url)
    client.flushdb()
    valkey_marks = ValkeyMarks(client)
    valkey_marks.settle(WS, "b-1", "dest-1", SETTLED, recent(1))
    valkey_marks.mark_recorded(WS, "b-2")

    keys: list[bytes] = client.keys("*")  # type: ignore[assignment]
    ttls = [int(client.ttl(key)) for key in keys]  # type: ignore[arg-type]

    assert len(ttls) == 3  # two marks and one recent list
    assert all(DEDUP_HOURS * 3600 - 60 < ttl <= DEDUP_HOURS * 3600 for ttl in ttls)


def test_an_unreachable_valkey_is_unavailable() -> None:
    marks = ValkeyMarks(new_client("valkey://127.0.0.1:1/0"))
    with pytest.raises(Unavailable, match="deduplication store"):
        marks.get(WS, ["b-1"])
