"""The golden SDK upload captures, replayed against the ingest function as its server hands them
over (a chunked body arrives de-chunked, with no Content-Length, as gunicorn passes it on)."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest

from tests.fakes import FakeServices
from tests.functions import function_client
from tests.ingest_captures import Capture, capture_source, check_published, load_captures

CAPTURES = load_captures()


def replay(capture: Capture) -> Any:
    headers = dict(capture.headers)
    environ: dict[str, Any] = {}
    if capture.chunked:
        headers["Transfer-Encoding"] = "chunked"
        # What a server that reads chunked bodies (gunicorn) tells the application: the input
        # ends where the body does, though no Content-Length says where.
        environ["wsgi.input_terminated"] = True
    return function_client("ingest").open(
        capture.path,
        method=capture.method,
        data=capture.body,
        headers=headers,
        environ_overrides=environ,
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


def test_without_the_servers_end_of_input_a_chunked_body_reads_as_empty() -> None:
    """The replay depends on `wsgi.input_terminated`: without it the body would look empty, and
    the capture would be refused, so the test above proves the chunked read."""
    kotlin = next(c for c in CAPTURES if c.chunked)
    response = function_client("ingest").post(
        kotlin.path, data=kotlin.body, headers={**kotlin.headers, "Transfer-Encoding": "chunked"}
    )
    assert response.status_code == 400
    assert "empty" in response.get_json()["message"]
