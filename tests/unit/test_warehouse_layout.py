"""The warehouse layout: kinds of values, what a sync observes, the tables and columns planned
from it within the caps, their types (contracts first) and conflicts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from shared.domain.warehouse import (
    EVENT_COLUMNS,
    KIND_COLUMNS,
    MAX_KEYS_PER_STREAM,
    PAGE_FIELDS,
    STANDARD_TABLES,
    ContractTyping,
    Layout,
    StreamSeen,
    WarehouseSettings,
    conflicts,
    contract_typing,
    inferred_type,
    observe,
    plan_layout,
    schema_type,
    stream_of,
)
from shared.ports import ObservedRow

T1, T2, T3, T4 = (f"2026-06-0{day}T00:00:00.000Z" for day in (1, 2, 3, 4))


def seen_of(*syncs: tuple[str, Iterable[ObservedRow]]) -> dict[str, StreamSeen]:
    """What a series of syncs (each at its moment, with its rows) observed."""
    seen: dict[str, StreamSeen] = {}
    for now, rows in syncs:
        observe(seen, rows, now)
    return seen


def columns(layout: Layout, table: str) -> dict[str, tuple[str, str, str]]:
    """A table's dynamic columns: key -> (name, type, typed_by)."""
    return {c.key: (c.name, c.type, c.typed_by) for c in layout.table(table).columns}


# --- kinds of values ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (None, None),
        (True, "boolean"),
        (False, "boolean"),
        (0, "integer"),
        (42, "integer"),
        (2**63 - 1, "integer"),
        (-(2**63), "integer"),
        (2**63, "number"),
        (-(2**63) - 1, "number"),
        (3.0, "number"),
        (3.5, "number"),
        ("hello", "string"),
        ("", "string"),
        ("2026-06-01T12:00:00Z", "timestamp"),
        ("2026-06-01T12:00:00.123Z", "timestamp"),
        ("2026-06-01T12:00:00.123456+02:00", "timestamp"),
        # Past microseconds, or an offset without its colon, BigQuery will not cast.
        ("2026-06-01T12:00:00.123456789+02:00", "string"),
        ("2026-06-01T12:00:00+0200", "string"),
        ("2026-06-01 12:00:00", "timestamp"),
        ("2026-06-01", "string"),
        ("12:00:00", "string"),
        ("2026-06-01T12:00:00Z and more", "string"),
        ({"a": 1}, "json"),
        ([1, 2], "json"),
        ([], "json"),
        ({}, "json"),
    ],
)
def test_value_kind(value: Any, kind: str | None) -> None:
    from shared.domain.warehouse import value_kind

    assert value_kind(value) == kind


@pytest.mark.parametrize(
    ("kinds", "column_type"),
    [
        ({"string"}, "STRING"),
        ({"timestamp"}, "TIMESTAMP"),
        ({"integer"}, "INT64"),
        ({"number"}, "FLOAT64"),
        ({"boolean"}, "BOOL"),
        ({"json"}, "JSON"),
        ({"integer", "number"}, "FLOAT64"),
        ({"string", "timestamp"}, "STRING"),
        ({"string", "integer"}, "STRING"),
        ({"boolean", "integer"}, "STRING"),
        ({"json", "string"}, "JSON"),
        ({"json", "integer", "number"}, "JSON"),
        (set(), "STRING"),  # only nulls seen
    ],
)
def test_inferred_type(kinds: set[str], column_type: str) -> None:
    assert inferred_type(kinds) == column_type


@pytest.mark.parametrize(
    ("field_schema", "column_type"),
    [
        ({"type": "string"}, "STRING"),
        ({"type": ["string", "null"]}, "STRING"),
        ({"type": ["null", "integer"]}, "INT64"),
        ({"type": "number"}, "FLOAT64"),
        ({"type": "boolean"}, "BOOL"),
        ({"type": "object"}, "JSON"),
        ({"type": "array", "items": {"type": "string"}}, "JSON"),
        ({"type": "string", "format": "date-time"}, "TIMESTAMP"),
        ({"type": ["string", "null"], "format": "date-time"}, "TIMESTAMP"),
        ({"type": "string", "format": "date"}, "STRING"),
        ({"type": ["string", "integer"]}, None),
        ({"type": "null"}, None),
        ({"enum": ["a", "b"]}, None),
        ({}, None),
        ({"type": "decimal"}, None),
        ("string", None),
        (None, None),
    ],
)
def test_schema_type(field_schema: Any, column_type: str | None) -> None:
    assert schema_type(field_schema) == column_type


