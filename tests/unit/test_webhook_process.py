"""Process maps webhook requests to events (shared/services/webhook_mapper.py), with and without
code; their events are deduplicated, stored and delivered like any; a request that cannot be
mapped is dead-lettered whole and replayed; one the code ignores is recorded."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from shared.bootstrap import set_services
from shared.config import Settings
from shared.domain.errors import Conflict
from shared.domain.event import CanonicalEvent
from shared.domain.outcomes import Observed
from shared.domain.pipeline import (
    SourceMessage,
    decode_deliveries,
    event_dead_letter_id,
    message_batch_id,
    parse_source_message,
)
from shared.domain.sources import EventSource, source_path
from shared.domain.webhooks import WebhookRequest, WebhookSettings, request_item
from shared.ports import Write
from shared.services.dead_letters import DeadLetterQuery
from shared.services.process import Processor, ProcessOutcome
from shared.services.webhook_mapper import WebhookMapper
from shared.services.workspace_config import WorkspaceConfig
from tests.fakes import FakeServices
from tests.unit.pipeline_fixtures import FakeSender, add_destination, add_rule, make_events, track

RECEIVED_AT = "2024-03-01T12:00:00.000Z"
# Stripe's documented event object (docs.stripe.com/api/events/object), trimmed.
STRIPE_EVENT: dict[str, Any] = {
    "id": "evt_1NG8Du2eZvKYlo2CUI79vXWy",
    "object": "event",
    "created": 1686089970,
    "data": {"object": {"id": "pi_1", "object": "payment_intent", "customer": "cus_9"}},
    "type": "payment_intent.succeeded",
}
STRIPE_SETTINGS = {
    "event_name_from": "path",
    "event_name": "type",
    "user_id_path": "data.object.customer",
    "signature": "stripe",
}
# Shopify sends one order; the code makes an identify of the buyer and a track of the order.
FAN_OUT = """
function transform(request) {
  const order = request.body;
  return [
    {type: "identify", userId: order.customer.id, traits: {email: order.email}},
    {event: "Order Paid", userId: order.customer.id,
     properties: {total: order.total_price, topic: request.headers["x-shopify-topic"]}},
  ];
}
"""
IGNORE_PINGS = """
function transform(request) {
  if (request.body.zen) return null;
  return {event: "Push", anonymousId: "gh"};
}
"""
BROKEN = "function transform(request) { return request.body.missing.field; }"


@pytest.fixture
def services() -> Iterator[FakeServices]:
    """Services without caching (a settings change shows at once), sending through a fake."""
    fake = FakeServices(
        Settings(project_id="test-project", config_cache_seconds=0), http_sender=FakeSender()
    )
    set_services(fake)
    yield fake
    set_services(None)


@pytest.fixture
def webhook_source(services: FakeServices) -> EventSource:
    workspace = services.workspaces.create("Acme")
    source = services.sources.create(workspace.id, "Payments", "t", type="webhook")
    add_destination(services.store, "dest-1", workspace_id=workspace.id)
    add_rule(services.store, "rule-1", "dest-1", workspace_id=workspace.id)
    return source


def configure(services: FakeServices, source: EventSource, **fields: Any) -> None:
    settings = WebhookSettings.model_validate(fields)
    path = source_path(source.workspace_id, source.id)
    services.store.commit([Write("update", path, {"webhook": settings.stored()})])


def request(
    source: EventSource,
    body: Any,
    message_id: str = "stripe:evt_1NG8Du2eZvKYlo2CUI79vXWy",
    headers: dict[str, str] | None = None,
) -> CanonicalEvent:
    webhook = WebhookRequest(
        headers=headers or {"content-type": "application/json"},
        query={},
        body=body,
        content_type="application/json",
        delivery_id=message_id.split(":", 1)[1],
    )
    item = request_item(webhook, message_id, source.workspace_id, source.id, RECEIVED_AT, None)
    return item  # type: ignore[return-value]  # an event-shaped item, as ingest publishes it


def process(
    services: FakeServices, source: EventSource, *items: CanonicalEvent, pubsub_id: str = "ps-1"
) -> ProcessOutcome:
    message = SourceMessage(pubsub_id, source.workspace_id, source.id, list(items))
    return services.processor.process(message)


def stored(services: FakeServices) -> list[dict[str, Any]]:
    return [dict(row) for row in services.event_store.rows]


def deliver(services: FakeServices) -> list[str]:
    """Run deliver on every deliveries message published so far; the delivered messageIds."""
    topic = services.delivery_topics.topic("dest-1")
    delivered = []
    for data, attributes in services.publisher.published.pop(topic, []):
        deliveries = decode_deliveries(data)
        outcomes = services.deliverer.deliver_all(deliveries, message_batch_id(data, attributes))
        delivered += [
            d.message_id
            for d, o in zip(deliveries, outcomes, strict=True)
            if o.status == "delivered"
        ]
    return delivered


def create_transformation(
    services: FakeServices, source: EventSource, code: str, status: str = "active"
) -> str:
    created = services.transformations.create(
        source.workspace_id, name="Map", source_code=code, status=status
    )
    return created.id


def test_a_stripe_request_becomes_one_event_stored_and_delivered(
    services: FakeServices, webhook_source: EventSource
) -> None:
    configure(services, webhook_source, **STRIPE_SETTINGS)

    outcome = process(services, webhook_source, request(webhook_source, STRIPE_EVENT))

    [row] = stored(services)
    assert (row["message_id"], row["event_type"], row["event_name"], row["user_id"]) == (
        "stripe:evt_1NG8Du2eZvKYlo2CUI79vXWy",
        "track",
        "payment_intent.succeeded",
        "cus_9",
    )
    assert (outcome.received, outcome.stored, outcome.deliveries) == (1, 1, 1)
    assert deliver(services) == ["stripe:evt_1NG8Du2eZvKYlo2CUI79vXWy"]
    [sent] = services.http_sender.sent  # type: ignore[attr-defined]
    assert b"payment_intent.succeeded" in sent.body
    trace = services.traces.trace(webhook_source.workspace_id, row["message_id"])
    assert [s["stage"] for s in trace["stages"]][:3] == ["received", "stored", "routed"]


def test_a_providers_retry_of_a_delivery_is_a_duplicate_of_every_event_it_made(
    services: FakeServices, webhook_source: EventSource
) -> None:
    order = {"email": "a@example.com", "total_price": "9.00", "customer": {"id": 7}}
    transformation_id = create_transformation(services, webhook_source, FAN_OUT)
    configure(services, webhook_source, transformation_id=transformation_id)
    headers = {"x-shopify-topic": "orders/paid"}
    first = request(webhook_source, order, "shopify:w-1", headers)

    fresh = process(services, webhook_source, first, pubsub_id="ps-1")
    retried = process(services, webhook_source, first, pubsub_id="ps-2")

    assert (fresh.stored, fresh.duplicates) == (2, 0)
    assert (retried.stored, retried.duplicates) == (0, 2)
    identify, track = stored(services)
    assert (identify["message_id"], identify["event_type"], identify["user_id"]) == (
        "shopify:w-1:0",
        "identify",
        "7",
    )
    assert (track["message_id"], track["event_name"]) == ("shopify:w-1:1", "Order Paid")
    assert sorted(deliver(services)) == ["shopify:w-1:0", "shopify:w-1:1"]
    log_entry = services.traces.trace(webhook_source.workspace_id, "shopify:w-1:1")
    assert "duplicate" in [s["stage"] for s in log_entry["stages"]]


def watched_processor(services: FakeServices) -> tuple[Processor, list[Observed]]:
    """A processor over the services, and what its live-stream observer is handed."""
    seen: list[Observed] = []

    class Watcher:
        def observe(self, workspace_id: str, source_id: str, observed: list[Observed]) -> None:
            seen.extend(observed)

    processor = Processor(
        services.store,
        services.event_store,
        services.publisher,
        WorkspaceConfig(services.store, 0),
        services.delivery_topics.topic,
        observers=(Watcher(),),
        webhooks=lambda: services.webhook_mapper,
    )
    return processor, seen


def test_the_live_stream_sees_the_raw_request_with_the_events_it_became(
    services: FakeServices, webhook_source: EventSource
) -> None:
    processor, seen = watched_processor(services)
    configure(
        services,
        webhook_source,
        transformation_id=create_transformation(services, webhook_source, FAN_OUT),
    )
    order = {"email": "a@example.com", "total_price": "9.00", "customer": {"id": 7}}
    paid = request(webhook_source, order, "shopify:w-2", {"x-shopify-topic": "orders/paid"})
    processor.process(SourceMessage("ps-1", webhook_source.workspace_id, webhook_source.id, [paid]))

    assert [(o.event["messageId"], o.status, o.reason) for o in seen] == [
        ("shopify:w-2", "mapped", "became 2 events: shopify:w-2:0, shopify:w-2:1"),
        ("shopify:w-2:0", "stored", None),
        ("shopify:w-2:1", "stored", None),
    ]
    # The raw request itself, as the source's debugger shows it.
    assert seen[0].event == paid


def test_a_request_the_code_ignores_is_recorded_in_its_trace_and_shown_as_dropped(
    services: FakeServices, webhook_source: EventSource
) -> None:
    processor, seen = watched_processor(services)
    configure(
        services,
        webhook_source,
        transformation_id=create_transformation(services, webhook_source, IGNORE_PINGS),
    )
    ping = request(webhook_source, {"zen": "Keep it simple."}, "github:d-1")
    message = SourceMessage("ps-1", webhook_source.workspace_id, webhook_source.id, [ping])

    outcome = processor.process(message)
    # The provider sends the same delivery again.
    again = processor.process(
        SourceMessage("ps-2", webhook_source.workspace_id, webhook_source.id, [ping])
    )

    assert stored(services) == []
    assert (outcome.stored, outcome.dead_lettered, again.duplicates) == (0, 0, 1)
    reason = "the source transformation returned null: the request was ignored"
    assert [(o.event["messageId"], o.status, o.reason) for o in seen][:1] == [
        ("github:d-1", "dropped", reason)
    ]
    trace = services.traces.trace(webhook_source.workspace_id, "github:d-1")
    assert [(s["stage"], s["status"], s["reason"]) for s in trace["stages"]] == [
        ("received", "ok", None),
        ("ignored", "dropped", reason),
        ("duplicate", "dropped", "1 duplicate(s) of this messageId ignored"),
    ]


def test_a_mapping_error_keeps_the_raw_request_and_a_replay_after_the_fix_maps_it(
    services: FakeServices, webhook_source: EventSource
) -> None:
    workspace_id = webhook_source.workspace_id
    transformation_id = create_transformation(services, webhook_source, BROKEN)
    configure(services, webhook_source, transformation_id=transformation_id)
    raw = request(webhook_source, STRIPE_EVENT)
    message_id = raw["messageId"]

    outcome = process(services, webhook_source, raw)

    assert (outcome.stored, outcome.dead_lettered) == (0, 1)
    [letter] = services.dead_letters.list(workspace_id, DeadLetterQuery())
    assert letter["id"] == event_dead_letter_id(message_id)
    assert letter["reason_code"] == "webhook_mapping_failed"
    assert letter["event_type"] == "webhook_request"
    assert letter["reason"] == (
        "the webhook request could not be mapped to events: the transformation failed: "
        "TypeError: cannot read property 'field' of undefined (line 1)"
    )
    trace = services.traces.trace(workspace_id, message_id)
    assert ("dead_lettered", "failed") in [(s["stage"], s["status"]) for s in trace["stages"]]

    services.transformations.update(
        workspace_id,
        transformation_id,
        {"source_code": "function transform(r) { return {event: r.body.type}; }"},
    )
    report = services.dead_letters.replay(
        workspace_id, DeadLetterQuery(ids=[letter["id"]]), dry_run=False
    )
    assert report.replayed == [letter["id"]]
    [(data, attributes)] = services.publisher.published[webhook_source.pubsub_topic]
    replayed = parse_source_message(data, attributes, "ps-replay")
    assert replayed.events == [raw]  # the raw request, whole, not an event made of it

    services.processor.process(replayed)

    [row] = stored(services)
    assert (row["message_id"], row["event_name"], row["anonymous_id"]) == (
        message_id,
        "payment_intent.succeeded",
        message_id,
    )
    stages = [s["stage"] for s in services.traces.trace(workspace_id, message_id)["stages"]]
    assert {"dead_lettered", "replayed", "stored"} <= set(stages)


@pytest.mark.parametrize(
    ("code", "status", "reason"),
    [
        (None, "active", "the source's transformation {id} does not exist"),
        (
            "function transform(r) { return {event: 'A'}; }",
            "draft",
            "the source's transformation 'Map' ({id}) is draft, not active",
        ),
        (
            "function transform(r) { return 'track'; }",
            "active",
            "transform returned a string: return a call object, an array of calls, or null to "
            "ignore the request",
        ),
        (
            "function transform(r) { while (true) {} }",
            "active",
            "the transformation failed: the transformation used more than 100 ms of CPU time",
        ),
        (
            "function transform(r) { return {type: 'group', userId: 'u'}; }",
            "active",
            "the event: groupId is required for group (groupId)",
        ),
    ],
)
def test_a_request_that_cannot_be_mapped_is_dead_lettered_with_why(
    services: FakeServices,
    webhook_source: EventSource,
    code: str | None,
    status: str,
    reason: str,
) -> None:
    transformation_id = (
        "t-missing"
        if code is None
        else create_transformation(services, webhook_source, code, status)
    )
    configure(services, webhook_source, transformation_id=transformation_id)

    outcome = process(services, webhook_source, request(webhook_source, STRIPE_EVENT))

    assert (outcome.stored, outcome.dead_lettered) == (0, 1)
    [letter] = services.dead_letters.list(webhook_source.workspace_id, DeadLetterQuery())
    expected = reason.format(id=transformation_id)
    assert letter["reason"] == f"the webhook request could not be mapped to events: {expected}"


def test_a_request_and_sdk_events_of_one_message_are_processed_together(
    services: FakeServices, webhook_source: EventSource
) -> None:
    """A webhook request's mapping error sets aside that request alone."""
    configure(services, webhook_source, event_name_from="header", event_name="X-GitHub-Event")
    good = request(webhook_source, {"ref": "main"}, "github:d-1", {"x-github-event": "push"})
    bad = request(webhook_source, {"ref": "main"}, "github:d-2")

    outcome = process(services, webhook_source, good, bad)

    assert [row["message_id"] for row in stored(services)] == ["github:d-1"]
    assert (outcome.stored, outcome.dead_lettered) == (1, 1)
    [letter] = services.dead_letters.list(webhook_source.workspace_id, DeadLetterQuery())
    assert letter["message_id"] == "github:d-2"
    assert letter["reason"].endswith(
        "the request has no X-GitHub-Event header to name the event by"
    )


