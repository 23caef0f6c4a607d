"""The warehouse service over fakes: what a sync observes and rewrites, contracts re-typing
columns, settings, retention, every workspace's sync, and the HTTP routes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.domain import ids
from shared.domain.errors import InvalidRequest, Unavailable
from shared.domain.event import CanonicalEvent
from shared.domain.storage import EVENT_COLUMNS, event_row
from shared.domain.warehouse import STANDARD_TABLES, WarehouseSettings
from shared.services.warehouse import MAX_COLUMNS, MAX_EVENT_TABLES, MAX_RETENTION_DAYS, Warehouse
from tests.fakes import FakeServices, FakeWarehouseViews
from tests.functions import function_client
from tests.tenants import Tenant, tenant_of

PREFIX = "events_ws_"
START = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


class Clock:
    """The service's clock, moved by the test."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class CountingViews(FakeWarehouseViews):
    """The fake views, counting what each `apply` wrote and dropped."""

    def __init__(self, services: FakeServices) -> None:
        super().__init__(services.event_store)
        self.applied: list[tuple[str, set[str], set[str]]] = []

    def apply(
        self, workspace_id: str, dataset: str, views: Mapping[str, str], drop: Iterable[str]
    ) -> None:
        drop = set(drop)
        self.applied.append((workspace_id, set(views), drop))
        super().apply(workspace_id, dataset, views, drop)


class FailingViews(CountingViews):
    """BigQuery down for one workspace only."""

    def __init__(self, services: FakeServices, failing: str) -> None:
        super().__init__(services)
        self.failing = failing

    def apply(
        self, workspace_id: str, dataset: str, views: Mapping[str, str], drop: Iterable[str]
    ) -> None:
        if workspace_id == self.failing:
            raise Unavailable("BigQuery is unavailable, retry later")
        super().apply(workspace_id, dataset, views, drop)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def views(services: FakeServices) -> CountingViews:
    return CountingViews(services)


@pytest.fixture
def warehouse(services: FakeServices, views: CountingViews, clock: Clock) -> Warehouse:
    return Warehouse(services.store, views, PREFIX, clock)


@pytest.fixture
def workspace_id(services: FakeServices) -> str:
    return services.workspaces.create("Acme").id


def dataset_of(workspace_id: str) -> str:
    return PREFIX + workspace_id.replace("-", "_")


def store(
    services: FakeServices,
    workspace_id: str,
    received: datetime,
    type_: str = "track",
    name: str | None = "Order Completed",
    values: dict[str, Any] | None = None,
) -> str:
    """One event in the fake events table, as the pipeline stores it."""
    message_id = ids.new_id()
    at = ids.isoformat(received)
    canonical: CanonicalEvent = {
        "messageId": message_id,
        "workspaceId": workspace_id,
        "sourceId": "src-1",
        "type": type_,
        "event": name if type_ == "track" else None,
        "name": name if type_ in ("page", "screen") else None,
        "userId": "u1",
        "anonymousId": None,
        "timestamp": at,
        "receivedAt": at,
        "sentAt": at,
        "context": {"ip": "203.0.113.9"},
    }
    if type_ in ("identify", "group"):
        canonical["traits"] = values or {}
        if type_ == "group":
            canonical["groupId"] = "g1"
    else:
        canonical["properties"] = values or {}
    services.event_store.insert([event_row(canonical)], [message_id])
    return message_id


def column(result: dict[str, Any], table: str, key: str) -> dict[str, Any]:
    [found] = [
        c for t in result["tables"] if t["name"] == table for c in t["columns"] if c["key"] == key
    ]
    return found


# --- sync --------------------------------------------------------------------------------


def test_stored_rows_have_the_events_table_s_shape(services: FakeServices) -> None:
    store(services, "ws", START, values={"total": 1})

    [row] = services.event_store.rows

    assert set(row) == set(EVENT_COLUMNS)
    assert (row["event_type"], row["event_name"], row["properties"]) == (
        "track",
        "Order Completed",
        '{"total":1}',
    )


