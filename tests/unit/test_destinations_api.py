from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from shared.bootstrap import Services, set_services
from shared.config import Settings
from shared.destinations.outbound import UnsafeDestination, UrlGuard
from shared.domain.routing import deliver_subscription_id, destination_path
from shared.services.destinations import Destinations
from tests.fakes import FakePublisher, FakeServices, FakeTopicAdmin, InMemoryConfigStore
from tests.functions import function_client
from tests.tenants import Tenant, tenant_of

DESTINATION_FIELDS = {"id", "name", "type", "config", "status", "createdAt"}
HOOK_URL = "https://hooks.example.com/streams"
WEBHOOK_SECRET = "whsec-0123456789-TOPSECRET"
HEADER_SECRET = "Bearer hdr-TOPSECRET-value"
AMPLITUDE_KEY = "amp-TOPSECRET-key"
SECRETS = (WEBHOOK_SECRET, HEADER_SECRET, AMPLITUDE_KEY, "TOPSECRET")
# Unit tests never touch real DNS: these names resolve here, anything else does not.
FAKE_DNS = {
    "hooks.example.com": ["93.184.216.34"],
    "other.example.com": ["93.184.216.35"],
    "internal.example.com": ["10.0.0.5"],
}


def fake_resolve(host: str, port: int) -> list[str]:
    if host in FAKE_DNS:
        return FAKE_DNS[host]
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        raise socket.gaierror(f"{host} not in the fake DNS") from None
    return [host]


def webhook(**config: Any) -> dict[str, Any]:
    return {
        "name": "Orders hook",
        "type": "webhook",
        "config": {
            "url": HOOK_URL,
            "secret": WEBHOOK_SECRET,
            "headers": {"Authorization": HEADER_SECRET},
            **config,
        },
    }


@pytest.fixture(autouse=True)
def fake_dns(services: FakeServices) -> None:
    services.destinations = Destinations(
        services.store,
        UrlGuard(False, resolve=fake_resolve),
        services.forwarding_rules,
        services.topic_guard,
    )


@pytest.fixture
def client() -> Any:
    return function_client("destinations")


@pytest.fixture
def streams() -> Any:
    return function_client("streams")


def without_secrets_set(destination: dict[str, Any]) -> dict[str, Any]:
    """A /api/v1 destination in the /v1/streams shape (which has no `secrets_set` nor
    `consent_categories`)."""
    extensions = ("secrets_set", "consent_categories")
    return {key: value for key, value in destination.items() if key not in extensions}


def assert_no_secret(response: Any) -> None:
    text = response.get_data(as_text=True)
    assert not any(secret in text for secret in SECRETS), text


def test_crud(client: Any, tenant: Tenant) -> None:
    workspace_id, auth = tenant
    base = f"/api/v1/workspaces/{workspace_id}/destinations"

    created = client.post(base, json=webhook(), headers=auth)
    assert created.status_code == 201
    destination = created.get_json()
    # /api/v1 adds which secrets are set (never their values) and the consent categories to
    # the /v1/streams shape.
    assert set(destination) == DESTINATION_FIELDS | {"secrets_set", "consent_categories"}
    assert destination["consent_categories"] == []
    assert destination["secrets_set"] == ["headers", "secret"]
    assert (destination["name"], destination["type"], destination["status"]) == (
        "Orders hook",
        "webhook",
        "active",
    )
    assert destination["config"] == {"url": HOOK_URL, "method": "POST", "timeout_seconds": 10}

    topic = {"topic": "projects/acme-prod/topics/events"}
    second = client.post(
        base,
        json={"name": "Topic", "type": "pubsub", "config": topic, "status": "inactive"},
        headers=auth,
    )
    assert second.status_code == 201
    pubsub = second.get_json()
    assert (pubsub["config"], pubsub["status"]) == (topic, "inactive")

    listed = client.get(base, headers=auth)
    assert listed.status_code == 200
    # Creation order; two creations within one millisecond are ordered by id.
    assert listed.get_json() == sorted(
        [destination, pubsub], key=lambda d: (d["createdAt"], d["id"])
    )
    url = f"{base}/{destination['id']}"
    assert client.get(url, headers=auth).get_json() == destination

    updated = client.put(url, json={"name": "Renamed", "status": "inactive"}, headers=auth)
    assert updated.status_code == 200
    assert updated.get_json() == {**destination, "name": "Renamed", "status": "inactive"}
    assert client.get(url, headers=auth).get_json() == updated.get_json()

    deleted = client.delete(url, headers=auth)
    assert deleted.status_code == 204 and deleted.data == b""
    assert client.get(url, headers=auth).status_code == 404
    assert client.delete(url, headers=auth).status_code == 404
    assert client.get(base, headers=auth).get_json() == [pubsub]


