"""Destinations and forwarding rules in the console, in Debian's Chromium against the local
stack, at a laptop's width and a phone's: a new user connects a source to a webhook without
curl, and follows an event to its trace."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.helpers import Tenant
from tests.e2e.test_console import PHONE, Watched, browser, console, open_page, sign_in
from tests.webhook_receiver import webhook_receiver

__all__ = ["browser", "console"]  # the fixtures, imported for pytest

pytestmark = pytest.mark.e2e

SECRET = "console-e2e-signing-secret-TOPSECRET"
HEADER_SECRET = "Bearer console-e2e-header-TOPSECRET"
# A name no layout must obey: 200 characters, no spaces, control characters inside.
HOSTILE_NAME = "\u0007tab\there\nnewline-" + "x" * 178


def assert_fits(console: Watched, name: str) -> None:
    """Nothing pushes the page sideways (a long name, a wide table); a screenshot either way."""
    console.shot(name)
    overflow = console.page.evaluate(
        "() => document.documentElement.scrollWidth - window.innerWidth"
    )
    assert overflow <= 0, f"{name}: the page is {overflow} px wider than the window"


def assert_no_secret_in_page(page: Page) -> None:
    """Neither the page's text nor any field's value holds a saved secret."""
    text = page.locator("body").inner_text()
    values = page.eval_on_selector_all("input, textarea", "fields => fields.map(f => f.value)")
    for secret in (SECRET, HEADER_SECRET, "TOPSECRET"):
        assert secret not in text and not [v for v in values if secret in v]


@pytest.mark.parametrize("width", ["laptop", "phone"])
def test_connect_a_source_to_a_webhook_and_follow_an_event_to_its_trace(
    console: Watched, tenant: Tenant, width: str
) -> None:
    # Another destination already exists, with a name built to break layouts.
    hostile = tenant.api(
        "POST",
        "/destinations",
        json={
            "name": HOSTILE_NAME,
            "type": "pubsub",
            "config": {"topic": "projects/acme-prod/topics/events"},
        },
    )
    assert hostile.status_code == 201, hostile.text
    page = sign_in(console, tenant)
    if width == "phone":
        page.set_viewport_size(PHONE)
    with webhook_receiver() as receiver:
        open_page(page, "Destinations")
        expect(page.get_by_test_id("list-row")).to_have_count(1)
        assert_fits(console, f"destinations-hostile-{width}")

        # The form is the webhook type's schema; a bad secret is refused at its field.
        page.get_by_role("button", name="New destination").click()
        form = page.get_by_role("region", name="New destination")
        form.get_by_label("Name", exact=True).fill("Orders webhook")
        form.get_by_label("URL", exact=True).fill(receiver.url)
        secret = form.get_by_label(re.compile("^Secret"))
        secret.fill("too-short")
        form.get_by_role("button", name="Create destination").click()
        error = form.get_by_role("alert")
        expect(error).to_have_text("Secret: must be at least 16 characters")
        expect(secret).to_have_attribute("aria-invalid", "true")
        # Right under its field, not at the top of the page.
        field, shown = secret.bounding_box(), error.bounding_box()
        assert field and shown and 0 <= shown["y"] - (field["y"] + field["height"]) < 60
        console.shot(f"destinations-validation-{width}")

        secret.fill(SECRET)
        form.get_by_role("button", name="Add to Headers").click()
        form.get_by_label("Headers (optional): name 1").fill("Authorization")
        form.get_by_label("Headers (optional): value 1").fill(HEADER_SECRET)
        form.get_by_role("button", name="Create destination").click()
        expect(page.get_by_role("status").filter(has_text="Orders webhook")).to_contain_text(
            "created"
        )
        rows = page.get_by_test_id("list-row")
        expect(rows).to_have_count(2)
        expect(rows.first).to_contain_text("Orders webhook")  # newest first
        assert_no_secret_in_page(page)

        # Editing shows the secrets as set, never their values.
        page.get_by_role("button", name="Edit Orders webhook").click()
        edit = page.get_by_role("region", name="Edit Orders webhook")
        set_ = re.compile(r"^\W*set$")
        expect(edit.get_by_test_id("secret-state")).to_have_text([set_, set_])
        expect(edit.get_by_label(re.compile("^Secret"))).to_have_value("")
        assert_no_secret_in_page(page)

        # A test event, answered beside the button.
        page.get_by_role("button", name="Test Orders webhook").click()
        page.get_by_role("button", name="Send test event to Orders webhook").click()
        answer = page.get_by_test_id("test-result")
        expect(answer).to_contain_text("HTTP 200")
        expect(answer).to_contain_text("delivered")
        [tested] = receiver.wait_for(1)
        assert tested.event["event"] == "Streams Test Event"
        assert tested.headers["Authorization"] == HEADER_SECRET
        console.shot(f"destinations-test-{width}")

        # A forwarding rule, made in the UI.
        open_page(page, "Forwarding rules")
        page.get_by_role("button", name="New forwarding rule").click()
        rule_form = page.get_by_role("region", name="New forwarding rule")
        rule_form.get_by_label("Name", exact=True).fill("Orders to the webhook")
        rule_form.get_by_label("Destination").select_option(label="Orders webhook (webhook)")
        rule_form.get_by_label("track", exact=True).check()
        rule_form.get_by_label(re.compile("^Event names")).fill("Order Completed")
        rule_form.get_by_role("button", name="Create rule").click()
        rule = page.get_by_test_id("list-row")
        expect(rule).to_have_count(1)
        expect(rule).to_contain_text("Orders webhook")
        expect(rule).to_contain_text("Order Completed")
        assert_fits(console, f"forwarding-rules-{width}")

        # The destination cannot go while the rule uses it: said in its row.
        open_page(page, "Destinations")
        page.get_by_role("button", name="Delete Orders webhook").click()
        page.get_by_role("button", name="Confirm delete Orders webhook").click()
        expect(
            page.get_by_role("alert").filter(has_text="used by forwarding rules")
        ).to_be_visible()

        # An event through the source's ingest API reaches the webhook, then its trace.
        page.wait_for_timeout(1200)  # past the routing-config cache
        message_id = f"console-destination-{width}"
        sent = tenant.send(
            "track", {"event": "Order Completed", "userId": "u1", "messageId": message_id}
        )
        assert sent.status_code == 200, sent.text
        assert len(receiver.wait_for(2)) == 2
        page.get_by_role("button", name="Deliveries of Orders webhook").click()
        delivered = page.get_by_test_id("delivery-row").filter(has_text=message_id)
        refresh = page.get_by_role("button", name="Refresh deliveries of Orders webhook")
        for _ in range(20):
            if delivered.count() and "delivered" in delivered.inner_text():
                break
            page.wait_for_timeout(500)
            refresh.click()
        expect(delivered).to_contain_text("delivered")
        page.get_by_role("button", name=f"Trace of {message_id}").click()
        trace = page.get_by_role("complementary", name=f"Trace of {message_id}")
        expect(trace.locator("ol.trace")).to_contain_text("delivered")
        expect(trace.locator("ol.trace")).to_contain_text("routed")
        assert_no_secret_in_page(page)
        assert_fits(console, f"destinations-deliveries-{width}")
