"""No 500 on what Firestore cannot take: ids no document can have are not found (never looked
up), an empty `sourceId` is a 400 naming it, user JSON Firestore refuses as a map comes back as
sent, and a method a path does not take is a JSON 405 with `Allow`. Each request goes through the
function entry points, routed as the gateway routes (the fuzz run's findings, reproduced)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from werkzeug.test import Client

from shared.api.routes import ROUTES
from shared.domain.stored_documents import STORED_JSON
from shared.domain.transformations import transformations_collection
from tests.fakes import FakeServices
from tests.reliability.harness import GatewayApp
from tests.tenants import Tenant

PASSING = "function transform(event) { return event; }"
# Ids Firestore refuses (the request fails, where nothing can be found), as a path segment.
IMPOSSIBLE_IDS = {
    "reserved": "__main__",
    "reserved, short": "____",
    "dot": ".",
    "dot dot": "..",
    "over 1,500 bytes": "k" * 1501,
}
# Each (method, path, parameter) of a path parameter that is a document id, other than the
# workspace's (another workspace's id is a 404 of its own, before any other).
ID_PARAMS = [
    (route.method, route.path, param)
    for route in ROUTES
    if route.method != "OPTIONS"
    for param in route.document_params
    if param != "workspace_id"
]


@pytest.fixture
def client() -> Client:
    return GatewayApp().client()


def concrete(path: str, workspace_id: str, bad_param: str, bad_id: str) -> str:
    """The route's path with the workspace's id, `bad_id` in `bad_param` and a UUID elsewhere."""
    path = path.replace("{workspace_id}", workspace_id)
    path = path.replace("{" + bad_param + "}", quote(bad_id, safe=""))
    while "{" in path:
        start = path.index("{")
        path = path[:start] + "0b7f5c1e-3a7b-4c59-9c1e-2d6c1b8f4f10" + path[path.index("}") + 1 :]
    return path


@pytest.mark.parametrize("bad_id", IMPOSSIBLE_IDS.values(), ids=IMPOSSIBLE_IDS.keys())
@pytest.mark.parametrize(("method", "path", "param"), ID_PARAMS)
def test_a_path_id_no_document_can_have_is_not_found_by_that_name(
    client: Client, tenant: Tenant, method: str, path: str, param: str, bad_id: str
) -> None:
    workspace_id, auth = tenant
    url = concrete(path, workspace_id, param, bad_id)
    answer = client.open(url, method=method, headers=auth, json={})
    assert answer.status_code == 404, answer.get_data(as_text=True)
    assert answer.get_json()["field"] == param
    assert answer.get_json()["error"] == "not_found"


def test_the_reserved_event_key_id_of_the_fuzz_run_is_404(client: Client, tenant: Tenant) -> None:
    workspace_id, auth = tenant
    answer = client.get(
        f"/api/v1/workspaces/{workspace_id}/event-keys/__main__/privacy", headers=auth
    )
    assert answer.status_code == 404
    assert answer.get_json()["field"] == "key_id"
    assert answer.get_json()["message"] == "key_id __main__ not found"


def test_a_client_chosen_message_id_of_the_reserved_form_is_looked_up(
    client: Client, tenant: Tenant
) -> None:
    # messageIds are the client's: `__main__` is a valid one, found through its digest.
    workspace_id, auth = tenant
    base = f"/api/v1/workspaces/{workspace_id}/events"
    for message_id in ("__main__", "k" * 3000):
        answer = client.get(f"{base}/{message_id}/trace", headers=auth)
        assert answer.status_code == 404
        assert answer.get_json()["field"] == "messageId"


def test_an_empty_source_id_filter_is_400_naming_it(client: Client, tenant: Tenant) -> None:
    _, auth = tenant
    answer = client.get("/v1/streams/events?sourceId=", headers=auth)
    assert answer.status_code == 400
    assert answer.get_json()["field"] == "sourceId"
    assert "must not be empty" in answer.get_json()["message"]


def test_an_empty_source_id_in_an_event_is_400_naming_it(client: Client, tenant: Tenant) -> None:
    _, auth = tenant
    answer = client.post("/v1/streams/events", headers=auth, json={"sourceId": "", "type": ""})
    assert answer.status_code == 400
    assert answer.get_json()["field"] == "sourceId"


def test_a_source_id_no_document_can_have_in_an_event_is_404_naming_it(
    client: Client, tenant: Tenant
) -> None:
    _, auth = tenant
    for source_id in ("__main__", "a/b", "..", "k" * 1501):
        answer = client.post(
            "/v1/streams/events", headers=auth, json={"sourceId": source_id, "type": "x"}
        )
        assert answer.status_code == 404, source_id
        assert answer.get_json()["field"] == "sourceId"


# --- user JSON round-trips -------------------------------------------------------------------


def transformation(client: Client, tenant: Tenant) -> str:
    workspace_id, auth = tenant
    created = client.post(
        f"/api/v1/workspaces/{workspace_id}/event-transformations",
        headers=auth,
        json={"name": "t", "source_code": PASSING},
    )
    assert created.status_code == 201, created.get_json()
    return str(created.get_json()["id"])


def nested(levels: int) -> Any:
    value: Any = True
    for index in range(levels):
        value = [value] if index % 2 else {"k": value}
    return value


# Valid JSON that Firestore refuses as a map (the fuzz run's `{"": [null, true]}` first).
REFUSED_SHAPES: dict[str, Any] = {
    "empty key": {"": [None, True]},
    "reserved key": {"__x__": {"": 1}},
    "array in array": [[1, 2], []],
    "integer beyond 64 bits": {"big": 2**70},
    "nested 21 deep": nested(21),
}


@pytest.mark.parametrize("value", REFUSED_SHAPES.values(), ids=REFUSED_SHAPES.keys())
def test_a_transformation_keeps_any_json_test_output_exactly(
    client: Client, tenant: Tenant, value: Any
) -> None:
    workspace_id, auth = tenant
    transform_id = transformation(client, tenant)
    url = f"/api/v1/workspaces/{workspace_id}/event-transformations/{transform_id}"
    updated = client.put(url, headers=auth, json={"test_output": value})
    assert updated.status_code == 200, updated.get_json()
    assert updated.get_json()["test_output"] == value
    assert client.get(url, headers=auth).get_json()["test_output"] == value


def test_the_fuzz_runs_empty_key_is_stored_as_json_text(
    client: Client, tenant: Tenant, services: FakeServices
) -> None:
    workspace_id, auth = tenant
    transform_id = transformation(client, tenant)
    url = f"/api/v1/workspaces/{workspace_id}/event-transformations/{transform_id}"
    value = {"": [None, True]}
    assert client.put(url, headers=auth, json={"test_output": value}).status_code == 200
    stored = services.store.documents[f"{transformations_collection(workspace_id)}/{transform_id}"]
    assert stored["test_output"].startswith(STORED_JSON)
    assert client.get(url, headers=auth).get_json()["test_output"] == value
    # And the list reads it back too.
    listed = client.get(f"/api/v1/workspaces/{workspace_id}/event-transformations", headers=auth)
    assert [t["test_output"] for t in listed.get_json()] == [value]


def test_a_transformation_test_input_with_an_empty_key_runs(client: Client, tenant: Tenant) -> None:
    workspace_id, auth = tenant
    sample = {"type": "track", "event": "e", "properties": {"": 1, "__x__": [[2]]}}
    created = client.post(
        f"/api/v1/workspaces/{workspace_id}/event-transformations",
        headers=auth,
        json={"name": "t", "source_code": PASSING, "test_input": sample, "test_output": sample},
    )
    assert created.status_code == 201, created.get_json()
    url = f"/api/v1/workspaces/{workspace_id}/event-transformations/{created.get_json()['id']}"
    assert client.get(url, headers=auth).get_json()["test_input"] == sample
    tested = client.post(f"{url}/test", headers=auth, json={})
    assert tested.status_code == 200, tested.get_json()
    assert tested.get_json()["passed"] is True


def test_a_webhook_header_of_the_reserved_form_is_kept(
    client: Client, tenant: Tenant, services: FakeServices
) -> None:
    workspace_id, auth = tenant
    created = client.post(
        f"/api/v1/workspaces/{workspace_id}/destinations",
        headers=auth,
        json={
            "name": "hook",
            "type": "webhook",
            "config": {
                "url": "https://93.184.216.34/in",  # an address: no DNS in unit tests
                "secret": "s" * 32,
                "headers": {"__x__": "one"},
            },
        },
    )
    assert created.status_code == 201, created.get_json()
    stored = services.destinations.get(workspace_id, created.get_json()["id"])
    assert stored.config["headers"] == {"__x__": "one"}


def test_a_record_over_one_mebibyte_is_413_naming_the_field(client: Client, tenant: Tenant) -> None:
    workspace_id, auth = tenant
    transform_id = transformation(client, tenant)
    url = f"/api/v1/workspaces/{workspace_id}/event-transformations/{transform_id}"
    half = "x" * 600_000
    assert client.put(url, headers=auth, json={"test_input": {"a": half}}).status_code == 200
    answer = client.put(url, headers=auth, json={"test_output": half + "y" * 100})
    assert answer.status_code == 413
    assert answer.get_json()["field"] == "test_output"
    assert client.get(url, headers=auth).get_json()["test_output"] is None


# --- methods ----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["TRACE", "PROPFIND", "PATCH", "OPTIONS"])
def test_a_method_the_path_does_not_take_is_a_json_405_with_allow(
    client: Client, tenant: Tenant, method: str
) -> None:
    workspace_id, auth = tenant
    path = f"/api/v1/workspaces/{workspace_id}/event-keys"
    answer = client.open(path, method=method, headers=auth)
    assert answer.status_code == 405
    assert answer.get_json()["error"] == "method_not_allowed"
    assert answer.headers["Allow"] == "GET, POST, HEAD"
