"""The warehouse views' SQL: literals, JSONPath, each kind of view's filters, dedup and columns,
and client-chosen names (event names, workspace ids) that can never leave their literal.

sqlglot is not in the environment, so a small lexer of BigQuery's quoting (below) splits each
view into literals, quoted identifiers and code: a hostile name must leave the code untouched.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from shared.adapters.warehouse_sql import (
    FIRST_COPY,
    SNAKE_CASE_SQL,
    identifier,
    json_path,
    literal,
    typed_value,
    view_sql,
)
from shared.domain.warehouse import (
    EVENT_COLUMNS,
    KIND_COLUMNS,
    STANDARD_TABLES,
    ContractTyping,
    Layout,
    StreamSeen,
    WarehouseSettings,
    observe,
    plan_layout,
)

WORKSPACE = "ws-1"
EVENTS = "project.dataset.events"
NOW = "2026-06-01T00:00:00.000Z"
HOSTILE = [
    "x' OR '1'='1",
    "x\\' OR 1=1 --",
    "x\\",
    "\\\\'; DROP TABLE events; --",
    "a\nb\rc -- d /* e */ # f",
    "r'raw' \"dq\" `tick` ''' triple",
    "caf\u00e9 \u20ac \u65e5\u672c",
]
_ESCAPED = {"\\": "\\", "'": "'", '"': '"', "`": "`", "n": "\n", "r": "\r", "t": "\t"}


def lex(sql: str) -> list[tuple[str, str]]:
    """BigQuery's tokens as far as quoting goes: ("str", decoded value), ("raw", text),
    ("ident", name), ("code", text). An unterminated quote fails the test."""
    tokens: list[tuple[str, str]] = []
    code: list[str] = []
    i = 0
    while i < len(sql):
        char = sql[i]
        raw = char in "rR" and sql[i + 1 : i + 2] in ("'", '"') and not _in_word(sql, i)
        if char in "'\"`" or raw:
            if code:
                tokens.append(("code", "".join(code)))
                code = []
            quote = sql[i + 1] if raw else char
            start = i + 2 if raw else i + 1
            value, i = _quoted(sql, start, quote, decode=not raw and quote != "`")
            tokens.append(("ident" if quote == "`" else "raw" if raw else "str", value))
            continue
        code.append(char)
        i += 1
    if code:
        tokens.append(("code", "".join(code)))
    return tokens


def _in_word(sql: str, i: int) -> bool:
    return i > 0 and (sql[i - 1].isalnum() or sql[i - 1] == "_")


def _quoted(sql: str, start: int, quote: str, decode: bool) -> tuple[str, int]:
    value: list[str] = []
    i = start
    while i < len(sql):
        char = sql[i]
        if char == "\\" and quote != "`":
            escaped = sql[i + 1]
            value.append(_ESCAPED.get(escaped, "\\" + escaped) if decode else char + escaped)
            i += 2
            continue
        if char == quote:
            return "".join(value), i + 1
        assert char not in "\n\r", f"a raw line break inside a literal at {i}"
        value.append(char)
        i += 1
    raise AssertionError(f"unterminated {quote} literal from {start}")


def skeleton(sql: str) -> str:
    """The SQL with every literal and quoted identifier as a placeholder: its structure."""
    parts = {"str": "'?'", "raw": "r'?'", "ident": "`?`"}
    return "".join(parts.get(kind, text) for kind, text in lex(sql))


def strings(sql: str) -> list[str]:
    return [text for kind, text in lex(sql) if kind == "str"]


def select_names(sql: str) -> list[str]:
    """The view's column names, from its (outer) SELECT list."""
    shape = "".join(
        f"`{text}`" if kind == "ident" else "'?'" if kind in ("str", "raw") else text
        for kind, text in lex(sql)
    )
    select = shape.removeprefix("SELECT ").split("\nFROM ", 1)[0]
    items, depth, current = [], 0, ""
    for char in select:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += char
    items.append(current)
    return [item.split()[-1].strip("`") for item in items]


