"""The web console in a real browser: Debian's Chromium, headless, driven by Playwright, against
the local stack (every function behind the gateway). Screenshots of each page are written to
tests/e2e/screenshots/ on every run, for review."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Page, ViewportSize, expect, sync_playwright

from emulators.dev import LocalStack
from tests.e2e.helpers import Tenant, wait_until
from tests.webhook_receiver import webhook_receiver

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
CHROMIUM = "/usr/bin/chromium"
# What headless Chromium needs on these machines (no sandbox as root, no GPU, and no background
# connections to Google's hosts, which the closed network refuses). Playwright gives every launch
# a fresh, empty profile (--user-data-dir in a new temporary directory) itself.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LAPTOP: ViewportSize = {"width": 1440, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}  # every page is tested at both widths
expect.set_options(timeout=20_000)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    if not (ROOT / "console" / "dist" / "index.html").exists():
        pytest.fail("the console is not built: run `make console`")
    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True
        )
        yield launched
        launched.close()


class Watched:
    """A page, with what it requested and any script or Content-Security-Policy error."""

    def __init__(self, page: Page):
        self.page = page
        self.urls: list[str] = []
        self.errors: list[str] = []
        page.on("request", lambda request: self.urls.append(request.url))
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        page.on("console", self._console)

    def _console(self, message: Any) -> None:
        text = message.text
        if message.type == "error" and ("Content Security Policy" in text or "Refused" in text):
            self.errors.append(text)

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
def console(browser: Browser, local_stack: LocalStack) -> Iterator[Watched]:
    context = browser.new_context(viewport=LAPTOP, base_url=local_stack.gateway_url)
    watched = Watched(context.new_page())
    yield watched
    context.close()
    assert watched.errors == []


def sign_in(console: Watched, tenant: Tenant) -> Page:
    page = console.page
    page.goto("/console/")
    expect(page.get_by_role("heading", name="Streams console")).to_be_visible()
    page.get_by_label("Management API token").fill(tenant.token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1, name="Sources")).to_be_visible()
    return page


def open_page(page: Page, link: str) -> None:
    """Follow a navigation link with the keyboard; focus lands on the new page's heading."""
    page.get_by_role("navigation").get_by_role("link", name=link).focus()
    page.keyboard.press("Enter")
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text(link)
    expect(heading).to_be_focused()


def live_and_watched(page: Page) -> None:
    expect(page.get_by_test_id("live-status")).to_have_text(re.compile("Live"))
    # process caches "nobody watches" for 0.5 s (docs/OBSERVE.md).
    time.sleep(1.0)


def send(gateway: str, write_key: str, call: str, body: dict[str, Any]) -> None:
    response = requests.post(
        f"{gateway}/v1/{call}", json=body, headers={"X-Write-Key": write_key}, timeout=30
    )
    assert response.status_code == 200, response.text


def test_console_page_and_assets_carry_a_strict_policy(local_stack: LocalStack) -> None:
    index = requests.get(f"{local_stack.gateway_url}/console/", timeout=10)
    assert index.status_code == 200 and index.headers["Cache-Control"] == "no-cache"
    policy = index.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    [script] = re.findall(r'src="(/console/assets/[^"]+\.js)"', index.text)
    asset = requests.get(f"{local_stack.gateway_url}{script}", timeout=10)
    assert asset.headers["Content-Type"].startswith("text/javascript")
    assert "immutable" in asset.headers["Cache-Control"]


