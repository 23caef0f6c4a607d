"""Webhook sources in the console (issue 26), in Debian's Chromium against the local stack, at a
laptop's width and a phone's: create one, set how its requests are named and signed, see its
URL, send the test webhook and find its event live; the secret is never shown again."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Any

import pytest
import requests
from playwright.sync_api import expect

from tests.e2e.helpers import Tenant, wait_until
from tests.e2e.test_console import Watched, sign_in
from tests.e2e.test_console import browser as browser  # the fixture, for this module
from tests.e2e.test_console_live import console_at as console_at  # the fixture, for this module
from tests.e2e.test_console_live import no_horizontal_scroll

pytestmark = pytest.mark.e2e

SECRET = "console-webhook-hmac-TOPSECRET-0123456789"
EVENT_NAME = "Payment Received"
SIGNATURE_HEADER = "X-Signature"


def assert_no_secret_in_page(console: Watched) -> None:
    """Neither the page's text, any field's value nor any requested URL holds the secret."""
    page = console.page
    text = page.locator("body").inner_text()
    values = page.eval_on_selector_all("input, textarea", "fields => fields.map(f => f.value)")
    for shown in (text, *values, *console.urls):
        assert "TOPSECRET" not in shown


def created_source(tenant: Tenant, name: str) -> dict[str, Any]:
    found = tenant.api("GET", "/event-keys", params={"q": name, "limit": 1})
    assert found.status_code == 200, found.text
    [source] = found.json()
    return dict(source)


def sign(body: bytes) -> str:
    return hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def test_a_webhook_source_is_set_up_and_tested_from_the_sources_page(
    console_at: tuple[Watched, str], tenant: Tenant
) -> None:
    console, width = console_at
    page = sign_in(console, tenant)
    name = f"Payments {width}"

    # Created as a webhook source: its panel (URL and settings) opens under its row, no snippet.
    page.get_by_label("New source name").fill(name)
    page.get_by_label("Type", exact=True).select_option("webhook")
    page.get_by_role("button", name="Create source").click()
    row = page.get_by_test_id("list-row").first
    expect(row).to_contain_text(name)
    expect(row).to_contain_text("webhook")
    expect(row).to_be_in_viewport()
    created = page.get_by_role("status").filter(has_text=name)
    expect(created).to_contain_text("Its webhook URL and settings are below.")
    source = created_source(tenant, name)
    assert source["type"] == "webhook"
    panel = page.get_by_role("region", name=f"Webhooks to “{name}”")
    expect(panel.get_by_role("heading", name=f"Webhooks to “{name}”")).to_be_visible()
    expect(page.get_by_test_id("snippet")).to_have_count(0)
    url = f"{tenant.gateway}/v1/webhook/{source['key']}"
    expect(panel.get_by_test_id("webhook-url")).to_have_text(url)
    expect(panel.get_by_role("button", name="Copy URL")).to_be_visible()
    no_horizontal_scroll(console)

    # A fixed event name and a generic HMAC signature with its secret.
    form = panel.get_by_role("form", name="Webhook settings")
    secret_state = form.get_by_test_id("secret-state")
    expect(secret_state).to_have_text(re.compile(r"^\W*not set$"))
    form.get_by_label("Event name from").select_option("fixed")
    form.get_by_label("Event name", exact=True).fill(EVENT_NAME)
    form.get_by_label("Signature", exact=True).select_option("hmac")
    form.get_by_label("Signature header").fill(SIGNATURE_HEADER)
    secret = form.get_by_label(re.compile("^Signing secret"))
    secret.fill(SECRET)
    form.get_by_role("button", name="Save webhook settings").click()
    expect(panel.get_by_role("status").filter(has_text="Webhook settings saved.")).to_be_visible()
    # Saved, the secret is only "set": the field is empty again, its value nowhere in the page.
    expect(secret_state).to_have_text(re.compile(r"^\W*set$"))
    expect(secret).to_have_value("")
    expect(form.get_by_label("Event name", exact=True)).to_have_value(EVENT_NAME)
    assert_no_secret_in_page(console)
    console.shot(f"webhooks-settings-{width}")

    stored = tenant.api("GET", f"/event-keys/{source['id']}/webhook")
    assert stored.status_code == 200, stored.text
    answer = stored.json()
    assert answer["secret_set"] is True and "TOPSECRET" not in stored.text
    assert answer["settings"]["event_name"] == EVENT_NAME
    assert answer["settings"]["signature_header"] == SIGNATURE_HEADER
    # What the form saved is what a provider's requests are checked against: once ingest's
    # write-key cache has the new settings, a forged request is refused and one signed with the
    # stored secret accepted.
    body = json.dumps({"id": f"pay_{width}", "amount": 1200}).encode()

    def post(signature: str) -> requests.Response:
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature}
        return requests.post(url, data=body, headers=headers, timeout=30)

    forged = wait_until(lambda: post("0" * 64).status_code == 401, timeout=15)
    assert forged, "a forged signature was still accepted 15 s after saving"
    signed = post(sign(body))
    assert signed.status_code == 200, signed.text

    # The test webhook goes the provider's way, then Live opens on the source with its event.
    page.get_by_role("button", name=f"Send test webhook to {name}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Live debugger")
    expect(page.get_by_label("Source")).to_have_value(source["id"])
    rows = page.get_by_test_id("live-event").filter(has_text=EVENT_NAME)
    # The signed request above is there too: the test webhook is the newest.
    expect(rows).to_have_count(2)
    expect(rows.first).to_have_attribute("data-status", "stored")
    expect(rows.first).to_be_in_viewport()
    rows.first.get_by_role("button").click()
    expect(page.locator("ol.trace")).to_contain_text("stored")
    assert_no_secret_in_page(console)
    no_horizontal_scroll(console)
    console.shot(f"webhooks-live-{width}")


def test_refused_settings_and_unmapped_test_requests_are_explained_in_the_panel(
    console_at: tuple[Watched, str], tenant: Tenant
) -> None:
    console, width = console_at
    created = tenant.api("POST", "/event-keys", json={"name": "GitHub", "type": "webhook"})
    assert created.status_code == 201, created.text
    page = sign_in(console, tenant)
    page.get_by_role("button", name="Webhook for GitHub").click()
    form = page.get_by_role("form", name="Webhook settings")

    # GitHub verification without a secret cannot work: refused under the secret's field.
    form.get_by_label("Signature", exact=True).select_option("github")
    form.get_by_role("button", name="Save webhook settings").click()
    error = form.get_by_role("alert")
    expect(error).to_contain_text("needs a secret")
    secret = form.get_by_label(re.compile("^Signing secret"))
    expect(secret).to_have_attribute("aria-invalid", "true")
    field, shown = secret.bounding_box(), error.bounding_box()
    assert field and shown and 0 <= shown["y"] - (field["y"] + field["height"]) < 80
    no_horizontal_scroll(console)
    console.shot(f"webhooks-refused-{width}")

    # With a secret it saves, the event named by the header GitHub sends.
    form.get_by_label("Event name from").select_option("header")
    form.get_by_label("Header holding the name").fill("X-GitHub-Event")
    secret.fill(SECRET)
    form.get_by_role("button", name="Save webhook settings").click()
    expect(page.get_by_role("status").filter(has_text="Webhook settings saved.")).to_be_visible()

    # The sample request has no such header: it cannot be named, and the panel says why.
    test = page.get_by_role("form", name="Test request")
    test.get_by_role("button", name="Send this test request").click()
    expect(test.get_by_role("alert")).to_contain_text(
        "could not be mapped to events: the request has no X-GitHub-Event header"
    )
    expect(test.get_by_role("alert")).to_contain_text("kept in Dead letters")
    console.shot(f"webhooks-unmapped-{width}")

    # With the header and a body of its own, the request becomes a "push", shown live.
    test.get_by_label(re.compile("^Headers")).fill("X-GitHub-Event: push")
    test.get_by_label(re.compile("^Body")).fill('{"ref": "refs/heads/main"}')
    test.get_by_role("button", name="Send this test request").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Live debugger")
    pushed = page.get_by_test_id("live-event").filter(has_text="push")
    expect(pushed).to_have_count(1)
    expect(pushed).to_have_attribute("data-status", "stored")
    no_horizontal_scroll(console)
