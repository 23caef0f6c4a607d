"""Geo enrichment through the ingest function on the real emulators, from a City database the
test writes with mmdb_writer: context.location is published, the address as the source's IP
policy says."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.bootstrap import Services, set_services
from shared.config import Settings
from tests.functions import function_client
from tests.pubsub_helpers import TopicReader
from tests.unit.test_geo import write_city_database

pytestmark = pytest.mark.integration

LONDON = {
    "city": "London",
    "region": "England",
    "country": "United Kingdom",
    "latitude": 51.5142,
    "longitude": -0.0931,
}


@pytest.fixture
def geo_services(live_services: Services, tmp_path: Path) -> Iterator[Services]:
    """Services on the emulators whose settings name a database written for the test."""
    database = write_city_database(tmp_path / "city.mmdb")
    settings = dataclasses.replace(Settings.from_env(), geo_database=str(database))
    services = Services(settings)
    set_services(services)
    yield services
    set_services(live_services)


def send(write_key: str, body: dict[str, object], address: str) -> None:
    response = function_client("ingest").post(
        "/v1/track",
        json=body,
        headers={"X-Write-Key": write_key},
        environ_overrides={"REMOTE_ADDR": address},
    )
    assert response.status_code == 200, response.get_json()


@pytest.mark.parametrize(
    ("ip_policy", "published_ip"),
    [("keep", "81.2.69.160"), ("truncate", "81.2.69.0"), ("remove", None)],
)
def test_ingest_locates_the_sender_before_the_ip_policy(
    geo_services: Services, ip_policy: str, published_ip: str | None
) -> None:
    workspace = geo_services.workspaces.create("Acme")
    source = geo_services.sources.create(workspace.id, "Web", "t", ip_policy=ip_policy)  # type: ignore[arg-type]
    reader = TopicReader(source.pubsub_topic)

    send(
        source.key, {"event": "Viewed", "anonymousId": "a1", "messageId": "located"}, "81.2.69.160"
    )
    sent_location = {"city": "Paris", "country": "France"}
    send(
        source.key,
        {
            "event": "Viewed",
            "anonymousId": "a1",
            "messageId": "own",
            "context": {"location": sent_location},
        },
        "81.2.69.160",
    )
    # Loopback and addresses the database does not hold: nothing added.
    send(source.key, {"event": "Viewed", "anonymousId": "a1", "messageId": "loopback"}, "127.0.0.1")
    send(source.key, {"event": "Viewed", "anonymousId": "a1", "messageId": "unknown"}, "81.2.70.1")

    events = {event["messageId"]: event for event in reader.events(4)}
    assert set(events) == {"located", "own", "loopback", "unknown"}
    assert events["located"]["context"]["location"] == LONDON
    assert events["located"]["context"].get("ip") == published_ip
    assert events["own"]["context"]["location"] == sent_location
    assert "location" not in events["loopback"]["context"]
    assert "location" not in events["unknown"]["context"]


def test_without_a_database_nothing_changes(live_services: Services) -> None:
    workspace = live_services.workspaces.create("Acme")
    source = live_services.sources.create(workspace.id, "Web", "t")
    reader = TopicReader(source.pubsub_topic)
    send(source.key, {"event": "Viewed", "anonymousId": "a1"}, "81.2.69.160")
    [event] = reader.events(1)
    assert event["context"] == {"ip": "81.2.69.160"}