def test_both_seeds_serve_one_data_model(client: Any, streams: Any, tenant: Tenant) -> None:
    workspace_id, auth = tenant
    base = f"/api/v1/workspaces/{workspace_id}/destinations"

    via_streams = streams.post("/v1/streams/destinations", json=webhook(), headers=auth)
    assert via_streams.status_code == 201
    first = via_streams.get_json()
    assert set(first) == DESTINATION_FIELDS and first["status"] == "active"
    amplitude = {"name": "Amplitude", "type": "amplitude", "config": {"api_key": AMPLITUDE_KEY}}
    second = without_secrets_set(client.post(base, json=amplitude, headers=auth).get_json())

    # Creation order; two creations within one millisecond are ordered by id.
    expected = sorted([first, second], key=lambda d: (d["createdAt"], d["id"]))
    assert [without_secrets_set(d) for d in client.get(base, headers=auth).get_json()] == expected
    listed = streams.get("/v1/streams/destinations", headers=auth)
    assert listed.status_code == 200
    assert listed.get_json() == {"data": expected}
    got = client.get(f"{base}/{first['id']}", headers=auth).get_json()
    assert without_secrets_set(got) == first

    # The second seed's input has no status; unknown fields are refused there too.
    refused = streams.post(
        "/v1/streams/destinations", json={**webhook(), "status": "active"}, headers=auth
    )
    assert (refused.status_code, refused.get_json()["field"]) == (400, "status")
    bad = streams.post("/v1/streams/destinations", json=webhook(url="ftp://x"), headers=auth)
    assert (bad.status_code, bad.get_json()["field"]) == (400, "config.url")
    for response in (via_streams, listed, refused, bad):
        assert_no_secret(response)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (webhook(url="ftp://hooks.example.com/"), "config.url"),
        (webhook(url="not a url"), "config.url"),
        (webhook(secret="short"), "config.secret"),
        (webhook(headers={"Content-Length": "1"}), "config.headers"),
        (webhook(method="DELETE"), "config.method"),
        (webhook(colour="blue"), "config.colour"),
        ({"name": "w", "type": "webhook", "config": {"url": HOOK_URL}}, "config.secret"),
        ({"name": "p", "type": "pubsub", "config": {"topic": "events"}}, "config.topic"),
        ({"name": "a", "type": "amplitude", "config": {}}, "config.api_key"),
        (
            {"name": "a", "type": "amplitude", "config": {"api_key": "k", "region": "mars"}},
            "config.region",
        ),
        ({"name": "m", "type": "mixpanel", "config": {"region": "us"}}, "config.project_token"),
        (
            {"name": "g", "type": "ga4", "config": {"measurement_id": "UA-1", "api_secret": "s"}},
            "config.measurement_id",
        ),
        ({"name": "x", "type": "carrier-pigeon", "config": {}}, "type"),
        ({"name": "x", "type": "webhook", "config": ["url"]}, "config"),
        ({"name": "x", "type": "webhook"}, "config"),
        ({"type": "webhook", "config": {}}, "name"),
        ({"name": " ", "type": "webhook", "config": {}}, "name"),
        ({"name": "x", "type": 3, "config": {}}, "type"),
        ({**webhook(), "status": "paused"}, "status"),
        ({**webhook(), "id": "mine"}, "id"),
    ],
)
def test_invalid_bodies_name_the_field(
    client: Any,
    services: FakeServices,
    tenant: Tenant,
    body: dict[str, Any],
    field: str,
) -> None:
    workspace_id, auth = tenant
    base = f"/api/v1/workspaces/{workspace_id}/destinations"

    response = client.post(base, json=body, headers=auth)

    assert response.status_code == 400
    error = response.get_json()
    assert error["field"] == field and field in error["message"]
    assert_no_secret(response)
    assert client.get(base, headers=auth).get_json() == []


