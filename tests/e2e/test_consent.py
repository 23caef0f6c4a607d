"""Consent and bots end to end on the local stack: ingest, process, deliver, trace and volume."""

from __future__ import annotations

import time
from contextlib import ExitStack
from typing import Any

import pytest
import requests

from emulators.dev import LocalStack
from tests.e2e.helpers import SECRET, Tenant, wait_until
from tests.webhook_receiver import WebhookReceiver, webhook_receiver

pytestmark = pytest.mark.e2e

# Each destination and the consent categories it needs.
NEEDS = {"ads": ["Advertising"], "analytics": ["Analytics"], "plain": []}
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def event(message_id: str, preferences: dict[str, Any] | None, **fields: Any) -> dict[str, Any]:
    context = {} if preferences is None else {"consent": {"categoryPreferences": preferences}}
    return {
        "type": "track",
        "event": "Signed Up",
        "userId": "u1",
        "messageId": message_id,
        "context": context,
        **fields,
    }


def delivered_ids(receiver: WebhookReceiver) -> set[str]:
    return {r.event["messageId"] for r in receiver.delivered()}


def test_each_event_reaches_only_the_destinations_its_person_consented_to(
    tenant: Tenant, local_stack: LocalStack
) -> None:
    with ExitStack() as stack:
        receivers = {name: stack.enter_context(webhook_receiver()) for name in NEEDS}
        ids = {}
        for name, categories in NEEDS.items():
            created = tenant.api(
                "POST",
                "/destinations",
                json={
                    "name": name,
                    "type": "webhook",
                    "config": {"url": receivers[name].url, "secret": SECRET},
                    "consent_categories": categories,
                },
            )
            assert created.status_code == 201, created.text
            ids[name] = created.json()["id"]
            tenant.rule(ids[name])

        # Categories x destinations x present or absent consent (not required yet).
        matrix = [
            event("c-ads-no", {"Advertising": False, "Analytics": True}),
            event("c-both", {"Advertising": True, "Analytics": True}),
            event("c-none", {}),
            event("c-absent", None),
        ]
        assert tenant.send("batch", {"batch": matrix}).status_code == 200
        expected = {
            "ads": {"c-both", "c-absent"},
            "analytics": {"c-ads-no", "c-both", "c-absent"},
            "plain": {"c-ads-no", "c-both", "c-none", "c-absent"},
        }
        for name, receiver in receivers.items():
            wait_until(lambda r=receiver, n=name: delivered_ids(r) >= expected[n])  # type: ignore[misc]

        # Held back, never lost: the trace says consent_denied for that destination.
        trace = tenant.trace("c-none", until="consent_denied")
        denied = {s["destination_id"] for s in trace["stages"] if s["stage"] == "consent_denied"}
        assert denied == {ids["ads"], ids["analytics"]}

        # The workspace now requires consent: an event without it goes only where no category
        # is needed.
        privacy = tenant.api("PUT", "/privacy", json={"pii_rules": [], "consent_required": True})
        assert privacy.status_code == 200 and privacy.json()["consent_required"] is True
        time.sleep(1.2)  # past process' config cache
        assert tenant.send("track", event("c-required", None)).status_code == 200
        trace = tenant.trace("c-required", until="consent_denied")
        denied = {s["destination_id"] for s in trace["stages"] if s["stage"] == "consent_denied"}
        assert denied == {ids["ads"], ids["analytics"]}
        expected["plain"].add("c-required")

        # An identify that grants Advertising reaches the destination refused before.
        granted = event("c-granted", {"Advertising": True}, type="identify", traits={"a": 1})
        del granted["event"]
        assert tenant.send("identify", granted).status_code == 200
        expected["ads"].add("c-granted")
        expected["plain"].add("c-granted")
        for name, receiver in receivers.items():
            wait_until(lambda r=receiver, n=name: delivered_ids(r) >= expected[n])  # type: ignore[misc]
        time.sleep(1.5)  # anything held back would have arrived by now
        assert {name: delivered_ids(r) for name, r in receivers.items()} == expected

    # Volume by consent outcome, counted in BigQuery from the events' rows.
    def counts() -> dict[str, int]:
        rows = tenant.api("GET", "/events/consent-volume", params={"hours": 1}).json()
        totals: dict[str, int] = {}
        for row in rows:
            assert row["outcome"] == "consent_denied"
            totals[row["destination_id"]] = (
                totals.get(row["destination_id"], 0) + row["event_count"]
            )
        return totals

    # ads: c-ads-no, c-none, c-required; analytics: c-none, c-required, c-granted.
    assert wait_until(lambda: counts() == {ids["ads"]: 3, ids["analytics"]: 3})


def test_a_source_that_drops_bots_records_them_and_forwards_the_browsers(
    tenant: Tenant, local_stack: LocalStack
) -> None:
    # A source created with the policy: its write-key record carries it from the start.
    created = tenant.api("POST", "/event-keys", json={"name": "Site", "bot_policy": "drop"})
    assert created.status_code == 201, created.text
    write_key = created.json()["key"]
    with webhook_receiver() as receiver:
        tenant.rule(tenant.webhook(receiver.url))
        chrome = (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
        )
        batch = [
            event("b-bot", None, context={"userAgent": GOOGLEBOT}),
            event("b-browser", None, context={"userAgent": chrome}),
            event("b-server", None),
        ]
        sent = requests.post(
            f"{tenant.gateway}/v1/batch",
            json={"batch": batch},
            headers={"X-Write-Key": write_key},
            timeout=30,
        )
        assert sent.status_code == 200, sent.text
        received = receiver.wait_for(2)
        time.sleep(1.5)
        assert {r.event["messageId"] for r in receiver.delivered()} == {"b-browser", "b-server"}
    browser = next(r.event for r in received if r.event["messageId"] == "b-browser")
    assert browser["context"]["browser"]["name"] == "Chrome"
    assert browser["context"]["os"]["name"] == "Mac OS X"
    stages = tenant.trace("b-bot")["stages"]
    assert stages[-1]["stage"] == "ignored" and "bot policy drops it" in stages[-1]["reason"]