def test_contract_typing_keeps_the_fields_with_one_type() -> None:
    typing = contract_typing(
        "c1",
        {
            "type": "object",
            "properties": {
                "total": {"type": "number"},
                "at": {"type": "string", "format": "date-time"},
                "either": {"type": ["string", "integer"]},
            },
        },
    )

    assert typing == ContractTyping("c1", {"total": "FLOAT64", "at": "TIMESTAMP"})
    assert contract_typing("c2", {"type": "object"}).types == {}


# --- observe -----------------------------------------------------------------------------


def test_stream_of_each_event_type() -> None:
    assert stream_of("track", "Order Completed") == "track:Order Completed"
    assert [stream_of(t, "x") for t in ("page", "screen", "identify", "group")] == [
        "page",
        "screen",
        "identify",
        "group",
    ]
    assert stream_of("alias", None) is None


def test_observe_records_new_streams_and_keys_with_when_first_seen() -> None:
    seen: dict[str, StreamSeen] = {}

    changed = observe(
        seen,
        [
            ("track", "Order Completed", {"total": 10, "coupon": None}),
            ("identify", None, {"email": "a@example.com"}),
            ("alias", None, None),
        ],
        T1,
    )

    assert changed == {"track:Order Completed", "identify"}
    order = seen["track:Order Completed"]
    assert order.first_seen == T1
    assert order.fields["total"].kinds == {"integer"} and order.fields["total"].first_seen == T1
    # A key seen only as null is recorded (it will get a column) with no kind yet.
    assert order.fields["coupon"].kinds == set()
    assert seen["identify"].fields["email"].kinds == {"string"}
    assert set(seen) == {"track:Order Completed", "identify"}


def test_kinds_only_grow_and_first_seen_never_moves() -> None:
    seen = seen_of((T1, [("track", "Order Completed", {"total": 10})]))

    unchanged = observe(seen, [("track", "Order Completed", {"total": 11})], T2)
    grown = observe(seen, [("track", "Order Completed", {"total": 10.5, "coupon": None})], T3)
    nulls = observe(seen, [("track", "Order Completed", {"total": None})], T4)

    assert unchanged == set() and nulls == set()
    assert grown == {"track:Order Completed"}
    fields = seen["track:Order Completed"].fields
    assert fields["total"].kinds == {"integer", "number"}
    assert fields["total"].first_seen == T1
    assert fields["coupon"].first_seen == T3
    assert seen["track:Order Completed"].first_seen == T1


def test_observe_records_at_most_max_keys_per_stream() -> None:
    many = {f"k{i:05d}": i for i in range(MAX_KEYS_PER_STREAM)}
    seen = seen_of((T1, [("track", "Big", many)]))

    changed = observe(seen, [("track", "Big", {"one_more": 1, "k00000": "now text"})], T2)

    fields = seen["track:Big"].fields
    assert len(fields) == MAX_KEYS_PER_STREAM and "one_more" not in fields
    # Known keys still grow their kinds past the cap.
    assert fields["k00000"].kinds == {"integer", "string"}
    assert changed == {"track:Big"}


def test_stream_seen_survives_its_document() -> None:
    seen = seen_of(
        (T1, [("page", "Home", {"a": 1, "b": "x"})]), (T2, [("page", "Home", {"a": 1.5})])
    )

    document = seen["page"].to_document()

    assert document["fields"]["a"] == {"kinds": ["integer", "number"], "first_seen": T1}
    assert StreamSeen.from_document(document) == seen["page"]


# --- plan_layout: tables -----------------------------------------------------------------


def test_the_standard_tables_are_always_there() -> None:
    layout = plan_layout({}, {}, WarehouseSettings())

    assert [t.name for t in layout.tables] == list(STANDARD_TABLES)
    assert [t.kind for t in layout.tables] == list(STANDARD_TABLES)
    assert layout.folded_events == ()
    assert layout.event_tables() == {}


def test_event_tables_come_in_first_seen_order_up_to_the_cap() -> None:
    seen = seen_of(
        (T2, [("track", "Signed Up", {})]),
        (T1, [("track", "Order Completed", {})]),
        (T3, [("track", "Cart Viewed", {})]),
        (T4, [("track", "Added", {})]),
    )

    layout = plan_layout(seen, {}, WarehouseSettings(max_event_tables=2))

    events = [t for t in layout.tables if t.kind == "event"]
    assert [(t.name, t.event_text, t.stream) for t in events] == [
        ("order_completed", "Order Completed", "track:Order Completed"),
        ("signed_up", "Signed Up", "track:Signed Up"),
    ]
    assert layout.folded_events == ("Cart Viewed", "Added")
    assert layout.event_tables() == {
        "Order Completed": "order_completed",
        "Signed Up": "signed_up",
    }
    assert [t.name for t in layout.tables[: len(STANDARD_TABLES)]] == list(STANDARD_TABLES)