def test_secrets_are_write_only(
    client: Any,
    streams: Any,
    services: FakeServices,
    tenant: Tenant,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    workspace_id, auth = tenant
    base = f"/api/v1/workspaces/{workspace_id}/destinations"
    responses = []

    created = client.post(base, json=webhook(), headers=auth)
    destination_id = created.get_json()["id"]
    url = f"{base}/{destination_id}"
    responses += [created, client.get(url, headers=auth), client.get(base, headers=auth)]
    responses.append(streams.get("/v1/streams/destinations", headers=auth))
    stored = services.store.get(destination_path(workspace_id, destination_id))
    assert stored is not None
    assert stored["config"]["secret"] == WEBHOOK_SECRET
    assert stored["config"]["headers"] == {"Authorization": HEADER_SECRET}

    # A config without its secrets keeps the stored ones.
    updated = client.put(url, json={"config": {"url": HOOK_URL, "method": "PUT"}}, headers=auth)
    assert updated.status_code == 200
    assert updated.get_json()["config"] == {"url": HOOK_URL, "method": "PUT", "timeout_seconds": 10}
    responses.append(updated)
    stored = services.store.get(destination_path(workspace_id, destination_id))
    assert stored is not None
    assert stored["config"]["secret"] == WEBHOOK_SECRET
    assert stored["config"]["headers"] == {"Authorization": HEADER_SECRET}
    assert stored["config"]["method"] == "PUT"

    # Credentials sent to the URL never follow it to a new address unless given again.
    moved = client.put(url, json={"config": {"url": "https://other.example.com/"}}, headers=auth)
    assert (moved.status_code, moved.get_json()["field"]) == (400, "config.headers")
    responses.append(moved)
    new_headers = {"Authorization": "Bearer new-TOPSECRET"}
    moved = client.put(
        url,
        json={"config": {"url": "https://other.example.com/", "headers": new_headers}},
        headers=auth,
    )
    assert moved.status_code == 200
    responses.append(moved)
    stored = services.store.get(destination_path(workspace_id, destination_id))
    assert stored is not None
    assert stored["config"]["secret"] == WEBHOOK_SECRET
    assert stored["config"]["headers"] == new_headers

    amplitude = {"name": "Amp", "type": "amplitude", "config": {"api_key": AMPLITUDE_KEY}}
    responses.append(client.post(base, json=amplitude, headers=auth))
    assert responses[-1].get_json()["config"] == {
        "region": "us",
        "endpoint": None,
        "min_id_length": None,
        "group_type": "group",
    }
    for response in responses:
        assert_no_secret(response)
    assert not any(secret in caplog.text for secret in SECRETS)


def test_type_change_needs_a_whole_new_config(
    client: Any, services: FakeServices, tenant: Tenant
) -> None:
    workspace_id, auth = tenant
    destination = client.post(
        f"/api/v1/workspaces/{workspace_id}/destinations", json=webhook(), headers=auth
    ).get_json()
    url = f"/api/v1/workspaces/{workspace_id}/destinations/{destination['id']}"

    response = client.put(url, json={"type": "pubsub"}, headers=auth)
    assert (response.status_code, response.get_json()["field"]) == (400, "config")
    response = client.put(url, json={"type": "amplitude", "config": {}}, headers=auth)
    assert (response.status_code, response.get_json()["field"]) == (400, "config.api_key")

    topic = {"topic": "projects/acme-prod/topics/events"}
    response = client.put(url, json={"type": "pubsub", "config": topic}, headers=auth)
    assert response.status_code == 200
    assert (response.get_json()["type"], response.get_json()["config"]) == ("pubsub", topic)
    stored = services.store.get(destination_path(workspace_id, destination["id"]))
    assert stored is not None and stored["config"] == topic


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": None}, "name"),
        ({"config": None}, "config"),
        ({"status": "paused"}, "status"),
        ({"type": "carrier-pigeon"}, "type"),
        ({"config": {"url": "http://internal.example.com/", "headers": {}}}, "config.url"),
        ({"config": {"url": "http://127.0.0.1:8080/", "headers": {}}}, "config.url"),
        ({"config": {"url": "https://nowhere.example.com/", "headers": {}}}, "config.url"),
        ({"createdAt": "2020-01-01T00:00:00.000Z"}, "createdAt"),
    ],
)
def test_invalid_updates_change_nothing(
    client: Any,
    services: FakeServices,
    tenant: Tenant,
    change: dict[str, Any],
    field: str,
) -> None:
    workspace_id, auth = tenant
    destination = client.post(
        f"/api/v1/workspaces/{workspace_id}/destinations", json=webhook(), headers=auth
    ).get_json()
    path = destination_path(workspace_id, destination["id"])
    before = services.store.get(path)
    url = f"/api/v1/workspaces/{workspace_id}/destinations/{destination['id']}"

    response = client.put(url, json=change, headers=auth)

    assert (response.status_code, response.get_json()["field"]) == (400, field)
    assert services.store.get(path) == before


