"""The warehouse bench's analyst queries: what each reads under views (A) and maintained tables
(B), and the answer the generated events say it must give."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# What every view reads besides its outputs: the clustering filters and the dedup window.
FILTER_COLUMNS = ("workspace_id", "event_type")
DEDUP_COLUMNS = ("message_id", "received_at", "source_id")


@dataclass(frozen=True)
class AnalystQuery:
    """One query on a warehouse table, and what it reads under each design."""

    name: str
    table: str
    sql: str  # `{table}` is the view (A) or the maintained table (B)
    event_type: str
    event_name: str | None
    # A: the `events` columns behind the outputs it uses (the view's other outputs are pruned),
    # and, for the JSON columns, the paths it reads.
    view_columns: tuple[str, ...]
    json_paths: tuple[tuple[str, ...], ...]
    # B: the typed columns it reads, (name, type, JSON column, path), and whether it filters
    # `received_at` (partitions) by `@since`.
    typed_columns: tuple[tuple[str, str, str, tuple[str, ...]], ...]
    since: bool


QUERIES = (
    AnalystQuery(
        "a_pages_by_campaign",
        "pages",
        "SELECT context_campaign_source AS source, context_campaign_name AS campaign,"
        " context_user_agent AS user_agent, COUNT(*) AS page_views FROM {table}"
        " WHERE received_at >= @since AND context_campaign_name IS NOT NULL GROUP BY 1, 2, 3",
        "page",
        None,
        ("context",),
        (
            ("context", "campaign", "source"),
            ("context", "campaign", "name"),
            ("context", "userAgent"),
        ),
        (
            ("context_campaign_source", "STRING", "context", ("campaign", "source")),
            ("context_campaign_name", "STRING", "context", ("campaign", "name")),
            ("context_user_agent", "STRING", "context", ("userAgent",)),
        ),
        True,
    ),
    AnalystQuery(
        "b_order_totals",
        "order_completed",
        "SELECT currency, COUNT(*) AS orders, SUM(revenue) AS revenue, SUM(quantity) AS items,"
        " COUNTIF(coupon_used) AS with_coupon FROM {table} GROUP BY currency",
        "track",
        "Order Completed",
        ("properties",),
        tuple(("properties", key) for key in ("currency", "revenue", "quantity", "coupon_used")),
        (
            ("currency", "STRING", "properties", ("currency",)),
            ("revenue", "FLOAT64", "properties", ("revenue",)),
            ("quantity", "INT64", "properties", ("quantity",)),
            ("coupon_used", "BOOL", "properties", ("coupon_used",)),
        ),
        False,
    ),
    AnalystQuery(
        "c_users_by_plan",
        "users",
        "SELECT plan, COUNT(*) AS users FROM {table} GROUP BY plan",
        "identify",
        None,
        ("user_id", "timestamp", "traits"),
        (("traits", "plan"),),
        (("plan", "STRING", "traits", ("plan",)),),
        False,
    ),
)


def first_copies(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Each messageId once: its first received copy, as the views keep it."""
    first: dict[str, Mapping[str, Any]] = {}
    for row in sorted(rows, key=lambda r: (moment(r["received_at"]), r["source_id"])):
        first.setdefault(row["message_id"], row)
    return list(first.values())


def expected(query: AnalystQuery, rows: Sequence[Mapping[str, Any]], since: datetime) -> Any:
    """What the query must answer, from the events as generated."""
    unique = [r for r in first_copies(rows) if matches(query, r)]
    if query.name == "a_pages_by_campaign":
        return Counter(
            (
                at(r["context"], "campaign", "source"),
                at(r["context"], "campaign", "name"),
                at(r["context"], "userAgent"),
            )
            for r in unique
            if moment(r["received_at"]) >= since and at(r["context"], "campaign", "name")
        )
    if query.name == "b_order_totals":
        totals: dict[str, list[float]] = {}
        for r in unique:
            p = parsed(r["properties"])
            entry = totals.setdefault(p["currency"], [0, 0.0, 0, 0])
            entry[0] += 1
            entry[1] += p["revenue"]
            entry[2] += p["quantity"]
            entry[3] += bool(p["coupon_used"])
        return {currency: tuple(v) for currency, v in totals.items()}
    newest: dict[str, Mapping[str, Any]] = {}
    for r in sorted(unique, key=lambda r: r["message_id"]):
        key = (moment(r["timestamp"]), moment(r["received_at"]))
        held = newest.get(r["user_id"])
        if held is None or key > (moment(held["timestamp"]), moment(held["received_at"])):
            newest[r["user_id"]] = r
    return Counter(at(r["traits"], "plan") for r in newest.values())


def answered(query: AnalystQuery, result: list[dict[str, Any]]) -> Any:
    """The query's answer in `expected`'s shape."""
    if query.name == "a_pages_by_campaign":
        return Counter(
            {(r["source"], r["campaign"], r["user_agent"]): r["page_views"] for r in result}
        )
    if query.name == "b_order_totals":
        return {
            r["currency"]: (r["orders"], r["revenue"], r["items"], r["with_coupon"]) for r in result
        }
    return Counter({r["plan"]: r["users"] for r in result})


def same_answer(query: AnalystQuery, want: Any, got: Any) -> bool:
    if query.name != "b_order_totals":
        return bool(want == got)
    return want.keys() == got.keys() and all(
        w[0] == g[0] and abs(w[1] - g[1]) < 0.01 and w[2:] == g[2:]
        for w, g in ((want[k], got[k]) for k in want)
    )


def matches(query: AnalystQuery, row: Mapping[str, Any]) -> bool:
    if row["event_type"] != query.event_type:
        return False
    if query.event_name is not None and row["event_name"] != query.event_name:
        return False
    return query.table != "users" or row["user_id"] is not None


def moment(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def parsed(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def at(value: Any, *path: str) -> Any:
    """The value at a JSON path, None where any step is missing."""
    value = parsed(value)
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value