def layout_of(
    rows: list[tuple[str, str | None, dict[str, Any] | None]],
    typings: dict[str, ContractTyping] | None = None,
    settings: WarehouseSettings | None = None,
) -> Layout:
    seen: dict[str, StreamSeen] = {}
    observe(seen, rows, NOW)
    return plan_layout(seen, typings or {}, settings or WarehouseSettings())


def every_view(
    layout: Layout, workspace_id: str = WORKSPACE, retention: int | None = None
) -> dict[str, str]:
    return {t.name: view_sql(t, layout, EVENTS, workspace_id, retention) for t in layout.tables}


SHOP = layout_of(
    [
        ("track", "Order Completed", {"total": 9.5, "count": 2, "paid": True, "note": "x"}),
        ("track", "Signed Up", {"at": "2026-06-01T00:00:00Z", "cart": {"items": 1}}),
        ("page", "Home", {"url": "https://a", "section": "blog"}),
        ("screen", "Main", {"tab": "feed"}),
        ("identify", None, {"email": "a@example.com", "age": 41}),
        ("group", None, {"industry": "retail"}),
        ("alias", None, None),
    ]
)


# --- literals and paths ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "sql"),
    [
        ("plain", "'plain'"),
        ("it's", "'it\\'s'"),
        ("back\\slash", "'back\\\\slash'"),
        ("line\nbreak", "'line\\nbreak'"),
        ("carriage\rreturn", "'carriage\\rreturn'"),
        ("trailing\\", "'trailing\\\\'"),
        ("\\'", "'\\\\\\''"),
        ('double "quotes" and `ticks`', "'double \"quotes\" and `ticks`'"),
        ("", "''"),
    ],
)
def test_literal_escapes_what_would_end_or_break_it(text: str, sql: str) -> None:
    assert literal(text) == sql


@pytest.mark.parametrize("text", [*HOSTILE, "", "'", "\\", "''", "\\\\"])
def test_a_literal_reads_back_as_one_string_of_exactly_the_text(text: str) -> None:
    assert lex(literal(text)) == [("str", text)]


def test_json_path_quotes_each_key() -> None:
    assert json_path("total") == "'$.\"total\"'"
    assert json_path("app", "build") == '\'$."app"."build"\''
    # Dots, spaces and brackets stay inside one member name.
    assert json_path("a.b [0] $x") == "'$.\"a.b [0] $x\"'"
    assert lex(json_path("a`b")) == [("str", '$."a`b"')]


def test_identifier_quotes_and_drops_backticks() -> None:
    assert identifier("order_id") == "`order_id`"
    assert identifier("a`b") == "`ab`"


@pytest.mark.parametrize(
    ("column_type", "sql"),
    [
        ("STRING", "JSON_VALUE(properties, '$.\"v\"')"),
        ("JSON", "JSON_QUERY(properties, '$.\"v\"')"),
        ("INT64", "SAFE_CAST(JSON_VALUE(properties, '$.\"v\"') AS INT64)"),
        ("FLOAT64", "SAFE_CAST(JSON_VALUE(properties, '$.\"v\"') AS FLOAT64)"),
        ("BOOL", "SAFE_CAST(JSON_VALUE(properties, '$.\"v\"') AS BOOL)"),
        ("TIMESTAMP", "SAFE_CAST(JSON_VALUE(properties, '$.\"v\"') AS TIMESTAMP)"),
    ],
)
def test_typed_value_never_fails_on_a_value_that_does_not_fit(column_type: Any, sql: str) -> None:
    assert typed_value("properties", json_path("v"), column_type) == sql


# --- each view ---------------------------------------------------------------------------

EVENT_TYPES = {
    "tracks": "track",
    "order_completed": "track",
    "signed_up": "track",
    "pages": "page",
    "screens": "screen",
    "identifies": "identify",
    "groups": "group",
    "aliases": "alias",
    "users": "identify",
}


@pytest.mark.parametrize("table", list(EVENT_TYPES))
def test_every_view_reads_its_workspace_s_events_of_its_type_once_each(table: str) -> None:
    sql = view_sql(SHOP.table(table), SHOP, EVENTS, WORKSPACE, None)

    assert f"FROM `{EVENTS}`\nWHERE workspace_id = 'ws-1' AND event_type = " in sql
    assert f"event_type = '{EVENT_TYPES[table]}'" in sql
    assert sql.count(FIRST_COPY) == 1
    assert "received_at >=" not in sql and "INTERVAL" not in sql
    assert ("event_name = " in sql) == (SHOP.table(table).kind == "event")