@pytest.fixture
def private_services() -> Iterator[Services]:
    """Services wired as production wires them, with private destinations refused."""
    services = Services(
        Settings(project_id="t", allow_private_destinations=False),
        store=InMemoryConfigStore(),
        topics=FakeTopicAdmin(),
        publisher=FakePublisher(),
    )
    set_services(services)
    yield services
    set_services(None)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (webhook(url="http://169.254.169.254/computeMetadata/v1/"), "config.url"),
        (webhook(url="http://127.0.0.1"), "config.url"),
        (webhook(url="http://[::1]:8080/"), "config.url"),
        (webhook(url="http://10.1.2.3/hook"), "config.url"),
        (webhook(url="http://metadata.google.internal/"), "config.url"),
        (
            {
                "name": "a",
                "type": "amplitude",
                "config": {"api_key": "k", "endpoint": "http://127.0.0.1/"},
            },
            "config.endpoint",
        ),
        (
            {
                "name": "m",
                "type": "mixpanel",
                "config": {"project_token": "t", "endpoint": "http://192.168.0.1"},
            },
            "config.endpoint",
        ),
    ],
)
def test_internal_addresses_are_refused(
    client: Any, streams: Any, private_services: Services, body: dict[str, Any], field: str
) -> None:
    workspace_id, auth = tenant_of(private_services)
    base = f"/api/v1/workspaces/{workspace_id}/destinations"

    for response in (
        client.post(base, json=body, headers=auth),
        streams.post("/v1/streams/destinations", json=body, headers=auth),
    ):
        assert (response.status_code, response.get_json()["field"]) == (400, field)
    assert private_services.destinations.list(workspace_id) == []


def test_internal_addresses_are_refused_on_update_too(
    client: Any, private_services: Services
) -> None:
    workspace_id, auth = tenant_of(private_services)
    topic = {"topic": "projects/acme-prod/topics/events"}
    destination = private_services.destinations.create(
        workspace_id, name="t", type="pubsub", config=topic
    )
    url = f"/api/v1/workspaces/{workspace_id}/destinations/{destination.id}"

    change = {"type": "webhook", "config": webhook(url="http://169.254.169.254/")["config"]}
    response = client.put(url, json=change, headers=auth)
    assert (response.status_code, response.get_json()["field"]) == (400, "config.url")
    assert private_services.destinations.get(workspace_id, destination.id) == destination


def test_metadata_server_is_refused_even_when_private_addresses_are_allowed() -> None:
    services = Services(
        Settings(project_id="t", allow_private_destinations=True),
        store=InMemoryConfigStore(),
        topics=FakeTopicAdmin(),
    )
    workspace = services.workspaces.create("Dev")
    local = services.destinations.create(workspace.id, **webhook(url="http://127.0.0.1:9000/hook"))
    assert local.config["url"] == "http://127.0.0.1:9000/hook"
    with pytest.raises(UnsafeDestination, match="link-local or metadata") as error:
        services.destinations.create(workspace.id, **webhook(url="http://169.254.169.254/"))
    assert error.value.field == "config.url"


