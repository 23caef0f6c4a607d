"""Cross-origin access: the ingest function answers every page (preflights, answers, errors),
a source may list the origins it allows, and the management API stays closed to pages."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.api.function_routes import routes_of
from shared.api.routes import ROUTES, http_functions
from shared.domain.sources import EventSource
from shared.http.cors import ALLOW_HEADERS, MAX_AGE_SECONDS, with_preflights
from shared.http.routing import Route
from tests.fakes import FakeServices, recording
from tests.functions import function_client
from tests.tenants import Tenant
from tests.unit.conftest import published

SHOP = "https://shop.example.com"
ELSEWHERE = "https://copycat.example.net"
TRACK = {"event": "Order Completed", "userId": "u-1"}


@pytest.fixture
def client() -> Any:
    return function_client("ingest")


@pytest.fixture
def shop_only(services: FakeServices) -> EventSource:
    workspace = services.workspaces.create("Shop")
    return services.sources.create(workspace.id, "Shop", "t", allowed_origins=[SHOP])


def concrete(path: str) -> str:
    """A path of the route, its parameters filled in."""
    return path.replace("{", "").replace("}", "")


INGEST_PATHS = sorted({r.path for r in routes_of("ingest") if r.method != "OPTIONS"})


# --- preflights -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", INGEST_PATHS)
def test_every_ingest_path_answers_a_preflight(client: Any, path: str) -> None:
    response = client.options(
        concrete(path),
        headers={
            "Origin": SHOP,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,authorization,anonymousid",
        },
    )
    assert response.status_code == 204
    assert response.get_data() == b"" and "Content-Type" not in response.headers
    assert response.headers["Access-Control-Allow-Origin"] == SHOP
    assert "Origin" in response.headers["Vary"]
    methods = {m.strip() for m in response.headers["Access-Control-Allow-Methods"].split(",")}
    assert "OPTIONS" in methods and methods & {"GET", "POST"}
    allowed = {
        h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")
    }
    # Everything the SDKs set: RudderStack's Basic key, AnonymousId and SentAt (the real SDK's
    # calls fail without them: tests/e2e/test_browser_sdks.py), JSON, gzip, our header.
    sdk_headers = {"authorization", "content-type", "x-write-key", "content-encoding"}
    assert sdk_headers | {"anonymousid", "sentat"} <= allowed
    assert int(response.headers["Access-Control-Max-Age"]) == MAX_AGE_SECONDS >= 3600
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_a_preflight_names_the_methods_of_its_path(client: Any) -> None:
    response = client.options("/v1/batch", headers={"Origin": SHOP})
    assert response.headers["Access-Control-Allow-Methods"] == "POST, OPTIONS"
    assert response.headers["Access-Control-Allow-Headers"] == ALLOW_HEADERS


def test_a_preflight_of_a_path_the_framework_refuses_is_still_streams_json(client: Any) -> None:
    # functions-framework's URL map matches no path holding a newline: Streams answers it.
    response = client.options("/v1/track%0A", headers={"Origin": SHOP})
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"
    assert response.headers["Access-Control-Allow-Origin"] == SHOP


def test_every_path_of_a_cross_origin_function_gets_a_preflight_route() -> None:
    """Including ones added later to the ingest function (a GET one, say), with no work."""
    later = Route("GET", "/v1/projects/{writeKey}/settings", "ingest", "getThing", "x", print)
    management = Route("GET", "/api/v1/things", "event_keys", "listThings", "x", print)
    routes = with_preflights((*routes_of("ingest"), later, management))
    preflights = {(r.path, r.function) for r in routes if r.method == "OPTIONS"}
    assert ("/v1/projects/{writeKey}/settings", "ingest") in preflights
    assert all(function == "ingest" for _, function in preflights)
    added = next(r for r in routes if r.method == "OPTIONS" and r.path == later.path)
    assert added.params == ["writeKey"] and added.auth == "none" and added.status == 204


def test_the_route_table_holds_one_preflight_per_ingest_path_and_no_other() -> None:
    preflights = [r for r in ROUTES if r.method == "OPTIONS"]
    assert sorted(r.path for r in preflights) == INGEST_PATHS
    assert {r.function for r in preflights} == {"ingest"}


# --- every answer carries the origin ----------------------------------------------------------


def test_an_accepted_request_names_the_origin(
    client: Any, services: FakeServices, source: EventSource
) -> None:
    response = client.post(
        "/v1/t", data=json.dumps(TRACK), headers={"Origin": SHOP, "X-Write-Key": source.key}
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == SHOP
    assert "Origin" in response.headers["Vary"]
    assert "Retry-After" in response.headers["Access-Control-Expose-Headers"]
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert len(published(services, source)) == 1


def test_without_an_origin_there_is_no_allow_origin(client: Any, source: EventSource) -> None:
    response = client.post("/v1/track", json=TRACK, headers={"X-Write-Key": source.key})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Origin" in response.headers["Vary"]  # a cache must still tell the two apart


@pytest.mark.parametrize(
    ("path", "data", "key", "status"),
    [
        ("/v1/track", json.dumps(TRACK), None, 401),
        ("/v1/track", json.dumps(TRACK), "wk_unknown", 401),
        ("/v1/track", "{nope", "source", 400),
        ("/v1/group", json.dumps({"userId": "u"}), "source", 400),
        ("/v1/batch", json.dumps({"batch": [{"x": "y" * 1000}] * 600}), "source", 413),
        ("/v1/nothing-here", "{}", "source", 404),
    ],
)
def test_errors_name_the_origin_too(
    client: Any, source: EventSource, path: str, data: str, key: str | None, status: int
) -> None:
    headers = {"Origin": SHOP}
    if key is not None:
        headers["X-Write-Key"] = source.key if key == "source" else key
    response = client.post(path, data=data, headers=headers)
    assert response.status_code == status
    assert response.get_json()["code"] == status
    assert response.headers["Access-Control-Allow-Origin"] == SHOP


def test_a_wrong_method_on_an_ingest_path_names_the_origin(client: Any) -> None:
    response = client.put("/v1/track", headers={"Origin": SHOP})
    assert response.status_code == 405
    assert response.headers["Access-Control-Allow-Origin"] == SHOP


def test_an_internal_error_names_the_origin(
    client: Any, services: FakeServices, source: EventSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("publisher down")

    monkeypatch.setattr(services.publisher, "publish", broken)
    response = client.post(
        "/v1/track", json=TRACK, headers={"Origin": SHOP, "X-Write-Key": source.key}
    )
    assert response.status_code == 500
    assert response.headers["Access-Control-Allow-Origin"] == SHOP


# --- allowed origins --------------------------------------------------------------------------


def test_a_listed_origin_is_accepted(
    client: Any, services: FakeServices, shop_only: EventSource
) -> None:
    response = client.post(
        "/v1/track", json=TRACK, headers={"Origin": SHOP, "X-Write-Key": shop_only.key}
    )
    assert response.status_code == 200
    assert len(published(services, shop_only)) == 1


def test_another_origin_is_refused_with_a_403_the_page_can_read(
    client: Any, services: FakeServices, shop_only: EventSource
) -> None:
    response = client.post(
        "/v1/b",
        data=json.dumps({"writeKey": shop_only.key, "batch": [{"type": "track", **TRACK}]}),
        headers={"Origin": ELSEWHERE, "Content-Type": "text/plain"},
    )
    assert response.status_code == 403
    body = response.get_json()
    assert body["error"] == "forbidden" and body["field"] == "Origin"
    assert ELSEWHERE in body["message"]
    assert response.headers["Access-Control-Allow-Origin"] == ELSEWHERE
    assert published(services, shop_only) == []


def test_the_preflight_of_a_refused_origin_still_passes(client: Any) -> None:
    """A preflight carries no key: it cannot know the source. The request that follows is the
    one refused, and the page reads why."""
    response = client.options("/v1/track", headers={"Origin": ELSEWHERE})
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == ELSEWHERE


def test_requests_without_an_origin_are_not_limited(
    client: Any, services: FakeServices, shop_only: EventSource
) -> None:
    # Servers and mobile apps send no Origin: the list is about web pages.
    response = client.post("/v1/track", json=TRACK, headers={"X-Write-Key": shop_only.key})
    assert response.status_code == 200


def test_the_origin_check_costs_no_read(
    client: Any, services: FakeServices, shop_only: EventSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    lookups: list[str] = []
    resolve = services.sources.resolve_write_key
    monkeypatch.setattr(services.sources, "resolve_write_key", recording(lookups, resolve))
    reads: list[str] = []
    get = services.store.get
    monkeypatch.setattr(services.store, "get", recording(reads, get))
    statuses = [
        client.post(
            "/v1/track", json=TRACK, headers={"Origin": origin, "X-Write-Key": shop_only.key}
        ).status_code
        for origin in (SHOP, ELSEWHERE, ELSEWHERE, SHOP)
    ]
    assert statuses == [200, 403, 403, 200]
    assert lookups == [shop_only.key]  # the first request's, then the cache
    assert len(reads) == 1


def test_a_changed_list_reaches_ingest_through_the_key_record(
    client: Any, services: FakeServices, source: EventSource
) -> None:
    services.sources.set_allowed_origins(source.workspace_id, source.id, [SHOP])
    services.__dict__.pop("ingest", None)  # a fresh instance: no cached lookup
    headers = {"Origin": ELSEWHERE, "X-Write-Key": source.key}
    assert client.post("/v1/track", json=TRACK, headers=headers).status_code == 403
    services.sources.set_allowed_origins(source.workspace_id, source.id, [])
    services.__dict__.pop("ingest", None)
    assert client.post("/v1/track", json=TRACK, headers=headers).status_code == 200


# --- the management API stays closed ----------------------------------------------------------


@pytest.mark.parametrize("function", sorted(set(http_functions()) - {"ingest"}))
def test_no_management_function_answers_cors(function: str, tenant: Tenant) -> None:
    workspace_id, auth = tenant
    client = function_client(function)
    route = next(r for r in routes_of(function) if r.method == "GET")
    path = route.path.replace("{workspace_id}", workspace_id)
    path = concrete(path)
    answered = client.get(path, headers={**auth, "Origin": SHOP})
    assert "Access-Control-Allow-Origin" not in answered.headers
    preflight = client.options(
        path, headers={"Origin": SHOP, "Access-Control-Request-Method": "GET"}
    )
    assert "Access-Control-Allow-Origin" not in preflight.headers
    assert preflight.status_code == 405
    assert preflight.get_json()["error"] == "method_not_allowed"


def test_the_management_api_refuses_a_preflight_with_json(tenant: Tenant) -> None:
    workspace_id, _ = tenant
    response = function_client("event_keys").options(
        f"/api/v1/workspaces/{workspace_id}/event-keys",
        headers={"Origin": SHOP, "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 405
    assert response.get_json() == {
        "code": 405,
        "error": "method_not_allowed",
        "message": f"OPTIONS is not allowed on /api/v1/workspaces/{workspace_id}/event-keys",
        "field": None,
        "details": None,
    }
    assert not [k for k, _ in response.headers.items() if k.startswith("Access-Control-")]