def test_no_event_table_at_a_cap_of_zero() -> None:
    seen = seen_of((T1, [("track", "A", {}), ("track", "B", {})]))

    layout = plan_layout(seen, {}, WarehouseSettings(max_event_tables=0))

    assert not [t for t in layout.tables if t.kind == "event"]
    assert layout.folded_events == ("A", "B")


@pytest.mark.parametrize("event", ["Pages", "tracks", "Users", "identifies", "GROUPS", "aliases"])
def test_an_event_named_like_a_standard_table_gets_a_suffix(event: str) -> None:
    layout = plan_layout(seen_of((T1, [("track", event, {})])), {}, WarehouseSettings())

    assert layout.event_tables() == {event: event.lower() + "_2"}
    names = [t.name for t in layout.tables]
    assert len(names) == len(set(names))


def test_events_spelled_alike_keep_their_names_by_first_seen() -> None:
    seen = seen_of(
        (T2, [("track", "orderCompleted", {})]), (T1, [("track", "Order Completed", {})])
    )

    tables = plan_layout(seen, {}, WarehouseSettings()).event_tables()

    assert tables == {"Order Completed": "order_completed", "orderCompleted": "order_completed_2"}


# --- plan_layout: columns ----------------------------------------------------------------


def test_columns_come_in_first_seen_order_up_to_the_cap_and_the_rest_fold() -> None:
    seen = seen_of(
        (T1, [("track", "Order", {"b": 1, "a": 2})]),
        (T2, [("track", "Order", {"c": 3, "it's": 4, 'say "x"': 5})]),
        (T3, [("track", "Order", {"d": 4})]),
    )

    layout = plan_layout(seen, {}, WarehouseSettings(max_columns=3))

    table = layout.table("order")
    # First seen first; keys first seen together in key order.
    assert [c.key for c in table.columns] == ["a", "b", "c"]
    # Past the cap, then the keys no JSONPath literal can name.
    assert table.folded == ("d", "it's", 'say "x"')


def test_unaddressable_keys_fold_even_under_the_cap() -> None:
    seen = seen_of((T1, [("identify", None, {"back\\slash": 1, "ok": 2})]))

    layout = plan_layout(seen, {}, WarehouseSettings())

    for table in ("identifies", "users"):
        assert [c.key for c in layout.table(table).columns] == ["ok"]
        assert layout.table(table).folded == ("back\\slash",)


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("id", "id_2"),
        ("event", "event_2"),
        ("event_text", "event_text_2"),
        ("properties", "properties_2"),
        ("context_ip", "context_ip_2"),
        ("receivedAt", "received_at_2"),
        ("userId", "user_id_2"),
        ("timestamp", "timestamp_2"),
    ],
)
def test_a_property_named_like_a_standard_column_gets_a_suffix(key: str, name: str) -> None:
    layout = plan_layout(seen_of((T1, [("track", "Order", {key: "x"})])), {}, WarehouseSettings())

    table = layout.table("order")
    assert columns(layout, "order")[key][0] == name
    standard = {*EVENT_COLUMNS, *KIND_COLUMNS[table.kind]}
    assert name not in standard


def test_every_table_s_column_names_are_distinct_from_its_standard_ones() -> None:
    keys = {k: 1 for k in ("id", "Id", "ID", "name", "traits", "group_id", "groupId", "x", "X")}
    seen = seen_of(
        (
            T1,
            [
                ("track", "Order", keys),
                ("page", "Home", keys),
                ("screen", "Main", keys),
                ("identify", None, keys),
                ("group", None, keys),
            ],
        )
    )

    layout = plan_layout(seen, {}, WarehouseSettings())

    for table in layout.tables:
        standard = KIND_COLUMNS[table.kind]
        if table.kind != "users":
            standard = (*EVENT_COLUMNS, *standard)
        names = [*standard, *(c.name for c in table.columns)]
        assert len(names) == len(set(names)), table.name


def test_users_columns_come_from_identify_traits_beside_the_users_own_columns() -> None:
    traits = {"email": "a@example.com", "plan": "pro", "id": "x", "timestamp": "t"}
    seen = seen_of((T1, [("identify", None, traits), ("group", None, {"industry": "retail"})]))

    layout = plan_layout(seen, {}, WarehouseSettings())

    users = columns(layout, "users")
    assert {key: name for key, (name, _, _) in users.items()} == {
        "email": "email",
        "id": "id_2",
        "plan": "plan",
        "timestamp": "timestamp",  # users has no timestamp column of its own
    }
    assert columns(layout, "identifies")["timestamp"][0] == "timestamp_2"
    assert list(columns(layout, "groups")) == ["industry"]


def test_page_fields_are_not_repeated_as_property_columns() -> None:
    properties = {field: "x" for field in PAGE_FIELDS} | {"section": "blog", "URL": "y"}
    seen = seen_of((T1, [("page", "Home", properties)]))

    layout = plan_layout(seen, {}, WarehouseSettings())

    assert {key: name for key, (name, _, _) in columns(layout, "pages").items()} == {
        "URL": "url_2",
        "section": "section",
    }