def test_a_new_version_of_the_code_maps_the_next_request(
    services: FakeServices, webhook_source: EventSource
) -> None:
    workspace_id = webhook_source.workspace_id
    transformation_id = create_transformation(
        services, webhook_source, "function transform(r) { return {event: 'First'}; }"
    )
    configure(services, webhook_source, transformation_id=transformation_id)
    process(services, webhook_source, request(webhook_source, {}, "hmac:1"))
    services.transformations.update(
        workspace_id,
        transformation_id,
        {"source_code": "function transform(r) { return {event: 'Second'}; }"},
    )

    process(services, webhook_source, request(webhook_source, {}, "hmac:2"))

    assert [row["event_name"] for row in stored(services)] == ["First", "Second"]


def test_the_test_endpoint_runs_a_source_transformation_on_a_request_shaped_input(
    services: FakeServices, webhook_source: EventSource
) -> None:
    transformation_id = create_transformation(services, webhook_source, FAN_OUT)
    sample = {
        "headers": {"x-shopify-topic": "orders/paid"},
        "query": {},
        "body": {"email": "a@example.com", "total_price": "9.00", "customer": {"id": 7}},
    }

    result = services.transformations.test(
        webhook_source.workspace_id, transformation_id, input=sample
    )

    assert result["error"] is None
    assert [call.get("type", "track") for call in result["output"]] == ["identify", "track"]
    assert result["output"][1]["properties"] == {"total": "9.00", "topic": "orders/paid"}


