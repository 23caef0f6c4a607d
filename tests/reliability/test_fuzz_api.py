"""The short API fuzz of `make test` (the long one is `make reliability`, see fuzz.py): every
operation of the served OpenAPI document, positive, negative and hostile cases, each sent with a
valid, a missing, a malformed and another workspace's credential through the real function entry
points, and every path with the methods no route declares. Also: the hostile generators cover
each class of input and repeat from their seed, findings replay, ingest bodies written by
Hypothesis, and the regression tests of what fuzzing found."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from shared.api.routes import ROUTES
from shared.domain.sources import EventSource
from tests.fakes import FakeServices
from tests.reliability.fuzz import (
    CHECKS,
    MODES,
    Fuzzer,
    InProcessTarget,
    _served_route,
    load_operations,
)
from tests.reliability.harness import GatewayApp, Tenant
from tests.reliability.hostile import (
    HUGE_NUMBERS,
    LONG_IDS,
    PATH_LIKE_IDS,
    RESERVED_IDS,
    UNPAIRED_SURROGATES,
    hostile_cases,
    token_methods,
)
from tests.reliability.test_properties import json_values, segment_items, valid_items

EXAMPLES = int(os.environ.get("STREAMS_FUZZ_EXAMPLES", "3"))
SEED = 20261122
OPERATIONS = load_operations()
# The paths events are posted to (the SDK configuration GETs take no body).
# The SDK paths (a webhook source's path takes any body, and only with a webhook source's key:
# tests/unit/test_webhook_ingest.py).
INGEST_PATHS = sorted(
    route.path
    for route in ROUTES
    if route.auth == "write_key"
    and route.method == "POST"
    and not route.path.startswith("/v1/webhook")
)
# The POST operation of each path (an ingest path has a CORS preflight operation too).
INGEST = {op.path: op for op in OPERATIONS if op.path in INGEST_PATHS and op.method == "post"}


def test_every_route_is_documented_and_fuzzed() -> None:
    document = GatewayApp().client().get("/openapi.json").get_json()
    documented = {(m.upper(), p) for p, ops in document["paths"].items() for m in ops}
    routes = {(route.method, route.path) for route in ROUTES}
    assert documented == routes
    # schemathesis leaves out the document's own path (one fixed answer, checked above).
    assert {(op.method.upper(), op.path) for op in OPERATIONS} == routes - {
        ("GET", "/openapi.json")
    }


def _explained(findings: list[Any]) -> str:
    return "\n\n".join(
        f"{f.check} [{f.mode}, {f.token}] {f.status}: {f.detail}\n{f.reproduce}\n{f.rerun}"
        for f in findings[:3]
    )


@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.label for op in OPERATIONS])
def test_fuzz(operation: Any) -> None:
    fuzzer = Fuzzer(EXAMPLES, SEED, MODES)
    fuzzer.target.open()
    try:
        fuzzer.fuzz_operation(operation)
    finally:
        fuzzer.target.close()
    report = fuzzer.report
    assert report.requests > 0
    assert report.server_errors == 0, _explained([f for f in report.findings if f.status >= 500])
    assert not report.findings, _explained(report.findings)


def test_every_path_refuses_undeclared_methods_in_json() -> None:
    """TRACE, PROPFIND, CONNECT, WebDAV's and random method tokens on every path: a JSON 401,
    404 or 405, never a 5xx or a server's HTML page."""
    fuzzer = Fuzzer(EXAMPLES, SEED, MODES)
    fuzzer.target.open()
    try:
        fuzzer.sweep_methods(sorted({route.path for route in ROUTES}))
    finally:
        fuzzer.target.close()
    report = fuzzer.report
    assert {"TRACE", "PROPFIND", "CONNECT", *token_methods(SEED)} <= set(report.methods)
    assert report.requests_by_mode["methods"] > len(ROUTES) * 10
    assert not report.findings, _explained(report.findings)


# --- the fuzzer itself --------------------------------------------------------------------------


