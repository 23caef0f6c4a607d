"""Tenant isolation, generated from the route table: every route, every credential, two seeded
workspaces (Alpha and Beta, each with a resource of every kind, see harness.seed_tenant).

For every bearer route:
- no token, or a malformed or unknown one: 401;
- Beta's token on Alpha's paths: 404 on workspace paths (`{workspace_id}`) and on any route
  whose path names one of Alpha's resources (`/v1/streams/sources/{sourceId}`, ...);
- Beta's token on Beta's workspace with Alpha's resource ids in the path, body or query
  (insecure direct object references): never a 2xx on a path naming Alpha's resource, and
  never any of Alpha's data back;
- no request with Beta's token changes any of Alpha's stored documents;
- no answer to either token ever carries the other workspace's ids, keys or secrets.
For every other route: no answer carries either workspace's data.

Adding a route adds its rows here: the matrix iterates `ROUTES`, so a new route that leaks fails.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import pytest
from werkzeug.test import Client, TestResponse

from shared.api.routes import ROUTES
from shared.http.routing import Route
from tests.fakes import FakeServices
from tests.reliability.harness import GatewayApp, Tenant, seed_tenant

BEARER = [route for route in ROUTES if route.auth == "bearer"]
OTHERS = [route for route in ROUTES if route.auth != "bearer"]
BAD_AUTHORIZATION = [
    {},
    {"Authorization": ""},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer stk_unknown-token"},
    {"Authorization": "Basic c3RrX2FiYzo="},
    {"Authorization": "Token stk_abc"},
]
ID_FIELD = re.compile(r"(^|_)ids?$|Id$|_id$|^ids$", re.IGNORECASE)


def route_id(route: Route) -> str:
    return f"{route.method} {route.path}"


@dataclass
class World:
    services: FakeServices
    client: Client
    alpha: Tenant
    beta: Tenant


@pytest.fixture
def world(services: FakeServices) -> World:
    client = GatewayApp().client()
    return World(
        services,
        client,
        seed_tenant(services, client, "Alpha"),
        seed_tenant(services, client, "Beta"),
    )


def id_value(name: str, owner: Tenant, path: str) -> Any:
    """One of `owner`'s ids for a body or query field named `name` (by what the name says)."""
    if name.lower() == "ids":
        records = owner.quarantine_ids if "quarantine" in path else owner.dead_letter_ids
        return list(records) + owner.message_ids
    return owner.param(name)


def payload(model: Any, owner: Tenant, path: str) -> dict[str, Any]:
    """A body or query of `model` naming `owner`'s resources in every id field, and plausible
    values in the other required ones (the request may still be refused: that is fine)."""
    if model is None:
        return {}
    schema = model.model_json_schema(by_alias=True)
    required = set(schema.get("required", []))
    values: dict[str, Any] = {}
    for name, spec in schema.get("properties", {}).items():
        if ID_FIELD.search(name):
            values[name] = id_value(name, owner, path)
        elif name in required:
            values[name] = _plausible(spec, schema)
    return values


def _plausible(spec: dict[str, Any], schema: dict[str, Any]) -> Any:
    if "$ref" in spec:
        spec = schema.get("$defs", {}).get(spec["$ref"].rsplit("/", 1)[1], {})
    if "enum" in spec:
        return spec["enum"][0]
    if "anyOf" in spec:
        return _plausible(spec["anyOf"][0], schema)
    if spec.get("type") == "object" and "properties" in spec:
        # A nested object (a rate limit's settings): its required fields too, so the request
        # passes validation and meets the id check.
        required = spec.get("required", [])
        return {name: _plausible(spec["properties"][name], schema) for name in required}
    return {
        "string": "isolation",
        "integer": spec.get("minimum", 1),
        "number": 1,
        "boolean": False,
        "array": [],
        "object": {},
    }.get(spec.get("type", "string"), "isolation")


def call(
    world: World,
    route: Route,
    path: str,
    caller: Tenant | None,
    owner: Tenant,
    headers: dict[str, str] | None = None,
) -> tuple[TestResponse, str]:
    """Send `route` on `path` with a body and query naming `owner`'s ids; the response, and
    everything that was sent (path, query, body) as text."""
    body = payload(route.body, owner, path) if route.body is not None else None
    query = {k: v for k, v in payload(route.query, owner, path).items() if not isinstance(v, list)}
    sent_headers = headers if headers is not None else (caller.auth if caller else {})
    response = world.client.open(
        path, method=route.method, json=body, query_string=query, headers=sent_headers
    )
    return response, unquote(path) + json.dumps(query) + json.dumps(body)


def leaked(response: TestResponse, stranger: Tenant, sent: str) -> list[str]:
    """What of `stranger`'s the answer carries that the request did not send itself."""
    text = response.get_data(as_text=True)
    return [
        what for what, value in stranger.markers().items() if value in text and value not in sent
    ]


def documents_of(services: FakeServices, tenant: Tenant) -> dict[str, str]:
    """Every stored document that belongs to or names the tenant, as JSON text."""
    store = services.store.documents
    found = {}
    for path, document in store.items():
        text = json.dumps(document, sort_keys=True, default=str)
        if tenant.workspace_id in path or tenant.workspace_id in text:
            found[path] = text
    return found


