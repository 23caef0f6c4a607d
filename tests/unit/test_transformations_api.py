"""Transformations API: CRUD field-exact to the seed, compiling on save, the status lifecycle,
the test endpoint (sample and recent events), and deletion guarded by forwarding rules."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest

from shared.domain import ids
from shared.domain.routing import Destination, destination_path, transformation_path
from shared.domain.storage import event_row
from tests.fakes import FakeServices
from tests.functions import function_client
from tests.tenants import Tenant, tenant_of
from tests.unit.pipeline_fixtures import START, identify, make_events, track

FIELDS = {
    "id",
    "workspace_id",
    "name",
    "description",
    "source_code",
    "test_input",
    "test_output",
    "status",
    "version",
    "compile_error",
    "created_at",
    "updated_at",
}
# The seed's Create Transformation example, verbatim.
SEED: dict[str, Any] = {
    "name": "Enrich Purchase Events",
    "description": "Add computed fields to purchase events",
    "source_code": "function transform(event) {\n if (event.properties.total > 100) {\n "
    "event.properties.tier = 'high_value';\n }\n return event;\n}",
    "test_input": {"event": "purchase_completed", "properties": {"total": 150}},
    "test_output": {
        "event": "purchase_completed",
        "properties": {"total": 150, "tier": "high_value"},
    },
}


@pytest.fixture
def client() -> Any:
    return function_client("event_transformations")


def base_of(workspace_id: str) -> str:
    return f"/api/v1/workspaces/{workspace_id}/event-transformations"


def create(client: Any, tenant: Tenant, **fields: Any) -> dict[str, Any]:
    workspace_id, auth = tenant
    response = client.post(base_of(workspace_id), json={**SEED, **fields}, headers=auth)
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


def test_crud(client: Any, tenant: Tenant) -> None:
    workspace_id, auth = tenant
    base = base_of(workspace_id)

    created = create(client, tenant)
    assert set(created) == FIELDS
    assert {k: created[k] for k in SEED} == SEED
    assert (created["status"], created["version"], created["compile_error"]) == ("active", 1, None)
    assert created["workspace_id"] == workspace_id
    assert created["created_at"] == created["updated_at"]

    minimal = client.post(
        base,
        json={"name": "Drop all", "source_code": "function transform(e) { return null; }"},
        headers=auth,
    )
    assert minimal.status_code == 201
    defaults = minimal.get_json()
    assert (defaults["description"], defaults["test_input"], defaults["test_output"]) == (
        "",
        None,
        None,
    )

    # Creation order; two creations within one millisecond are ordered by id.
    expected = sorted([created, defaults], key=lambda t: (t["created_at"], t["id"]))
    assert client.get(base, headers=auth).get_json() == expected
    url = f"{base}/{created['id']}"
    assert client.get(url, headers=auth).get_json() == created

    updated = client.put(url, json={"name": "Tag purchases", "test_output": None}, headers=auth)
    assert updated.status_code == 200
    changed = updated.get_json()
    assert (changed["name"], changed["test_output"], changed["version"]) == (
        "Tag purchases",
        None,
        2,
    )
    assert (changed["source_code"], changed["created_at"]) == (
        SEED["source_code"],
        created["created_at"],
    )
    assert client.get(url, headers=auth).get_json() == changed

    deleted = client.delete(url, headers=auth)
    assert deleted.status_code == 204 and deleted.data == b""
    assert client.get(url, headers=auth).status_code == 404
    assert client.delete(url, headers=auth).status_code == 404
    assert client.get(base, headers=auth).get_json() == [defaults]


def test_another_workspaces_transformation_is_not_found(
    client: Any, services: FakeServices, tenant: Tenant
) -> None:
    other = tenant_of(services, "Other")
    theirs = create(client, other)
    workspace_id, auth = tenant
    url = f"{base_of(workspace_id)}/{theirs['id']}"
    assert client.get(url, headers=auth).status_code == 404
    assert client.post(f"{url}/test", json={}, headers=auth).status_code == 404
    assert client.get(f"{base_of(other[0])}/{theirs['id']}", headers=auth).status_code == 404


def test_a_syntax_error_is_refused_with_line_and_column(client: Any, tenant: Tenant) -> None:
    workspace_id, auth = tenant
    source = "function transform(event) {\n  event.tier = ;\n  return event;\n}"
    response = client.post(
        base_of(workspace_id), json={**SEED, "source_code": source}, headers=auth
    )
    assert response.status_code == 400
    error = response.get_json()
    assert error["field"] == "source_code"
    assert error["message"] == (
        "source_code: SyntaxError: unexpected token in expression: ';' at line 2, column 16"
    )
    assert client.get(base_of(workspace_id), headers=auth).get_json() == []


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("function transfrom(e) { return e; }", "must define function transform"),
        ("const table = null;\nconst x = table.y;\nfunction transform(e) {}", "at line 2"),
        ("function transform(e) { return e; }\n}); (function () {", "unexpected token"),
    ],
)
def test_code_that_cannot_run_is_refused(
    client: Any, tenant: Tenant, source: str, message: str
) -> None:
    workspace_id, auth = tenant
    response = client.post(
        base_of(workspace_id), json={**SEED, "source_code": source}, headers=auth
    )
    assert response.status_code == 400
    assert message in response.get_json()["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x"}, "source_code"),
        ({"source_code": "function transform(e) {}"}, "name"),
        ({**SEED, "source_code": ""}, "source_code"),
        ({**SEED, "status": "error"}, "status"),
        ({**SEED, "status": "archived"}, "status"),
        ({**SEED, "test_input": [1]}, "test_input"),
        ({**SEED, "version": 7}, "version"),
    ],
)
def test_invalid_bodies_name_the_field(
    client: Any, tenant: Tenant, body: dict[str, Any], field: str
) -> None:
    workspace_id, auth = tenant
    response = client.post(base_of(workspace_id), json=body, headers=auth)
    assert response.status_code == 400
    assert response.get_json()["field"] == field


def test_a_failed_update_keeps_the_stored_version(client: Any, tenant: Tenant) -> None:
    workspace_id, auth = tenant
    created = create(client, tenant)
    url = f"{base_of(workspace_id)}/{created['id']}"

    broken = client.put(url, json={"source_code": "function transform(e) {"}, headers=auth)
    assert broken.status_code == 400
    assert "line 1" in broken.get_json()["message"]
    for change in ({"status": "error"}, {"name": None}, {"id": "x"}):
        assert client.put(url, json=change, headers=auth).status_code == 400
    assert client.get(url, headers=auth).get_json() == created


def test_status_lifecycle(client: Any, services: FakeServices, tenant: Tenant) -> None:
    workspace_id, auth = tenant
    draft = create(client, tenant, status="draft")
    assert draft["status"] == "draft"
    url = f"{base_of(workspace_id)}/{draft['id']}"

    # A draft can be tested before it is activated.
    assert client.post(f"{url}/test", json={}, headers=auth).get_json()["passed"] is True
    active = client.put(url, json={"status": "active"}, headers=auth).get_json()
    assert (active["status"], active["version"]) == ("active", 2)
    # Updates keep the status unless they set it.
    assert client.put(url, json={"name": "n"}, headers=auth).get_json()["status"] == "active"

    # Streams sets `error` when stored code stops compiling where it runs (see the deliver tests).
    path = transformation_path(workspace_id, draft["id"])
    document = services.store.get(path)
    assert document is not None
    services.store.documents[path] = {**document, "status": "error", "compile_error": "boom"}
    errored = client.get(url, headers=auth).get_json()
    assert (errored["status"], errored["compile_error"]) == ("error", "boom")
    # Saving code that compiles makes it active again (or draft, when the body says so).
    fixed = client.put(url, json={"description": "fixed"}, headers=auth).get_json()
    assert (fixed["status"], fixed["compile_error"]) == ("active", None)
    services.store.documents[path] = {**fixed, "status": "error", "compile_error": "boom"}
    parked = client.put(url, json={"status": "draft"}, headers=auth).get_json()
    assert parked["status"] == "draft"


def test_delete_is_refused_while_a_rule_applies_it(
    client: Any, services: FakeServices, tenant: Tenant
) -> None:
    workspace_id, auth = tenant
    created = create(client, tenant)
    now = ids.isoformat(ids.utcnow())
    destination = Destination(
        id="dest-1",
        workspace_id=workspace_id,
        name="Topic",
        type="pubsub",
        config={"topic": "projects/p/topics/t"},
        created_at=now,
        updated_at=now,
    )
    services.store.create(destination_path(workspace_id, "dest-1"), destination.model_dump())
    rule = services.forwarding_rules.create(
        workspace_id,
        name="Purchases to Amplitude",
        destination_id="dest-1",
        event_types=[],
        event_names=[],
        transformation_id=created["id"],
    )
    url = f"{base_of(workspace_id)}/{created['id']}"

    refused = client.delete(url, headers=auth)
    assert refused.status_code == 409
    error = refused.get_json()
    assert "'Purchases to Amplitude'" in error["message"] and rule.id in error["message"]
    assert error["details"] == rule.id

    services.forwarding_rules.update(workspace_id, rule.id, {"transformation_id": None})
    assert client.delete(url, headers=auth).status_code == 204


# The test endpoint


@pytest.mark.parametrize(
    "send",
    [
        pytest.param({"json": {}}, id="empty-object"),
        pytest.param({}, id="no-body"),
        pytest.param({"data": b"", "content_type": "application/json"}, id="empty-json-body"),
    ],
)
def test_the_seed_example_passes_its_test(
    client: Any, tenant: Tenant, send: dict[str, Any]
) -> None:
    """With no body (the seed's POST .../test has none), the saved test_input runs against the
    saved test_output."""
    workspace_id, auth = tenant
    created = create(client, tenant)
    response = client.post(f"{base_of(workspace_id)}/{created['id']}/test", headers=auth, **send)
    assert response.status_code == 200, response.get_json()
    result = response.get_json()
    assert result["mode"] == "sample"
    assert (result["passed"], result["diff"], result["error"]) == (True, [], None)
    assert result["output"] == SEED["test_output"]
    assert result["expected"] == SEED["test_output"]
    assert result["dropped"] is False
    assert result["duration_ms"] >= 0


def test_a_failing_test_shows_the_structural_diff(client: Any, tenant: Tenant) -> None:
    workspace_id, auth = tenant
    created = create(client, tenant)
    url = f"{base_of(workspace_id)}/{created['id']}/test"

    result = client.post(
        url,
        json={"input": {"event": "purchase_completed", "properties": {"total": 50}}},
        headers=auth,
    ).get_json()
    assert result["passed"] is False
    assert sorted(result["diff"], key=lambda d: d["path"]) == [
        {"path": "properties.tier", "expected": "high_value", "actual": None, "change": "removed"},
        {"path": "properties.total", "expected": 150, "actual": 50, "change": "changed"},
    ]


def test_body_supplied_code_input_and_expectation(client: Any, tenant: Tenant) -> None:
    workspace_id, auth = tenant
    created = create(client, tenant)
    url = f"{base_of(workspace_id)}/{created['id']}/test"
    source = (
        "function transform(event) {\n"
        "  console.log('seen', event.event);\n"
        "  return {...event, checked: true};\n"
        "}"
    )

    result = client.post(
        url, json={"source_code": source, "expected": {"checked": True}}, headers=auth
    ).get_json()
    assert result["logs"] == ["seen purchase_completed"]
    assert result["output"] == {**SEED["test_input"], "checked": True}
    assert [d["path"] for d in result["diff"]] == ["event", "properties"]
    # The saved code is unchanged by a test.
    assert (
        client.get(f"{base_of(workspace_id)}/{created['id']}", headers=auth).get_json() == created
    )

    dropped = client.post(
        url,
        json={"source_code": "function transform(e) { return null; }", "expected": []},
        headers=auth,
    ).get_json()
    assert (dropped["dropped"], dropped["passed"], dropped["output"]) == (True, True, None)

    no_expectation = client.post(
        url, json={"source_code": source, "input": {"event": "x"}, "expected": None}, headers=auth
    ).get_json()
    assert no_expectation["passed"] is False  # an explicit null expects a null output


def test_errors_in_tests(client: Any, tenant: Tenant) -> None:
    workspace_id, auth = tenant
    created = create(client, tenant)
    url = f"{base_of(workspace_id)}/{created['id']}/test"

    thrown = client.post(
        url,
        json={"source_code": "function transform(e) {\n  console.log('a');\n  return e.x.y;\n}"},
        headers=auth,
    ).get_json()
    assert thrown["error"] == "TypeError: cannot read property 'y' of undefined"
    assert (thrown["error_line"], thrown["passed"], thrown["logs"]) == (3, False, ["a"])

    looping = client.post(
        url, json={"source_code": "function transform(e) {\n  for (;;) {}\n}"}, headers=auth
    ).get_json()
    assert looping["error"] == "the transformation used more than 100 ms of CPU time"

    syntax = client.post(
        url, json={"source_code": "function transform(e) {\n  return e +;\n}"}, headers=auth
    )
    assert syntax.status_code == 400
    assert syntax.get_json()["message"].endswith("at line 2, column 13")


def test_a_sample_that_is_an_event_warns_when_the_output_is_not(
    client: Any, tenant: Tenant
) -> None:
    workspace_id, auth = tenant
    created = create(client, tenant)
    url = f"{base_of(workspace_id)}/{created['id']}/test"
    sample = {"type": "track", "messageId": "m-1", "event": "e", "properties": {}}
    result = client.post(
        url,
        json={"input": sample, "source_code": "function transform(e) { delete e.type; return e; }"},
        headers=auth,
    ).get_json()
    assert result["warnings"] == [
        "output event 0 would be dead-lettered: type is missing; it must be one of alias, "
        "group, identify, page, screen, track"
    ]


def test_without_test_input_an_input_is_required(client: Any, tenant: Tenant) -> None:
    workspace_id, auth = tenant
    created = create(client, tenant, test_input=None)
    response = client.post(f"{base_of(workspace_id)}/{created['id']}/test", json={}, headers=auth)
    assert response.status_code == 400
    assert response.get_json()["field"] == "input"


def test_recent_events_show_before_and_after(
    client: Any, services: FakeServices, tenant: Tenant
) -> None:
    workspace_id, auth = tenant
    created = create(client, tenant)
    oldest, older, newest = (
        make_events(item, workspace_id=workspace_id, received_at=START + timedelta(minutes=n))[0]
        for n, item in enumerate(
            [
                identify(messageId="m-who"),
                track("purchase_completed", messageId="m-low", properties={"total": 5}),
                track("purchase_completed", messageId="m-high", properties={"total": 500}),
            ]
        )
    )
    theirs = make_events(track("purchase_completed", messageId="m-theirs"), workspace_id="w-2")
    rows = [event_row(event) for event in [oldest, older, newest, *theirs]]
    services.event_store.insert(rows, [row["message_id"] for row in rows])
    url = f"{base_of(workspace_id)}/{created['id']}/test"

    result = client.post(url, json={"recent": 2}, headers=auth).get_json()
    assert (result["mode"], result["passed"]) == ("recent", True)
    high, low = result["events"]
    assert (high["message_id"], low["message_id"]) == ("m-high", "m-low")
    assert high["before"] == newest
    assert high["after"] == {**newest, "properties": {"total": 500, "tier": "high_value"}}
    assert high["changes"] == [
        {"path": "properties.tier", "before": None, "after": "high_value", "change": "added"}
    ]
    assert (low["changes"], low["dropped"], low["error"]) == ([], False, None)

    strict = (
        "function transform(event) {\n"
        "  if (event.type !== 'track') throw new Error('only tracks, not ' + event.type);\n"
        "  return event;\n"
        "}"
    )
    everything = client.post(
        url, json={"recent": 100, "source_code": strict}, headers=auth
    ).get_json()
    assert [run["message_id"] for run in everything["events"]] == ["m-high", "m-low", "m-who"]
    who = everything["events"][2]
    assert who["error"] == "Error: only tracks, not identify"
    assert (who["error_line"], who["after"], everything["passed"]) == (2, None, False)


@pytest.mark.parametrize(
    "body", [{"recent": 0}, {"recent": 101}, {"recent": 2, "input": {"a": 1}}, {"recent": "x"}]
)
def test_recent_is_bounded_and_alone(client: Any, tenant: Tenant, body: dict[str, Any]) -> None:
    workspace_id, auth = tenant
    created = create(client, tenant)
    response = client.post(f"{base_of(workspace_id)}/{created['id']}/test", json=body, headers=auth)
    assert response.status_code == 400
    assert response.get_json()["field"] == "recent"


def test_recent_events_after_one_that_hits_a_limit_still_run(
    client: Any, services: FakeServices, tenant: Tenant
) -> None:
    workspace_id, auth = tenant
    created = create(client, tenant)
    stored = [
        make_events(
            track("loop" if n == 1 else "ok", messageId=f"m-{n}"),
            workspace_id=workspace_id,
            received_at=START + timedelta(minutes=n),
        )[0]
        for n in range(3)
    ]
    rows = [event_row(event) for event in stored]
    services.event_store.insert(rows, [row["message_id"] for row in rows])
    source = (
        "let calls = 0;\n"
        "function transform(event) {\n"
        "  calls += 1;\n"
        "  if (event.event === 'loop') while (true) {}\n"
        "  return {...event, calls};\n"
        "}"
    )
    result = client.post(
        f"{base_of(workspace_id)}/{created['id']}/test",
        json={"recent": 3, "source_code": source},
        headers=auth,
    ).get_json()
    newest, looping, oldest = result["events"]
    assert looping["error"] == "the transformation used more than 100 ms of CPU time"
    assert (newest["after"]["calls"], oldest["after"]["calls"]) == (1, 1)
    assert oldest["changes"] == [{"path": "calls", "before": None, "after": 1, "change": "added"}]


def test_a_test_request_stops_at_its_cpu_budget(
    client: Any, services: FakeServices, tenant: Tenant
) -> None:
    # 100 stored events through an endless loop took 100 x 100 ms of CPU in one request.
    workspace_id, auth = tenant
    created = create(client, tenant)
    rows = [
        event_row(
            make_events(
                track("loop", messageId=f"m-{n}"),
                workspace_id=workspace_id,
                received_at=START + timedelta(seconds=n),
            )[0]
        )
        for n in range(100)
    ]
    services.event_store.insert(rows, [row["message_id"] for row in rows])
    started = time.thread_time()
    result = client.post(
        f"{base_of(workspace_id)}/{created['id']}/test",
        json={"recent": 100, "source_code": "function transform(e) { for (;;) {} }"},
        headers=auth,
    ).get_json()
    assert time.thread_time() - started < 1.5
    ran = len(result["events"])
    assert 9 <= ran <= 11
    assert (result["passed"], result["skipped"]) == (False, 100 - ran)
    assert result["error"] == (
        f"the test used its 1000 ms of CPU time: {100 - ran} of 100 events were not run"
    )
    assert 1000 <= result["cpu_ms"] < 1100