def test_a_first_sync_creates_every_view_of_the_dataset(
    services: FakeServices, warehouse: Warehouse, views: CountingViews, workspace_id: str
) -> None:
    store(services, workspace_id, START - timedelta(days=2), values={"total": 9.5})
    store(services, workspace_id, START - timedelta(hours=1), "identify", None, {"plan": "pro"})
    store(services, workspace_id, START - timedelta(days=31), name="Too Old")
    store(services, "other-workspace", START - timedelta(hours=1), name="Theirs")

    result = warehouse.sync(workspace_id)

    names = [*STANDARD_TABLES, "order_completed"]
    dataset = dataset_of(workspace_id)
    assert set(views.datasets) == {dataset}
    assert sorted(views.datasets[dataset]) == sorted(names)
    assert result["dataset"] == dataset
    assert result["views_rewritten"] == sorted(names)
    assert result["views_dropped"] == []
    assert result["events_observed"] == 2  # 30 days back, this workspace only
    assert result["synced_at"] == ids.isoformat(START)
    assert result["in_step"] is True
    assert column(result, "order_completed", "total")["type"] == "FLOAT64"
    assert column(result, "users", "plan")["type"] == "STRING"
    # The views applied are the SQL of the layout described.
    order = views.datasets[dataset]["order_completed"]
    assert "event_name = 'Order Completed'" in order and f"'{workspace_id}'" in order


def test_a_sync_with_nothing_new_rewrites_nothing(
    services: FakeServices,
    warehouse: Warehouse,
    views: CountingViews,
    workspace_id: str,
    clock: Clock,
) -> None:
    store(services, workspace_id, START - timedelta(hours=1), values={"total": 1})
    warehouse.sync(workspace_id)
    before = dict(views.datasets[dataset_of(workspace_id)])
    clock.advance(hours=1)
    # Seen before, and nothing new about it: the same kinds of the same keys.
    store(services, workspace_id, START + timedelta(minutes=30), values={"total": 2})

    result = warehouse.sync(workspace_id)

    assert result["views_rewritten"] == [] and result["views_dropped"] == []
    assert result["events_observed"] == 1
    assert len(views.applied) == 1  # the first sync's only
    assert views.datasets[dataset_of(workspace_id)] == before
    assert result["synced_at"] == ids.isoformat(clock.now)


@pytest.mark.parametrize(
    ("type_", "name", "values", "rewritten"),
    [
        ("track", "Order Completed", {"coupon": "X"}, ["order_completed"]),
        ("track", "Order Completed", {"total": "a string now"}, ["order_completed"]),
        ("track", "Signed Up", {}, ["signed_up", "tracks"]),
        ("identify", None, {"email": "a@example.com"}, ["identifies", "users"]),
        ("page", "Home", {"section": "blog"}, ["pages"]),
        ("group", None, {"industry": "retail"}, ["groups"]),
        ("alias", None, None, []),
    ],
)
def test_a_sync_rewrites_only_the_views_its_new_keys_touch(
    services: FakeServices,
    warehouse: Warehouse,
    workspace_id: str,
    clock: Clock,
    type_: str,
    name: str | None,
    values: dict[str, Any] | None,
    rewritten: list[str],
) -> None:
    store(services, workspace_id, START - timedelta(hours=1), values={"total": 1})
    for stream_type in ("page", "identify", "group"):
        store(services, workspace_id, START - timedelta(hours=1), stream_type, "Home", {"a": 1})
    warehouse.sync(workspace_id)
    clock.advance(hours=1)
    store(services, workspace_id, START + timedelta(minutes=30), type_, name, values)

    assert warehouse.sync(workspace_id)["views_rewritten"] == rewritten


def test_names_and_keys_past_ingest_s_checks_never_break_a_sync(
    services: FakeServices, warehouse: Warehouse, views: CountingViews, workspace_id: str
) -> None:
    """What a message published past ingest may carry: a lone surrogate in an event name or a
    key (no UTF-8 form: not recorded), an empty or reserved key (folded), a huge number."""
    hostile = {"k\ud800": 1, "": 2, "__x__": 3, "big": 10**40, "ok": 1.5}
    store(services, workspace_id, START - timedelta(hours=1), name="Bad\ud800Name", values=hostile)
    store(services, workspace_id, START - timedelta(hours=1), values=hostile)

    result = warehouse.sync(workspace_id)

    [orders] = [t for t in result["tables"] if t["kind"] == "event"]
    assert orders["event_text"] == "Order Completed"
    assert {c["key"]: c["type"] for c in orders["columns"]} == {
        "__x__": "INT64",
        "big": "FLOAT64",
        "ok": "FLOAT64",
    }
    assert orders["folded"] == [""]
    for sql in views.datasets[dataset_of(workspace_id)].values():
        sql.encode("utf-8")  # BigQuery takes the statements as UTF-8
    assert warehouse.describe(workspace_id)["tables"] == result["tables"]


