"""The `events` row mapping both ways: a stored row gives back the canonical event it came from."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shared.domain.storage import EVENT_COLUMNS, event_row, row_event
from tests.unit.test_normalise import all_golden_events

SCHEMA = Path(__file__).resolve().parents[2] / "shared" / "schemas" / "bigquery" / "events.json"
TIMESTAMP_COLUMNS = ("timestamp", "original_timestamp", "sent_at", "received_at")


def as_bigquery_returns(row: dict[str, Any]) -> dict[str, Any]:
    """A row as the client answers a query: TIMESTAMPs as aware datetimes, JSON parsed."""
    returned = dict(row)
    for column in TIMESTAMP_COLUMNS:
        if returned[column] is not None:
            returned[column] = datetime.fromisoformat(returned[column].replace("Z", "+00:00"))
    for column in ("properties", "traits", "context", "integrations", "extras"):
        if returned[column] is not None:
            returned[column] = json.loads(returned[column])
    return returned


def test_the_columns_are_the_tables() -> None:
    names = tuple(field["name"] for field in json.loads(SCHEMA.read_text()))
    assert names == EVENT_COLUMNS


@pytest.mark.parametrize("returned", [False, True], ids=["as-inserted", "as-queried"])
def test_every_golden_event_round_trips(returned: bool) -> None:
    events = all_golden_events()
    assert len(events) >= 10
    for event in events:
        row = event_row(event)
        assert set(row) == set(EVENT_COLUMNS)
        assert row_event(as_bigquery_returns(row) if returned else row) == event


def test_naive_datetimes_are_utc() -> None:
    event = all_golden_events()[0]
    row = as_bigquery_returns(event_row(event))
    row["received_at"] = datetime(2024, 1, 15, 15, 0, 0, 123000)
    assert row_event(row)["receivedAt"] == "2024-01-15T15:00:00.123Z"
    row["received_at"] = datetime(2024, 1, 15, 15, 0, 0, tzinfo=UTC)
    assert row_event(row)["receivedAt"] == "2024-01-15T15:00:00.000Z"
