"""The real, unmodified Segment and RudderStack SDKs against the running ingest function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rudderstack.analytics.client import Client as RudderClient
from segment.analytics.client import Client as SegmentClient

from shared.bootstrap import Services
from tests.pubsub_helpers import TopicReader

pytestmark = pytest.mark.integration

SDKS = {"segment": SegmentClient, "rudderstack": RudderClient}


@pytest.mark.parametrize("sdk", sorted(SDKS))
def test_every_sdk_call_reaches_the_source_topic(
    sdk: str, live_services: Services, serve_function: Callable[[str], str]
) -> None:
    url = serve_function("ingest")
    workspace = live_services.workspaces.create("SDK")
    source = live_services.sources.create(workspace.id, sdk, "t")
    reader = TopicReader(source.pubsub_topic)
    errors: list[Any] = []
    client = SDKS[sdk](
        write_key=source.key, host=url, on_error=lambda e, batch: errors.append(e), max_retries=1
    )

    client.identify("user-1", {"email": "a@example.com", "plan": "pro"})
    for i in range(20):
        client.track("user-1", "Order Completed", {"order": i, "total": 9.5})
    client.page("user-1", "Docs", "Pricing", {"url": "https://example.com/pricing"})
    client.screen("user-1", "App", "Home")
    client.group("user-1", "company-1", {"name": "Acme"})
    client.alias("user-1", "anon-1")
    client.track(anonymous_id="anon-2", event="Anonymous Visit")
    client.flush()
    client.join()

    assert errors == []
    events = reader.events(26)
    assert len(events) == 26
    by_type: dict[str, int] = {}
    for event in events:
        by_type[event["type"]] = by_type.get(event["type"], 0) + 1
        assert event["sourceId"] == source.id and event["workspaceId"] == workspace.id
        assert event["context"]["library"]["name"]
    assert by_type == {"identify": 1, "track": 21, "page": 1, "screen": 1, "group": 1, "alias": 1}
    orders = sorted(e["properties"]["order"] for e in events if e["event"] == "Order Completed")
    assert orders == list(range(20))
    alias = next(e for e in events if e["type"] == "alias")
    # Segment's alias(previous_id, user_id) argument order.
    assert {alias["previousId"], alias["userId"]} == {"user-1", "anon-1"}