def test_a_processor_without_the_webhook_step_dead_letters_requests_rather_than_store_them(
    services: FakeServices, webhook_source: EventSource
) -> None:
    processor = Processor(
        services.store,
        services.event_store,
        services.publisher,
        WorkspaceConfig(services.store, 0),
        services.delivery_topics.topic,
    )
    message = SourceMessage(
        "ps-1",
        webhook_source.workspace_id,
        webhook_source.id,
        [request(webhook_source, STRIPE_EVENT)],
    )

    outcome = processor.process(message)

    assert (outcome.stored, outcome.dead_lettered) == (0, 1)
    assert stored(services) == []


def test_the_sandbox_is_loaded_only_when_a_message_holds_a_webhook_request(
    services: FakeServices, webhook_source: EventSource
) -> None:
    asked: list[str] = []

    def webhook_step() -> WebhookMapper:
        asked.append("mapper")
        return services.webhook_mapper

    processor = Processor(
        services.store,
        services.event_store,
        services.publisher,
        WorkspaceConfig(services.store, 0),
        services.delivery_topics.topic,
        webhooks=webhook_step,
    )
    workspace_id, source_id = webhook_source.workspace_id, webhook_source.id
    sdk_events = make_events(track(), workspace_id=workspace_id)

    processor.process(SourceMessage("ps-1", workspace_id, source_id, sdk_events))
    assert asked == []
    processor.process(SourceMessage("ps-2", workspace_id, source_id, [request(webhook_source, {})]))
    assert asked == ["mapper"]


def test_a_transformation_a_webhook_source_uses_cannot_be_deleted(
    services: FakeServices, webhook_source: EventSource
) -> None:
    transformation_id = create_transformation(services, webhook_source, FAN_OUT)
    configure(services, webhook_source, transformation_id=transformation_id)
    with pytest.raises(Conflict) as refused:
        services.transformations.delete(webhook_source.workspace_id, transformation_id)
    assert f"webhook source 'Payments' ({webhook_source.id})" in refused.value.message
    configure(services, webhook_source)  # mapped without code again: the code may go
    services.transformations.delete(webhook_source.workspace_id, transformation_id)