@pytest.mark.parametrize("table", list(EVENT_TYPES))
def test_retention_hides_older_events_in_every_view(table: str) -> None:
    sql = view_sql(SHOP.table(table), SHOP, EVENTS, WORKSPACE, 30)

    retention = "received_at >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 30 DAY)"
    assert sql.count(retention) == 1
    # Inside the WHERE, so before the dedup: ahead of every QUALIFY.
    assert sql.index(retention) < sql.index("QUALIFY")


def test_a_per_event_view_holds_only_its_event() -> None:
    sql = view_sql(SHOP.table("order_completed"), SHOP, EVENTS, WORKSPACE, None)

    assert (
        "WHERE workspace_id = 'ws-1' AND event_type = 'track' AND event_name = 'Order Completed'"
        in sql
    )


def test_tracks_maps_each_event_to_its_table_and_spells_new_ones_in_sql() -> None:
    sql = view_sql(SHOP.table("tracks"), SHOP, EVENTS, WORKSPACE, None)

    assert (
        "CASE event_name WHEN 'Order Completed' THEN 'order_completed' "
        f"WHEN 'Signed Up' THEN 'signed_up' ELSE {SNAKE_CASE_SQL} END AS event"
    ) in sql
    assert "event_name AS event_text" in sql
    bare = layout_of([])
    assert f"{SNAKE_CASE_SQL} AS event," in view_sql(
        bare.table("tracks"), bare, EVENTS, WORKSPACE, None
    )


def test_a_per_event_view_names_its_own_event_and_no_other() -> None:
    order = {"total": 9.5, "count": 2, "paid": True, "note": "x"}
    alone = layout_of([("track", "Order Completed", order)])

    sql = view_sql(SHOP.table("order_completed"), SHOP, EVENTS, WORKSPACE, None)

    assert "'order_completed' AS event, event_name AS event_text" in sql
    assert "CASE" not in sql and "Signed Up" not in sql
    # So a new event leaves the views of the others as they were.
    assert view_sql(alone.table("order_completed"), alone, EVENTS, WORKSPACE, None) == sql


def test_folded_events_have_no_case_of_their_own() -> None:
    layout = layout_of(
        [("track", "Kept", {}), ("track", "Also Kept", {})],
        settings=WarehouseSettings(max_event_tables=1),
    )

    sql = view_sql(layout.table("tracks"), layout, EVENTS, WORKSPACE, None)

    assert "WHEN 'Also Kept' THEN 'also_kept' ELSE" in sql
    assert "'Kept'" not in sql


def test_typed_columns_are_safe_casts_of_their_json_values() -> None:
    sql = view_sql(SHOP.table("order_completed"), SHOP, EVENTS, WORKSPACE, None)
    signed_up = view_sql(SHOP.table("signed_up"), SHOP, EVENTS, WORKSPACE, None)

    assert "SAFE_CAST(JSON_VALUE(properties, '$.\"count\"') AS INT64) AS `count`" in sql
    assert "SAFE_CAST(JSON_VALUE(properties, '$.\"total\"') AS FLOAT64) AS `total`" in sql
    assert "SAFE_CAST(JSON_VALUE(properties, '$.\"paid\"') AS BOOL) AS `paid`" in sql
    assert "JSON_VALUE(properties, '$.\"note\"') AS `note`" in sql
    assert "SAFE_CAST(JSON_VALUE(properties, '$.\"at\"') AS TIMESTAMP) AS `at`" in signed_up
    assert "JSON_QUERY(properties, '$.\"cart\"') AS `cart`" in signed_up


def test_a_contract_s_type_is_the_cast() -> None:
    layout = layout_of(
        [("track", "Order", {"total": "12"})],
        typings={"track:Order": ContractTyping("c1", {"total": "INT64"})},
    )

    sql = view_sql(layout.table("order"), layout, EVENTS, WORKSPACE, None)

    assert "SAFE_CAST(JSON_VALUE(properties, '$.\"total\"') AS INT64) AS `total`" in sql


