"""Device enrichment and bot detection (shared/domain/enrichment.py): golden files for
`with_device`, real browser, app, crawler and server-SDK user agents for `is_bot`, and the real
Segment and RudderStack Python SDKs driven through the ingest function."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from rudderstack.analytics import request as rudder_request
from rudderstack.analytics.client import Client as RudderClient
from rudderstack.analytics.version import VERSION as RUDDER_VERSION
from segment.analytics import request as segment_request
from segment.analytics.client import Client as SegmentClient
from segment.analytics.version import VERSION as SEGMENT_VERSION

from shared.domain.enrichment import derive_device, is_bot, with_device
from shared.domain.event import CanonicalEvent
from shared.domain.sources import EventSource
from tests.fakes import FakeServices
from tests.functions import function_client

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "enrichment"
CASES = sorted(GOLDEN.glob("*.json"))


def event_with(context: dict[str, Any]) -> CanonicalEvent:
    return {"messageId": "m-1", "type": "track", "event": "Viewed", "context": context}


@pytest.mark.parametrize("case", CASES, ids=[case.stem for case in CASES])
def test_golden(case: Path) -> None:
    golden = json.loads(case.read_text())
    event = golden["event"]
    sent = copy.deepcopy(event)

    enriched = with_device(event)

    assert enriched["context"] == golden["expected"]
    assert event == sent  # the input is never changed


def test_the_golden_files_cover_the_cases_the_issue_names() -> None:
    names = {case.stem for case in CASES}
    assert {
        "desktop_chrome_windows",
        "iphone_safari",
        "android_chrome",
        "ipad_safari",
        "client_hints_only",
        "sdk_device_kept",
        "no_user_agent",
        "bot_googlebot",
    } <= names


def test_nothing_to_add_returns_the_same_object() -> None:
    no_context: CanonicalEvent = {"messageId": "m-1", "type": "track"}
    unparsable = event_with({"userAgent": "analytics-python/2.4.0"})
    complete = with_device(
        event_with({"userAgent": "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Firefox/125.0"})
    )

    assert with_device(no_context) is no_context
    assert with_device(unparsable) is unparsable
    assert with_device(complete) is complete


def test_a_changed_event_shares_what_it_did_not_change() -> None:
    event = event_with(
        {"userAgent": "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Firefox/125.0", "page": {}}
    )
    event["properties"] = {"a": 1}

    enriched = with_device(event)

    assert enriched is not event and enriched["context"] is not event["context"]
    assert enriched["properties"] is event["properties"]
    assert enriched["context"]["page"] is event["context"]["page"]
    assert "device" not in event["context"]


def test_an_sdk_value_that_is_not_an_object_is_left_alone() -> None:
    event = event_with(
        {"userAgent": "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Firefox/125.0", "os": "Linux"}
    )

    context = with_device(event)["context"]

    assert context["os"] == "Linux"
    assert context["browser"] == {"name": "Firefox", "version": "125.0"}


@pytest.mark.parametrize(
    ("hints", "device_type"),
    [
        ({"mobile": True, "platform": "Android"}, "mobile"),
        # Chrome on an Android tablet reports mobile false.
        ({"mobile": False, "platform": "Android"}, "tablet"),
        ({"mobile": False, "platform": "Linux"}, "desktop"),
        ({"mobile": False, "platform": "Chrome OS"}, "desktop"),
        # Only a boolean counts: a hint of another type is ignored.
        ({"mobile": "yes", "platform": "Windows"}, "desktop"),
        ({"mobile": None, "platform": ""}, None),
    ],
)
def test_the_mobile_client_hint_decides_the_type(
    hints: dict[str, Any], device_type: str | None
) -> None:
    assert derive_device(None, hints).get("device", {}).get("type") == device_type


def test_client_hints_of_the_wrong_shape_are_ignored() -> None:
    user_agent = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
    plain = with_device(event_with({"userAgent": user_agent}))["context"]
    for hints in ("Chrome", ["mobile"], {"brands": "Chrome", "model": 7}):
        context = with_device(event_with({"userAgent": user_agent, "userAgentData": hints}))
        assert {k: context["context"][k] for k in ("device", "os", "browser")} == {
            k: plain[k] for k in ("device", "os", "browser")
        }


# Crawlers, by their published user agents.
CRAWLERS = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36 (compatible; Googlebot/2.1; "
    "+http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.1; "
    "+https://openai.com/gptbot)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/124.0.0.0 Safari/537.36",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
]
# People: browsers, in-app web views and native apps' own user agents.
PEOPLE = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/UD1A.230803.041; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.82 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Dalvik/2.1.0 (Linux; U; Android 13; Pixel 7 Build/TQ3A.230901.001)",
    "MyApp/1 CFNetwork/1490.0.4 Darwin/23.2.0",
]


@pytest.mark.parametrize("user_agent", CRAWLERS)
def test_crawlers_are_bots(user_agent: str) -> None:
    assert is_bot(event_with({"userAgent": user_agent}))


@pytest.mark.parametrize("user_agent", PEOPLE)
def test_browsers_and_apps_are_not_bots(user_agent: str) -> None:
    assert not is_bot(event_with({"userAgent": user_agent}))


@pytest.mark.parametrize("context", [{}, {"userAgent": None}, {"userAgent": "  "}, {"ip": "1"}])
def test_an_event_without_a_user_agent_is_never_a_bot(context: dict[str, Any]) -> None:
    assert not is_bot(event_with(context))
    assert not is_bot({"messageId": "m-1", "type": "track"})


# The User-Agent header each server-side SDK sends with its uploads (never in the event):
# Segment's and RudderStack's Python (the installed SDKs' request.py, checked below),
# @segment/analytics-node (segmentio/analytics-next, packages/node: publisher),
# RudderStack's Node (rudderlabs/rudder-sdk-node, src/index.js), Go (segmentio/analytics-go,
# analytics.go) and Java (segmentio/analytics-java and rudderlabs/rudder-sdk-java,
# DEFAULT_USER_AGENT); and the generic HTTP clients a hand-written server integration sends,
# several of which crawlerdetect lists as crawlers.
SERVER_SDK_HEADERS = [
    "analytics-python/2.4.0",
    "analytics-python/2.1.9",
    "analytics-node-next/latest",
    "analytics-node/2.1.1",
    "analytics-go (version: 3.3.0)",
    "analytics-java/3.5.1",
    "python-requests/2.32.3",
    "Go-http-client/1.1",
    "okhttp/4.12.0",
]


def ingest_batch(source: EventSource, body: dict[str, Any], user_agent: str) -> Any:
    """POST a server SDK's /v1/batch body to the ingest function with its User-Agent header."""
    return function_client("ingest").post(
        "/v1/batch",
        json={**body, "writeKey": source.key},
        headers={"User-Agent": user_agent},
    )


