"""What the real Firestore (the emulator) refuses never becomes a 500 on the local stack: a path
id of the reserved form is not found, user JSON it cannot hold as a map comes back as sent, a
query value too long to index matches nothing, and the gateway answers any method in JSON."""

from __future__ import annotations

import base64
import json

import pytest
import requests

from shared.domain.stored_documents import STORED_JSON
from shared.domain.transformations import transformations_collection
from tests.e2e.helpers import Tenant

pytestmark = pytest.mark.e2e

PASSING = "function transform(event) { return event; }"


def test_a_reserved_path_id_is_404_naming_the_parameter(tenant: Tenant) -> None:
    for key_id in ("__main__", "k" * 1501):
        answer = tenant.api("GET", f"/event-keys/{key_id}/privacy")
        assert answer.status_code == 404, answer.text
        assert answer.json()["field"] == "key_id"


def test_json_firestore_refuses_as_a_map_round_trips(tenant: Tenant) -> None:
    created = tenant.api(
        "POST",
        "/event-transformations",
        json={"name": "keys", "source_code": PASSING, "test_input": {"": 1, "__x__": [[1]]}},
    )
    assert created.status_code == 201, created.text
    transform_id = created.json()["id"]
    value = {"": [None, True], "big": 2**70}
    updated = tenant.api(
        "PUT", f"/event-transformations/{transform_id}", json={"test_output": value}
    )
    assert updated.status_code == 200, updated.text
    read = tenant.api("GET", f"/event-transformations/{transform_id}").json()
    assert read["test_output"] == value
    assert read["test_input"] == {"": 1, "__x__": [[1]]}
    # Stored in the emulator as marked JSON text, read back through the adapter as JSON.
    client = tenant.services.firestore_client
    path = f"{transformations_collection(tenant.workspace_id)}/{transform_id}"
    raw = client.document(path).get().to_dict()
    assert raw["test_output"].startswith(STORED_JSON)


def test_a_message_id_too_long_to_query_is_not_found(tenant: Tenant) -> None:
    answer = tenant.api("GET", f"/events/{'m' * 3000}/trace")
    assert answer.status_code == 404, answer.text
    assert answer.json()["field"] == "messageId"


def test_a_cursor_bound_too_long_to_query_pages_as_a_shorter_one(tenant: Tenant) -> None:
    created = tenant.api(
        "POST",
        "/event-contracts",
        json={"name": "c", "event_type": "track", "schema_definition": {"type": "object"}},
    )
    assert created.status_code == 201, created.text
    # A forged cursor whose bound is past anything stored, and too long for a query filter.
    cursor = base64.urlsafe_b64encode(json.dumps(["~" * 2000, 0]).encode()).decode()
    answer = tenant.api(
        "GET", f"/event-contracts/{created.json()['id']}/violations", params={"cursor": cursor}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"] == []


def test_an_empty_source_id_filter_is_400(tenant: Tenant) -> None:
    answer = requests.get(
        f"{tenant.gateway}/v1/streams/events?sourceId=",
        headers={"Authorization": f"Bearer {tenant.token}"},
        timeout=30,
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == "sourceId"


def test_the_gateway_answers_an_unrouted_method_with_json(tenant: Tenant) -> None:
    answer = tenant.api("TRACE", "/event-keys")
    assert answer.status_code == 405
    assert answer.json()["error"] == "method_not_allowed"
    assert answer.headers["Allow"] == "GET, POST, HEAD"