def test_events_received_just_before_the_last_sync_are_still_observed(
    services: FakeServices, warehouse: Warehouse, workspace_id: str, clock: Clock
) -> None:
    warehouse.sync(workspace_id)
    # Inserted after that sync, with a received_at a few minutes before it (a retry's delay).
    store(services, workspace_id, START - timedelta(minutes=5), values={"late": True})
    clock.advance(hours=1)

    result = warehouse.sync(workspace_id)

    assert result["views_rewritten"] == ["order_completed", "tracks"]
    assert column(result, "order_completed", "late")["type"] == "BOOL"


def test_a_contract_re_types_a_column_and_the_next_sync_rewrites_its_view(
    services: FakeServices,
    warehouse: Warehouse,
    views: CountingViews,
    workspace_id: str,
    clock: Clock,
) -> None:
    store(services, workspace_id, START - timedelta(hours=1), values={"total": "12"})
    first = warehouse.sync(workspace_id)
    assert column(first, "order_completed", "total") | {"conflict": None} == {
        "name": "total",
        "key": "total",
        "type": "STRING",
        "typed_by": "data",
        "seen_types": ["STRING"],
        "conflict": None,
    }
    contract = services.contracts.create(
        workspace_id,
        name="Orders",
        event_type="track",
        event_name="Order Completed",
        schema_definition={"type": "object", "properties": {"total": {"type": "integer"}}},
    )

    described = warehouse.describe(workspace_id)

    total = column(described, "order_completed", "total")
    assert (total["type"], total["typed_by"], total["conflict"]) == ("INT64", "contract", True)
    [table] = [t for t in described["tables"] if t["name"] == "order_completed"]
    assert table["contract_id"] == contract.id
    assert described["in_step"] is False
    assert [c["key"] for c in described["conflicts"]] == ["total"]

    clock.advance(hours=1)
    synced = warehouse.sync(workspace_id)

    assert synced["views_rewritten"] == ["order_completed"]
    assert synced["in_step"] is True
    applied = views.datasets[dataset_of(workspace_id)]["order_completed"]
    assert "SAFE_CAST(JSON_VALUE(properties, '$.\"total\"') AS INT64) AS `total`" in applied


def test_an_archived_contract_types_nothing(
    services: FakeServices, warehouse: Warehouse, workspace_id: str
) -> None:
    store(services, workspace_id, START - timedelta(hours=1), values={"total": "12"})
    services.contracts.create(
        workspace_id,
        name="Orders",
        event_type="track",
        event_name="Order Completed",
        status="archived",
        schema_definition={"type": "object", "properties": {"total": {"type": "integer"}}},
    )

    result = warehouse.sync(workspace_id)

    assert column(result, "order_completed", "total")["typed_by"] == "data"


def test_lowering_the_event_table_cap_drops_the_later_tables(
    services: FakeServices, warehouse: Warehouse, workspace_id: str, clock: Clock
) -> None:
    store(services, workspace_id, START - timedelta(hours=2), name="First")
    warehouse.sync(workspace_id)
    clock.advance(hours=1)
    store(services, workspace_id, START + timedelta(minutes=30), name="Second")
    warehouse.sync(workspace_id)
    warehouse.put_settings(workspace_id, WarehouseSettings(max_event_tables=1), "tok")
    clock.advance(hours=1)

    result = warehouse.sync(workspace_id)

    assert result["views_dropped"] == ["second"]
    assert result["views_rewritten"] == ["tracks"]
    assert result["folded_events"] == ["Second"]


# --- settings ----------------------------------------------------------------------------