def test_context_columns_are_read_from_the_context_json() -> None:
    sql = view_sql(SHOP.table("pages"), SHOP, EVENTS, WORKSPACE, None)

    assert "JSON_VALUE(context, '$.\"ip\"') AS context_ip" in sql
    assert "JSON_VALUE(context, '$.\"userAgent\"') AS context_user_agent" in sql
    assert 'SAFE_CAST(JSON_VALUE(context, \'$."screen"."width"\') AS INT64)' in sql


@pytest.mark.parametrize("table", list(EVENT_TYPES))
def test_each_view_has_its_standard_columns_then_the_layout_s_in_order(table: str) -> None:
    planned = SHOP.table(table)
    own = KIND_COLUMNS[planned.kind]
    common = () if planned.kind == "users" else EVENT_COLUMNS
    dynamic = tuple(c.name for c in planned.columns)
    json_last = own[-1:] if own[-1] in ("properties", "traits") else ()
    expected = [*common, *own[: len(own) - len(json_last)], *dynamic, *json_last]

    names = select_names(view_sql(planned, SHOP, EVENTS, WORKSPACE, 7))

    assert names == expected
    assert len(names) == len(set(names))


def test_users_is_one_row_per_user_with_each_trait_s_latest_fitting_value() -> None:
    sql = view_sql(SHOP.table("users"), SHOP, EVENTS, WORKSPACE, None)

    assert "AND user_id IS NOT NULL" in sql
    assert (
        "FIRST_VALUE(SAFE_CAST(JSON_VALUE(traits, '$.\"age\"') AS INT64) IGNORE NULLS)"
        " OVER every_identify AS `age`"
    ) in sql
    assert "FIRST_VALUE(anonymous_id IGNORE NULLS) OVER every_identify AS anonymous_id" in sql
    assert "QUALIFY ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY timestamp DESC" in sql
    # The copies are dropped before the latest identify is chosen.
    assert sql.index(FIRST_COPY) < sql.index("PARTITION BY user_id")


# --- hostile names -----------------------------------------------------------------------


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_event_name_stays_inside_its_literals(name: str) -> None:
    benign = layout_of([("track", "Order", {"v": 1})])
    hostile = layout_of([("track", name, {"v": 1})])
    [table] = [t.name for t in hostile.tables if t.kind == "event"]

    views, expected = every_view(hostile), every_view(benign)

    assert [*views] == [*STANDARD_TABLES, table]
    for (_, sql), (_, benign_sql) in zip(views.items(), expected.items(), strict=True):
        assert skeleton(sql) == skeleton(benign_sql)
    assert strings(views["tracks"]).count(name) == 1  # WHEN <name> THEN <table>
    assert strings(views["tracks"])[strings(views["tracks"]).index(name) + 1] == table
    assert name in strings(views[table])


@pytest.mark.parametrize("workspace_id", HOSTILE)
def test_a_hostile_workspace_id_stays_inside_its_literal(workspace_id: str) -> None:
    for table, sql in every_view(SHOP, workspace_id, 30).items():
        assert skeleton(sql) == skeleton(view_sql(SHOP.table(table), SHOP, EVENTS, "ws", 30))
        assert workspace_id in strings(sql)


def test_hostile_keys_get_no_column_or_a_quoted_one() -> None:
    keys = {"x' OR 1=1 --": 1, 'a"b': 2, "c\\d": 3, "e`f": 4, "/* g */": 5, "h\ni": 6}
    layout = layout_of([("track", "Order", keys), ("identify", None, keys)])

    for table in ("order", "identifies", "users"):
        sql = view_sql(layout.table(table), layout, EVENTS, WORKSPACE, None)
        assert [c.key for c in layout.table(table).columns] == ["/* g */", "e`f"]
        assert '$."e`f"' in strings(sql) and '$."/* g */"' in strings(sql)
        assert "/*" not in "".join(text for kind, text in lex(sql) if kind == "code")
        assert re.search(r"AS `e_f`", sql)
