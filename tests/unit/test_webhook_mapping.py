"""Webhook requests to events without code, and the checks of what a transformation returned
(shared/domain/webhook_mapping.py)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.domain.webhook_mapping import (
    MappingError,
    RequestItem,
    call_message_ids,
    calls_from_output,
    calls_without_code,
    read_path,
    request_events,
)
from shared.domain.webhooks import WebhookRequest, WebhookSettings, request_item

WORKSPACE_ID = "ws-1"
SOURCE_ID = "src-1"
RECEIVED_AT = "2024-03-01T12:00:00.000Z"
# Stripe's documented event object (docs.stripe.com/api/events/object), trimmed.
STRIPE_EVENT: dict[str, Any] = {
    "id": "evt_1NG8Du2eZvKYlo2CUI79vXWy",
    "object": "event",
    "api_version": "2019-02-19",
    "created": 1686089970,
    "data": {
        "object": {
            "id": "seti_1NG8Du2eZvKYlo2C9XMqbR0x",
            "object": "setup_intent",
            "customer": "cus_NqxK2KqRY9nJBm",
            "status": "requires_confirmation",
        }
    },
    "livemode": False,
    "type": "setup_intent.created",
}


def item(
    body: Any = None,
    headers: dict[str, str] | None = None,
    message_id: str = "stripe:evt_1NG8Du2eZvKYlo2CUI79vXWy",
    content_type: str = "application/json",
    delivery_id: str | None = "evt_1NG8Du2eZvKYlo2CUI79vXWy",
) -> RequestItem:
    request = WebhookRequest(
        headers=headers or {"content-type": content_type},
        query={"team": "payments"},
        body=STRIPE_EVENT if body is None else body,
        content_type=content_type,
        delivery_id=delivery_id,
    )
    published = request_item(
        request, message_id, WORKSPACE_ID, SOURCE_ID, RECEIVED_AT, "203.0.113.9"
    )
    return RequestItem.from_event(published)


def settings(**fields: Any) -> WebhookSettings:
    return WebhookSettings.model_validate(fields)


def events_of(request: RequestItem, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [dict(e) for e in request_events(request, calls, WORKSPACE_ID, SOURCE_ID, "stripe")]


def test_a_stripe_event_becomes_one_track_named_by_its_type_for_its_customer() -> None:
    request = item()
    calls = calls_without_code(
        request,
        settings(event_name_from="path", event_name="type", user_id_path="data.object.customer"),
    )

    [event] = events_of(request, calls)

    assert event["type"] == "track"
    assert event["event"] == "setup_intent.created"
    assert event["userId"] == "cus_NqxK2KqRY9nJBm"
    assert event["anonymousId"] is None
    assert event["properties"] == STRIPE_EVENT
    assert event["messageId"] == "stripe:evt_1NG8Du2eZvKYlo2CUI79vXWy"
    assert event["context"] == {
        "ip": "203.0.113.9",
        "library": {"name": "streams-webhook"},
        "webhook": {
            "request_id": "stripe:evt_1NG8Du2eZvKYlo2CUI79vXWy",
            "delivery_id": "evt_1NG8Du2eZvKYlo2CUI79vXWy",
            "provider": "stripe",
        },
    }
    # Canonical, as ingest makes events: every key present, times and ownership set.
    assert event["receivedAt"] == event["timestamp"] == RECEIVED_AT
    assert (event["workspaceId"], event["sourceId"]) == (WORKSPACE_ID, SOURCE_ID)


def test_without_a_user_the_event_is_anonymous_by_the_request_messageid() -> None:
    request = item(message_id="hmac:abc")
    [event] = events_of(request, calls_without_code(request, settings()))

    assert event["event"] == "Webhook Received"
    assert (event["userId"], event["anonymousId"]) == (None, "hmac:abc")


def test_a_user_id_path_missing_from_the_body_leaves_the_event_anonymous() -> None:
    request = item(body={"type": "ping"})
    [call] = calls_without_code(request, settings(user_id_path="data.object.customer"))
    assert "userId" not in call


def test_a_github_event_is_named_by_its_header_and_a_numeric_user_id_is_text() -> None:
    # GitHub's documented push payload (docs.github.com, webhook events), trimmed.
    push = {"ref": "refs/heads/main", "sender": {"login": "octocat", "id": 1}}
    request = item(body=push, headers={"x-github-event": "push"})
    calls = calls_without_code(
        request,
        settings(event_name_from="header", event_name="X-GitHub-Event", user_id_path="sender.id"),
    )

    [event] = events_of(request, calls)

    assert (event["event"], event["userId"]) == ("push", "1")


def test_a_form_body_becomes_its_fields_and_a_json_array_is_kept_under_body() -> None:
    form = item(body={"name": "Ada", "plan": "pro"}, content_type=FORM)
    array = item(body=[1, 2])

    [from_form] = events_of(form, calls_without_code(form, settings()))
    [from_array] = events_of(array, calls_without_code(array, settings()))

    assert from_form["properties"] == {"name": "Ada", "plan": "pro"}
    assert from_array["properties"] == {"body": [1, 2]}


FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("body", "headers", "fields", "message"),
    [
        (
            [1],
            None,
            {"event_name_from": "path", "event_name": "type"},
            "the request body is not a JSON object, so the event name path 'type' cannot be read",
        ),
        (
            {"id": 1},
            None,
            {"event_name_from": "path", "event_name": "type"},
            "the request body has no 'type' to name the event by",
        ),
        (
            {"type": {"a": 1}},
            None,
            {"event_name_from": "path", "event_name": "type"},
            "the event name at 'type' is not text",
        ),
        (
            {},
            {"content-type": "application/json"},
            {"event_name_from": "header", "event_name": "X-GitHub-Event"},
            "the request has no X-GitHub-Event header to name the event by",
        ),
        (
            {"user": {"id": 1}},
            None,
            {"user_id_path": "user"},
            "user_id_path 'user' names a value that is not text or a number",
        ),
        (
            "text",
            None,
            {"user_id_path": "user"},
            "the request body is not a JSON object, so the user id path 'user' cannot be read",
        ),
    ],
)
def test_a_request_the_settings_cannot_map_is_a_mapping_error_saying_why(
    body: Any, headers: dict[str, str] | None, fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(MappingError) as raised:
        calls_without_code(item(body=body, headers=headers), settings(**fields))
    assert str(raised.value) == message


def test_read_path_indexes_lists_and_tells_absent_from_null() -> None:
    body = {"items": [{"id": "a"}, {"id": None}]}
    assert read_path(body, "items.0.id", "x") == (True, "a")
    assert read_path(body, "items.1.id", "x") == (True, None)
    assert read_path(body, "items.2.id", "x") == (False, None)


def test_a_transformation_returns_a_call_an_array_or_null() -> None:
    assert calls_from_output(None) == []
    assert calls_from_output({"event": "A", "userId": "u"}) == [
        {"type": "track", "event": "A", "userId": "u"}
    ]
    assert calls_from_output([{"type": "identify", "userId": "u"}, {"event": "B"}]) == [
        {"type": "identify", "userId": "u"},
        {"type": "track", "event": "B"},
    ]


@pytest.mark.parametrize(
    ("output", "message"),
    [
        (
            "track",
            "transform returned a string: return a call object, an array of calls, "
            "or null to ignore the request",
        ),
        ([{"event": "A"}, 3], "call 1 is a number, not a call object"),
        (
            {"type": "purchase"},
            "the returned call has type 'purchase'; it must be one of "
            "alias, group, identify, page, screen, track",
        ),
    ],
)
def test_what_a_transformation_returns_otherwise_is_a_mapping_error(
    output: Any, message: str
) -> None:
    with pytest.raises(MappingError) as raised:
        calls_from_output(output)
    assert str(raised.value) == message


def test_one_call_keeps_the_request_messageid_several_are_numbered_unless_set() -> None:
    assert call_message_ids("gh:1", [{}]) == ["gh:1"]
    assert call_message_ids("gh:1", [{}, {}, {}]) == ["gh:1:0", "gh:1:1", "gh:1:2"]
    assert call_message_ids("gh:1", [{"messageId": "own"}, {}]) == ["own", "gh:1:1"]


def test_fanned_out_calls_become_canonical_events_with_the_request_context() -> None:
    request = item(message_id="shopify:w-1")
    calls = calls_from_output(
        [
            {"type": "identify", "userId": "u-1", "traits": {"plan": "pro"}},
            {
                "event": "Order Paid",
                "properties": {"total": 5},
                "context": {"library": {"name": "mine"}, "webhook": "forged"},
            },
        ]
    )

    identify, track = events_of(request, calls)

    assert (identify["type"], identify["messageId"], identify["traits"]) == (
        "identify",
        "shopify:w-1:0",
        {"plan": "pro"},
    )
    assert (track["type"], track["messageId"], track["event"]) == (
        "track",
        "shopify:w-1:1",
        "Order Paid",
    )
    # The code's own context stays, but which request an event came from is the server's.
    assert track["context"]["library"] == {"name": "mine"}
    assert track["context"]["webhook"]["request_id"] == "shopify:w-1"
    assert track["anonymousId"] == "shopify:w-1"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ({"type": "track"}, "the event: event must be a non-empty string for track (event)"),
        ({"type": "group", "userId": "u"}, "the event: groupId is required for group (groupId)"),
        ({"event": "A", "context": "x"}, "the event: context must be an object"),
    ],
)
def test_a_call_ingest_would_refuse_is_a_mapping_error_naming_the_field(
    call: dict[str, Any], message: str
) -> None:
    with pytest.raises(MappingError) as raised:
        events_of(item(), [call])
    assert str(raised.value) == message


def test_an_item_that_is_no_webhook_request_cannot_be_read() -> None:
    with pytest.raises(MappingError, match="holds no `request` object"):
        RequestItem.from_event({"messageId": "m", "receivedAt": RECEIVED_AT})