class _HtmlForEveryMethod(InProcessTarget):
    """The in-process bed, except that any method answers as a server without a handler does
    (the local gateway's HTML 501): what the method sweep exists to catch."""

    def send(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, str, str]:
        return 501, "text/html;charset=utf-8", "<h1>Unsupported method</h1>"


def test_the_method_sweep_reports_a_replayable_request() -> None:
    fuzzer = Fuzzer(1, SEED, MODES, target=_HtmlForEveryMethod())
    report = fuzzer.run(only=lambda label: label == "* /v1/streams/sources")
    assert report.operations == 0 and report.method_paths == 1
    assert report.server_errors == report.requests_by_mode["methods"] > 0
    trace = next(f for f in report.findings if "-X TRACE" in f.reproduce)
    assert trace.check in ("not_a_server_error", "undeclared_method_refused")
    assert trace.reproduce.startswith("curl -X TRACE ")
    assert trace.reproduce.endswith("http://localhost/v1/streams/sources")
    assert "Authorization: Bearer stk_" in trace.reproduce  # not sanitized: it replays as sent
    assert f"--seed {SEED}" in trace.rerun and "'* /v1/streams/sources'" in trace.rerun
    assert report.summary()["server_errors_by_mode"]["methods"] == report.server_errors


class _Silent(InProcessTarget):
    """The in-process bed, except that the server never answers a method: over HTTP, a timeout."""

    def send(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, str, str]:
        raise requests.ReadTimeout("read timed out")


def test_a_request_without_an_answer_is_a_finding_not_a_crash() -> None:
    report = Fuzzer(1, SEED, MODES, target=_Silent()).run(only=lambda label: label == "* /v1/m")
    assert report.requests == report.statuses["0"] > 0
    assert {f.check for f in report.findings} == {"answered"}
    assert all(f.reproduce.startswith("curl -X ") for f in report.findings)


class _DeliverCrashed(InProcessTarget):
    """The in-process bed, with a function that logged tracebacks, as a stack's deliver does when
    a destination's configuration breaks every delivery (Pub/Sub retries; nobody answers)."""

    def function_tracebacks(self) -> dict[str, dict[str, Any]]:
        return {"deliver": {"count": 3, "first": "Traceback (most recent call last): ..."}}


def test_a_function_that_logged_a_traceback_fails_the_run() -> None:
    report = Fuzzer(1, SEED, MODES, target=_DeliverCrashed()).run(only=lambda label: False)
    assert report.requests == 0
    [finding] = report.findings
    assert (finding.operation, finding.mode, finding.check) == (
        "(function deliver)",
        "logs",
        "function_logged_no_traceback",
    )
    assert finding.detail.startswith("3 tracebacks") and "--target in-process" in finding.rerun
    assert report.summary()["check_failures_by_mode"]["logs"] == 1


def _owner() -> Tenant:
    return Tenant("Owner", "ws-owner", "stk_owner", source_id="src-owner", rule_id="rule-owner")


def _hostile_draws(operation: Any, seed: int, examples: int) -> list[Any]:
    """The hostile cases `examples` draws of the fuzzer's strategy give with `seed`."""
    drawn: list[Any] = []
    params = {p.name: _owner().param(p.name) for p in operation.path_parameters}
    base = operation.as_strategy(GenerationMode.POSITIVE, path_parameters=params)

    @settings(max_examples=examples, database=None, suppress_health_check=list(HealthCheck))
    @hypothesis.seed(seed)
    @given(case=hostile_cases(base))
    def draw(case: Any) -> None:
        drawn.append((case.path_parameters, case.query, case.body))

    draw()
    return drawn


def _operation(label: str) -> Any:
    return next(op for op in OPERATIONS if op.label == label)


def _walk(value: Any) -> Iterator[Any]:
    """Every value inside a JSON value, itself included."""
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


