from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from shared.api.routes import ROUTES, openapi_document
from shared.http.openapi import SSE_EVENT
from tests.functions import function_client

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_checked_in_document_is_current() -> None:
    assert json.loads(DOCUMENT.read_text()) == openapi_document(), (
        "docs/openapi.json is stale: run `.venv/bin/streams openapi --output docs/openapi.json`"
    )


def test_every_route_is_documented_once() -> None:
    document = openapi_document()
    operations = [(path, method) for path, item in document["paths"].items() for method in item]
    assert len(operations) == len(ROUTES) == len(set(operations))
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


def test_served_at_openapi_json() -> None:
    response = function_client("api_docs").get("/openapi.json")
    assert response.status_code == 200
    assert response.get_json()["openapi"] == "3.1.0"


def test_the_live_stream_schema_takes_each_event_as_a_fuzzer_reads_it() -> None:
    # schemathesis reads each Server-Sent Event as {data, event, id}, a plain message's event
    # being "message" (the stack fuzz found the schema refusing it); openapi-core, the text.
    validator = jsonschema.Draft202012Validator(SSE_EVENT)
    stored = {"data": '{"messageId":"m1"}', "event": "message", "id": "2026-12-03T05:54:02Z~"}
    outcome = {"data": '{"status":"blocked"}', "event": "outcome", "id": "x"}
    for event in (stored, outcome, "retry: 1000\n: connected\n\n"):
        assert list(validator.iter_errors(event)) == []
    assert list(validator.iter_errors({"data": "{}", "event": "other"}))