def beta_paths(route: Route, world: World) -> str:
    """The route on Beta's workspace, naming Alpha's resources in every other parameter."""
    path = route.path
    for name in route.params:
        value = world.beta.workspace_id if name == "workspace_id" else world.alpha.param(name)
        path = path.replace("{" + name + "}", value)
    return path


# --- the matrix -------------------------------------------------------------------------------


@pytest.mark.parametrize("route", BEARER, ids=route_id)
def test_no_or_bad_token_is_401(world: World, route: Route) -> None:
    for headers in BAD_AUTHORIZATION:
        response, sent = call(world, route, world.alpha.path(route), None, world.alpha, headers)
        assert response.status_code == 401, (headers, response.get_data(as_text=True))
        assert response.get_json()["error"] == "unauthorized"
        assert not leaked(response, world.alpha, sent) and not leaked(response, world.beta, sent)


@pytest.mark.parametrize("route", BEARER, ids=route_id)
def test_another_workspaces_token_on_its_paths_finds_nothing(world: World, route: Route) -> None:
    alpha, beta = world.alpha, world.beta
    before = documents_of(world.services, alpha)
    response, sent = call(world, route, alpha.path(route), beta, alpha)
    if route.params:
        # A workspace or a resource of Alpha's: Beta cannot even learn that it exists.
        assert response.status_code == 404, response.get_data(as_text=True)
    assert not leaked(response, alpha, sent), leaked(response, alpha, sent)
    assert documents_of(world.services, alpha) == before, "Beta's request changed Alpha's data"


@pytest.mark.parametrize("route", [r for r in BEARER if "{workspace_id}" in r.path], ids=route_id)
def test_own_workspace_with_another_workspaces_ids(world: World, route: Route) -> None:
    """Beta in its own workspace, naming Alpha's resources by id (path, body, query)."""
    alpha, beta = world.alpha, world.beta
    before = documents_of(world.services, alpha)
    response, sent = call(world, route, beta_paths(route, world), beta, alpha)
    if len(route.params) > 1:
        assert response.status_code == 404, response.get_data(as_text=True)
    assert response.status_code < 500, response.get_data(as_text=True)
    assert not leaked(response, alpha, sent), leaked(response, alpha, sent)
    assert documents_of(world.services, alpha) == before, "Beta's request changed Alpha's data"


@pytest.mark.parametrize("route", BEARER, ids=route_id)
def test_own_token_sees_nothing_of_the_other_workspace(world: World, route: Route) -> None:
    for caller, stranger in ((world.alpha, world.beta), (world.beta, world.alpha)):
        response, sent = call(world, route, caller.path(route), caller, caller)
        assert response.status_code < 500, response.get_data(as_text=True)
        assert not leaked(response, stranger, sent), (caller.name, leaked(response, stranger, sent))


@pytest.mark.parametrize("route", OTHERS, ids=route_id)
def test_public_and_write_key_routes_carry_no_workspace_data(world: World, route: Route) -> None:
    for headers in ({}, {"X-Write-Key": world.alpha.write_key}):
        path = world.alpha.path(route) if route.params else route.path
        response = world.client.open(
            path, method=route.method, json={"type": "track"}, headers=headers
        )
        assert response.status_code < 500, response.get_data(as_text=True)
        for tenant in (world.alpha, world.beta):
            sent = unquote(path) + json.dumps(headers)
            assert not leaked(response, tenant, sent), leaked(response, tenant, sent)


def test_lists_of_each_workspace_hold_only_its_own_ids(world: World) -> None:
    """The seed is visible to its owner (so the matrix above compares real data)."""
    alpha = world.alpha
    listed = world.client.get("/v1/streams/sources", headers=alpha.auth).get_json()["data"]
    assert {s["id"] for s in listed} == {alpha.source_id, alpha.stream_source_id}
    for path, expected in (
        ("destinations", alpha.destination_id),
        ("event-forwarding-rules", alpha.rule_id),
        ("event-transformations", alpha.transform_id),
        ("event-contracts", alpha.contract_id),
    ):
        answer = world.client.get(f"{alpha.base}/{path}", headers=alpha.auth).get_json()
        items = answer["data"] if isinstance(answer, dict) else answer
        assert [item["id"] for item in items] == [expected], path


# --- the matrix catches what it is for ----------------------------------------------------------


def _route(method: str, path: str) -> Route:
    return next(r for r in ROUTES if (r.method, r.path) == (method, path))


def test_the_matrix_catches_a_list_that_leaks(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = world.services.sources
    every = [world.alpha.workspace_id, world.beta.workspace_id]
    leaky = lambda workspace_id: [s for ws in every for s in type(sources).list(sources, ws)]  # noqa: E731
    monkeypatch.setattr(sources, "list", leaky)
    with pytest.raises(AssertionError):
        test_own_token_sees_nothing_of_the_other_workspace(
            world, _route("GET", "/v1/streams/sources")
        )


def test_the_matrix_catches_a_direct_object_reference(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = world.services.sources
    owner_of = {world.alpha.source_id: world.alpha.workspace_id}

    def unscoped(workspace_id: str, source_id: str, field: str = "keyId") -> Any:
        return type(sources).get(sources, owner_of.get(source_id, workspace_id), source_id, field)

    monkeypatch.setattr(sources, "get", unscoped)
    with pytest.raises(AssertionError):
        test_another_workspaces_token_on_its_paths_finds_nothing(
            world, _route("GET", "/v1/streams/sources/{sourceId}")
        )
