"""The short API fuzz of `make test` (the long one is `make reliability`, see fuzz.py): every
operation of the served OpenAPI document, positive and negative cases, each sent with a valid,
a missing, a malformed and another workspace's credential through the real function entry
points. Also: ingest bodies (the document describes none, so Hypothesis writes them), and the
regression tests of what fuzzing found."""

from __future__ import annotations

import gzip
import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from shared.api.routes import ROUTES
from shared.bootstrap import Services
from shared.domain.sources import EventSource
from tests.reliability.fuzz import CHECKS, Fuzzer, load_operations
from tests.reliability.harness import GatewayApp
from tests.reliability.test_properties import json_values, segment_items, valid_items

EXAMPLES = int(os.environ.get("STREAMS_FUZZ_EXAMPLES", "3"))
SEED = 20261122
OPERATIONS = load_operations()
# The paths events are posted to (the SDK configuration GETs take no body).
INGEST_PATHS = sorted(
    route.path for route in ROUTES if route.auth == "write_key" and route.method == "POST"
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


@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.label for op in OPERATIONS])
def test_fuzz(operation: Any) -> None:
    fuzzer = Fuzzer(EXAMPLES, SEED, (GenerationMode.POSITIVE, GenerationMode.NEGATIVE))
    fuzzer.fuzz_operation(operation)
    report = fuzzer.report
    assert report.requests > 0
    assert report.server_errors == 0, [f for f in report.findings if f.status >= 500]
    assert not report.findings, "\n\n".join(
        f"{f.check} [{f.token}] {f.status}: {f.detail}\n{f.reproduce}" for f in report.findings[:3]
    )


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
def source(services: Services) -> EventSource:
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
    services: Services, source: EventSource, path: str, body: Any, encoding: str
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
    published = services.publisher.published  # type: ignore[attr-defined]
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


def test_newline_in_a_path_still_needs_credentials(services: Services) -> None:
    # Found by the long fuzz: the framework's refusal answered 404 before the credentials were
    # checked; without them, every management path answers 401, newline or not.
    client = GatewayApp().client()
    path = "/api/v1/workspaces/9%0A%5B/event-keys"
    assert client.get(path).status_code == 401
    workspace = services.workspaces.create("Newline")
    token, _ = services.workspaces.create_token(workspace.id, "t")
    response = client.get(path, headers={"Authorization": f"Bearer {token}"})
    assert (response.status_code, response.get_json()["error"]) == (404, "not_found")


def test_events_query_to_near_year_one_is_not_a_500(services: Services) -> None:
    client = GatewayApp().client()
    workspace = services.workspaces.create("Early")
    token, _ = services.workspaces.create_token(workspace.id, "t")
    response = client.get(
        "/v1/streams/events?to=0001-01-01T11:04:17Z", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code in (200, 400), response.get_data(as_text=True)


def test_a_refused_events_batch_publishes_nothing(services: Services, source: EventSource) -> None:
    body = {"batch": [{"type": "track", "event": "ok", "userId": "u"}, {"userId": "no-type"}]}
    response = (
        GatewayApp().client().post("/v1/events", json=body, headers={"X-Write-Key": source.key})
    )
    published = services.publisher.published.get(source.pubsub_topic, [])  # type: ignore[attr-defined]
    # Either the request is refused and nothing is published, or it is a batch answer (200)
    # listing the rejection: never a refusal after the valid items went out.
    assert response.status_code == 200 or published == [], (response.status_code, published)
