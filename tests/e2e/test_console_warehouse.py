"""The warehouse panel of the Contracts page, in Debian's Chromium on the local stack: events
whose `price` is sent as a number and as text reach BigQuery through the pipeline; **Sync now**
makes the views and shows the conflict (a failed sync says why); settings the API refuses show
the error under their field, and saved ones are there after a reload. Run at a 390 px phone
(the panel's tables and form must fit it), then read at a 1440 px desktop."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import ViewportSize, expect

from tests.e2e.helpers import Tenant
from tests.e2e.test_console import LAPTOP, PHONE, Watched, browser, console, open_page, sign_in

__all__ = ["browser", "console"]  # fixtures, imported for pytest

pytestmark = pytest.mark.e2e


def shot(console: Watched, name: str, viewport: ViewportSize) -> None:
    """A screenshot, once nothing pushes the page wider than the screen."""
    width = console.page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"], f"{name}: the page is {width} px wide"
    console.shot(name)


def test_sync_the_warehouse_see_a_conflict_and_save_its_settings(
    console: Watched, tenant: Tenant
) -> None:
    prices = [10, "ten", 12]
    for index, price in enumerate(prices):
        body = {
            "event": "Order Completed",
            "userId": f"u{index}",
            "messageId": f"order-{index}",
            "properties": {"price": price, "order_id": f"o{index}"},
        }
        assert tenant.send("track", body).status_code == 200
    # A sync reads BigQuery: every event must be stored there first.
    for index in range(len(prices)):
        tenant.trace(f"order-{index}", until="stored")

    page = console.page
    page.set_viewport_size(PHONE)
    sign_in(console, tenant)
    open_page(page, "Contracts")
    panel = page.get_by_role("region", name="Warehouse")
    expect(panel.get_by_test_id("warehouse-facts")).to_contain_text("never")
    expect(panel.get_by_test_id("no-conflicts")).to_be_visible()

    # A failed sync says why, in the panel.
    failing = "**/warehouse/sync"
    page.route(
        failing,
        lambda route: route.fulfill(
            status=503,
            content_type="application/json",
            body='{"message": "BigQuery is unavailable: try again"}',
        ),
    )
    panel.get_by_role("button", name="Sync now").click()
    expect(panel.get_by_role("alert")).to_have_text(
        "The sync failed: BigQuery is unavailable: try again"
    )
    page.unroute(failing)

    panel.get_by_role("button", name="Sync now").click()
    expect(panel.get_by_role("status").filter(has_text="Synced:")).to_contain_text(
        "3 events observed"
    )
    conflict = panel.get_by_role("table", name=re.compile("^Conflicts")).get_by_role(
        "row", name=re.compile(r"\bprice\b")
    )
    expect(conflict).to_have_count(1)
    cells = conflict.get_by_role("cell")
    expect(cells.nth(0)).to_have_text("order_completed")
    expect(cells.nth(1)).to_have_text("price")  # the key, as sent
    # Kept as text: the numbers fit a STRING column, and no contract types it.
    expect(cells.nth(2)).to_have_text("STRING")
    expect(cells.nth(3)).to_have_text("data")
    expect(cells.nth(4)).to_have_text("INT64, STRING")
    expect(cells.nth(5)).to_have_text("in the column, as text")
    expect(panel.get_by_test_id("warehouse-in-step")).to_have_text("in step")
    expect(panel.get_by_test_id("warehouse-facts")).not_to_contain_text("never")
    shot(console, "warehouse-synced-phone", PHONE)

    columns = panel.get_by_label("Columns per table at most")
    columns.fill("10000")
    panel.get_by_role("button", name="Save warehouse settings").click()
    expect(columns).to_have_attribute("aria-invalid", "true")
    expect(panel.locator("#warehouse-max-columns-error")).to_have_text("must be at most 9000")
    expect(panel.get_by_role("alert").filter(has_text="Not saved")).to_be_visible()
    shot(console, "warehouse-settings-error-phone", PHONE)

    panel.get_by_label("Per-event tables at most").fill("50")
    columns.fill("120")
    panel.get_by_label("Retention in days").fill("90")
    panel.get_by_role("button", name="Save warehouse settings").click()
    expect(panel.get_by_role("status").filter(has_text="Saved")).to_be_visible()
    expect(columns).not_to_have_attribute("aria-invalid", "true")
    # A new retention changes every view's SQL: out of step until the next sync.
    expect(panel.get_by_test_id("warehouse-in-step")).to_have_text("out of step")

    page.set_viewport_size(LAPTOP)
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("Contracts")
    panel = page.get_by_role("region", name="Warehouse")
    expect(panel.get_by_label("Per-event tables at most")).to_have_value("50")
    expect(panel.get_by_label("Columns per table at most")).to_have_value("120")
    expect(panel.get_by_label("Retention in days")).to_have_value("90")
    expect(panel.get_by_role("row", name=re.compile(r"\bprice\b"))).to_have_count(1)
    shot(console, "warehouse-desktop", LAPTOP)
    settings = tenant.api("GET", "/warehouse").json()["settings"]
    assert settings == {"max_event_tables": 50, "max_columns": 120, "retention_days": 90}
