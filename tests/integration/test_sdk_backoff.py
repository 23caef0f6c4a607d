"""The real, unmodified Segment and RudderStack SDKs back off when ingest answers 429 (a source
over its rate limit) or 503 (Pub/Sub unavailable), and every event arrives exactly once."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
import rudderstack.analytics.consumer as rudder_consumer
import segment.analytics.consumer as segment_consumer
from rudderstack.analytics.client import Client as RudderClient
from segment.analytics.client import Client as SegmentClient

from shared.bootstrap import Services
from shared.domain import ids
from shared.domain.rate_limit import RateLimit
from shared.domain.sources import EventSource, write_key_path
from shared.ports import Write
from tests.pubsub_helpers import TopicReader

pytestmark = pytest.mark.integration

# Each SDK's client, and the module whose `post` its consumer thread uploads with.
SDKS: dict[str, tuple[type[Any], ModuleType]] = {
    "segment": (SegmentClient, segment_consumer),
    "rudderstack": (RudderClient, rudder_consumer),
}
EVENTS = 40


class Uploads:
    """The status of every upload an SDK makes: its own `post`, called unchanged, observed."""

    def __init__(self, module: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
        self.statuses: list[int | None] = []
        original = module.post

        def post(*args: Any, **kwargs: Any) -> Any:
            try:
                response = original(*args, **kwargs)
            except Exception as exc:  # the SDK's APIError carries the status
                self.statuses.append(getattr(exc, "status", None))
                raise
            self.statuses.append(response.status_code)
            return response

        monkeypatch.setattr(module, "post", post)

    def wait_for(self, status: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while status not in self.statuses:
            assert time.monotonic() < deadline, f"no {status} in {self.statuses}"
            time.sleep(0.1)


def send(sdk: str, source: EventSource, url: str, errors: list[Any]) -> Any:
    """The SDK's client, sending EVENTS track calls in uploads of 10 events."""
    client_class, _ = SDKS[sdk]
    client = client_class(
        write_key=source.key,
        host=url,
        on_error=lambda error, batch: errors.append(error),
        max_retries=10,
        upload_size=10,
    )
    for order in range(EVENTS):
        client.track("user-1", "Order Completed", {"order": order})
    return client


def assert_each_event_arrived_once(reader: TopicReader) -> None:
    events = reader.events(EVENTS, timeout=60)
    assert sorted(e["properties"]["order"] for e in events) == list(range(EVENTS))
    assert len({e["messageId"] for e in events}) == EVENTS
    assert reader.events(1, timeout=3) == [], "an event arrived twice"


def each_sdk(quick: str) -> list[Any]:
    """Every SDK; `make test` runs `quick` (the scenarios share one SDK each), the others run
    in `make reliability`, to keep `make test` short."""
    return [
        pytest.param(sdk, marks=() if sdk == quick else pytest.mark.reliability)
        for sdk in sorted(SDKS)
    ]


@pytest.mark.parametrize("sdk", each_sdk("segment"))
def test_a_rate_limited_sdk_retries_later_and_every_event_arrives_once(
    sdk: str,
    live_services: Services,
    serve_function: Callable[[str], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = serve_function("ingest")
    workspace = live_services.workspaces.create("Backoff")
    source = live_services.sources.create(workspace.id, sdk, "t")
    # 40 events in uploads of 10 against 10 a second: the second upload on is refused at first.
    limit = RateLimit(events_per_second=10, burst=10)
    live_services.sources.set_rate_limit(workspace.id, source.id, limit)
    reader = TopicReader(source.pubsub_topic)
    uploads = Uploads(SDKS[sdk][1], monkeypatch)
    errors: list[Any] = []

    client = send(sdk, source, url, errors)
    client.flush()
    client.join()

    assert errors == []
    assert 429 in uploads.statuses and uploads.statuses[-1] == 200, uploads.statuses
    assert_each_event_arrived_once(reader)


@pytest.mark.parametrize("sdk", each_sdk("rudderstack"))
def test_an_unavailable_topic_makes_the_sdk_retry_and_every_event_arrives_once(
    sdk: str,
    live_services: Services,
    serve_function: Callable[[str], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = serve_function("ingest")
    workspace = live_services.workspaces.create("Outage")
    source = live_services.sources.create(workspace.id, sdk, "t")
    reader = TopicReader(source.pubsub_topic)
    # The write key's record names a topic Pub/Sub does not have: every publish fails, and
    # ingest answers 503 with Retry-After, as it does when Pub/Sub is unreachable.
    record = source.write_key_record()
    missing = record.pubsub_topic.rsplit("/", 1)[0] + f"/streams-missing-{ids.new_id()}"
    outage = record.model_copy(update={"pubsub_topic": missing})
    key_path = write_key_path(source.key)
    live_services.store.commit([Write("set", key_path, outage.model_dump())])
    uploads = Uploads(SDKS[sdk][1], monkeypatch)
    errors: list[Any] = []

    client = send(sdk, source, url, errors)
    uploads.wait_for(503)
    # The outage ends: ingest sees the real topic again within its write-key cache interval.
    live_services.store.commit([Write("set", key_path, record.model_dump())])
    client.flush()
    client.join()

    assert errors == []
    assert uploads.statuses[0] == 503 and uploads.statuses[-1] == 200, uploads.statuses
    assert_each_event_arrived_once(reader)
