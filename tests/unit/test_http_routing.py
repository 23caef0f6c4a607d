"""Route matching: a path is a route's only when the whole of it matches."""

from __future__ import annotations

from shared.api.routes import routes_of
from shared.http.routing import find_route


def test_a_trailing_newline_is_not_the_route() -> None:
    ingest = routes_of("ingest")

    route, _, _ = find_route(ingest, "POST", "/v1/track")
    assert route is not None
    assert find_route(ingest, "POST", "/v1/track\n") == (None, {}, False)
    assert find_route(ingest, "POST", "/v1/track/")[0] is route


def test_path_parameters_are_whole_segments() -> None:
    keys = routes_of("event_keys")

    route, params, _ = find_route(keys, "GET", "/api/v1/workspaces/ws-1/event-keys")
    assert route is not None
    assert params == {"workspace_id": "ws-1"}
    route, params, _ = find_route(keys, "GET", "/api/v1/workspaces/ws\n1/event-keys")
    assert params == {"workspace_id": "ws\n1"}  # refused later as an unknown workspace
