"""The console's Live debugger shows what just happened and every outcome (issue 24 item 1), at a
laptop's and a phone's width, in Debian's Chromium."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
import requests
from playwright.sync_api import Browser, ViewportSize, expect

from emulators.dev import LocalStack
from tests.e2e.helpers import Tenant
from tests.e2e.test_console import LAPTOP, PHONE, Watched, open_page, sign_in
from tests.e2e.test_console import browser as browser  # the fixture, for this module
from tests.e2e.test_console import console as console  # the fixture, for this module

pytestmark = pytest.mark.e2e


@pytest.fixture(params=[LAPTOP, PHONE], ids=["laptop", "phone"])
def console_at(
    request: pytest.FixtureRequest, browser: Browser, local_stack: LocalStack
) -> Iterator[tuple[Watched, str]]:
    viewport: ViewportSize = request.param
    context = browser.new_context(viewport=viewport, base_url=local_stack.gateway_url)
    watched = Watched(context.new_page())
    yield watched, "laptop" if viewport == LAPTOP else "phone"
    context.close()
    assert watched.errors == []


def no_horizontal_scroll(watched: Watched) -> None:
    widths = watched.page.evaluate(
        "() => [document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert widths[0] <= widths[1], f"the page scrolls sideways: {widths}"


def test_live_starts_with_recent_events_and_their_outcomes(
    console_at: tuple[Watched, str], tenant: Tenant
) -> None:
    console, width = console_at
    tenant.contract("Checkout", "total", "block")
    # Sent before the console opened: Live shows them at once.
    tenant.send("track", {"event": "Before Live", "userId": "u1", "messageId": "early-1"})
    tenant.send("track", {"event": "Checkout", "userId": "u1", "messageId": "blocked-1"})
    tenant.trace("early-1")
    tenant.trace("blocked-1")

    page = sign_in(console, tenant)
    open_page(page, "Live debugger")
    rows = page.get_by_test_id("live-event")
    expect(rows).to_have_count(2)
    # Newest first: the blocked checkout, then the earlier track.
    expect(rows.nth(0)).to_have_attribute("data-status", "blocked")
    expect(rows.nth(0)).to_contain_text("blocked by a contract: total is required")
    expect(rows.nth(1)).to_have_attribute("data-status", "stored")
    expect(rows.nth(1)).to_contain_text("Before Live")
    expect(page.get_by_role("columnheader", name=re.compile(r"Received \(.+\)"))).to_be_visible()
    no_horizontal_scroll(console)
    console.shot(f"live-backlog-{width}")

    rows.nth(0).get_by_role("button").click()
    outcome = page.get_by_test_id("live-outcome")
    expect(outcome).to_contain_text("blocked by a contract: total is required")
    expect(page.locator("ol.trace")).to_contain_text("blocked")
    console.shot(f"live-blocked-{width}")

    # A filter change re-queries: the matching backlog, not an empty list.
    page.get_by_label("Event or page name").fill("Before Live")
    page.get_by_role("button", name="Apply name").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Before Live")

    # A duplicate arrives live, with its reason.
    time.sleep(1.0)  # process caches "nobody watches" for 0.5 s
    page.get_by_label("Event or page name").fill("")
    page.get_by_role("button", name="Apply name").click()
    expect(rows).to_have_count(2)
    time.sleep(1.0)
    tenant.send("track", {"event": "Before Live", "userId": "u1", "messageId": "early-1"})
    duplicate = rows.and_(page.locator("[data-status=duplicate]"))
    expect(duplicate).to_have_count(1)
    expect(duplicate).to_contain_text("a duplicate of a messageId already received")
    no_horizontal_scroll(console)
    console.shot(f"live-duplicate-{width}")


def test_send_test_event_opens_live_on_that_source_with_the_event_in_view(
    console_at: tuple[Watched, str], tenant: Tenant
) -> None:
    console, width = console_at
    page = sign_in(console, tenant)
    page.get_by_role("button", name=re.compile("^Send test event to")).first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Live debugger")
    expect(page.get_by_label("Source")).to_have_value(tenant.source_id)
    rows = page.get_by_test_id("live-event")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Streams Test Event")
    expect(rows.first).to_have_attribute("data-status", "stored")
    expect(rows.first).to_be_in_viewport()
    no_horizontal_scroll(console)
    console.shot(f"live-test-event-{width}")


# In `make reliability`, to keep `make test` within its 15 minutes: a degraded path of the
# live view (the limit and its 429 are unit-tested in tests/unit/test_live_limits.py).
@pytest.mark.reliability
def test_too_many_streams_is_waited_out_not_a_refusal(
    console: Watched, tenant: Tenant, local_stack: LocalStack
) -> None:
    """The token's other streams fill its limit (429 with Retry-After): Live says why it is
    reconnecting, and goes live once a slot is free, instead of giving up."""
    url = f"{local_stack.gateway_url}/api/v1/workspaces/{tenant.workspace_id}/events/live"
    headers = {"Authorization": f"Bearer {tenant.token}", "Accept": "text/event-stream"}
    others = [requests.get(url, headers=headers, stream=True, timeout=30) for _ in range(4)]
    try:
        assert [r.status_code for r in others] == [200] * 4
        page = sign_in(console, tenant)
        open_page(page, "Live debugger")
        expect(page.get_by_test_id("live-status")).to_have_text("Reconnecting…")
        expect(page.get_by_role("status").filter(has_text="Reconnecting:")).to_contain_text(
            "stream"
        )
        expect(page.get_by_role("alert")).to_have_count(0)  # not refused
    finally:
        for response in others:
            response.close()
    expect(page.get_by_test_id("live-status")).to_have_text("Live", timeout=30_000)
