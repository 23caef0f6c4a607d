"""The console with a real workspace's worth of items (500 sources, 200 destinations, 100
contracts, with 200-character names and names holding control characters), at a 1440 px desktop
and a 390 px phone: lists are paged and searched on the server, a new source appears at the top
with its confirmation in view, revoked sources hide and show, and no page scrolls sideways."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect

from emulators.dev import LocalStack
from shared.bootstrap import Services
from shared.config import Settings
from shared.domain import ids
from shared.domain.routing import Destination, destination_path
from shared.domain.sources import EventSource, source_path, source_topic_id
from shared.ports import Write, commit_in_chunks
from tests.e2e.helpers import Tenant
from tests.e2e.test_console import LAPTOP, PHONE, Watched, browser, open_page, sign_in

pytestmark = pytest.mark.e2e

__all__ = ["browser"]  # the fixture, imported to be used here

SOURCES, DESTINATIONS, CONTRACTS = 500, 200, 100
# Every tenth seeded source is revoked (index 7, 17, ...: none of the named ones below).
REVOKED_EVERY = 10
# Hostile names: 200 characters without a space (nothing to break a line at), and names
# holding control characters (a bell, a tab, a newline, an escape sequence).
LONG_NAME = ("Checkout" + "Pipeline" * 24)[:200]
ODD_NAMES = ["Bell\x07in\tthe\nname", "Escape\x1b[31mred\x1b[0m", "Zero\u200bwidth\u2028line"]
NEEDLES = 7  # sources whose names contain "needle", for the search


def source_name(index: int) -> str:
    if index % 50 == 0:
        return f"{LONG_NAME[:190]}{index:010d}"
    if index % 50 == 1:
        return f"{ODD_NAMES[(index // 50) % len(ODD_NAMES)]} {index}"
    if index < NEEDLES:
        return f"Haystack needle {index}"
    return f"Source {index:03d}"


@pytest.fixture(scope="module")
def crowded(local_stack: LocalStack) -> Tenant:
    """A workspace with 500 sources, 200 destinations and 100 contracts, written in bulk (a few
    seconds: the sources' and destinations' documents in chunked commits, without the topics and
    subscriptions their create calls make, which nothing here sends through)."""
    started = time.monotonic()
    services = Services(Settings.from_env())
    workspace = services.workspaces.create("A crowded workspace")
    token, record = services.workspaces.create_token(workspace.id, "scale")
    real = services.sources.create(workspace.id, "Real source", created_by=record.id)
    now = ids.utcnow()
    writes = []
    for index in range(SOURCES):
        # Oldest first, a second apart, all before the real source and anything the test makes.
        created = ids.isoformat(now - timedelta(seconds=SOURCES + 10 - index))
        source = EventSource(
            id=ids.new_id(),
            workspace_id=workspace.id,
            name=source_name(index),
            key=ids.new_write_key(),
            status="revoked" if index % REVOKED_EVERY == 7 else "active",
            pubsub_topic=source_topic_id(f"seeded-{index}"),
            created_by=record.id,
            created_at=created,
            updated_at=created,
        )
        writes.append(Write("create", source_path(workspace.id, source.id), source.model_dump()))
    for index in range(DESTINATIONS):
        created = ids.isoformat(now - timedelta(seconds=DESTINATIONS + 10 - index))
        destination = Destination(
            id=ids.new_id(),
            workspace_id=workspace.id,
            name=LONG_NAME if index % 40 == 0 else f"Warehouse topic {index:03d}",
            type="pubsub",
            config={"topic": f"projects/acme-prod/topics/events-{index}"},
            status="inactive" if index % 10 == 3 else "active",
            created_at=created,
            updated_at=created,
        )
        writes.append(
            Write(
                "create", destination_path(workspace.id, destination.id), destination.model_dump()
            )
        )
    commit_in_chunks(services.store, writes)
    for index in range(CONTRACTS):
        services.contracts.create(
            workspace.id,
            name=ODD_NAMES[0] if index == 0 else f"Contract {index:03d} {LONG_NAME[: index % 120]}",
            event_type="track",
            event_name=f"Event {index:03d}",
            schema_definition={"type": "object"},
        )
    seeding = time.monotonic() - started
    assert seeding < 20, f"seeding took {seeding:.1f} s"
    return Tenant(local_stack.gateway_url, workspace.id, token, real.key, real.id, services)


def sources_counted(tenant: Tenant, **query: str) -> int:
    answer = tenant.api("GET", "/event-keys", params={"limit": "1", **query})
    assert answer.status_code == 200, answer.text
    return int(answer.headers["X-Total-Count"])


def test_every_seeded_list_is_paged_and_searched_by_the_api(crowded: Tenant) -> None:
    for path, total in [
        ("/event-keys", SOURCES + 1),
        ("/destinations", DESTINATIONS),
        ("/event-contracts", CONTRACTS),
    ]:
        first = crowded.api("GET", path, params={"limit": 50})
        assert first.status_code == 200, first.text
        assert len(first.json()) == 50 and first.headers["X-Total-Count"] == str(total)
        link = re.fullmatch(r'<([^>]+)>; rel="next"', first.headers["Link"])
        assert link, first.headers["Link"]
        second = crowded.api("GET", link.group(1).split(f"/{crowded.workspace_id}", 1)[1])
        assert second.status_code == 200, second.text
        first_ids = {item["id"] for item in first.json()}
        assert len(second.json()) == 50 and first_ids.isdisjoint(i["id"] for i in second.json())
        created = [item.get("created_at", item.get("createdAt")) for item in first.json()]
        assert created == sorted(created, reverse=True)
        # The whole list, unpaged, is still one array, as the seed's clients read it.
        assert len(crowded.api("GET", path).json()) == total
    found = crowded.api("GET", "/event-keys", params={"q": "NEEDLE", "limit": 50}).json()
    assert sorted(s["name"] for s in found) == [f"Haystack needle {i}" for i in range(2, NEEDLES)]


def no_sideways_scroll(page: Page) -> None:
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"the page is {widths[0]} px wide in a {widths[1]} px window"


def count(page: Page) -> Any:
    return page.get_by_test_id("list-count")


# The phone width in `make reliability`, to keep `make test` short (other browser tests cover
# phones: the warehouse panel, destinations).
@pytest.mark.parametrize(
    ("viewport", "label"),
    [(LAPTOP, "1440"), pytest.param(PHONE, "390", marks=pytest.mark.reliability)],
)
def test_sources_at_scale(
    browser: Browser, local_stack: LocalStack, crowded: Tenant, viewport: ViewportSize, label: str
) -> None:
    context = browser.new_context(viewport=viewport, base_url=local_stack.gateway_url)
    console = Watched(context.new_page())
    try:
        run_sources_at_scale(console, crowded, label)
    finally:
        context.close()
    assert console.errors == []


def run_sources_at_scale(console: Watched, tenant: Tenant, label: str) -> None:
    page = sign_in(console, tenant)
    active = sources_counted(tenant, status="active")
    everything = sources_counted(tenant)
    rows = page.get_by_test_id("list-row")

    # The first page only, newest first: the real source (created last) leads.
    expect(count(page)).to_have_text(f"Showing 50 of {active} sources, newest first")
    expect(rows).to_have_count(50)
    expect(rows.first).to_contain_text("Real source")
    expect(rows.filter(has_text="revoked")).to_have_count(0)
    # A 200-character name is cut in its cell, whole on hover; control characters are escaped.
    long_name = page.get_by_title(re.compile(f"^{LONG_NAME[:190]}")).first
    expect(long_name).to_be_visible()
    cut = long_name.evaluate("e => e.scrollWidth > e.clientWidth")
    assert cut, "the long name should be cut with an ellipsis"
    expect(page.get_by_text("Bell\\u0007in\\tthe\\nname").first).to_be_attached()
    no_sideways_scroll(page)
    console.shot(f"scale-sources-{label}")

    page.get_by_role("button", name="Load 50 more sources").click()
    expect(rows).to_have_count(100)
    expect(count(page)).to_have_text(f"Showing 100 of {active} sources, newest first")
    no_sideways_scroll(page)

    # Search on the server, as the user types.
    page.get_by_label("Search sources by name").fill("NEEDLE")
    expect(count(page)).to_have_text(f"{NEEDLES - 2} sources, newest first")
    expect(rows).to_have_count(NEEDLES - 2)
    expect(rows.first).to_contain_text(f"Haystack needle {NEEDLES - 1}")
    console.shot(f"scale-search-{label}")
    page.get_by_label("Search sources by name").fill("")
    expect(rows).to_have_count(50)

    # Revoked sources: hidden, then shown.
    page.get_by_label("Show revoked sources").check()
    expect(count(page)).to_have_text(f"Showing 50 of {everything} sources, newest first")
    expect(rows.filter(has_text="revoked").first).to_be_visible()
    page.get_by_label("Show revoked sources").uncheck()
    expect(count(page)).to_have_text(f"Showing 50 of {active} sources, newest first")
    expect(rows.filter(has_text="revoked")).to_have_count(0)

    # Create one at the bottom of a long page: it appears at the top with its confirmation in
    # view, no 6,600 px of scrolling.
    name = f"Checkout web app {label}"
    page.get_by_label("New source name").fill(name)
    page.get_by_role("button", name="Create source").click()
    created = page.get_by_role("status").filter(has_text=f"Source “{name}” created")
    expect(created).to_be_visible()
    expect(created).to_be_in_viewport()
    expect(rows.first).to_contain_text(name)
    expect(page.get_by_role("heading", name=f"Send events to “{name}”")).to_be_in_viewport()
    no_sideways_scroll(page)
    console.shot(f"scale-created-{label}")

    # Revoke it: the confirmation is at its row, which stays (now revoked) until filters change.
    first = rows.first
    first.get_by_role("button", name=re.compile("^Revoke")).click()
    first.get_by_role("button", name=re.compile("^Confirm revoke")).click()
    revoked = page.get_by_role("status").filter(has_text=f"Source “{name}” revoked")
    expect(revoked).to_be_in_viewport()
    expect(first.get_by_text("revoked", exact=True)).to_be_visible()
    no_sideways_scroll(page)
    console.shot(f"scale-revoked-{label}")
    assert sources_counted(tenant, status="active") == active


# The phone width in `make reliability`, to keep `make test` short (other browser tests cover
# phones: the warehouse panel, destinations).
@pytest.mark.parametrize(
    ("viewport", "label"),
    [(LAPTOP, "1440"), pytest.param(PHONE, "390", marks=pytest.mark.reliability)],
)
def test_every_page_holds_the_crowded_workspace(
    browser: Browser, local_stack: LocalStack, crowded: Tenant, viewport: ViewportSize, label: str
) -> None:
    context = browser.new_context(viewport=viewport, base_url=local_stack.gateway_url)
    console = Watched(context.new_page())
    try:
        page = sign_in(console, crowded)
        rows = page.get_by_test_id("list-row")
        for link, text in (
            ("Destinations", f"Showing 50 of {DESTINATIONS} destinations, newest first"),
            ("Contracts", f"Showing 50 of {CONTRACTS} contracts, newest first"),
        ):
            open_page(page, link)
            expect(count(page)).to_have_text(text)
            expect(rows).to_have_count(50)
            no_sideways_scroll(page)
            console.shot(f"scale-{link.lower()}-{label}")
        page.get_by_label("Search contracts by name").fill("Contract 099")
        expect(rows).to_have_count(1)
        # Live's source filter offers every source (the seeded, the real one, any the other
        # test made) after "All sources", each option's text cut short.
        open_page(page, "Live debugger")
        options = page.get_by_label("Source").locator("option")
        expect(options.nth(SOURCES + 1)).to_be_attached()
        longest = max(len(text) for text in options.all_inner_texts())
        assert longest <= 60, f"an option of {longest} characters widens the filter"
        no_sideways_scroll(page)
        console.shot(f"scale-live-{label}")
    finally:
        context.close()
    assert console.errors == []