def test_a_contract_types_columns_and_the_data_types_the_rest() -> None:
    seen = seen_of(
        (T1, [("track", "Order", {"total": "12.5", "count": 2, "at": "2026-06-01T00:00:00Z"})])
    )
    typing = ContractTyping("c1", {"total": "FLOAT64", "undeclared": "BOOL"})

    layout = plan_layout(seen, {"track:Order": typing}, WarehouseSettings())

    table = layout.table("order")
    assert table.contract_id == "c1"
    assert columns(layout, "order") == {
        "at": ("at", "TIMESTAMP", "data"),
        "count": ("count", "INT64", "data"),
        "total": ("total", "FLOAT64", "contract"),
    }
    # A contract field never seen gets no column until it is.
    assert "undeclared" not in columns(layout, "order")
    assert layout.table("tracks").contract_id is None


def test_a_contract_on_identifies_types_the_users_columns_too() -> None:
    seen = seen_of((T1, [("identify", None, {"age": "41"})]))
    typing = ContractTyping("c9", {"age": "INT64"})

    layout = plan_layout(seen, {"identify": typing}, WarehouseSettings())

    for table in ("identifies", "users"):
        assert columns(layout, table)["age"] == ("age", "INT64", "contract")
        assert layout.table(table).contract_id == "c9"


# --- conflicts ---------------------------------------------------------------------------


def conflict_of(kinds_seen: list[Any], typing: dict[str, Any] | None = None) -> list[dict]:
    rows = [("track", "Order", {"v": value}) for value in kinds_seen]
    typings = {"track:Order": ContractTyping("c1", typing)} if typing else {}
    return conflicts(plan_layout(seen_of((T1, rows)), typings, WarehouseSettings()))


def test_a_contract_int64_seen_with_strings_is_a_conflict_with_nulls_in_the_column() -> None:
    assert conflict_of([1, "one"], {"v": "INT64"}) == [
        {
            "table": "order",
            "column": "v",
            "key": "v",
            "type": "INT64",
            "typed_by": "contract",
            "seen_types": ["INT64", "STRING"],
            "values_not_fitting": "NULL in the column; as sent in `properties`",
        }
    ]


def test_inferred_string_from_strings_and_integers_is_a_conflict_kept_as_text() -> None:
    [conflict] = conflict_of(["one", 2])

    assert conflict["type"] == "STRING" and conflict["typed_by"] == "data"
    assert conflict["seen_types"] == ["INT64", "STRING"]
    assert conflict["values_not_fitting"] == "in the column, as text"


def test_a_json_mix_is_kept_as_json_and_a_string_contract_nulls_objects() -> None:
    [inferred] = conflict_of(["one", {"a": 1}])
    [declared] = conflict_of(["one", {"a": 1}], {"v": "STRING"})

    assert inferred["type"] == "JSON"
    assert inferred["values_not_fitting"] == "in the column, as JSON"
    assert declared["values_not_fitting"] == "NULL in the column; as sent in `properties`"


def test_traits_conflicts_point_at_the_traits_column() -> None:
    rows: list[ObservedRow] = [("identify", None, {"age": 41}), ("identify", None, {"age": "old"})]
    layout = plan_layout(
        seen_of((T1, rows)),
        {"identify": ContractTyping("c", {"age": "INT64"})},
        WarehouseSettings(),
    )

    found = {c["table"]: c["values_not_fitting"] for c in conflicts(layout)}

    assert found == {
        "identifies": "NULL in the column; as sent in `traits`",
        "users": "NULL in the column; as sent in `traits`",
    }


@pytest.mark.parametrize(
    ("values", "typing"),
    [
        ([1, 2.5], None),  # integer + number -> FLOAT64
        ([1, 2.5], {"v": "FLOAT64"}),
        (["a", "2026-06-01T00:00:00Z"], None),
        (["2026-06-01T00:00:00Z"], {"v": "STRING"}),
        ([None, None], None),
        ([True, None], {"v": "BOOL"}),
        ([{"a": 1}, [1]], None),
    ],
)
def test_values_a_column_holds_as_themselves_are_no_conflict(
    values: list[Any], typing: dict[str, Any] | None
) -> None:
    assert conflict_of(values, typing) == []


def test_a_timestamp_contract_seen_with_plain_strings_is_a_conflict() -> None:
    [conflict] = conflict_of(["2026-06-01T00:00:00Z", "yesterday"], {"v": "TIMESTAMP"})

    assert conflict["seen_types"] == ["STRING", "TIMESTAMP"]
    assert conflict["values_not_fitting"].startswith("NULL in the column")
