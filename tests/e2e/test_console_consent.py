"""Consent and bots in the console, in Debian's Chromium against the local stack, at a laptop's
width and a phone's: a destination's consent categories made in its form, a source's bot policy
and cookieless mode, the workspace's consent requirement, and the events held back for consent
counted on the destination and shown in their trace."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.helpers import Tenant
from tests.e2e.test_console import PHONE, Watched, browser, console, open_page, sign_in
from tests.e2e.test_console_destinations import assert_fits
from tests.webhook_receiver import webhook_receiver

__all__ = ["browser", "console"]  # the fixtures, imported for pytest

pytestmark = pytest.mark.e2e

SECRET = "console-consent-signing-secret"
PII_RULES = [{"path": "context.traits.email", "action": "hash"}]


def refusals_shown(page: Page, name: str, text: str, attempts: int = 30) -> bool:
    """Whether the destination's row comes to show `text`: the count is asked for when the page
    opens, and BigQuery has the events' rows a moment after their traces."""
    row = page.get_by_test_id("list-row").filter(has_text=name)
    for _ in range(attempts):
        shown = row.get_by_test_id("consent-refusals")
        if shown.count() and shown.inner_text() == text:
            return True
        page.wait_for_timeout(1000)
        page.reload()
        expect(page.get_by_role("heading", level=1, name="Destinations")).to_be_visible()
        expect(row).to_have_count(1)
    return False