def test_settings_default_until_put(warehouse: Warehouse, workspace_id: str) -> None:
    assert warehouse.settings(workspace_id) == WarehouseSettings(200, 300, None)

    described = warehouse.put_settings(workspace_id, WarehouseSettings(5, 50, 90), "tok-1")

    assert warehouse.settings(workspace_id) == WarehouseSettings(5, 50, 90)
    assert described["settings"] == {
        "max_event_tables": 5,
        "max_columns": 50,
        "retention_days": 90,
    }


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        (WarehouseSettings(max_event_tables=-1), "max_event_tables"),
        (WarehouseSettings(max_event_tables=MAX_EVENT_TABLES + 1), "max_event_tables"),
        (WarehouseSettings(max_columns=-1), "max_columns"),
        (WarehouseSettings(max_columns=MAX_COLUMNS + 1), "max_columns"),
        (WarehouseSettings(retention_days=0), "retention_days"),
        (WarehouseSettings(retention_days=MAX_RETENTION_DAYS + 1), "retention_days"),
    ],
)
def test_settings_out_of_bounds_are_refused_naming_the_field(
    warehouse: Warehouse, workspace_id: str, settings: WarehouseSettings, field: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        warehouse.put_settings(workspace_id, settings, "tok")

    assert refused.value.field == field and field in refused.value.message
    assert warehouse.settings(workspace_id) == WarehouseSettings()


@pytest.mark.parametrize(
    "settings",
    [
        WarehouseSettings(0, 0, 1),
        WarehouseSettings(MAX_EVENT_TABLES, MAX_COLUMNS, MAX_RETENTION_DAYS),
        WarehouseSettings(1, 1, None),
    ],
)
def test_settings_at_their_bounds_are_kept(
    warehouse: Warehouse, workspace_id: str, settings: WarehouseSettings
) -> None:
    warehouse.put_settings(workspace_id, settings, "tok")

    assert warehouse.settings(workspace_id) == settings


def test_in_step_is_false_after_a_settings_change_until_the_next_sync(
    services: FakeServices, warehouse: Warehouse, workspace_id: str, clock: Clock
) -> None:
    assert warehouse.describe(workspace_id)["in_step"] is False  # never synced
    store(services, workspace_id, START - timedelta(hours=1), values={"a": 1, "b": 2})
    assert warehouse.sync(workspace_id)["in_step"] is True

    changed = warehouse.put_settings(workspace_id, WarehouseSettings(max_columns=1), "tok")

    assert changed["in_step"] is False
    assert warehouse.describe(workspace_id)["in_step"] is False
    clock.advance(minutes=5)
    synced = warehouse.sync(workspace_id)
    assert synced["in_step"] is True and synced["views_rewritten"] == ["order_completed"]
    assert warehouse.describe(workspace_id)["in_step"] is True
    # A change that leaves every view as it is keeps them in step.
    same = warehouse.put_settings(workspace_id, WarehouseSettings(150, 1, None), "tok")
    assert same["in_step"] is True


# --- retention ---------------------------------------------------------------------------


def test_retention_deletes_expired_events_at_most_once_in_23_hours(
    services: FakeServices,
    warehouse: Warehouse,
    views: CountingViews,
    workspace_id: str,
    clock: Clock,
) -> None:
    store(services, workspace_id, START - timedelta(days=10), name="Old")
    kept = store(services, workspace_id, START - timedelta(days=2), name="Recent")
    warehouse.put_settings(workspace_id, WarehouseSettings(retention_days=7), "tok")

    first = warehouse.sync(workspace_id)

    assert views.expired_before == [START - timedelta(days=7)]
    assert first["events_expired"] == 1
    assert [r["message_id"] for r in services.event_store.rows] == [kept]
    assert "INTERVAL 7 DAY" in views.datasets[dataset_of(workspace_id)]["tracks"]

    clock.advance(hours=22, minutes=59)
    assert warehouse.sync(workspace_id)["events_expired"] == 0
    assert len(views.expired_before) == 1

    clock.advance(minutes=1)
    warehouse.sync(workspace_id)
    assert views.expired_before == [START - timedelta(days=7), clock.now - timedelta(days=7)]


def test_no_retention_deletes_nothing(
    services: FakeServices, warehouse: Warehouse, views: CountingViews, workspace_id: str
) -> None:
    store(services, workspace_id, START - timedelta(days=3000))

    assert warehouse.sync(workspace_id)["events_expired"] == 0
    assert views.expired_before == []
    assert len(services.event_store.rows) == 1
    assert "INTERVAL" not in views.datasets[dataset_of(workspace_id)]["tracks"]


# --- every workspace ---------------------------------------------------------------------


def test_sync_all_syncs_every_workspace_and_reports_the_one_that_failed(
    services: FakeServices, clock: Clock
) -> None:
    a, b, c = (services.workspaces.create(name).id for name in ("A", "B", "C"))
    for workspace in (a, b, c):
        store(services, workspace, START - timedelta(hours=1), name=f"Event of {workspace}")
    views = FailingViews(services, failing=b)
    warehouse = Warehouse(services.store, views, PREFIX, clock)

    result = warehouse.sync_all()

    assert sorted(result["synced"]) == sorted([a, c]) and result["failed"] == [b]
    assert set(views.datasets) == {dataset_of(a), dataset_of(c)}
    assert warehouse.describe(b)["synced_at"] is None
    assert warehouse.describe(a)["in_step"] is True
    # Back up: the failed one catches up at the next run, from where it never synced.
    views.failing = ""
    clock.advance(hours=1)
    assert sorted(warehouse.sync_all()["synced"]) == sorted([a, b, c])
    assert f"event_of_{b.replace('-', '_')}" in views.datasets[dataset_of(b)]


# --- HTTP --------------------------------------------------------------------------------


@pytest.fixture
def events_client() -> Any:
    return function_client("events")


def base(workspace_id: str) -> str:
    return f"/api/v1/workspaces/{workspace_id}/warehouse"


def test_the_routes_answer_over_http(
    events_client: Any, services: FakeServices, tenant: Tenant
) -> None:
    workspace_id, auth = tenant
    store(services, workspace_id, datetime.now(UTC) - timedelta(minutes=1), values={"n": 1})

    got = events_client.get(base(workspace_id), headers=auth)
    put = events_client.put(
        f"{base(workspace_id)}/settings",
        json={"max_event_tables": 10, "max_columns": 20, "retention_days": None},
        headers=auth,
    )
    synced = events_client.post(f"{base(workspace_id)}/sync", headers=auth)

    assert got.status_code == 200 and got.get_json()["in_step"] is False
    assert got.get_json()["dataset"].endswith("_ws_" + workspace_id.replace("-", "_"))
    assert put.status_code == 200
    assert put.get_json()["settings"] == {
        "max_event_tables": 10,
        "max_columns": 20,
        "retention_days": None,
    }
    assert synced.status_code == 200
    body = synced.get_json()
    assert "order_completed" in body["views_rewritten"] and body["in_step"] is True
    assert body["events_observed"] == 1
    after = events_client.get(base(workspace_id), headers=auth).get_json()
    assert after["in_step"] is True and after["synced_at"] == body["synced_at"]


def test_omitted_settings_take_their_defaults(events_client: Any, tenant: Tenant) -> None:
    workspace_id, auth = tenant

    put = events_client.put(
        f"{base(workspace_id)}/settings", json={"retention_days": 30}, headers=auth
    )

    assert put.status_code == 200
    assert put.get_json()["settings"] == {
        "max_event_tables": 200,
        "max_columns": 300,
        "retention_days": 30,
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"max_event_tables": -1}, "max_event_tables"),
        ({"max_event_tables": MAX_EVENT_TABLES + 1}, "max_event_tables"),
        ({"max_columns": MAX_COLUMNS + 1}, "max_columns"),
        ({"max_columns": "10"}, "max_columns"),
        ({"max_columns": True}, "max_columns"),
        ({"retention_days": 0}, "retention_days"),
        ({"retention_days": 1.5}, "retention_days"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_a_bad_settings_put_is_400_naming_the_field(
    events_client: Any, services: FakeServices, tenant: Tenant, body: dict[str, Any], field: str
) -> None:
    workspace_id, auth = tenant

    response = events_client.put(f"{base(workspace_id)}/settings", json=body, headers=auth)

    assert response.status_code == 400
    error = response.get_json()
    assert error["field"] == field and field in error["message"]
    assert services.warehouse.settings(workspace_id) == WarehouseSettings()


def test_another_workspace_s_token_reaches_nothing(
    events_client: Any, services: FakeServices, tenant: Tenant
) -> None:
    workspace_id, _ = tenant
    _, other_auth = tenant_of(services, "Other")

    assert events_client.get(base(workspace_id), headers=other_auth).status_code == 404
    assert (
        events_client.put(
            f"{base(workspace_id)}/settings", json={"max_columns": 1}, headers=other_auth
        ).status_code
        == 404
    )
    assert events_client.post(f"{base(workspace_id)}/sync", headers=other_auth).status_code == 404
    assert events_client.get(base(workspace_id)).status_code == 401
    assert services.warehouse.settings(workspace_id) == WarehouseSettings()
    assert services.warehouse_views.datasets == {}


def test_the_scheduled_sync_is_served_by_the_warehouse_function_only(
    events_client: Any, services: FakeServices, tenant: Tenant
) -> None:
    workspace_id, _ = tenant
    other_id, _ = tenant_of(services, "Other")

    assert events_client.post("/internal/warehouse/sync").status_code == 404
    response = function_client("warehouse").post("/internal/warehouse/sync")

    assert response.status_code == 200
    assert sorted(response.get_json()["synced"]) == sorted([workspace_id, other_id])
    assert response.get_json()["failed"] == []
    assert set(services.warehouse_views.datasets) == {
        services.warehouse.describe(w)["dataset"] for w in (workspace_id, other_id)
    }
    # And the public API is not on the private function.
    assert function_client("warehouse").get(base(workspace_id)).status_code == 404