def test_sign_in_create_a_source_watch_its_events_live_and_see_the_volume(
    console: Watched, tenant: Tenant
) -> None:
    page = console.page
    page.goto("/console/")
    expect(page.get_by_label("Management API token")).to_be_visible()
    console.shot("signin")
    sign_in(console, tenant)

    # Create a source: the website snippet comes first, Segment's snippet loading analytics.js
    # from this server (tests/e2e/test_browser_sdks.py runs it in a page); then curl's.
    page.get_by_label("New source name").fill("Console web app")
    page.get_by_role("button", name="Create source").click()
    expect(page.get_by_role("status").filter(has_text="Console web app")).to_be_visible()
    expect(page.get_by_role("heading", name="Send events to “Console web app”")).to_be_visible()
    web = page.get_by_test_id("snippet").inner_text()
    loaded = re.search(r'analytics\.load\("(wk_[A-Za-z0-9_-]+)"\)', web)
    assert loaded, web
    assert f't.src="{tenant.gateway}/analytics.js/v1/" + key + "/analytics.min.js"' in web
    assert f'analytics._cdn="{tenant.gateway}"' in web and "cdn.segment.com" not in web
    page.get_by_role("tab", name="curl").click()
    curl = page.get_by_test_id("snippet").inner_text()
    match = re.search(r"X-Write-Key: (wk_[A-Za-z0-9_-]+)", curl)
    assert match, curl
    write_key = match.group(1)
    assert loaded.group(1) == write_key
    assert tenant.gateway in curl
    page.get_by_role("tab", name="Python (Segment SDK)").click()
    python_snippet = page.get_by_test_id("snippet").inner_text()
    assert f'analytics.write_key = "{write_key}"' in python_snippet
    console.shot("sources")

    # Live: the snippets themselves send the events.
    open_page(page, "Live debugger")
    live_and_watched(page)
    if shutil.which("curl"):
        subprocess.run(["bash", "-c", curl], check=True, capture_output=True, timeout=30)
    else:
        send(tenant.gateway, write_key, "track", {"event": "Signed Up", "userId": "user-123"})
    subprocess.run(
        [sys.executable, "-c", python_snippet], check=True, capture_output=True, timeout=60
    )
    for i in range(3):
        send(
            tenant.gateway,
            write_key,
            "track",
            {"event": "Order Completed", "userId": f"u{i}", "properties": {"total": 10 + i}},
        )
    send(tenant.gateway, write_key, "page", {"name": "Pricing", "userId": "u1"})
    rows = page.get_by_test_id("live-event")
    expect(rows).to_have_count(7)  # curl 1, Python SDK identify + track, 3 tracks, 1 page
    expect(rows.filter(has_text="Signed Up")).to_have_count(2)
    expect(page.get_by_role("table").get_by_text("Console web app").first).to_be_visible()

    # An event's JSON and trace; arrow keys move between events.
    first = rows.first.get_by_role("button")
    first.click()
    detail = page.get_by_role("region", name=re.compile("^Event "))
    expect(detail.get_by_label(re.compile("as JSON"))).to_contain_text('"messageId"')
    expect(detail.locator("ol.trace")).to_contain_text("stored")
    first.focus()
    page.keyboard.press("ArrowDown")
    expect(rows.nth(1).get_by_role("button")).to_be_focused()
    console.shot("live")

    # Filters: only tracks named "Filtered" from now on.
    page.get_by_label("Type").select_option("track")
    page.get_by_label("Event or page name").fill("Filtered")
    page.get_by_role("button", name="Apply name").click()
    expect(rows).to_have_count(0)
    live_and_watched(page)
    send(tenant.gateway, write_key, "identify", {"userId": "u9", "traits": {"plan": "pro"}})
    send(tenant.gateway, write_key, "track", {"event": "Filtered", "userId": "u9"})
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Filtered")

    # Pause holds new events back; resume shows them.
    page.get_by_role("button", name="Pause").click()
    send(tenant.gateway, write_key, "track", {"event": "Filtered", "userId": "u10"})
    expect(page.get_by_test_id("live-status")).to_have_text("Paused · 1 new")
    expect(rows).to_have_count(1)
    page.get_by_role("button", name="Resume").click()
    expect(rows).to_have_count(2)

    # Volume: 10 stored events (the paused one included), by type and name.
    open_page(page, "Volume")
    total = page.get_by_test_id("volume-total")

    def counted() -> bool:
        if total.inner_text().startswith("10 events"):
            return True
        page.get_by_role("button", name="Refresh").click()
        return False

    assert wait_until(counted, timeout=30, interval=1.0), total.inner_text()
    totals = page.get_by_role("table")
    expect(totals.get_by_role("row", name=re.compile(r"track · Order Completed 3"))).to_be_visible()
    expect(totals.get_by_role("row", name=re.compile(r"track · Signed Up 2"))).to_be_visible()
    painted = page.get_by_test_id("volume-chart").evaluate(
        """canvas => {
            const context = canvas.getContext('2d');
            const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
            let painted = 0;
            for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted++;
            return painted;
        }"""
    )
    assert painted > 1000, "the chart drew nothing"
    page.get_by_label("Window").select_option(label="Last 6 hours")
    expect(total).to_have_text("10 events")
    console.shot("volume")

    # The token never left the page but for the Authorization header.
    assert not [url for url in console.urls if tenant.token in url]
    storage = page.evaluate(
        "() => ({local: localStorage.length, session: sessionStorage.length,"
        " cookie: document.cookie})"
    )
    assert storage == {"local": 0, "session": 1, "cookie": ""}


