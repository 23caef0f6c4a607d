"""The warehouse cost bench's arithmetic (bench/warehouse_costs.py), on inputs checkable by hand;
the bench itself runs on the emulator (`python -m bench.warehouse`), never in this suite."""

from __future__ import annotations

from typing import Any

import pytest

from bench.warehouse_costs import (
    MIN_BILLED_PER_TABLE,
    TableStats,
    Workload,
    break_even,
    logical_bytes,
    read_columns,
    upkeep_per_day,
)
from bench.warehouse_queries import first_copies
from shared.adapters.warehouse_sql import view_sql
from shared.domain.warehouse import WarehouseSettings, observe, plan_layout


@pytest.mark.parametrize(
    ("value", "column_type", "size"),
    [
        ("ab", "STRING", 4),
        ("\u00e9", "STRING", 4),  # two UTF-8 bytes, plus 2
        (None, "STRING", 0),
        (7, "INTEGER", 8),
        (1.5, "FLOAT", 8),
        ("2026-12-03T10:00:00Z", "TIMESTAMP", 8),
        (True, "BOOL", 1),
        ({"a": 1, "b": [True]}, "JSON", len('{"a":1,"b":[true]}')),
        ('{"a": 1}', "JSON", len('{"a":1}')),  # as text, counted compact
    ],
)
def test_logical_bytes_follow_bigquery_s_data_sizes(
    value: Any, column_type: str, size: int
) -> None:
    assert logical_bytes(value, column_type) == size


def test_each_view_reads_the_columns_its_sql_names_and_no_json_path_as_a_column() -> None:
    seen: dict[str, Any] = {}
    observe(seen, [("page", None, {"timestamp": "x"}), ("identify", None, {"plan": "pro"})], "t")
    layout = plan_layout(seen, {}, WarehouseSettings())
    pages = read_columns(view_sql(layout.table("pages"), layout, "p.d.events", "ws", None))
    users = read_columns(view_sql(layout.table("users"), layout, "p.d.events", "ws", None))
    assert {"message_id", "source_id", "received_at", "context", "properties"} <= set(pages)
    assert "traits" not in pages
    assert {"user_id", "timestamp", "traits", "workspace_id", "event_type"} <= set(users)
    assert "properties" not in users and "context" not in users


def test_first_copies_keep_the_earliest_received_copy_of_each_message() -> None:
    rows = [
        {"message_id": "m1", "received_at": "2026-12-02T10:00:00Z", "source_id": "s", "n": 2},
        {"message_id": "m1", "received_at": "2026-12-01T10:00:00Z", "source_id": "s", "n": 1},
        {"message_id": "m2", "received_at": "2026-12-03T10:00:00Z", "source_id": "s", "n": 3},
    ]
    assert sorted(r["n"] for r in first_copies(rows)) == [1, 3]


def test_upkeep_skips_empty_tables_and_bills_each_table_of_a_merge_at_least_the_minimum() -> None:
    tiny = TableStats("pages", 10, 10, source_bytes=1000, id_bytes=100, table_bytes=900)
    empty = TableStats("screens", 0, 0, 0, 0, 0)
    upkeep = upkeep_per_day([tiny, empty], 10, Workload(10, 1), hours_scanned=1)
    # 24 runs; each reads the hour's 1000 bytes of new rows and a day's 24 x 100 bytes of ids.
    assert upkeep["processed_bytes"] == 24 * (1000 + 2400)
    assert upkeep["billed_bytes"] == 24 * 2 * MIN_BILLED_PER_TABLE


def test_a_dedup_window_reads_only_its_days_of_ids_and_users_pay_their_whole_table() -> None:
    users = TableStats("users", 10, 5, source_bytes=0, id_bytes=50, table_bytes=500)
    whole = upkeep_per_day([users], 10, Workload(10, 10), hours_scanned=0)
    windowed = upkeep_per_day([users], 10, Workload(10, 10), hours_scanned=0, dedup_days=2)
    assert whole["processed_bytes"] == 24 * (240 * 10 / 10 * (50 + 500))
    assert windowed["processed_bytes"] == 24 * (48 * 50 + 240 * 500)


def test_break_even_is_upkeep_over_savings_and_none_when_nothing_is_saved() -> None:
    costs = [{"views_usd": 0.5, "tables_usd": 0.1}, {"views_usd": 0.1, "tables_usd": 0.1}]
    result = break_even(2.0, costs)
    assert result["per_query"] == [pytest.approx(5.0), None]
    assert result["even_mix"] == pytest.approx(10.0)
