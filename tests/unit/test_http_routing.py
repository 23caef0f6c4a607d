"""Route matching: a path is a route's only when the whole of it matches."""

from __future__ import annotations

from shared.api.function_routes import routes_of
from shared.http.routing import allowed_methods, find_route


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


def test_short_paths_share_their_long_forms_handler() -> None:
    ingest = routes_of("ingest")
    for short, long in (
        ("/v1/t", "/v1/track"),
        ("/v1/b", "/v1/batch"),
        ("/beacon/v1/batch", "/v1/batch"),
    ):
        short_route, _, _ = find_route(ingest, "POST", short)
        long_route, _, _ = find_route(ingest, "POST", long)
        assert short_route is not None and long_route is not None
        assert short_route.handler is long_route.handler
        assert (short_route.auth, short_route.response) == (long_route.auth, long_route.response)


def test_an_ingest_path_answers_options_and_a_management_path_does_not() -> None:
    route, _, _ = find_route(routes_of("ingest"), "OPTIONS", "/v1/t")
    assert route is not None and route.auth == "none" and route.status == 204
    keys = routes_of("event_keys")
    assert find_route(keys, "OPTIONS", "/api/v1/workspaces/w/event-keys") == (None, {}, True)


def test_a_literal_segment_wins_over_a_parameter() -> None:
    contracts = routes_of("event_contracts")
    path = "/api/v1/workspaces/ws-1/event-contracts/proposal"

    route, params, _ = find_route(contracts, "GET", path)
    assert route is not None and params == {"workspace_id": "ws-1"}
    # Not an update of a contract whose id would be "proposal": the path has no PUT.
    assert find_route(contracts, "PUT", path) == (None, {}, True)
    assert allowed_methods(contracts, path) == ["GET", "HEAD"]
    route, params, _ = find_route(contracts, "PUT", path.replace("proposal", "c-1"))
    assert route is not None and params == {"workspace_id": "ws-1", "contract_id": "c-1"}
