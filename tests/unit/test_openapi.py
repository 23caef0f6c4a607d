from __future__ import annotations

import json
from pathlib import Path

from shared.api.routes import ROUTES, openapi_document
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
