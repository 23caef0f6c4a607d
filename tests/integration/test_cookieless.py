"""A cookieless source through the ingest function on the real emulators: the SDK's
anonymousId is replaced by the day's hash of address and user agent, with the local key the
emulator stack provides, before the IP policy removes the address."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.bootstrap import Services
from shared.config import LOCAL_COOKIELESS_KEY
from shared.domain.cookieless import CookielessIds
from tests.functions import function_client
from tests.pubsub_helpers import TopicReader

pytestmark = pytest.mark.integration

SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15"
)
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


def test_a_cookieless_source_publishes_the_days_hash_not_the_sdks_id(
    live_services: Services,
) -> None:
    workspace = live_services.workspaces.create("Acme")
    source = live_services.sources.create(
        workspace.id, "Web", "t", ip_policy="remove", cookieless=True
    )
    plain = live_services.sources.create(workspace.id, "Other", "t", cookieless=False)
    reader = TopicReader(source.pubsub_topic)
    plain_reader = TopicReader(plain.pubsub_topic)
    ingest = function_client("ingest")

    def track(write_key: str, message_id: str, anonymous_id: str, agent: str, **extra: str) -> None:
        body = {
            "event": "Viewed",
            "messageId": message_id,
            "anonymousId": anonymous_id,
            "context": {"userAgent": agent},
            **extra,
        }
        response = ingest.post(
            "/v1/track",
            json=body,
            headers={"X-Write-Key": write_key},
            environ_overrides={"REMOTE_ADDR": "81.2.69.160"},
        )
        assert response.status_code == 200, response.get_json()

    before = datetime.now(UTC).date()
    track(source.key, "first", "ajs-cookie-1", SAFARI)
    track(source.key, "new-cookie", "ajs-cookie-2", SAFARI)
    track(source.key, "other-browser", "ajs-cookie-1", FIREFOX)
    track(source.key, "signed-in", "ajs-cookie-1", SAFARI, userId="user-7")
    track(plain.key, "plain", "ajs-cookie-1", SAFARI)
    after = datetime.now(UTC).date()

    events = {event["messageId"]: event for event in reader.events(4)}
    ids = {message_id: event["anonymousId"] for message_id, event in events.items()}
    # The same browser and address: one id, whatever cookie the SDK held; another browser: another.
    assert ids["first"] == ids["new-cookie"] == ids["signed-in"] != ids["other-browser"]
    assert "ajs-cookie-1" not in ids.values() and "ajs-cookie-2" not in ids.values()
    assert events["signed-in"]["userId"] == "user-7"
    # Computed from the full address, which the policy then removed.
    assert all("ip" not in event["context"] for event in events.values())
    generator = CookielessIds(LOCAL_COOKIELESS_KEY)
    assert ids["first"] in {
        generator.anonymous_id(day, source.id, "81.2.69.160", SAFARI) for day in {before, after}
    }
    # A source that is not cookieless publishes the SDK's id, as ever.
    [plain_event] = plain_reader.events(1)
    assert plain_event["anonymousId"] == "ajs-cookie-1"
