"""The console's investigation pages in Chromium, at a 1440 px desktop and a 390 px phone:
dead letters and quarantined events (payload, violations, trace beside the list or under the
row, replay controls in view, the list after a replay), volume per hour and per day (loading
and error states, a source filter, the peak named), and transformations (their list paged and
searched; tests without expected output, recent events narrowed, before/after and console output,
unsaved code guarded).

Screenshots go to tests/e2e/screenshots/investigation-*.png."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Locator, Page, Route, ViewportSize, expect

from emulators.dev import LocalStack
from shared.domain.event import CanonicalEvent
from shared.domain.storage import event_row
from tests.e2e.helpers import Tenant, wait_until
from tests.e2e.test_console import PHONE, SCREENSHOTS, Watched, open_page, sign_in
from tests.e2e.test_console import browser as browser  # the fixture, for this module's tests
from tests.webhook_receiver import webhook_receiver

pytestmark = pytest.mark.e2e

DESKTOP: ViewportSize = {"width": 1440, "height": 900}
# Each screen in a zone of its own, so that zone labels and daily buckets are really checked.
DESKTOP_ZONE = "Europe/Paris"
PHONE_ZONE = "Asia/Kolkata"
DEAD_LETTERS = 40
# Transformations seeded beside the test's own: more than a page of the list.
SEEDED_TRANSFORMATIONS = 50
BLOCKED = 3
# How Chromium (en-US) names Paris's winter zone, and Kolkata's.
PARIS_SHOWN = re.compile(r"GMT\+1|CET")
VOLUME_REQUEST = re.compile(r"/events/volume\?")

Screen = Callable[[ViewportSize, str], Watched]


@pytest.fixture
def screen(browser: Browser, local_stack: LocalStack) -> Iterator[Screen]:
    """Opens a browser context of the given size and time zone; each is checked for script and
    Content-Security-Policy errors when the test ends."""
    opened: list[tuple[Any, Watched]] = []

    def open_screen(viewport: ViewportSize, zone: str) -> Watched:
        context = browser.new_context(
            viewport=viewport, timezone_id=zone, base_url=local_stack.gateway_url
        )
        watched = Watched(context.new_page())
        opened.append((context, watched))
        return watched

    yield open_screen
    for context, watched in opened:
        context.close()
        assert watched.errors == []


def in_viewport(page: Page, locator: Locator) -> bool:
    box = locator.bounding_box()
    height = page.viewport_size["height"] if page.viewport_size else 0
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= height


def viewport_shot(watched: Watched, name: str) -> None:
    """What the screen shows now (a full-page shot cannot show what sticks in view)."""
    watched.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def no_sideways_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.evaluate("window.innerWidth"), f"the page is {width} px wide"


def stored_event(
    tenant: Tenant, message_id: str, name: str, at: datetime, source_id: str, **properties: Any
) -> CanonicalEvent:
    moment = at.isoformat().replace("+00:00", "Z")
    return {
        "messageId": message_id,
        "workspaceId": tenant.workspace_id,
        "sourceId": source_id,
        "type": "track",
        "event": name,
        "userId": "u1",
        "timestamp": moment,
        "receivedAt": moment,
        "properties": properties,
    }


def store(tenant: Tenant, events: list[CanonicalEvent]) -> None:
    """Put events in BigQuery at once (received when they say), as process would have."""
    tenant.services.event_store.insert(
        [event_row(e) for e in events], [e["messageId"] for e in events]
    )


def second_source(tenant: Tenant, name: str) -> str:
    created = tenant.api("POST", "/event-keys", json={"name": name})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


# --- dead letters and quarantine -----------------------------------------------------------


def test_dead_letters_and_quarantined_events_investigated_and_replayed(
    screen: Screen, tenant: Tenant
) -> None:
    contract = tenant.contract("Added To Cart", "sku", "block", "string", "Cart needs a SKU")
    with webhook_receiver(status=400) as receiver:  # a 4xx is final: dead-lettered at once
        destination_id = tenant.webhook(receiver.url)
        tenant.rule(destination_id, event_types=["track"], event_names=["Checkout Failed"])
        failed = [
            {"type": "track", "event": "Checkout Failed", "userId": "u1", "messageId": f"dl-{i}"}
            for i in range(DEAD_LETTERS)
        ]
        blocked = [
            {
                "type": "track",
                "event": "Added To Cart",
                "userId": "u1",
                "messageId": f"blocked-{i}",
                "properties": {"price": 10 + i},
            }
            for i in range(BLOCKED)
        ]
        assert tenant.send("batch", {"batch": failed + blocked}).status_code == 200

        def dead_lettered() -> list[dict[str, Any]]:
            letters = tenant.api("GET", "/dead-letters", params={"limit": 200}).json()
            return list(letters) if len(letters) == DEAD_LETTERS else []

        letters = wait_until(dead_lettered, timeout=60)
        assert len(letters) == DEAD_LETTERS
        for i in range(BLOCKED):
            tenant.trace(f"blocked-{i}", until="blocked")
        record_ids = {letter["id"] for letter in letters}

        desktop = screen(DESKTOP, DESKTOP_ZONE)
        page = sign_in(desktop, tenant)
        open_page(page, "Dead letters & quarantine")
        expect(page.get_by_text("From (Europe/Paris)")).to_be_visible()
        rows = page.get_by_test_id("dead-letter")
        expect(rows).to_have_count(DEAD_LETTERS)
        expect(rows.first).to_contain_text(PARIS_SHOWN)  # the zone of every time shown

        # The trace opens beside the list, in view, however far down the row is.
        rows.nth(DEAD_LETTERS - 5).get_by_role("button").click()
        chosen = rows.nth(DEAD_LETTERS - 5).get_by_role("button").inner_text().split(":")[0]
        detail = page.get_by_role("region", name=f"Trace of {chosen}")
        expect(detail).to_contain_text("dead lettered")
        expect(detail).to_contain_text("HTTP 400")
        list_box = page.get_by_role("region", name=re.compile("^Dead letters")).bounding_box()
        detail_box = detail.bounding_box()
        assert list_box and detail_box
        assert detail_box["x"] >= list_box["x"] + list_box["width"], "the trace is beside the list"
        assert in_viewport(page, detail.get_by_role("heading", level=2))
        dry_run = page.get_by_role("button", name="Dry run")
        assert in_viewport(page, dry_run), "the replay controls stay in view"
        desktop.shot("investigation-dead-letters-desktop")
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        assert in_viewport(page, dry_run), "the replay controls stay in view at the bottom"
        viewport_shot(desktop, "investigation-dead-letters-scrolled-desktop")

        # The dry run names message ids, never the records' internal ids.
        receiver.status = 200
        dry_run.click()
        result = page.get_by_test_id("dry-run-result")
        expect(result).to_contain_text(f"{DEAD_LETTERS} dead letters would be replayed")
        expect(result).to_contain_text("Would replay: dl-")
        assert not any(record_id in result.inner_text() for record_id in record_ids)
        assert receiver.delivered() == [], "a dry run sends nothing"
        page.get_by_role("button", name=f"Replay {DEAD_LETTERS} dead letters").click()
        expect(page.get_by_test_id("replay-result")).to_have_text(
            f"Replayed {DEAD_LETTERS} dead letters."
        )
        receiver.wait_for(DEAD_LETTERS)
        # Re-queried: every status shown, the replayed ones marked and replayed.
        expect(page.get_by_label("Status")).to_have_value("")
        expect(rows.filter(has_text="just replayed")).to_have_count(DEAD_LETTERS)
        expect(rows.filter(has_text="dead lettered")).to_have_count(0)
        desktop.shot("investigation-dead-letters-replayed-desktop")

    # Quarantine: listed by message id, with the payload, the violations and the trace.
    page.get_by_role("tab", name="Quarantine").click()
    held = page.get_by_test_id("quarantined")
    expect(held).to_have_count(BLOCKED)
    held.filter(has_text="blocked-1").get_by_role("button").click()
    detail = page.get_by_role("region", name="Quarantined blocked-1")
    violations = detail.get_by_role("list", name="Violations that blocked it")
    expect(violations).to_contain_text("Cart needs a SKU")
    expect(violations).to_contain_text("sku")
    expect(detail.get_by_label("Payload of blocked-1")).to_contain_text('"price": 11')
    expect(detail.locator("ol.trace")).to_contain_text("blocked")  # a stage of its trace
    page.get_by_role("button", name="Dry run").click()
    result = page.get_by_test_id("dry-run-result")
    expect(result).to_contain_text("0 events would be replayed")
    expect(result.get_by_role("list", name="Skipped")).to_contain_text("blocked-0: still blocked")
    desktop.shot("investigation-quarantine-desktop")

    # Once the contract only warns, the replay lets them through; the list shows it.
    updated = tenant.api(
        "PUT", f"/event-contracts/{contract['id']}", json={"enforcement_mode": "warn"}
    )
    assert updated.status_code == 200, updated.text
    page.get_by_role("button", name="Dry run").click()
    expect(result).to_contain_text(f"{BLOCKED} events would be replayed")
    page.get_by_role("button", name=f"Replay {BLOCKED} events").click()
    expect(page.get_by_test_id("replay-result")).to_have_text(f"Replayed {BLOCKED} events.")
    expect(held.filter(has_text="just replayed")).to_have_count(BLOCKED)
    expect(held.filter(has_text="quarantined")).to_have_count(0)
    tenant.trace("blocked-2", until="stored")

    # A phone: the detail opens under the selected row; the replay controls stick to the bottom.
    phone = screen(PHONE, PHONE_ZONE)
    page = sign_in(phone, tenant)
    open_page(page, "Dead letters & quarantine")
    # Chromium names Kolkata by its older name, Calcutta.
    expect(page.get_by_text(re.compile(r"From \(Asia/(Calcutta|Kolkata)\)"))).to_be_visible()
    page.get_by_label("Status").select_option(label="any")
    rows = page.get_by_test_id("dead-letter")
    expect(rows).to_have_count(DEAD_LETTERS)
    row = rows.nth(10)
    row.get_by_role("button").click()
    detail = page.get_by_test_id("dead-letter-detail")
    expect(detail).to_contain_text("replayed")
    row_box, detail_box = row.bounding_box(), detail.bounding_box()
    assert row_box and detail_box
    assert 0 <= detail_box["y"] - (row_box["y"] + row_box["height"]) < 40, "under the row"
    row.scroll_into_view_if_needed()
    viewport_shot(phone, "investigation-dead-letter-detail-phone")
    page.evaluate("window.scrollBy(0, 3000)")
    dock = page.get_by_role("button", name="Dry run")
    expect(dock).to_be_visible()
    assert in_viewport(page, dock), "the replay controls stay in view on a phone"
    viewport_shot(phone, "investigation-dead-letters-scrolled-phone")
    no_sideways_scroll(page)
    phone.shot("investigation-dead-letters-phone")
    page.get_by_role("tab", name="Quarantine").click()
    page.get_by_label("Status").select_option(label="any")
    page.get_by_test_id("quarantined").filter(has_text="blocked-0").get_by_role("button").click()
    expect(page.get_by_label("Payload of blocked-0")).to_contain_text("Added To Cart")
    no_sideways_scroll(page)
    phone.shot("investigation-quarantine-phone")


# --- volume ---------------------------------------------------------------------------------


def test_volume_per_hour_and_per_day_with_loading_error_and_a_source(
    screen: Screen, tenant: Tenant
) -> None:
    mobile = second_source(tenant, "Mobile app")
    # More than a page of the list (50), drafts and active ones alike (nothing hides either).
    for index in range(SEEDED_TRANSFORMATIONS):
        tenant.services.transformations.create(
            tenant.workspace_id,
            name=f"Seeded transformation {index:02d}",
            source_code="function transform(event) { return event; }",
            status="draft" if index % 2 else "active",
        )
    now = datetime.now(UTC)
    orders = [
        stored_event(
            tenant,
            f"o-{d}-{n}",
            "Order Completed",
            now - timedelta(days=d, minutes=5),
            tenant.source_id,
        )
        for d in range(7)
        for n in range(d + 1)
    ]
    signups = [
        stored_event(tenant, f"s-{n}", "Signed Up", now - timedelta(minutes=10), mobile)
        for n in range(3)
    ]
    store(tenant, orders + signups)

    desktop = screen(DESKTOP, DESKTOP_ZONE)
    page = sign_in(desktop, tenant)
    open_page(page, "Volume")
    heading = page.get_by_role("heading", level=2, name=re.compile("^Events per"))
    expect(heading).to_contain_text("Events per hour, last 24 hours")
    expect(page.get_by_test_id("volume-total")).to_have_text("4 events")
    expect(page.get_by_test_id("peak").first).to_contain_text("at ")
    expect(page.get_by_test_id("peak").first).to_contain_text(PARIS_SHOWN)

    # Loading 7 days: the last answer stays under its own title, dimmed, until the new one.
    held: list[Route] = []
    page.route(VOLUME_REQUEST, lambda route: held.append(route))
    page.get_by_label("Window").select_option(label="Last 7 days")
    loading = page.get_by_role("status").filter(has_text="Counting events per day")
    expect(loading).to_contain_text("for the last 7 days")
    wait_until(lambda: held, timeout=10)
    expect(heading).to_contain_text("Events per hour, last 24 hours")
    expect(page.get_by_test_id("volume-view")).to_have_class(re.compile("stale"))
    desktop.shot("investigation-volume-loading-desktop")
    held[0].continue_()
    page.unroute(VOLUME_REQUEST)
    expect(heading).to_contain_text("Events per day, last 7 days")
    expect(page.get_by_test_id("volume-total")).to_have_text("31 events")
    orders_row = page.get_by_role("row", name=re.compile("Order Completed"))
    expect(orders_row).to_contain_text("28")
    peak_day = (now - timedelta(days=6, minutes=5)).astimezone(ZoneInfo(DESKTOP_ZONE)).date()
    expect(orders_row.get_by_test_id("peak")).to_contain_text("7 on")
    expect(orders_row.get_by_test_id("peak").locator("time")).to_have_attribute(
        "datetime", peak_day.isoformat()
    )
    expect(page.get_by_role("columnheader", name="Peak day")).to_be_visible()
    desktop.shot("investigation-volume-days-desktop")

    # An error is said, with a way to try again, and no stale chart pretends to answer.
    page.route(
        VOLUME_REQUEST,
        lambda route: route.fulfill(
            status=503,
            headers={"Retry-After": "1"},
            json={
                "code": 503,
                "error": "unavailable",
                "message": "BigQuery is unavailable",
                "field": None,
                "details": None,
            },
        ),
    )
    page.get_by_role("button", name="Refresh").click()
    error = page.get_by_test_id("volume-error")
    expect(error).to_contain_text("BigQuery is unavailable")
    expect(page.get_by_test_id("volume-view")).to_have_count(0)
    desktop.shot("investigation-volume-error-desktop")
    page.unroute(VOLUME_REQUEST)
    error.get_by_role("button", name="Try again").click()
    expect(page.get_by_test_id("volume-total")).to_have_text("31 events")

    # One source, found by name; the counts are the server's for that source alone.
    page.get_by_label("Find a source").fill("Mobile")
    source = page.get_by_label("Source", exact=True)
    expect(source.locator("option", has_text="Mobile app")).to_have_count(1)
    source.select_option(label="Mobile app")
    expect(page.get_by_test_id("volume-total")).to_have_text("3 events")
    expect(page.get_by_role("row", name=re.compile("Order Completed"))).to_have_count(0)

    phone = screen(PHONE, PHONE_ZONE)
    page = sign_in(phone, tenant)
    open_page(page, "Volume")
    page.get_by_label("Window").select_option(label="Last 30 days")
    expect(page.get_by_test_id("volume-total")).to_have_text("31 events")
    expect(page.get_by_text("Days from midnight in Asia/")).to_be_visible()
    no_sideways_scroll(page)
    phone.shot("investigation-volume-phone")


# --- transformations ------------------------------------------------------------------------

TIERING = """function transform(event) {
  console.log('checked ' + event.messageId);
  if (event.properties && event.properties.total > 100) {
    event.properties.tier = 'high_value';
  }
  return event;
}
"""


def test_transformation_tests_show_each_event_and_unsaved_code_is_guarded(
    screen: Screen, tenant: Tenant
) -> None:
    mobile = second_source(tenant, "Mobile app")
    # More than a page of the list (50), drafts and active ones alike (nothing hides either).
    for index in range(SEEDED_TRANSFORMATIONS):
        tenant.services.transformations.create(
            tenant.workspace_id,
            name=f"Seeded transformation {index:02d}",
            source_code="function transform(event) { return event; }",
            status="draft" if index % 2 else "active",
        )
    now = datetime.now(UTC)
    store(
        tenant,
        [
            stored_event(
                tenant,
                f"tx-{total}",
                "Order Completed",
                now - timedelta(minutes=n),
                tenant.source_id,
                total=total,
            )
            for n, total in enumerate([500, 50, 150])
        ]
        + [
            stored_event(tenant, f"su-{n}", "Signed Up", now - timedelta(minutes=10 + n), mobile)
            for n in range(2)
        ],
    )
    created = tenant.api(
        "POST",
        "/event-transformations",
        json={
            "name": "Tiering",
            "source_code": TIERING,
            "test_input": {
                "type": "track",
                "event": "Order Completed",
                "messageId": "t-1",
                "properties": {"total": 150},
            },
        },
    )
    assert created.status_code == 201, created.text

    desktop = screen(DESKTOP, DESKTOP_ZONE)
    page = sign_in(desktop, tenant)
    open_page(page, "Transformations")
    # The list: newest first, a page at a time, searched by the server.
    listed = page.get_by_role("region", name="Transformations", exact=True)
    rows = listed.get_by_test_id("list-row")
    count = listed.get_by_test_id("list-count")
    total = SEEDED_TRANSFORMATIONS + 1
    expect(count).to_have_text(f"Showing 50 of {total} transformations, newest first")
    expect(rows.first).to_contain_text("Tiering")
    listed.get_by_role("button", name="Load 50 more transformations").click()
    expect(rows).to_have_count(total)
    expect(rows.last).to_contain_text("Seeded transformation 00")
    listed.get_by_label("Search transformations by name").fill("TIER")
    expect(rows).to_have_count(1)
    page.get_by_role("button", name=re.compile("^Tiering")).click()
    page.get_by_role("button", name="Run test").click()
    result = page.get_by_test_id("test-result")
    expect(result.get_by_role("heading", level=3)).to_contain_text("no expected output")
    expect(result.get_by_role("heading", level=3)).not_to_contain_text("passed")
    expect(result.get_by_test_id("no-expected")).to_contain_text("no expected output to compare")
    expect(result).to_contain_text("checked t-1")

    # Recent events of one name: each with its changes, before and after, and console output.
    page.get_by_label("Event name").fill("Order Completed")
    page.get_by_role("button", name="Test on recent events").click()
    expect(result.get_by_test_id("recent-summary")).to_have_text(
        "3 events run: 2 changed, 0 dropped, 0 failed."
    )
    runs = result.get_by_test_id("recent-run")
    expect(runs).to_have_count(3)
    newest = runs.first
    expect(newest.get_by_role("table", name="Changes to tx-500")).to_contain_text("properties.tier")
    expect(newest.get_by_label("Before: tx-500")).not_to_contain_text("high_value")
    expect(newest.get_by_label("After: tx-500")).to_contain_text("high_value")
    expect(newest).to_contain_text("checked tx-500")
    desktop.shot("investigation-transformation-recent-desktop")

    # One source instead (found by its name).
    page.get_by_label("Event name").fill("")
    page.get_by_label("Find a source").fill("Mobile")
    source = page.get_by_label("Source", exact=True)
    expect(source.locator("option", has_text="Mobile app")).to_have_count(1)
    source.select_option(label="Mobile app")
    page.get_by_role("button", name="Test on recent events").click()
    expect(result.get_by_test_id("recent-summary")).to_have_text(
        "2 events run: 0 changed, 0 dropped, 0 failed."
    )
    expect(runs.first).to_contain_text("The code returned the event unchanged")

    # Unsaved code: leaving asks, whether by a link or by closing the tab.
    code = page.get_by_label("Code", exact=True)
    code.fill(TIERING + "// keep me\n")
    expect(page.get_by_test_id("unsaved")).to_be_visible()
    prevented = page.evaluate(
        "() => { const e = new Event('beforeunload', { cancelable: true });"
        " window.dispatchEvent(e); return e.defaultPrevented; }"
    )
    assert prevented is True, "closing the tab asks first"
    questions: list[str] = []

    def answer(accept: bool) -> Callable[[Any], None]:
        def respond(dialog: Any) -> None:
            questions.append(dialog.message)
            if accept:
                dialog.accept()
            else:
                dialog.dismiss()

        return respond

    page.once("dialog", answer(False))
    page.get_by_role("navigation").get_by_role("link", name="Volume").click()
    wait_until(lambda: questions, timeout=5)
    expect(page.get_by_role("heading", level=1)).to_have_text("Transformations")
    expect(code).to_have_value(re.compile("// keep me"))
    assert page.url.endswith("#/transformations")
    desktop.shot("investigation-transformation-unsaved-desktop")
    page.once("dialog", answer(True))
    page.get_by_role("navigation").get_by_role("link", name="Volume").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Volume")
    assert len(questions) == 2 and "unsaved changes" in questions[0]

    phone = screen(PHONE, PHONE_ZONE)
    page = sign_in(phone, tenant)
    open_page(page, "Transformations")
    page.get_by_role("button", name=re.compile("^Tiering")).click()
    # The editor, under 50 rows of the list, is brought into view.
    wait_until(lambda: in_viewport(page, page.get_by_role("heading", name="Edit Tiering")), 5)
    phone.shot("investigation-transformation-opened-phone")
    page.get_by_label("Event name").fill("Order Completed")
    page.get_by_role("button", name="Test on recent events").click()
    expect(page.get_by_test_id("recent-run")).to_have_count(3)
    no_sideways_scroll(page)
    phone.shot("investigation-transformation-recent-phone")
