"""Paging, search and status filters of the management API's lists (shared/domain/paging.py,
shared/api/crud.py), through the functions' real entry points."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from shared.domain.errors import InvalidRequest
from shared.domain.paging import ListFilter, decode_cursor, encode_cursor, page_of
from tests.fakes import FakeServices
from tests.functions import function_client
from tests.tenants import Tenant

START = datetime(2026, 1, 1, tzinfo=UTC)
TOPIC = {"topic": "projects/acme-prod/topics/events"}


class Ticking:
    """A clock a second later on every reading, so that creation order is certain."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def keys() -> Any:
    return function_client("event_keys")


def created_sources(services: FakeServices, tenant: Tenant, names: list[str]) -> list[str]:
    """The ids of sources named `names`, created in that order (so the last is the newest)."""
    services.sources._clock = Ticking()
    workspace_id, _ = tenant
    return [services.sources.create(workspace_id, name, "t").id for name in names]


def base(tenant: Tenant) -> str:
    return f"/api/v1/workspaces/{tenant[0]}/event-keys"


def test_without_a_limit_the_whole_list_is_one_array_oldest_first(
    keys: Any, services: FakeServices, tenant: Tenant
) -> None:
    ids = created_sources(services, tenant, ["a", "b", "c"])
    answer = keys.get(base(tenant), headers=tenant[1])
    assert answer.status_code == 200
    assert [s["id"] for s in answer.get_json()] == ids
    assert answer.headers["X-Total-Count"] == "3"
    assert "X-Next-Cursor" not in answer.headers and "Link" not in answer.headers


def test_pages_are_newest_first_and_the_cursor_walks_every_item_once(
    keys: Any, services: FakeServices, tenant: Tenant
) -> None:
    ids = created_sources(services, tenant, [f"source {i}" for i in range(7)])
    seen: list[str] = []
    query: dict[str, str] = {"limit": "3"}
    pages = 0
    while True:
        answer = keys.get(base(tenant), query_string=query, headers=tenant[1])
        assert answer.status_code == 200, answer.get_json()
        assert answer.headers["X-Total-Count"] == "7"
        seen += [s["id"] for s in answer.get_json()]
        pages += 1
        cursor = answer.headers.get("X-Next-Cursor")
        if cursor is None:
            assert "Link" not in answer.headers
            break
        # The Link header is the same request with the next cursor: following it is enough.
        link = answer.headers["Link"]
        assert link.endswith('>; rel="next"')
        url = urlsplit(link[1 : link.index(">")])
        assert url.path == base(tenant)
        assert parse_qs(url.query) == {"limit": ["3"], "cursor": [cursor]}
        query = {"limit": "3", "cursor": cursor}
    assert pages == 3
    assert seen == list(reversed(ids))


def test_a_source_created_between_pages_neither_repeats_nor_hides_another(
    keys: Any, services: FakeServices, tenant: Tenant
) -> None:
    ids = created_sources(services, tenant, ["a", "b", "c", "d"])
    first = keys.get(base(tenant), query_string={"limit": "2"}, headers=tenant[1])
    services.sources.create(tenant[0], "newer", "t")
    cursor = first.headers["X-Next-Cursor"]
    second = keys.get(
        base(tenant), query_string={"limit": "2", "cursor": cursor}, headers=tenant[1]
    )
    assert [s["id"] for s in first.get_json() + second.get_json()] == list(reversed(ids))


def test_search_is_a_substring_of_the_name_ignoring_case_and_status_filters(
    keys: Any, services: FakeServices, tenant: Tenant
) -> None:
    ids = created_sources(services, tenant, ["Web App", "iOS app", "Backend", "Straße"])
    keys.delete(f"{base(tenant)}/{ids[1]}", headers=tenant[1])

    def names(**query: str) -> list[str]:
        answer = keys.get(base(tenant), query_string=query, headers=tenant[1])
        assert answer.status_code == 200, answer.get_json()
        return [s["name"] for s in answer.get_json()]

    assert names(q="APP") == ["Web App", "iOS app"]
    assert names(q="APP", limit="10") == ["iOS app", "Web App"]
    assert names(q="  app ") == ["Web App", "iOS app"]
    assert names(q="STRASSE") == ["Straße"]
    assert names(q="app", status="active") == ["Web App"]
    assert names(status="revoked") == ["iOS app"]
    assert names(q="nothing like it") == []


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"limit": "0"}, "limit", "limit: must be at least 1"),
        ({"limit": "201"}, "limit", "limit: must be at most 200"),
        ({"limit": "ten"}, "limit", "limit: must be a whole number"),
        ({"limit": "5", "cursor": "not a cursor"}, "cursor", "cursor: is not a cursor"),
        ({"limit": "5", "cursor": encode_cursor(("x", "y"))[:-3]}, "cursor", "cursor: is not"),
        ({"cursor": encode_cursor(("2026", "id"))}, "cursor", "cursor: needs limit"),
        ({"status": "deleted"}, "status", "status: must be one of: active, revoked"),
        ({"q": "x" * 201}, "q", "q: must be at most 200 characters"),
        ({"page": "2"}, "page", "page"),
    ],
)
def test_a_bad_parameter_is_a_400_naming_it(
    keys: Any, tenant: Tenant, query: dict[str, str], field: str, message: str
) -> None:
    answer = keys.get(base(tenant), query_string=query, headers=tenant[1])
    assert answer.status_code == 400
    body = answer.get_json()
    assert body["field"] == field
    assert body["message"].startswith(message), body["message"]


