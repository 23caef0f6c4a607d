"""The warehouse end to end on the local stack: events sent through ingest, the sync on demand,
then Segment's own queries against the workspace's views in the BigQuery emulator."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from google.api_core import exceptions as gexc

from emulators.dev import LocalStack
from shared.domain.event import CanonicalEvent
from shared.domain.ids import isoformat
from shared.domain.storage import event_row
from tests.e2e.helpers import Tenant

pytestmark = pytest.mark.e2e

NOW = datetime.now(UTC)
CAMPAIGN = {"source": "newsletter", "medium": "email", "name": "winter_sale"}
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36"


def at(minutes_ago: int) -> str:
    return isoformat(NOW - timedelta(minutes=minutes_ago))


def page(message_id: str, path: str) -> dict[str, Any]:
    return {
        "type": "page",
        "name": "Pricing",
        "messageId": message_id,
        "anonymousId": "anon-1",
        "properties": {"url": f"https://shop.example{path}", "path": path, "title": "Pricing"},
        "context": {"campaign": CAMPAIGN, "userAgent": USER_AGENT, "ip": "203.0.113.9"},
    }


EVENTS = [
    page("wh-page-1", "/pricing"),
    page("wh-page-2", "/pricing/teams"),
    {
        "type": "track",
        "event": "Order Completed",
        "messageId": "wh-order-1",
        "userId": "u1",
        "properties": {"total": 10, "placed_at": "2026-12-01T10:00:00Z", "couponCode": "WINTER"},
    },
    {
        "type": "track",
        "event": "Order Completed",
        "messageId": "wh-order-2",
        "userId": "u2",
        "properties": {"total": "ten", "placed_at": "2026-12-01T11:00:00Z"},
    },
    {
        "type": "track",
        "event": "Signed Up",
        "messageId": "wh-signup-1",
        "userId": "u1",
        "properties": {"plan": "pro"},
    },
    {
        "type": "track",
        "event": "Signed Up",
        "messageId": "wh-signup-2",
        "userId": "u2",
        "properties": {"plan": 3},
    },
    {
        "type": "identify",
        "messageId": "wh-identify-1",
        "userId": "u1",
        "timestamp": at(10),
        "traits": {"email": "ada@example.com", "plan": "free"},
    },
    {
        "type": "identify",
        "messageId": "wh-identify-2",
        "userId": "u1",
        "timestamp": at(5),
        "traits": {"plan": "pro", "seats": 4, "address": {"city": "Paris"}},
    },
    {"type": "group", "messageId": "wh-group-1", "userId": "u1", "groupId": "g1", "traits": {}},
    {"type": "alias", "messageId": "wh-alias-1", "userId": "u1", "previousId": "anon-1"},
]


def query(tenant: Tenant, sql: str) -> list[dict[str, Any]]:
    client = tenant.services.bigquery_client
    return [dict(row) for row in client.query(sql).result()]


def test_segment_queries_run_unmodified_against_the_workspace_views(
    tenant: Tenant, local_stack: LocalStack
) -> None:
    contract = {
        "name": "Orders",
        "event_type": "track",
        "event_name": "Order Completed",
        "schema_definition": {
            "properties": {
                "total": {"type": "integer"},
                "placed_at": {"type": "string", "format": "date-time"},
            }
        },
        "enforcement_mode": "warn",
    }
    assert tenant.api("POST", "/event-contracts", json=contract).status_code == 201
    assert tenant.send("batch", {"batch": EVENTS}).status_code == 200
    # The same page again (a client retry): deduplicated by process within its window.
    assert tenant.send("batch", {"batch": [EVENTS[0]]}).status_code == 200
    for event in EVENTS:
        tenant.trace(event["messageId"], until="stored")
    # A copy stored after the dedup window (Pub/Sub redelivery days later): the views still
    # show the id once.
    late_copy = {**EVENTS[0], "workspaceId": tenant.workspace_id, "sourceId": tenant.source_id}
    late_copy.update(timestamp=at(1), receivedAt=at(1), context=EVENTS[0]["context"])
    tenant.services.event_store.insert([event_row(cast(CanonicalEvent, late_copy))], ["wh-page-1"])

    synced = tenant.api("POST", "/warehouse/sync")
    assert synced.status_code == 200, synced.text
    warehouse = synced.json()
    dataset = f"`{tenant.services.settings.project_id}.{warehouse['dataset']}`"
    assert {"order_completed", "signed_up", "users", "pages"} <= set(warehouse["views_rewritten"])

    # Segment's query: page views with their UTM campaign and user agent, deduplicated by id.
    pages = query(
        tenant,
        f"""SELECT id, url, path, context_campaign_source, context_campaign_medium,
                   context_campaign_name, context_user_agent, context_ip
            FROM {dataset}.pages
            WHERE received_at > TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 1 DAY)
            ORDER BY id""",
    )
    assert [row["id"] for row in pages] == ["wh-page-1", "wh-page-2"]
    assert pages[1]["path"] == "/pricing/teams"
    assert pages[0]["context_campaign_name"] == "winter_sale"
    assert pages[0]["context_user_agent"] == USER_AGENT

    # Typed columns from the contract; the value that does not fit stays in `properties`.
    orders = query(
        tenant,
        f"SELECT id, total, placed_at, coupon_code, event, event_text, properties"
        f" FROM {dataset}.order_completed ORDER BY id",
    )
    assert [(row["id"], row["total"]) for row in orders] == [
        ("wh-order-1", 10),
        ("wh-order-2", None),
    ]
    assert orders[0]["placed_at"] == datetime(2026, 12, 1, 10, tzinfo=UTC)
    assert orders[0]["coupon_code"] == "WINTER"
    assert (orders[0]["event"], orders[0]["event_text"]) == ("order_completed", "Order Completed")
    assert _json(orders[1]["properties"])["total"] == "ten"
    conflicts = {(c["table"], c["column"]): c for c in warehouse["conflicts"]}
    total = conflicts[("order_completed", "total")]
    assert (total["type"], total["typed_by"], total["seen_types"]) == (
        "INT64",
        "contract",
        ["INT64", "STRING"],
    )
    # Inferred: a string and a number make a STRING column holding both, reported.
    plan = conflicts[("signed_up", "plan")]
    assert (plan["type"], plan["typed_by"]) == ("STRING", "data")
    signups = query(tenant, f"SELECT id, plan FROM {dataset}.signed_up ORDER BY id")
    assert [row["plan"] for row in signups] == ["pro", "3"]

    tracks = query(tenant, f"SELECT id, event FROM {dataset}.tracks ORDER BY id")
    assert [row["event"] for row in tracks] == ["order_completed"] * 2 + ["signed_up"] * 2

    # users: one row per user, each trait's latest value.
    [user] = query(tenant, f"SELECT id, email, plan, seats, address FROM {dataset}.users")
    assert _json(user.pop("address")) == {"city": "Paris"}
    assert user == {"id": "u1", "email": "ada@example.com", "plan": "pro", "seats": 4}
    assert len(query(tenant, f"SELECT id FROM {dataset}.identifies")) == 2
    [group] = query(tenant, f"SELECT id, group_id FROM {dataset}.groups")
    assert group == {"id": "wh-group-1", "group_id": "g1"}
    [alias] = query(tenant, f"SELECT user_id, previous_id FROM {dataset}.aliases")
    assert alias == {"user_id": "u1", "previous_id": "anon-1"}

    # Caps: one per-event table and one column per table; the rest is folded, still queryable.
    capped = tenant.api(
        "PUT", "/warehouse/settings", json={"max_event_tables": 1, "max_columns": 1}
    ).json()
    assert capped["in_step"] is False
    assert capped["folded_events"] == ["Signed Up"]
    after = tenant.api("POST", "/warehouse/sync").json()
    assert after["views_dropped"] == ["signed_up"]
    [orders_table] = [t for t in after["tables"] if t["name"] == "order_completed"]
    assert [c["key"] for c in orders_table["columns"]] == ["couponCode"]
    assert sorted(orders_table["folded"]) == ["placed_at", "total"]
    with pytest.raises(gexc.NotFound):
        query(tenant, f"SELECT id FROM {dataset}.signed_up")
    folded = query(
        tenant, f"SELECT id, properties FROM {dataset}.tracks WHERE event_text = 'Signed Up'"
    )
    assert {row["id"]: _json(row["properties"])["plan"] for row in folded} == {
        "wh-signup-1": "pro",
        "wh-signup-2": 3,
    }


def test_retention_and_deletion_reach_every_view(tenant: Tenant, local_stack: LocalStack) -> None:
    events: list[dict[str, Any]] = [
        {"type": "track", "event": "Viewed", "messageId": "rd-1", "userId": "doomed"},
        {"type": "identify", "messageId": "rd-2", "userId": "doomed", "traits": {"a": 1}},
        {"type": "identify", "messageId": "rd-3", "userId": "kept", "traits": {"a": 2}},
    ]
    assert tenant.send("batch", {"batch": events}).status_code == 200
    for event in events:
        tenant.trace(event["messageId"], until="stored")
    old = {
        "type": "track",
        "event": "Viewed",
        "messageId": "rd-old",
        "userId": "kept",
        "workspaceId": tenant.workspace_id,
        "sourceId": tenant.source_id,
        "timestamp": isoformat(NOW - timedelta(days=3)),
        "receivedAt": isoformat(NOW - timedelta(days=3)),
    }
    tenant.services.event_store.insert([event_row(cast(CanonicalEvent, old))], ["rd-old"])
    settings = {"retention_days": 1}
    assert tenant.api("PUT", "/warehouse/settings", json=settings).status_code == 200
    synced = tenant.api("POST", "/warehouse/sync").json()
    assert synced["events_expired"] == 1
    dataset = f"`{tenant.services.settings.project_id}.{synced['dataset']}`"
    assert [r["id"] for r in query(tenant, f"SELECT id FROM {dataset}.viewed")] == ["rd-1"]

    deletion = tenant.api("POST", "/regulations", json={"type": "delete", "user_id": "doomed"})
    assert deletion.status_code == 201, deletion.text
    assert query(tenant, f"SELECT id FROM {dataset}.viewed") == []
    assert [r["id"] for r in query(tenant, f"SELECT id FROM {dataset}.users")] == ["kept"]


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value
