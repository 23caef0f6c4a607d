"""The collection edge through the local stack, as browsers and phones reach it: CORS preflights
and answers through the gateway, chunked uploads through the gateway and straight into the
function's production server (gunicorn), and the SDK upload captures replayed on the wire."""

from __future__ import annotations

import gzip
import http.client
import json
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from requests.structures import CaseInsensitiveDict

from emulators.dev import LocalStack
from emulators.stack import HOST
from shared.api.routes import http_functions
from shared.domain.limits import MAX_REQUEST_BYTES
from tests.e2e.helpers import Tenant, wait_until
from tests.ingest_captures import Capture, capture_source, load_captures

pytestmark = pytest.mark.e2e

ORIGIN = "http://127.0.0.1:5173"  # a page of another origin (another port)
ELSEWHERE = "https://copycat.example.net"


def ingest_port(local_stack: LocalStack) -> int:
    """The ingest function's own port (the stack gives the HTTP functions consecutive ports)."""
    return local_stack.ports.functions + http_functions().index("ingest")


def gateway_port(tenant: Tenant) -> int:
    return int(urlsplit(tenant.gateway).port or 80)


def post_chunked(
    port: int, path: str, body: bytes, headers: dict[str, str], chunk_size: int = 8192
) -> tuple[int, CaseInsensitiveDict[str], Any]:
    """POST `body` with Transfer-Encoding: chunked and no Content-Length, as HttpURLConnection
    in chunked streaming mode (analytics-kotlin) sends it. Header names are compared without
    case, as HTTP has them (uvicorn sends them lower-cased)."""
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        chunks = (body[i : i + chunk_size] for i in range(0, len(body), chunk_size))
        connection.request(
            "POST",
            path,
            body=chunks,
            headers={**headers, "Transfer-Encoding": "chunked"},
            encode_chunked=True,
        )
        response = connection.getresponse()
        data = response.read()
        answered = CaseInsensitiveDict(response.getheaders())
        return response.status, answered, json.loads(data) if data else None
    finally:
        connection.close()


