"""Warehouse API: the workspace's Segment-compatible BigQuery tables, their column types and
conflicts, the caps and retention, and a sync on demand (served by the events function).

The private `warehouse` function serves the scheduled sync of every workspace
(INTERNAL_ROUTES, invoked by Cloud Scheduler with an ID token that Cloud Run checks).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from shared.api.models import Input, Timestamp
from shared.domain.warehouse import (
    MAX_COLUMNS,
    MAX_EVENT_TABLES,
    MAX_RETENTION_DAYS,
    WarehouseSettings,
)
from shared.http.request import ApiRequest
from shared.http.routing import Route

FUNCTION = "events"
BASE = "/api/v1/workspaces/{workspace_id}/warehouse"
TAG = "Warehouse"
ColumnTypeName = Literal["STRING", "TIMESTAMP", "INT64", "FLOAT64", "BOOL", "JSON"]


class WarehouseSettingsBody(Input):
    """The whole settings: they replace the current ones (an omitted one takes its default)."""

    max_event_tables: int = Field(
        200,
        ge=0,
        le=MAX_EVENT_TABLES,
        strict=True,
        description="per-event tables at most, the first-seen events first; later events are "
        "only in `tracks` (their properties in its `properties` JSON column)",
    )
    max_columns: int = Field(
        300,
        ge=0,
        le=MAX_COLUMNS,
        strict=True,
        description="property or trait columns per table at most, the first-seen keys first; "
        "the rest stay queryable in the table's `properties` or `traits` JSON column",
    )
    retention_days: int | None = Field(
        None,
        ge=1,
        le=MAX_RETENTION_DAYS,
        strict=True,
        description="days of events the workspace keeps (null: unlimited); older ones leave "
        "every view at once and are deleted from the events table at the next daily sync",
    )


class WarehouseColumn(BaseModel):
    name: str = Field(description="the column, Segment's snake_case of the key")
    key: str = Field(description="the property or trait as sent")
    type: ColumnTypeName
    typed_by: Literal["contract", "data"]
    seen_types: list[ColumnTypeName] = Field(description="the types of the values seen")
    conflict: bool = Field(description="values of a type the column does not hold were seen")


class WarehouseTable(BaseModel):
    name: str
    kind: Literal["tracks", "event", "pages", "screens", "identifies", "groups", "aliases", "users"]
    event_text: str | None = Field(description="the track event a per-event table holds")
    contract_id: str | None = Field(description="the contract typing its columns, if any")
    columns: list[WarehouseColumn] = Field(description="property or trait columns")
    folded: list[str] = Field(
        description="keys past the column cap or unfit for a column name (quotes, backslashes): "
        "in the JSON column only"
    )


class WarehouseConflict(BaseModel):
    table: str
    column: str
    key: str
    type: ColumnTypeName
    typed_by: Literal["contract", "data"]
    seen_types: list[ColumnTypeName]
    values_not_fitting: str = Field(description="where the values the column does not hold are")


class WarehouseObject(BaseModel):
    """The warehouse as the settings, contracts and events seen make it now."""

    dataset: str = Field(description="the BigQuery dataset holding the workspace's views")
    settings: WarehouseSettingsBody
    synced_at: Timestamp | None = Field(description="the last sync's end (null: never synced)")
    in_step: bool = Field(
        description="whether the views are as below (false until the next sync after a change "
        "of settings or contracts)"
    )
    tables: list[WarehouseTable]
    folded_events: list[str] = Field(description="track events past the table cap")
    conflicts: list[WarehouseConflict]


class WarehouseSyncObject(WarehouseObject):
    events_observed: int = Field(description="events read to infer types (a sample per event)")
    views_rewritten: list[str]
    views_dropped: list[str]
    events_expired: int = Field(description="events deleted for the retention")


class SyncAllObject(BaseModel):
    synced: list[str]
    failed: list[str]


def get_warehouse(request: ApiRequest) -> dict[str, Any]:
    return request.services.warehouse.describe(request.workspace_id)


def put_settings(request: ApiRequest) -> dict[str, Any]:
    body: WarehouseSettingsBody = request.body
    assert request.token is not None
    settings = WarehouseSettings(body.max_event_tables, body.max_columns, body.retention_days)
    return request.services.warehouse.put_settings(request.workspace_id, settings, request.token.id)


def sync(request: ApiRequest) -> dict[str, Any]:
    return request.services.warehouse.sync(request.workspace_id)


def sync_all(request: ApiRequest) -> dict[str, Any]:
    return request.services.warehouse.sync_all()


ROUTES = (
    Route(
        "GET",
        BASE,
        FUNCTION,
        "getWarehouse",
        "The workspace's warehouse tables, column types, conflicts and folds",
        get_warehouse,
        response=WarehouseObject,
        tag=TAG,
    ),
    Route(
        "PUT",
        f"{BASE}/settings",
        FUNCTION,
        "updateWarehouseSettings",
        "Replace the warehouse's caps and retention (the views follow at the next sync)",
        put_settings,
        body=WarehouseSettingsBody,
        response=WarehouseObject,
        tag=TAG,
    ),
    Route(
        "POST",
        f"{BASE}/sync",
        FUNCTION,
        "syncWarehouse",
        "Sync the warehouse now: observe the events since the last sync, rewrite changed views",
        sync,
        body_required=False,
        response=WarehouseSyncObject,
        tag=TAG,
    ),
)

INTERNAL_ROUTES = (
    Route(
        "POST",
        "/internal/warehouse/sync",
        "warehouse",
        "syncEveryWarehouse",
        "Sync every workspace's warehouse (Cloud Scheduler, hourly)",
        sync_all,
        auth="none",
        body_required=False,
        response=SyncAllObject,
        tag=TAG,
    ),
)
