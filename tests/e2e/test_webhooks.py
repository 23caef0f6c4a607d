"""Webhook sources on the local stack: a signed Stripe request becomes an event that reaches a
real webhook destination and the warehouse; the same delivery again is a duplicate; a request
the source's transformation cannot map is dead-lettered whole and, once the code is fixed,
replayed into events."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import pytest
import requests

from tests.e2e.helpers import Tenant, wait_until
from tests.webhook_receiver import webhook_receiver

pytestmark = pytest.mark.e2e

STRIPE_SECRET = "whsec_e2e0123456789abcdef"
# Stripe's documented event object (docs.stripe.com/api/events/object), trimmed.
STRIPE_EVENT: dict[str, Any] = {
    "id": "evt_1NG8Du2eZvKYlo2CUI79vXWy",
    "object": "event",
    "api_version": "2019-02-19",
    "created": 1686089970,
    "data": {
        "object": {
            "id": "pi_3MtwBwLkdIwHu7ix28a3tqPa",
            "object": "payment_intent",
            "amount": 2000,
            "currency": "usd",
            "customer": "cus_NffrFeUfNV2Hib",
            "status": "succeeded",
        }
    },
    "livemode": False,
    "type": "payment_intent.succeeded",
}
BROKEN = "function transform(request) { return request.body.data.missing.field; }"
FIXED = """
function transform(request) {
  const payment = request.body.data.object;
  return {event: "Payment Succeeded", userId: payment.customer,
          properties: {amount: payment.amount / 100, currency: payment.currency}};
}
"""


def stripe_post(tenant: Tenant, key: str, event: dict[str, Any]) -> requests.Response:
    """POST the event as Stripe does, signed per Stripe's documented scheme: `t=<unix time>,
    v1=<hex HMAC-SHA256 of "<t>.<raw body>">` (docs.stripe.com/webhooks#verify-manually)."""
    body = json.dumps(event).encode()
    timestamp = str(int(time.time()))
    digest = hmac.new(STRIPE_SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return requests.post(
        f"{tenant.gateway}/v1/webhook/{key}",
        data=body,
        headers={
            "Content-Type": "application/json",
            "Stripe-Signature": f"t={timestamp},v1={digest.hexdigest()}",
        },
        timeout=30,
    )


def webhook_source(tenant: Tenant, **settings: Any) -> dict[str, Any]:
    created = tenant.api("POST", "/event-keys", json={"name": "Stripe", "type": "webhook"})
    assert created.status_code == 201, created.text
    source = dict(created.json())
    configure(tenant, source, **settings)
    return source


def configure(tenant: Tenant, source: dict[str, Any], **settings: Any) -> None:
    answer = tenant.api("PUT", f"/event-keys/{source['id']}/webhook", json=settings)
    assert answer.status_code == 200, answer.text
    time.sleep(1.2)  # past the key cache of ingest and the settings cache of process


def warehouse_events(tenant: Tenant, source_id: str) -> list[dict[str, Any]]:
    answer = requests.get(
        f"{tenant.gateway}/v1/streams/events",
        params={"sourceId": source_id},
        headers={"Authorization": f"Bearer {tenant.token}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return list(answer.json()["data"])


def stages(trace: dict[str, Any]) -> list[str]:
    return [stage["stage"] for stage in trace["stages"]]


def test_a_signed_stripe_webhook_reaches_a_destination_and_the_warehouse_once(
    tenant: Tenant,
) -> None:
    source = webhook_source(
        tenant,
        event_name_from="path",
        event_name="type",
        user_id_path="data.object.customer",
        signature="stripe",
        secret=STRIPE_SECRET,
    )
    with webhook_receiver() as receiver:
        tenant.rule(tenant.webhook(receiver.url))

        accepted = stripe_post(tenant, source["key"], STRIPE_EVENT)
        assert accepted.status_code == 200, accepted.text
        message_id = accepted.json()["messageId"]
        [received] = receiver.wait_for(1)
        trace = tenant.trace(message_id, until="delivered")
        # The provider retries the same delivery (a new signature, the same event id).
        retried = stripe_post(tenant, source["key"], STRIPE_EVENT)
        again = tenant.trace(message_id, until="duplicate")
        time.sleep(1)  # a second delivery, were there one, would have been sent by now
        assert len(receiver.delivered()) == 1

    assert retried.status_code == 200 and retried.json()["messageId"] == message_id
    event = received.event
    assert (event["messageId"], event["type"], event["event"], event["userId"]) == (
        message_id,
        "track",
        "payment_intent.succeeded",
        "cus_NffrFeUfNV2Hib",
    )
    assert event["properties"] == STRIPE_EVENT
    assert event["context"]["library"] == {"name": "streams-webhook"}
    assert event["context"]["webhook"] == {
        "request_id": message_id,
        "delivery_id": STRIPE_EVENT["id"],
        "provider": "stripe",
    }
    assert {"stored", "routed", "delivered"} <= set(stages(trace))
    assert "duplicate" in stages(again)
    # In the warehouse, once: the events query (BigQuery) of the source.
    found = wait_until(lambda: warehouse_events(tenant, source["id"]))
    assert [(e["id"], e["type"], e.get("userId")) for e in found] == [
        (message_id, "payment_intent.succeeded", "cus_NffrFeUfNV2Hib")
    ]


def test_a_mapping_error_is_kept_whole_and_replayed_once_the_code_is_fixed(
    tenant: Tenant,
) -> None:
    created = tenant.api(
        "POST", "/event-transformations", json={"name": "Stripe payments", "source_code": BROKEN}
    )
    assert created.status_code == 201, created.text
    transformation_id = created.json()["id"]
    source = webhook_source(
        tenant, transformation_id=transformation_id, signature="stripe", secret=STRIPE_SECRET
    )
    event = {**STRIPE_EVENT, "id": "evt_3MtwBwLkdIwHu7ix0snN0B15"}

    with webhook_receiver() as receiver:
        tenant.rule(tenant.webhook(receiver.url))
        accepted = stripe_post(tenant, source["key"], event)
        assert accepted.status_code == 200, accepted.text
        message_id = accepted.json()["messageId"]
        failed = tenant.trace(message_id, until="dead_lettered")
        letters = [
            letter
            for letter in tenant.api("GET", "/dead-letters").json()
            if letter["message_id"] == message_id
        ]
        assert len(letters) == 1, letters
        [letter] = letters

        fixed = tenant.api(
            "PUT", f"/event-transformations/{transformation_id}", json={"source_code": FIXED}
        )
        assert fixed.status_code == 200, fixed.text
        time.sleep(1.2)  # past process's transformation cache
        replay = tenant.api("POST", "/dead-letters/replay", json={"ids": [letter["id"]]})
        assert replay.status_code == 200, replay.text
        [received] = receiver.wait_for(1)
        replayed = tenant.trace(message_id, until="delivered")

    assert letter["reason_code"] == "webhook_mapping_failed"
    assert (letter["kind"], letter["source_id"]) == ("event", source["id"])
    # The trace is the request's: nothing was made of it before the replay.
    assert failed["event_type"] == "webhook_request"
    assert "TypeError: cannot read property 'field' of undefined" in letter["reason"]
    assert "dead_lettered" in stages(failed)
    assert replay.json()["replayed"] == [letter["id"]]
    assert (received.event["messageId"], received.event["event"]) == (
        message_id,
        "Payment Succeeded",
    )
    assert received.event["properties"] == {"amount": 20, "currency": "usd"}
    assert {"replayed", "stored", "delivered"} <= set(stages(replayed))
