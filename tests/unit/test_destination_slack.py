"""Slack: templated messages, one per event, Slack's webhook answers classified, config rules.

The fake checks what an incoming webhook checks: its path (the token) names a live webhook, the
body is JSON with a non-empty `text`; it answers as Slack documents, a status with a plain-text
code: 200 "ok", 400 invalid_payload / no_text, 403 action_prohibited, 404 no_service /
channel_not_found, 410 channel_is_archived, 429 with Retry-After, 500 rollup_error.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from shared.destinations import merge_config, public_config, stored_config, validate_config
from shared.destinations.base import DeletionSubject
from shared.destinations.deletion import deletion_request
from shared.destinations.slack import MAX_TEXT_CHARS, SlackConnector, render
from shared.domain.errors import InvalidRequest
from shared.domain.event import CanonicalEvent
from tests.vendor_fakes import (
    Answer,
    Received,
    send_all,
    vendor_fixtures,
)

HOOK = "/services/T0TEST/B0TEST/slacktoken0123456789"
ARCHIVED = "/services/T0TEST/B0OLD/slacktokenarchived00"
NOW = datetime(2024, 1, 15, 15, 0, 6, tzinfo=UTC)
TEMPLATES = {
    "Order Completed": "New order {{properties.total}} from {{traits.email}}",
    "identify": "{{traits.email}} signed up",
}


def event(type_: str = "track", n: int = 0, **over: Any) -> CanonicalEvent:
    base: dict[str, Any] = {
        "messageId": f"msg-{n}",
        "type": type_,
        "event": "Order Completed" if type_ == "track" else None,
        "name": None,
        "userId": f"user-{n}",
        "anonymousId": None,
        "groupId": None,
        "previousId": None,
        "properties": {"total": 10 + n},
        "traits": {"email": f"u{n}@example.com"},
        "context": {},
        "integrations": {},
        "timestamp": "2024-01-15T14:59:55.250Z",
        "originalTimestamp": None,
        "sentAt": None,
        "receivedAt": "2024-01-15T15:00:05.250Z",
        "clockSkewMs": None,
        "workspaceId": "ws-1",
        "sourceId": "src-1",
        "extras": {},
    }
    return cast(CanonicalEvent, {**base, **over})


def slack(request: Received) -> Answer:
    """An incoming webhook as documented: token in the path, JSON with text."""
    if request.method != "POST" or request.path not in (HOOK, ARCHIVED):
        return Answer(404, "no_service")
    if request.path == ARCHIVED:
        return Answer(410, "channel_is_archived")
    try:
        body = request.json()
    except ValueError:
        return Answer(400, "invalid_payload")
    if not isinstance(body, dict):
        return Answer(400, "invalid_payload")
    if not str(body.get("text") or "").strip() and not body.get("blocks"):
        return Answer(400, "no_text")
    return Answer(200, "ok")


server, serve = vendor_fixtures(slack)


def config(url: str, path: str = HOOK, **over: Any) -> Any:
    raw = {"webhook_url": f"{url}{path}", "templates": TEMPLATES, **over}
    return validate_config("slack", raw)


def test_one_message_per_event_and_untemplated_events_skipped(serve: Any) -> None:
    vendor = serve(slack)
    events = [event(n=0), event(n=1, event="Product Viewed"), event("identify", n=2), event(n=3)]
    sent = send_all("slack", config(vendor.url), events, now=NOW)
    assert [s.status for s in sent] == ["delivered"] * 3
    assert [s.owners for s in sent] == [(0,), (2,), (3,)]
    assert [r.json() for r in vendor.received] == [
        {"text": "New order 10 from u0@example.com"},
        {"text": "u2@example.com signed up"},
        {"text": "New order 13 from u3@example.com"},
    ]
    assert all(r.headers["content-type"] == "application/json" for r in vendor.received)


def test_values_are_escaped_so_an_event_cannot_mention_the_channel(serve: Any) -> None:
    vendor = serve(slack)
    hostile = event(traits={"email": "<!channel> & <https://evil.example|click>"})
    send_all("slack", config(vendor.url), [hostile], now=NOW)
    [received] = vendor.received
    assert received.json()["text"] == (
        "New order 10 from &lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;"
    )


def test_the_template_language_substitutes_and_nothing_more() -> None:
    e = event(properties={"a": "{{traits.email}}", "items": [{"sku": "S-1"}], "ok": True})
    assert render("{{properties.a}}", e) == "{{traits.email}}"  # one pass, no re-expansion
    assert render("{{ properties.items.0.sku }}|{{properties.items.5.sku}}", e) == "S-1|"
    assert render("{{properties.ok}} {{__class__}} {{properties.a.__len__}}", e) == "true  "
    assert render("{{properties.items}}", e) == '[{"sku":"S-1"}]'
    assert render("plain {{ }} {x}", e) == "plain  {x}"
    # Only ASCII digits index a list: "²" is a digit to Python but no index.
    assert render("{{properties.items.²}}|{{properties.items.\u0660.sku}}", e) == "|"


def test_a_long_message_is_cut_at_slacks_limit_without_half_an_escape() -> None:
    e = event(properties={"long": "a" * (MAX_TEXT_CHARS - 3) + "&&&&"})
    text = render("{{properties.long}}", e)
    assert len(text) <= MAX_TEXT_CHARS and not text.endswith("&amp") and text.endswith("a")


def test_event_types_filter_and_default_template(serve: Any) -> None:
    cfg = config("https://hooks.slack.com", default_template="{{type}} from {{userId}}")
    connector = SlackConnector()
    [part] = connector.parts(event("page", name="Home"), cfg, now=NOW)
    assert part.payload == {"text": "page from user-0"}
    only_track = config("https://hooks.slack.com", event_types=["track"], default_template="x")
    assert connector.parts(event("identify"), only_track, now=NOW) == []
    assert connector.parts(event("track"), only_track, now=NOW) != []


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        (Answer(400, "invalid_payload"), "failed"),
        (Answer(400, "no_text"), "failed"),
        (Answer(403, "action_prohibited"), "failed"),
        (Answer(403, "invalid_token"), "failed"),
        (Answer(404, "channel_not_found"), "failed"),
        (Answer(404, "no_service"), "failed"),
        (Answer(410, "channel_is_archived"), "failed"),
        (Answer(500, "rollup_error"), "retry"),
        (Answer(503, "service unavailable"), "retry"),
    ],
)
def test_slacks_documented_answers(serve: Any, answer: Answer, status: str) -> None:
    vendor = serve(lambda _: answer)
    [sent] = send_all("slack", config(vendor.url), [event()], now=NOW)
    assert sent.status == status
    assert str(answer.body) in sent.result.detail


def test_rate_limited_is_retried_after_retry_after(serve: Any) -> None:
    vendor = serve(lambda _: Answer(429, "rate_limited", headers={"Retry-After": "30"}))
    [sent] = send_all("slack", config(vendor.url), [event()], now=NOW)
    assert sent.status == "retry" and sent.result.retry_after_seconds == 30.0


def test_the_fake_refuses_a_dead_hook_an_archived_channel_and_an_empty_message(serve: Any) -> None:
    vendor = serve(slack)
    [gone] = send_all("slack", config(vendor.url, path="/services/T/B/revoked"), [event()])
    [archived] = send_all("slack", config(vendor.url, path=ARCHIVED), [event()])
    empty = config(vendor.url, templates={"Order Completed": "{{properties.missing}}"})
    [no_text] = send_all("slack", empty, [event()])
    assert (gone.status, gone.result.http_status) == ("failed", 404)
    assert (archived.status, archived.result.http_status) == ("failed", 410)
    assert (no_text.status, no_text.result.detail) == ("failed", "HTTP 400: no_text")


def test_the_webhook_url_never_shows_in_an_answers_detail(serve: Any) -> None:
    vendor = serve(lambda request: Answer(400, f"invalid_payload for {request.path}"))
    [sent] = send_all("slack", config(vendor.url), [event()], now=NOW)
    assert HOOK not in sent.result.detail and "slacktoken" not in sent.result.detail


def test_no_deletion_api() -> None:
    stored = stored_config(config("https://hooks.slack.com"))
    reason = deletion_request("slack", stored, DeletionSubject("user_id", "user-1", "dpo"))
    assert isinstance(reason, str) and "no deletion API" in reason


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"webhook_url": "ftp://hooks.slack.com/services/T/B/secret-token"}, "webhook_url"),
        ({"webhook_url": "https://user:secret-token@hooks.slack.com/x"}, "webhook_url"),
        ({"webhook_url": "secret-token"}, "webhook_url"),
        ({"templates": {"Order Completed": ""}}, "templates"),
        ({"templates": {"": "x"}}, "templates"),
        ({"templates": {f"e{i}": "x" for i in range(201)}}, "templates"),
        ({"templates": {"Order Completed": "x" * 4001}}, "templates"),
        ({"default_template": ""}, "default_template"),
        ({"event_types": []}, "event_types"),
        ({"event_types": ["track", "track"]}, "event_types"),
        ({"event_types": ["purchase"]}, "event_types"),
        ({"channel": "#general"}, "channel"),
    ],
)
def test_invalid_config_names_its_field(changes: dict[str, Any], field: str) -> None:
    raw = {"webhook_url": "https://hooks.slack.com/services/T/B/secret-token", **changes}
    with pytest.raises(InvalidRequest) as caught:
        validate_config("slack", raw)
    assert caught.value.field is not None
    assert caught.value.field.split(".")[:2] == ["config", field]
    assert "secret-token" not in caught.value.message


def test_the_webhook_url_is_write_only_and_kept_on_update() -> None:
    url = "https://hooks.slack.com/services/T0TEST/B0TEST/slacktoken0123456789"
    cfg = config("https://hooks.slack.com")
    shown = json.dumps(public_config("slack", cfg)) + repr(cfg) + str(cfg)
    assert "slacktoken" not in shown and "webhook_url" not in public_config("slack", cfg)
    # An update that omits the URL (new templates) keeps it: the URL is the secret itself.
    merged = merge_config("slack", stored_config(cfg), {"templates": {"identify": "hi"}})
    assert merged.webhook_url.get_secret_value() == url  # type: ignore[attr-defined]
    assert merged.templates == {"identify": "hi"}  # type: ignore[attr-defined]