def published(services: FakeServices, source: EventSource) -> list[CanonicalEvent]:
    return [
        event
        for data, *_ in services.publisher.published.get(source.pubsub_topic, [])
        for event in json.loads(data)
    ]


@pytest.mark.parametrize("user_agent", SERVER_SDK_HEADERS)
def test_a_server_sdks_user_agent_header_never_makes_its_events_bots(
    services: FakeServices, source: EventSource, user_agent: str
) -> None:
    # The event shape every server SDK documents: identity, event, properties, its library.
    body = {
        "batch": [
            {
                "type": "track",
                "userId": "user-1",
                "event": "Order Completed",
                "properties": {"total": 9.5},
                "context": {"library": {"name": user_agent.split("/")[0], "version": "1"}},
            }
        ]
    }

    response = ingest_batch(source, body, user_agent)

    assert response.status_code == 200, response.get_data(as_text=True)
    [event] = published(services, source)
    assert "userAgent" not in event["context"]
    assert not is_bot(event)
    assert with_device(event) is event


class IngestSession:
    """In place of an SDK's `requests` session: prepares each upload exactly as `requests`
    would (headers, Basic auth, gzip body) and hands it to the ingest function in-process."""

    def __init__(self) -> None:
        self.client = function_client("ingest")
        self.headers: list[dict[str, str | bytes]] = []

    def post(self, url: str, **kwargs: Any) -> Any:
        prepared = requests.Request(
            "POST",
            url,
            data=kwargs["data"],
            headers=kwargs["headers"],
            auth=kwargs.get("auth"),
        ).prepare()
        headers = dict(prepared.headers)
        self.headers.append(headers)
        answer = self.client.post(urlsplit(url).path, data=prepared.body, headers=headers)
        return SimpleNamespace(
            status_code=answer.status_code,
            headers=answer.headers,
            reason=answer.status,
            text=answer.get_data(as_text=True),
            json=answer.get_json,
        )


@pytest.mark.parametrize(
    ("client_type", "request_module", "user_agent"),
    [
        (SegmentClient, segment_request, "analytics-python/" + SEGMENT_VERSION),
        (RudderClient, rudder_request, "analytics-python/" + RUDDER_VERSION),
    ],
    ids=["segment", "rudderstack"],
)
def test_the_real_python_sdks_events_are_not_bots(
    services: FakeServices,
    source: EventSource,
    monkeypatch: pytest.MonkeyPatch,
    client_type: Any,
    request_module: Any,
    user_agent: str,
) -> None:
    session = IngestSession()
    monkeypatch.setattr(request_module, "_session", session)
    errors: list[Any] = []
    client = client_type(
        write_key=source.key,
        host="http://ingest.test",
        sync_mode=True,
        on_error=lambda error, batch: errors.append(error),
    )

    client.identify("user-1", {"plan": "pro"})
    client.track("user-1", "Order Completed", {"total": 9.5})
    client.page("user-1", "Docs", "Pricing", {"url": "https://example.com/pricing"})

    assert errors == []
    # One upload per call (sync mode), each with the SDK's own User-Agent header.
    assert [h["User-Agent"] for h in session.headers] == [user_agent] * 3
    events = published(services, source)
    assert [e["type"] for e in events] == ["identify", "track", "page"]
    for event in events:
        assert "userAgent" not in event["context"]
        assert not is_bot(event)
        assert with_device(event) is event
