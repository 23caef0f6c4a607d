"""The golden SDK upload captures, replayed against the ingest function as its server hands them
over (a chunked body arrives de-chunked, with no Content-Length, as uvicorn passes it on: in
several `http.request` messages)."""

from __future__ import annotations

import asyncio
import gzip
import json
from typing import Any

import functions_framework
import pytest

from tests.fakes import FakeServices
from tests.functions import ROOT, function_client
from tests.ingest_captures import Capture, capture_source, check_published, load_captures

CAPTURES = load_captures()


def replay(capture: Capture) -> Any:
    headers = dict(capture.headers)
    if capture.chunked:
        # No Content-Length says where the body ends: the ASGI server hands it over whole
        # (`test_a_chunked_body_in_several_messages_is_read_whole`, piece by piece).
        headers["Transfer-Encoding"] = "chunked"
    return function_client("ingest").open(
        capture.path, method=capture.method, data=capture.body, headers=headers
    )


def test_the_captures_cover_the_mobile_sdks_and_their_shapes() -> None:
    by_name = {capture.name: capture for capture in CAPTURES}
    kotlin, swift = by_name["analytics_kotlin_batch"], by_name["analytics_swift_batch"]
    # analytics-kotlin: gzip, chunked, text/plain; analytics-swift: plain JSON with a length.
    assert kotlin.chunked and kotlin.headers["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(kotlin.body))["writeKey"] == kotlin.write_key
    assert not swift.chunked and "Content-Encoding" not in swift.headers
    # Both upload to /b with the key only in the body: no header carries it.
    for capture in (kotlin, swift):
        assert capture.path == "/v1/b"
        assert not {"Authorization", "X-Write-Key"} & set(capture.headers)


@pytest.mark.parametrize("capture", CAPTURES, ids=[c.name for c in CAPTURES])
def test_capture_is_accepted(services: FakeServices, capture: Capture) -> None:
    workspace = services.workspaces.create("Mobile")
    source = capture_source(services, workspace.id, capture.write_key)

    response = replay(capture)

    expected = capture.expected
    assert response.status_code == expected["status"], response.get_data(as_text=True)
    assert response.get_json() == expected["body"]
    for name, value in expected.get("headers", {}).items():
        assert response.headers.get(name) == value, name
    messages = services.publisher.published[source.pubsub_topic]
    assert len(messages) == 1  # one message per request, whatever the SDK
    check_published(expected["published"], json.loads(messages[0][0]))


def test_a_chunked_body_in_several_messages_is_read_whole(services: FakeServices) -> None:
    """The ASGI server hands a chunked upload over in pieces, with no Content-Length: the entry
    point reads every piece before parsing (one piece alone is not even valid gzip)."""
    kotlin = next(c for c in CAPTURES if c.chunked)
    workspace = services.workspaces.create("Mobile")
    source = capture_source(services, workspace.id, kotlin.write_key)
    app = functions_framework.create_app(
        target="ingest", source=str(ROOT / "functions" / "ingest" / "main.py")
    )
    third = len(kotlin.body) // 3 + 1
    pieces = [kotlin.body[i : i + third] for i in range(0, len(kotlin.body), third)]
    assert len(pieces) == 3
    received = [
        {"type": "http.request", "body": piece, "more_body": i < len(pieces) - 1}
        for i, piece in enumerate(pieces)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return received.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(k.lower().encode(), v.encode()) for k, v in kotlin.headers.items()]
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": kotlin.method,
        "scheme": "http",
        "path": kotlin.path,
        "raw_path": kotlin.path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [*headers, (b"transfer-encoding", b"chunked")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == kotlin.expected["status"], sent
    messages = services.publisher.published[source.pubsub_topic]
    check_published(kotlin.expected["published"], json.loads(messages[0][0]))
