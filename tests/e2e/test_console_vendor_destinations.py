"""A vendor destination made in the console, in Debian's Chromium against the local stack: the
form is the type's schema (a secret URL, name/value templates, a comma-separated list, yes/no
choices), the catalogue's facts show beside it, and a test event reaches a fake of the vendor."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import Tenant
from tests.e2e.test_console import PHONE, Watched, browser, console, open_page, sign_in
from tests.vendor_fakes import Answer, Received, fake_vendor

__all__ = ["browser", "console"]  # the fixtures, imported for pytest

pytestmark = pytest.mark.e2e

TOKEN_PATH = "/services/T000/B000/console-TOPSECRET"


def slack(request: Received) -> Answer:
    if request.path != TOKEN_PATH:
        return Answer(404, "no_service")
    return Answer(200, "ok") if request.json().get("text") else Answer(400, "no_text")


def test_a_slack_destination_from_its_schema_with_a_test_event(
    console: Watched, tenant: Tenant
) -> None:
    page = sign_in(console, tenant)
    with fake_vendor(slack) as vendor:
        open_page(page, "Destinations")
        page.get_by_role("button", name="New destination").click()
        form = page.get_by_role("region", name="New destination")
        form.get_by_label("Type").select_option("slack")
        facts = form.get_by_test_id("type-facts")
        expect(facts).to_contain_text("Sends track, identify, page, screen, group, alias")
        expect(facts).to_contain_text("one per request")
        expect(facts).to_contain_text("at most 1 requests per second per instance")
        expect(facts).to_contain_text("user deletions are manual")

        form.get_by_label("Name", exact=True).fill("Orders to Slack")
        form.get_by_label(re.compile("^Webhook URL")).fill(vendor.url + TOKEN_PATH)
        form.get_by_role("button", name="Add to Templates").click()
        form.get_by_label("Templates (optional): name 1").fill("Order Completed")
        form.get_by_label("Templates (optional): value 1").fill("Order {{properties.order_id}}")
        form.get_by_label(re.compile("^Default template")).fill("{{event}} from {{userId}}")
        events = form.get_by_label(re.compile("^Event types"))
        events.fill("track, nonsense")
        form.get_by_role("button", name="Create destination").click()
        # The list's item refused by the API is named at the list's field.
        expect(form.get_by_role("alert")).to_contain_text("Event types")
        events.fill("track, identify")
        form.get_by_role("button", name="Create destination").click()
        expect(page.get_by_role("status").filter(has_text="Orders to Slack")).to_contain_text(
            "created"
        )
        console.shot("destinations-slack-created")

        # Saved as typed: the list as a list, the templates as a map; the URL never shown.
        [saved] = [d for d in tenant.api("GET", "/destinations").json() if d["type"] == "slack"]
        assert saved["config"]["event_types"] == ["track", "identify"]
        assert saved["config"]["templates"] == {"Order Completed": "Order {{properties.order_id}}"}
        assert "webhook_url" not in saved["config"]
        assert "TOPSECRET" not in page.locator("body").inner_text()

        page.get_by_role("button", name="Test Orders to Slack").click()
        page.get_by_role("button", name="Send test event to Orders to Slack").click()
        answer = page.get_by_test_id("test-result")
        expect(answer).to_contain_text("delivered")
        [received] = vendor.received
        assert received.json()["text"] == "Streams Test Event from streams-test-user"

        # Another type's form: yes/no choices and its own facts, at a phone's width too.
        page.set_viewport_size(PHONE)
        page.get_by_role("button", name="New destination").click()
        form = page.get_by_role("region", name="New destination")
        form.get_by_label("Type").select_option("braze")
        expect(form.get_by_test_id("type-facts")).to_contain_text("up to 75 per request")
        expect(form.get_by_test_id("type-facts")).to_contain_text("user deletions reach it")
        track_pages = form.get_by_label(re.compile("^Track pages"))
        expect(track_pages.locator("option")).to_have_text(["Default (no)", "yes", "no"])
        console.shot("destinations-braze-form-phone")
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0