def test_hostile_cases_cover_every_class_of_input() -> None:
    with_path = _hostile_draws(
        _operation("GET /api/v1/workspaces/{workspace_id}/event-forwarding-rules/{rule_id}"),
        SEED,
        300,
    )
    ids = {value for params, _, _ in with_path for value in params.values()}
    assert "" in ids and ids & set(RESERVED_IDS) and ids & set(PATH_LIKE_IDS)
    assert ids & set(LONG_IDS) and any(i.startswith("__") and i.endswith("__") for i in ids)

    with_query = _hostile_draws(_operation("GET /v1/streams/events"), SEED, 200)
    assert any(q and set(q.values()) == {""} for _, q, _ in with_query), "`sourceId=` and co"

    with_body = _hostile_draws(_operation("POST /v1/streams/events"), SEED, 400)
    bodies = [body for _, _, body in with_body if isinstance(body, dict)]
    assert any(b.get("sourceId") == "" and b.get("type") == "" for b in bodies)
    found = [item for body in bodies for item in _walk(body)]
    keys = set().union(*(_keys(body) for body in bodies))
    assert "" in keys
    assert any(k.startswith("__") and k.endswith("__") for k in keys)
    assert any(mark in k for k in keys for mark in (".", "/", "`", "\x00"))
    assert any(isinstance(v, str) and set(v) & set("".join(UNPAIRED_SURROGATES)) for v in found)
    assert any(type(v) in (int, float) and v in HUGE_NUMBERS for v in found)
    # Ingest: an odd key reaches the stored user JSON (properties, traits, context).
    ingest = _hostile_draws(_operation("POST /v1/track"), SEED, 300)
    assert any(
        "" in _keys(body.get(name))
        for _, _, body in ingest
        if isinstance(body, dict)
        for name in ("properties", "traits", "context")
    )