def test_cursors_are_opaque_round_trips_and_refuse_anything_else() -> None:
    position = ("2026-01-01T00:00:01.000Z", "abc")
    assert decode_cursor(encode_cursor(position)) == position
    one_part = base64.urlsafe_b64encode(b'["2026-01-01T00:00:01.000Z"]').decode()
    numbers = base64.urlsafe_b64encode(b"[1, 2]").decode()
    for bad in ["", "%%%", "W10", one_part, numbers, encode_cursor(position)[:-2]]:
        with pytest.raises(InvalidRequest, match=r"^cursor: is not a cursor"):
            decode_cursor(bad)


COLLECTIONS = [
    # (the function serving it, its path under the workspace, the kind of item)
    ("event_contracts", "event-contracts", "contract"),
    ("destinations", "destinations", "destination"),
    ("event_forwarding_rules", "event-forwarding-rules", "rule"),
    ("event_transformations", "event-transformations", "transformation"),
]


def create_body(kind: str, name: str, destination_id: str | None) -> dict[str, Any]:
    if kind == "contract":
        return {
            "name": name,
            "event_type": "track",
            "event_name": f"Event {name}",
            "schema_definition": {"type": "object"},
        }
    if kind == "destination":
        return {"name": name, "type": "pubsub", "config": TOPIC}
    if kind == "rule":
        return {"name": name, "destination_id": destination_id}
    return {"name": name, "source_code": "function transform(e) { return e; }"}


@pytest.mark.parametrize(("function", "path", "kind"), COLLECTIONS)
def test_every_collection_pages_searches_and_filters_by_status(
    services: FakeServices, tenant: Tenant, function: str, path: str, kind: str
) -> None:
    workspace_id, auth = tenant
    for service in (
        services.contracts,
        services.destinations,
        services.forwarding_rules,
        services.transformations,
    ):
        service._clock = Ticking()
    destination_id = None
    if kind == "rule":
        target = function_client("destinations").post(
            f"/api/v1/workspaces/{workspace_id}/destinations",
            json=create_body("destination", "target", None),
            headers=auth,
        )
        destination_id = target.get_json()["id"]
    client = function_client(function)
    url = f"/api/v1/workspaces/{workspace_id}/{path}"
    created = []
    for name in ["alpha one", "beta", "Alpha two"]:
        answer = client.post(url, json=create_body(kind, name, destination_id), headers=auth)
        assert answer.status_code == 201, answer.get_json()
        created.append(answer.get_json())

    page = client.get(url, query_string={"limit": "2", "q": "ALPHA"}, headers=auth)
    assert page.status_code == 200, page.get_json()
    assert [item["name"] for item in page.get_json()] == ["Alpha two", "alpha one"]
    assert page.headers["X-Total-Count"] == "2"
    assert "X-Next-Cursor" not in page.headers

    first = client.get(url, query_string={"limit": "1"}, headers=auth)
    assert [item["name"] for item in first.get_json()] == ["Alpha two"]
    rest = client.get(
        url, query_string={"limit": "5", "cursor": first.headers["X-Next-Cursor"]}, headers=auth
    )
    assert [item["name"] for item in rest.get_json()] == ["beta", "alpha one"]

    # Put one item out of the default status, then filter by status.
    changed, default_status = {
        "contract": ({"status": "archived"}, "active"),
        "destination": ({"status": "inactive"}, "active"),
        "rule": ({"enabled": False}, "enabled"),
        "transformation": ({"status": "draft"}, "active"),
    }[kind]
    updated = client.put(f"{url}/{created[1]['id']}", json=changed, headers=auth)
    assert updated.status_code == 200, updated.get_json()
    shown = client.get(url, query_string={"status": default_status}, headers=auth)
    assert [item["name"] for item in shown.get_json()] == ["alpha one", "Alpha two"]
    bad = client.get(url, query_string={"status": "nonsense"}, headers=auth)
    assert bad.status_code == 400 and bad.get_json()["field"] == "status"


def test_page_of_counts_every_match_and_stops_on_the_last_page() -> None:
    class Item:
        def __init__(self, number: int) -> None:
            self.id = f"id{number}"
            self.name = f"item {number}"
            self.created_at = f"2026-01-01T00:00:{number:02d}.000Z"
            self.status = "active"

    items = [Item(n) for n in range(5)]
    page = page_of(items, ListFilter(limit=5), lambda item: item.status)
    assert [i.id for i in page.items] == ["id4", "id3", "id2", "id1", "id0"]
    assert page.next_cursor is None and page.total == 5
    empty = page_of(items, ListFilter(limit=5, search="none"), lambda item: item.status)
    assert empty.items == [] and empty.next_cursor is None and empty.total == 0