def test_contract_violations_and_a_transformation_test_run(
    console: Watched, tenant: Tenant
) -> None:
    tenant.contract("Order Completed", "total", "warn", name="Order total")
    for i in range(3):
        body = {"event": "Order Completed", "userId": f"u{i}", "messageId": f"warned-{i}"}
        assert tenant.send("track", body).status_code == 200
    for i in range(3):
        tenant.trace(f"warned-{i}", until="stored")

    page = sign_in(console, tenant)
    open_page(page, "Contracts")
    page.get_by_role("button", name="Order total").click()
    expect(page.get_by_test_id("would-block")).to_have_text("3")
    summary = page.get_by_test_id("violation-summary")
    expect(summary).to_contain_text("Events with violations")
    expect(page.get_by_role("table", name="Violations by field and type")).to_contain_text(
        "Required-Missing"
    )
    console.shot("contracts")

    open_page(page, "Transformations")
    page.get_by_role("button", name="New").click()
    page.get_by_label("Name", exact=True).fill("High value tier")
    page.get_by_label("Expected output (JSON, optional)").fill(
        '{"type": "track", "event": "Order Completed", "messageId": "test-1",'
        ' "properties": {"total": 150}}'
    )
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("status").filter(has_text="Saved “High value tier”")).to_be_visible()
    page.get_by_role("button", name="Run test").click()
    result = page.get_by_test_id("test-result")
    expect(result.get_by_role("heading", level=3)).to_contain_text("failed")
    diff = result.get_by_role("table", name="Differences from the expected output")
    expect(diff.get_by_role("row", name=re.compile(r"properties\.tier added"))).to_be_visible()
    console.shot("transformations")


def test_replay_a_dead_letter_after_a_dry_run_and_see_the_quarantine(
    console: Watched, tenant: Tenant
) -> None:
    blocking = tenant.api(
        "POST",
        "/event-contracts",
        json={
            "name": "Cart needs a SKU",
            "event_type": "track",
            "event_name": "Added To Cart",
            "schema_definition": {"properties": {"sku": {"type": "string", "required": True}}},
            "enforcement_mode": "block",
        },
    )
    assert blocking.status_code == 201, blocking.text
    with webhook_receiver(status=500) as receiver:
        destination_id = tenant.webhook(receiver.url)
        tenant.rule(destination_id, event_types=["track"], event_names=["Checkout Failed"])
        body = {"event": "Checkout Failed", "userId": "u1", "messageId": "dl-console-1"}
        assert tenant.send("track", body).status_code == 200
        blocked = {"event": "Added To Cart", "userId": "u1", "messageId": "blocked-console-1"}
        assert tenant.send("track", blocked).status_code == 200

        def dead_lettered() -> bool:
            letters = tenant.api("GET", "/dead-letters", params={"destination_id": destination_id})
            return len(letters.json()) == 1

        assert wait_until(dead_lettered, timeout=40)
        tenant.trace("blocked-console-1", until="blocked")

        page = sign_in(console, tenant)
        open_page(page, "Dead letters & quarantine")
        page.get_by_label("Destination").select_option(label="hook (webhook)")
        rows = page.get_by_test_id("dead-letter")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("retries_exhausted")
        page.get_by_role("button", name=re.compile("dl-console-1")).click()
        expect(page.get_by_role("region", name="Trace of dl-console-1")).to_contain_text(
            "dead lettered"
        )

        receiver.status = 200
        replay = page.get_by_role("button", name=re.compile("^Replay"))
        expect(replay).to_be_disabled()  # a dry run comes first
        page.get_by_role("button", name="Dry run").click()
        expect(page.get_by_test_id("dry-run-result")).to_contain_text(
            "1 dead letter would be replayed"
        )
        console.shot("dead-letters")
        assert receiver.delivered() == [], "a dry run sends nothing"
        page.get_by_role("button", name="Replay 1 dead letter").click()
        expect(page.get_by_test_id("replay-result")).to_have_text("Replayed 1 dead letter.")
        [delivered] = receiver.wait_for(1)
        assert delivered.event["messageId"] == "dl-console-1"

    page.get_by_role("tab", name="Quarantine").click()
    quarantined = page.get_by_role("table").get_by_role("row", name=re.compile("blocked-console-1"))
    expect(quarantined).to_contain_text("Cart needs a SKU")
    page.get_by_role("button", name="Dry run").click()
    expect(page.get_by_test_id("dry-run-result")).to_contain_text("0 events would be replayed")
    expect(page.get_by_test_id("dry-run-result")).to_contain_text("still blocked")
    console.shot("quarantine")