# The phone width in `make reliability`, to keep `make test` short (other browser tests cover
# phones: the warehouse panel, destinations).
@pytest.mark.parametrize("width", ["laptop", pytest.param("phone", marks=pytest.mark.reliability)])
def test_consent_categories_bot_policy_cookieless_and_refusals_in_the_console(
    console: Watched, tenant: Tenant, width: str
) -> None:
    # PII rules set through the API, which saving the consent setting must keep.
    put = tenant.api("PUT", "/privacy", json={"pii_rules": PII_RULES})
    assert put.status_code == 200, put.text
    page = sign_in(console, tenant)
    if width == "phone":
        page.set_viewport_size(PHONE)

    with webhook_receiver() as receiver:
        # A destination with consent categories, made in its form.
        open_page(page, "Destinations")
        page.get_by_role("button", name="New destination").click()
        form = page.get_by_role("region", name="New destination")
        form.get_by_label("Name", exact=True).fill("Ads webhook")
        form.get_by_label("URL", exact=True).fill(receiver.url)
        form.get_by_label(re.compile("^Secret")).fill(SECRET)
        categories = form.get_by_label("Add consent categories (comma-separated)")
        chips = form.get_by_test_id("consent-chips").get_by_role("listitem")
        categories.fill("Advertising, Marketing,Advertising")
        categories.press("Enter")  # adds them; does not submit the form
        expect(chips).to_have_text([re.compile("^Advertising"), re.compile("^Marketing")])
        form.get_by_role("button", name="Remove category Marketing").click()
        expect(chips).to_have_count(1)

        # The API's refusal is shown at the field, naming the category.
        categories.fill("x" * 101)
        form.get_by_role("button", name="Add category").click()
        form.get_by_role("button", name="Create destination").click()
        error = form.get_by_role("alert")
        expect(error).to_have_text(
            f"Consent categories: “{'x' * 101}”: must be at most 100 characters"
        )
        expect(categories).to_have_attribute("aria-invalid", "true")
        assert_fits(console, f"consent-destination-error-{width}")
        form.get_by_role("button", name=f"Remove category {'x' * 101}").click()
        # A category typed but not added is saved too.
        categories.fill("C0004")
        form.get_by_role("button", name="Create destination").click()
        expect(page.get_by_role("status").filter(has_text="Ads webhook")).to_contain_text("created")
        [listed] = tenant.api("GET", "/destinations").json()
        assert listed["name"] == "Ads webhook"
        assert listed["consent_categories"] == ["Advertising", "C0004"]
        destination_id = listed["id"]
        row = page.get_by_test_id("list-row").filter(has_text="Ads webhook")
        cell = row.get_by_test_id("consent-cell")
        expect(cell).to_contain_text("Advertising, C0004")
        expect(cell.get_by_test_id("consent-refusals")).to_have_text(
            "0 events held back for consent (24 h)"
        )

        # Edit: the chips are the saved categories; one removed and saved.
        page.get_by_role("button", name="Edit Ads webhook").click()
        edit = page.get_by_role("region", name="Edit Ads webhook")
        expect(edit.get_by_test_id("consent-chips").get_by_role("listitem")).to_have_text(
            [re.compile("^Advertising"), re.compile("^C0004")]
        )
        edit.get_by_role("button", name="Remove category C0004").click()
        edit.get_by_role("button", name="Save destination").click()
        expect(edit.get_by_role("status").filter(has_text="Saved")).to_be_visible()
        saved = tenant.api("GET", f"/destinations/{destination_id}").json()
        assert saved["consent_categories"] == ["Advertising"]
        expect(cell).to_contain_text("Advertising")
        expect(cell).not_to_contain_text("C0004")
        assert_fits(console, f"consent-destinations-{width}")

        # The source's bot policy and cookieless mode, saved whole with its IP policy.
        open_page(page, "Sources")
        page.get_by_role("button", name="Privacy of e2e").click()
        panel = page.get_by_role("region", name="Privacy of “e2e”")
        bot = panel.get_by_label("Bot policy")
        expect(bot).to_have_value("keep")
        expect(panel).to_contain_text("tagged context.bot = true")
        bot.select_option(label="Store only")
        expect(panel).to_contain_text("stored and queryable, never forwarded")
        panel.get_by_label("IP policy").select_option(label="Truncate")
        switch = panel.get_by_role("switch", name="Cookieless")
        expect(switch).not_to_be_checked()
        switch.check()
        expect(panel).to_contain_text("daily-rotating hash of the IP address and user agent")
        panel.get_by_role("button", name="Save privacy settings of e2e").click()
        expect(panel.get_by_role("status").filter(has_text="Saved")).to_be_visible()
        privacy = tenant.api("GET", f"/event-keys/{tenant.source_id}/privacy").json()
        assert (privacy["ip_policy"], privacy["bot_policy"], privacy["cookieless"]) == (
            "truncate",
            "store_only",
            True,
        )
        assert_fits(console, f"consent-source-privacy-{width}")

        # The workspace requires consent; its PII rules are shown and kept.
        open_page(page, "Privacy")
        expect(page.get_by_role("table")).to_contain_text("context.traits.email")
        required = page.get_by_role("switch", name="Require consent")
        expect(required).not_to_be_checked()
        required.check()
        page.get_by_role("button", name="Save consent setting").click()
        expect(page.get_by_role("status").filter(has_text="Saved")).to_be_visible()
        settings = tenant.api("GET", "/privacy").json()
        assert settings["consent_required"] is True
        assert settings["pii_rules"] == PII_RULES
        assert_fits(console, f"consent-workspace-privacy-{width}")

        # Two events held back from the destination: one refusing Advertising, one without
        # the consent object, which the workspace now requires.
        tenant.rule(destination_id)  # waits past the routing and privacy caches
        refused = {"Advertising": False, "Analytics": True}
        sent = tenant.send(
            "batch",
            {
                "batch": [
                    {
                        "type": "track",
                        "event": "Ad Clicked",
                        "userId": "u1",
                        "messageId": f"consent-refused-{width}",
                        "context": {"consent": {"categoryPreferences": refused}},
                    },
                    {
                        "type": "track",
                        "event": "No Consent Object",
                        "userId": "u2",
                        "messageId": f"consent-absent-{width}",
                    },
                ]
            },
        )
        assert sent.status_code == 200, sent.text
        for message_id in (f"consent-refused-{width}", f"consent-absent-{width}"):
            trace = tenant.trace(message_id, until="consent_denied")
            [denied] = [s for s in trace["stages"] if s["stage"] == "consent_denied"]
            assert denied["destination_id"] == destination_id
        assert receiver.delivered() == []

        # The count, on the destination's row.
        open_page(page, "Destinations")
        shown = "2 events held back for consent (24 h)"
        assert refusals_shown(page, "Ads webhook", shown), "the refusals were never counted"
        assert_fits(console, f"consent-refusals-{width}")

        # The trace of a held-back event, from the live debugger's backlog.
        open_page(page, "Live debugger")
        page.get_by_test_id("live-event").filter(has_text="Ad Clicked").get_by_role(
            "button"
        ).first.click()
        stages = page.get_by_role("region", name=re.compile("^Event ")).locator("ol.trace")
        held = stages.locator("li").filter(has_text="consent denied")
        expect(held).to_contain_text("skipped")
        expect(held).to_contain_text("not granted for Advertising")
        expect(held).to_contain_text("held back from Ads webhook")  # named, not by its id
        console.shot(f"consent-trace-{width}")
        assert receiver.delivered() == []