def _keys(value: Any) -> set[str]:
    """Every key of every object inside a JSON value."""
    if isinstance(value, dict):
        return set(value).union(*(_keys(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(_keys(item) for item in value))
    return set()


def test_hostile_cases_repeat_from_their_seed() -> None:
    operation = _operation("PUT /api/v1/workspaces/{workspace_id}/event-forwarding-rules/{rule_id}")
    first, again = _hostile_draws(operation, SEED, 30), _hostile_draws(operation, SEED, 30)
    assert repr(first) == repr(again)
    assert repr(first) != repr(_hostile_draws(operation, SEED + 1, 30))


@pytest.mark.parametrize(
    ("method", "url", "served"),
    [
        ("GET", "http://h/v1/streams/sources/src-1", "/v1/streams/sources/{sourceId}"),
        ("GET", "http://h/v1/streams/sources/", "/v1/streams/sources"),  # "" as the id
        ("GET", "http://h/v1/streams/sources/..", None),  # resolved to /v1/streams/
        ("GET", "http://h/v1/streams/sources/a%2Fdebug", "/v1/streams/sources/{sourceId}/debug"),
        ("DELETE", "http://h/v1/streams/sources/", None),  # the collection has no DELETE
    ],
)
def test_the_route_a_hostile_path_reaches(method: str, url: str, served: str | None) -> None:
    route = _served_route(method, url)
    assert (route.path if route else None) == served


# --- ingest bodies ----------------------------------------------------------------------------

bodies = (
    st.builds(
        lambda items, extra: {**extra, "batch": items},
        st.lists(valid_items | segment_items, max_size=4),
        st.dictionaries(
            st.sampled_from(["context", "sentAt", "integrations", "writeKey"]),
            json_values,
            max_size=2,
        ),
    )
    | valid_items
    | segment_items
    | json_values
)


@pytest.fixture
def source(services: FakeServices) -> EventSource:
    workspace = services.workspaces.create("Ingest")
    return services.sources.create(workspace.id, "Fuzzed", "t")


@settings(
    max_examples=max(30, EXAMPLES * 50),
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(
    path=st.sampled_from(INGEST_PATHS),
    body=bodies,
    encoding=st.sampled_from(["json", "gzip", "text", "garbage"]),
)
def test_ingest_bodies(
    services: FakeServices, source: EventSource, path: str, body: Any, encoding: str
) -> None:
    """Any body: a documented status and shape, never 5xx, and every accepted event published
    exactly once (an acknowledged event is never lost)."""
    client = GatewayApp().client()
    raw = json.dumps(body, allow_nan=True).encode()
    headers = {"X-Write-Key": source.key, "Content-Type": "application/json"}
    if encoding == "gzip":
        raw, headers["Content-Encoding"] = gzip.compress(raw), "gzip"
    elif encoding == "text":
        headers["Content-Type"] = "text/plain"
    elif encoding == "garbage":
        raw = raw[: len(raw) // 2] + b"\xff\x00"
    published = services.publisher.published
    before = sum(len(json.loads(data)) for data, _ in published.get(source.pubsub_topic, []))
    response = client.post(path, data=raw, headers=headers)
    operation = INGEST[path]
    operation.Case().validate_response(response, checks=CHECKS)
    after = sum(len(json.loads(data)) for data, _ in published.get(source.pubsub_topic, []))
    if response.status_code == 200:
        answer = response.get_json()
        assert after - before == answer["accepted"], answer
        # /v1/events takes a batch body too (docs/EVENTS.md); other single calls are one event.
        if path != "/v1/batch" and not (isinstance(body, dict) and "batch" in body):
            assert answer["accepted"] == 1 and answer["messageId"]
    else:
        assert response.status_code in (400, 413), response.get_data(as_text=True)
        assert after == before, "a refused request published events"


# --- regressions of what fuzzing found --------------------------------------------------------


def test_newline_in_a_path_gets_the_json_404() -> None:
    # B5: functions-framework's URL map (`/<path:path>`) matches no path holding a newline, so
    # the framework refuses the request itself; `dispatch_refused_requests` sends it through
    # Streams' dispatch like any other.
    client = GatewayApp().client()
    for path in ("/api/v1/workspaces/ws%0A1/event-keys", "/v1/track%0A", "/console/%0A"):
        response = client.get(path, headers={"Authorization": "Bearer x"})
        assert response.status_code in (401, 404), path
        assert response.headers["Content-Type"].startswith("application/json"), path
        assert response.get_json()["error"] in ("unauthorized", "not_found"), path


def test_newline_in_a_path_still_needs_credentials(services: FakeServices) -> None:
    # Found by the long fuzz: the framework's refusal answered 404 before the credentials were
    # checked; without them, every management path answers 401, newline or not.
    client = GatewayApp().client()
    path = "/api/v1/workspaces/9%0A%5B/event-keys"
    assert client.get(path).status_code == 401
    workspace = services.workspaces.create("Newline")
    token, _ = services.workspaces.create_token(workspace.id, "t")
    response = client.get(path, headers={"Authorization": f"Bearer {token}"})
    assert (response.status_code, response.get_json()["error"]) == (404, "not_found")


def test_events_query_to_near_year_one_is_not_a_500(services: FakeServices) -> None:
    client = GatewayApp().client()
    workspace = services.workspaces.create("Early")
    token, _ = services.workspaces.create_token(workspace.id, "t")
    response = client.get(
        "/v1/streams/events?to=0001-01-01T11:04:17Z", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code in (200, 400), response.get_data(as_text=True)


def test_a_refused_events_batch_publishes_nothing(
    services: FakeServices, source: EventSource
) -> None:
    body = {"batch": [{"type": "track", "event": "ok", "userId": "u"}, {"userId": "no-type"}]}
    response = (
        GatewayApp().client().post("/v1/events", json=body, headers={"X-Write-Key": source.key})
    )
    published = services.publisher.published.get(source.pubsub_topic, [])
    # Either the request is refused and nothing is published, or it is a batch answer (200)
    # listing the rejection: never a refusal after the valid items went out.
    assert response.status_code == 200 or published == [], (response.status_code, published)
