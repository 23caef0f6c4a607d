"""Contracts in the console, in Debian's Chromium on the local stack, at a 1440 px desktop and a
390 px phone: the list paged by the server (newest first, "Load more"), searched, archived
contracts hidden until asked for; create a contract in the editor (its schema checked as typed,
with the API's own errors), pinned at the top of the list; see ingested events' violations counted
in the list, and turn the events seen of another name into a contract of their own."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Locator, Page, ViewportSize, expect

from tests.e2e.helpers import Tenant
from tests.e2e.test_console import LAPTOP, PHONE, Watched, browser, console, open_page, sign_in

__all__ = ["browser", "console"]  # fixtures, imported for pytest

pytestmark = pytest.mark.e2e

# The compact form, with a type misspelt on line 4.
MISSPELT = """{
  "properties": {
    "order_id": {"type": "string", "required": true},
    "total": {"type": "numbr", "required": true}
  }
}"""
# Active contracts seeded: more than a page of the list (50), so that "Load more" appears.
SEEDED = 55
ARCHIVED = 3


def shot(console: Watched, name: str, viewport: ViewportSize) -> None:
    """A screenshot, once nothing (a long name, a message) pushes the page wider than the screen."""
    width = console.page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"], f"{name}: the page is {width} px wide"
    console.shot(name)


def seed_contracts(tenant: Tenant) -> None:
    """More active contracts than a page holds, and a few archived ones, through the service
    layer (a second or two), oldest first: archived, then seeded 00 to 54."""
    for index in range(ARCHIVED):
        tenant.services.contracts.create(
            tenant.workspace_id,
            name=f"Archived contract {index}",
            event_type="track",
            event_name=f"Retired {index}",
            schema_definition={"type": "object"},
            status="archived",
        )
    for index in range(SEEDED):
        tenant.services.contracts.create(
            tenant.workspace_id,
            name=f"Seeded contract {index:02d}",
            event_type="track",
            event_name=f"Seeded {index:02d}",
            schema_definition={"type": "object"},
        )


def in_view(page: Page, locator: Locator) -> bool:
    box = locator.bounding_box()
    height = page.viewport_size["height"] if page.viewport_size else 0
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= height


def fill_schema(page: Page, text: str) -> None:
    page.get_by_label("Schema", exact=True).fill(text)


# The phone width in `make reliability`, to keep `make test` short (other browser tests cover
# phones: the warehouse panel, destinations).
@pytest.mark.parametrize(
    ("viewport", "label"),
    [(LAPTOP, "desktop"), pytest.param(PHONE, "phone", marks=pytest.mark.reliability)],
)
def test_create_a_contract_count_its_violations_and_propose_one_from_events_seen(
    console: Watched, tenant: Tenant, viewport: ViewportSize, label: str
) -> None:
    # Events of another name, stored before anything judges them: the events-seen sample.
    viewed = [
        {
            "event": "Product Viewed",
            "userId": f"u{i}",
            "messageId": f"viewed-{label}-{i}",
            "properties": {"sku": f"sku-{i}", "price": 10 + i / 2} | ({"tags": ["a"]} if i else {}),
        }
        for i in range(3)
    ]
    for event in viewed:
        assert tenant.send("track", event).status_code == 200
    seed_contracts(tenant)
    page = console.page
    page.set_viewport_size(viewport)
    sign_in(console, tenant)
    open_page(page, "Contracts")

    # The newest page first, the archived contracts left out, the rest one click away.
    rows = page.get_by_test_id("list-row")
    count = page.get_by_test_id("list-count")
    expect(count).to_have_text(f"Showing 50 of {SEEDED} contracts, newest first")
    expect(rows).to_have_count(50)
    expect(rows.first).to_contain_text(f"Seeded contract {SEEDED - 1}")
    expect(rows.last).to_contain_text(f"Seeded contract {SEEDED - 50:02d}")
    page.get_by_role("button", name="Load 50 more contracts").click()
    expect(rows).to_have_count(SEEDED)
    expect(count).to_have_text(f"{SEEDED} contracts, newest first")
    expect(page.get_by_role("button", name=re.compile("^Load .* more"))).to_have_count(0)
    search = page.get_by_label("Search contracts by name")
    search.fill("ARCHIVED")
    expect(page.get_by_text("No contracts match.")).to_be_visible()
    page.get_by_label("Show archived contracts").check()
    expect(rows).to_have_count(ARCHIVED)
    expect(rows.first).to_contain_text(f"Archived contract {ARCHIVED - 1}")
    expect(rows.first.get_by_text("archived", exact=True)).to_be_visible()
    shot(console, f"contracts-archived-{label}", viewport)
    search.fill("contract 07")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Seeded contract 07")
    page.get_by_label("Show archived contracts").uncheck()
    search.fill("")
    expect(count).to_have_text(f"Showing 50 of {SEEDED} contracts, newest first")

    page.get_by_role("button", name="New contract").click()
    editor = page.get_by_role("region", name="New contract")
    expect(editor.get_by_role("heading", name="New contract")).to_be_focused()
    editor.get_by_label("Name", exact=True).fill("Checkout " + "x" * 180)
    editor.get_by_label("Event name").fill("Checkout Done")
    check = editor.get_by_test_id("schema-check")
    fill_schema(page, '{\n  "properties": {\n    "total": {"type": "number",\n')
    expect(check).to_have_text(re.compile(r"^Not valid JSON: .*\(line 4, column 1\)$"))
    fill_schema(page, MISSPELT)
    expect(check).to_contain_text("schema_definition.properties.total.type: unknown type 'numbr'")
    expect(check).to_contain_text("(line 4)")
    expect(editor.get_by_role("button", name="Create contract")).to_be_disabled()
    shot(console, f"contracts-editor-error-{label}", viewport)
    fill_schema(page, MISSPELT.replace("numbr", "number"))
    expect(check).to_have_text("Valid compact form.")
    editor.get_by_role("button", name="Create contract").click()
    detail = page.get_by_role("region", name=re.compile("^Checkout x"))
    expect(detail.get_by_role("status").filter(has_text="created (version 1)")).to_be_visible()
    expect(detail.get_by_role("heading", level=2)).to_be_focused()
    # Its confirmation in view, its row at the top of the list, right under it.
    assert in_view(page, detail.get_by_role("status").filter(has_text="created (version 1)"))
    expect(rows.first).to_contain_text("Checkout " + "x" * 180)
    expect(count).to_have_text(f"Showing 51 of {SEEDED + 1} contracts, newest first")
    shot(console, f"contracts-created-{label}", viewport)

    time.sleep(1.5)  # past process's contract cache
    for i in range(2):
        body = {
            "event": "Checkout Done",
            "userId": f"u{i}",
            "messageId": f"checkout-{label}-{i}",
            "properties": {"order_id": "o1", "total": "ten"},
        }
        assert tenant.send("track", body).status_code == 200
    for i in range(2):
        tenant.trace(f"checkout-{label}-{i}", until="stored")
    open_page(page, "Sources")
    open_page(page, "Contracts")
    row = page.get_by_role("row", name=re.compile("^Checkout x"))
    expect(row.get_by_test_id("violation-count")).to_have_text("2")
    shot(console, f"contracts-list-{label}", viewport)

    for i in range(len(viewed)):
        tenant.trace(f"viewed-{label}-{i}", until="stored")
    page.get_by_role("button", name="New contract").click()
    editor = page.get_by_role("region", name="New contract")
    editor.get_by_label("Name", exact=True).fill("Product viewed")
    editor.get_by_label("Event name").fill("Product Viewed")
    seen = editor.get_by_role("complementary", name="Events seen")
    seen.get_by_role("button", name="Propose a schema").click()
    expect(seen.get_by_test_id("proposal-summary")).to_contain_text("3 events sampled")
    fields = seen.get_by_role("table", name="Fields of properties")
    expect(fields.get_by_role("row", name=re.compile(r"^tags array 2 no"))).to_be_visible()
    expect(fields.get_by_role("row", name=re.compile(r"^price number 3 yes"))).to_be_visible()
    seen.get_by_role("button", name="Use this schema").click()
    expect(check).to_have_text("Valid compact form.")
    expect(page.get_by_label("Schema", exact=True)).to_have_value(re.compile('"sku"'))
    shot(console, f"contracts-proposal-{label}", viewport)
    editor.get_by_role("button", name="Create contract").click()
    expect(page.get_by_role("heading", level=2, name="Product viewed")).to_be_focused()

    # The whole list, oldest first, as the seed's clients read it.
    saved = [
        c
        for c in tenant.api("GET", "/event-contracts").json()
        if not c["name"].startswith(("Seeded", "Archived"))
    ]
    proposed = next(c for c in saved if c["name"] == "Product viewed")
    assert proposed["event_name"] == "Product Viewed"
    assert proposed["schema_definition"]["properties"]["sku"] == {
        "type": "string",
        "required": True,
    }
    assert [c["name"][:8] for c in saved] == ["Checkout", "Product "]