def test_deleting_a_referenced_destination_is_409(
    client: Any, services: FakeServices, tenant: Tenant
) -> None:
    workspace_id, auth = tenant
    destination = client.post(
        f"/api/v1/workspaces/{workspace_id}/destinations", json=webhook(), headers=auth
    ).get_json()
    rule = services.forwarding_rules.create(
        workspace_id,
        name="Orders to hook",
        destination_id=destination["id"],
        event_types=["track"],
        event_names=[],
    )
    url = f"/api/v1/workspaces/{workspace_id}/destinations/{destination['id']}"

    response = client.delete(url, headers=auth)

    assert response.status_code == 409
    error = response.get_json()
    assert error["error"] == "conflict"
    assert "Orders to hook" in error["message"] and rule.id in error["message"]
    assert client.get(url, headers=auth).status_code == 200

    services.forwarding_rules.delete(workspace_id, rule.id)
    assert client.delete(url, headers=auth).status_code == 204


def test_other_workspace_is_404(
    client: Any, streams: Any, services: FakeServices, tenant: Tenant
) -> None:
    workspace_id, auth = tenant
    other = services.workspaces.create("Other")
    theirs = services.destinations.create(other.id, **webhook())
    mine = f"/api/v1/workspaces/{workspace_id}/destinations"
    other_base = f"/api/v1/workspaces/{other.id}/destinations"

    assert client.get(other_base, headers=auth).status_code == 404
    assert client.post(other_base, json=webhook(), headers=auth).status_code == 404
    assert client.get(f"{other_base}/{theirs.id}", headers=auth).status_code == 404
    assert client.get(f"{mine}/{theirs.id}", headers=auth).status_code == 404
    assert client.put(f"{mine}/{theirs.id}", json={"name": "x"}, headers=auth).status_code == 404
    assert client.delete(f"{mine}/{theirs.id}", headers=auth).status_code == 404
    assert client.get(f"{mine}/..", headers=auth).status_code in (404, 405)
    assert client.get(mine, headers=auth).get_json() == []
    assert streams.get("/v1/streams/destinations", headers=auth).get_json() == {"data": []}
    assert services.destinations.get(other.id, theirs.id) == theirs


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer stk_nope"}])
def test_missing_or_bad_token_is_401(
    client: Any, streams: Any, tenant: Tenant, headers: dict[str, str]
) -> None:
    workspace_id, _ = tenant
    base = f"/api/v1/workspaces/{workspace_id}/destinations"
    assert client.get(base, headers=headers).status_code == 401
    assert client.post(base, json=webhook(), headers=headers).status_code == 401
    assert client.put(f"{base}/x", json={"name": "n"}, headers=headers).status_code == 401
    assert client.delete(f"{base}/x", headers=headers).status_code == 401
    assert streams.get("/v1/streams/destinations", headers=headers).status_code == 401
    assert (
        streams.post("/v1/streams/destinations", json=webhook(), headers=headers).status_code == 401
    )


def test_deleting_a_destination_removes_its_delivery_topic(
    client: Any, services: FakeServices, tenant: Tenant
) -> None:
    workspace_id, auth = tenant
    services.destinations = Destinations(
        services.store,
        UrlGuard(False, resolve=fake_resolve),
        services.forwarding_rules,
        services.topic_guard,
        services.delivery_topics,
    )
    created = client.post(
        f"/api/v1/workspaces/{workspace_id}/destinations", json=webhook(), headers=auth
    ).get_json()
    topics: FakeTopicAdmin = services.topics
    topic = services.delivery_topics.topic(created["id"])
    assert topic in topics.topics

    url = f"/api/v1/workspaces/{workspace_id}/destinations/{created['id']}"
    assert client.delete(url, headers=auth).status_code == 204

    assert topic not in topics.topics
    subscription = deliver_subscription_id(created["id"])
    assert f"projects/test-project/subscriptions/{subscription}" in topics.retired