def test_preflight_and_answers_through_the_gateway(tenant: Tenant) -> None:
    preflight = requests.options(
        f"{tenant.gateway}/v1/t",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
        timeout=10,
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "content-type" in preflight.headers["Access-Control-Allow-Headers"].lower()
    assert int(preflight.headers["Access-Control-Max-Age"]) >= 3600

    sent = requests.post(
        f"{tenant.gateway}/v1/t",
        data=json.dumps({"event": "Edge Checked", "userId": "u-edge"}),
        headers={"Origin": ORIGIN, "Content-Type": "text/plain", "X-Write-Key": tenant.write_key},
        timeout=10,
    )
    assert sent.status_code == 200, sent.text
    assert sent.headers["Access-Control-Allow-Origin"] == ORIGIN
    tenant.trace(sent.json()["messageId"], until="processed")

    refused = requests.post(
        f"{tenant.gateway}/v1/t", data="{}", headers={"Origin": ORIGIN}, timeout=10
    )
    assert refused.status_code == 401
    assert refused.headers["Access-Control-Allow-Origin"] == ORIGIN

    metrics = requests.post(
        f"{tenant.gateway}/v1/m",
        data=json.dumps({"series": []}),
        headers={"Origin": ORIGIN, "Content-Type": "text/plain"},
        timeout=10,
    )
    assert metrics.status_code == 200 and metrics.json() == {"success": True}
    assert metrics.headers["Access-Control-Allow-Origin"] == ORIGIN


def test_the_management_api_stays_closed_through_the_gateway(tenant: Tenant) -> None:
    url = f"{tenant.gateway}/api/v1/workspaces/{tenant.workspace_id}/event-keys"
    preflight = requests.options(
        url, headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"}, timeout=10
    )
    assert preflight.status_code == 405
    assert preflight.json()["error"] == "method_not_allowed"
    assert "Access-Control-Allow-Origin" not in preflight.headers
    listed = requests.get(
        url, headers={"Origin": ORIGIN, "Authorization": f"Bearer {tenant.token}"}, timeout=10
    )
    assert listed.status_code == 200
    assert "Access-Control-Allow-Origin" not in listed.headers


def test_a_source_refuses_a_page_of_an_origin_it_does_not_list(tenant: Tenant) -> None:
    set_origins = tenant.api(
        "PUT", f"/event-keys/{tenant.source_id}/origins", json={"allowed_origins": [ORIGIN]}
    )
    assert set_origins.status_code == 200, set_origins.text
    body = json.dumps({"event": "Copied Key", "userId": "u", "writeKey": tenant.write_key})

    def send(origin: str) -> requests.Response:
        return requests.post(
            f"{tenant.gateway}/v1/t", data=body, headers={"Origin": origin}, timeout=10
        )

    def refused_now() -> tuple[requests.Response] | None:
        response = send(ELSEWHERE)
        # A tuple: a 403 response is falsy itself.
        return (response,) if response.status_code == 403 else None

    # Ingest caches the key record for a few seconds: the list reaches it within that.
    answer = wait_until(refused_now, timeout=15)
    assert answer is not None, send(ELSEWHERE).text
    refused = answer[0]
    assert refused.status_code == 403, refused.text
    assert refused.json()["field"] == "Origin"
    assert refused.headers["Access-Control-Allow-Origin"] == ELSEWHERE
    allowed = send(ORIGIN)
    assert allowed.status_code == 200
    tenant.trace(allowed.json()["messageId"], until="processed")


def test_chunked_gzip_uploads_through_the_gateway_and_into_gunicorn(
    tenant: Tenant, local_stack: LocalStack
) -> None:
    for port, name in ((gateway_port(tenant), "gateway"), (ingest_port(local_stack), "direct")):
        body = {
            "batch": [{"type": "track", "event": f"Chunked via {name}", "userId": "u-chunk"}],
            "sentAt": "2024-05-14T09:21:08.001Z",
            "writeKey": tenant.write_key,
        }
        status, headers, answer = post_chunked(
            port,
            "/v1/b",
            gzip.compress(json.dumps(body).encode()),
            {"Content-Encoding": "gzip", "Content-Type": "text/plain", "Origin": ORIGIN},
            chunk_size=7,
        )
        assert status == 200, (name, answer)
        assert answer["accepted"] == 1
        assert headers["Access-Control-Allow-Origin"] == ORIGIN


def test_a_chunked_upload_is_limited_while_it_is_read(
    tenant: Tenant, local_stack: LocalStack
) -> None:
    event = {"type": "track", "event": "Big", "userId": "u", "properties": {"x": "y" * 1000}}
    big = json.dumps({"batch": [event] * 600, "writeKey": tenant.write_key}).encode()
    assert len(big) > MAX_REQUEST_BYTES
    for port in (gateway_port(tenant), ingest_port(local_stack)):
        status, headers, answer = post_chunked(port, "/v1/b", big, {"Origin": ORIGIN})
        assert status == 413, answer
        assert answer["error"] == "payload_too_large"
        assert headers["Access-Control-Allow-Origin"] == ORIGIN


def send_capture(port: int, capture: Capture) -> tuple[int, CaseInsensitiveDict[str], Any]:
    if capture.chunked:
        return post_chunked(port, capture.path, capture.body, capture.headers)
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        connection.request(capture.method, capture.path, body=capture.body, headers=capture.headers)
        response = connection.getresponse()
        data = response.read()
        answered = CaseInsensitiveDict(response.getheaders())
        return response.status, answered, json.loads(data) if data else None
    finally:
        connection.close()


def test_sdk_upload_captures_through_the_gateway(tenant: Tenant) -> None:
    captures = load_captures()
    [write_key] = {capture.write_key for capture in captures}
    capture_source(tenant.services, tenant.workspace_id, write_key)
    for capture in captures:
        status, headers, answer = send_capture(gateway_port(tenant), capture)
        expected = capture.expected
        assert status == expected["status"], (capture.name, answer)
        assert answer == expected["body"], capture.name
        for name, value in expected.get("headers", {}).items():
            assert headers.get(name) == value, (capture.name, name)
        for event in expected["published"]:
            trace = tenant.trace(event["messageId"], until="processed")
            assert trace["state"] == "processed", (capture.name, trace)
