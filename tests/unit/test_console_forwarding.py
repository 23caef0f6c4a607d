"""The console's origin under edge "direct" (shared/http/forward.py): the console function
forwards the management API's paths, and only those, to the functions serving them.

The management functions run as real HTTP servers on the loopback (their real entry points,
over the in-memory services), and so does the console where streaming matters: the forwarding
is exercised over real sockets, as between run.app hosts.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import functions_framework
import pytest
import urllib3
from flask import Flask, Request, Response, request
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.test import EnvironBuilder

from shared.api import console as console_api
from shared.api.routes import ROUTES, http_functions
from shared.http.forward import ENVIRONMENT, MAX_BODY_BYTES, checked_origin, forwarding_from
from tests.fakes import FakeServices
from tests.functions import ROOT, function_client

MANAGEMENT = frozenset(http_functions()) - {"console", "ingest"}


def _serve(app: Any) -> Iterator[str]:
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)


def _function_app(name: str) -> Any:
    return functions_framework.create_app(
        target=name, source=str(ROOT / "functions" / name / "main.py")
    )


@pytest.fixture
def event_keys_url(services: FakeServices) -> Iterator[str]:
    yield from _serve(_function_app("event_keys"))


@pytest.fixture
def token(services: FakeServices) -> tuple[str, str]:
    workspace = services.workspaces.create("Acme")
    secret, _ = services.workspaces.create_token(workspace.id, "admin")
    return workspace.id, secret


class Recorder:
    """A stand-in management function that records what reaches it and streams on demand."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.release = threading.Event()
        self.app = Flask("recorder")
        self.app.add_url_rule("/<path:path>", "any", self._answer, methods=["GET", "POST", "PUT"])

    def _answer(self, path: str) -> Response:
        self.seen.append(
            {
                "path": request.full_path,
                "method": request.method,
                "headers": dict(request.headers),
                "body": request.get_data(),
            }
        )
        if path.endswith("events/live"):

            def stream() -> Iterator[bytes]:
                yield b"id: 1\ndata: first\n\n"
                self.release.wait(10)
                yield b"id: 2\ndata: second\n\n"

            return Response(stream(), mimetype="text/event-stream")
        response = Response(b'{"ok":true}', status=201, mimetype="application/json")
        response.headers["X-Total-Count"] = "7"
        response.headers["Link"] = '</api/v1/x?cursor=abc>; rel="next"'
        response.headers["Set-Cookie"] = "tracking=1"
        return response


@pytest.fixture
def recorder() -> Iterator[tuple[Recorder, str]]:
    recording = Recorder()
    for url in _serve(recording.app):
        yield recording, url


def console_with(monkeypatch: pytest.MonkeyPatch, urls: dict[str, str]) -> Any:
    monkeypatch.setenv(ENVIRONMENT, json.dumps(urls))
    return function_client("console")


# --- what is forwarded ----------------------------------------------------------------------


def test_the_api_answers_through_the_consoles_origin(
    monkeypatch: pytest.MonkeyPatch, event_keys_url: str, token: tuple[str, str]
) -> None:
    workspace, secret = token
    console = console_with(monkeypatch, {"event_keys": event_keys_url})
    auth = {"Authorization": f"Bearer {secret}"}
    me = console.get("/api/v1/me", headers=auth)
    assert me.status_code == 200 and me.json["workspace_id"] == workspace
    # The token is the API function's to judge, as for any caller.
    assert console.get("/api/v1/me").status_code == 401
    assert (
        console.get("/api/v1/me", headers={"Authorization": "Bearer stk_nope"}).status_code == 401
    )
    created = console.post(
        f"/api/v1/workspaces/{workspace}/event-keys", headers=auth, json={"name": "Web"}
    )
    assert created.status_code == 201, created.json
    listed = console.get(f"/api/v1/workspaces/{workspace}/event-keys?limit=1", headers=auth)
    assert [item["name"] for item in listed.json] == ["Web"]
    assert listed.headers["X-Total-Count"] == "1"
    # A method the path does not take: the API function's 405, with its Allow.
    refused = console.delete("/api/v1/me", headers=auth)
    assert refused.status_code == 405 and refused.headers["Allow"] == "GET, HEAD"


def test_only_the_apis_headers_go_and_authorization_is_untouched(
    monkeypatch: pytest.MonkeyPatch, recorder: tuple[Recorder, str]
) -> None:
    recording, url = recorder
    console = console_with(monkeypatch, {"event_keys": url})
    answer = console.post(
        "/api/v1/workspaces/ws_1/event-keys?limit=5&q=a%20b",
        data=b'{"name": "x"}',
        headers={
            "Authorization": "Bearer stk_exact Value",
            "Content-Type": "application/json",
            "Cookie": "session=secret",
            "X-Forwarded-For": "6.6.6.6",
            "X-Forwarded-Host": "evil.example",
            "Forwarded": "for=6.6.6.6",
            "Host": "console.example",
        },
    )
    assert answer.status_code == 201 and answer.json == {"ok": True}
    assert answer.headers["X-Total-Count"] == "7"
    assert answer.headers["Link"] == '</api/v1/x?cursor=abc>; rel="next"'
    assert "Set-Cookie" not in answer.headers
    [seen] = recording.seen
    assert seen["path"] == "/api/v1/workspaces/ws_1/event-keys?limit=5&q=a%20b"
    assert seen["method"] == "POST" and seen["body"] == b'{"name": "x"}'
    headers = seen["headers"]
    assert headers["Authorization"] == "Bearer stk_exact Value"
    assert headers["Host"] == url.removeprefix("http://")
    for name in ("Cookie", "X-Forwarded-For", "X-Forwarded-Host", "Forwarded"):
        assert name not in headers


def _example_path(template: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", template)


@pytest.mark.parametrize(
    "route",
    [route for route in ROUTES if route.function in MANAGEMENT],
    ids=lambda route: f"{route.method} {route.path}",
)
def test_every_management_route_goes_to_its_function(route: Any) -> None:
    forwarding = forwarding_from(
        json.dumps({name: f"https://{name.replace('_', '-')}.example" for name in MANAGEMENT}),
        ROUTES,
        MANAGEMENT,
    )
    assert forwarding is not None
    environ = EnvironBuilder(method=route.method, path=_example_path(route.path)).get_environ()
    assert forwarding.target(Request(environ)) == route.function


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/track"),  # ingest: SDKs have their own host
        ("GET", "/analytics.js/v1/k/analytics.min.js"),
        ("POST", "/internal/wiring/sources"),  # private functions are on no edge
        ("GET", "/api/v1/workspaces/ws_1/privacy"),  # governance: not configured here
        ("GET", "/nothing/here"),
        ("GET", "/api/v1/workspaces/../me"),
        ("GET", "/api/v1/workspaces/ws_1/event-keys/.."),
        ("GET", "/console/"),  # the console's own
    ],
)
def test_nothing_else_is_forwarded(
    monkeypatch: pytest.MonkeyPatch, recorder: tuple[Recorder, str], method: str, path: str
) -> None:
    recording, url = recorder
    console = console_with(monkeypatch, {"event_keys": url, "events": url})
    answer = console.open(path, method=method)
    # The console's own answer (its page, or its 404), never the recorder's.
    assert answer.status_code in (200, 404, 503) and recording.seen == []


def test_without_the_setting_nothing_is_forwarded(
    monkeypatch: pytest.MonkeyPatch, event_keys_url: str, token: tuple[str, str]
) -> None:
    monkeypatch.delenv(ENVIRONMENT, raising=False)
    console = function_client("console")
    answer = console.get("/api/v1/me", headers={"Authorization": f"Bearer {token[1]}"})
    assert answer.status_code == 404
    assert answer.json["message"] == "no such path: /api/v1/me"


def test_an_unreachable_function_is_a_503_to_retry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    closed = make_server("127.0.0.1", 0, Flask("closed"))
    port = closed.server_port
    closed.server_close()  # nothing listens there any more
    console = console_with(monkeypatch, {"event_keys": f"http://127.0.0.1:{port}"})
    answer = console.get("/api/v1/me", headers={"Authorization": "Bearer stk_x"})
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "5"
    assert "event_keys" in answer.json["message"]


def test_a_body_over_the_apis_limit_is_refused_before_it_goes(
    monkeypatch: pytest.MonkeyPatch, recorder: tuple[Recorder, str]
) -> None:
    recording, url = recorder
    console = console_with(monkeypatch, {"event_keys": url})
    answer = console.post("/api/v1/workspaces/ws_1/event-keys", data=b"x" * (MAX_BODY_BYTES + 1))
    assert answer.status_code == 413
    assert recording.seen == []


def test_the_live_stream_flows_as_it_is_written(
    monkeypatch: pytest.MonkeyPatch, recorder: tuple[Recorder, str]
) -> None:
    recording, url = recorder
    monkeypatch.setenv(ENVIRONMENT, json.dumps({"events": url}))
    for console_url in _serve(_function_app("console")):
        http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=5, read=5), retries=False)
        answer = http.request(
            "GET",
            console_url + "/api/v1/workspaces/ws_1/events/live",
            headers={"Authorization": "Bearer stk_x", "Last-Event-ID": "0"},
            preload_content=False,
        )
        assert answer.status == 200
        assert answer.headers["Content-Type"].startswith("text/event-stream")
        # The first event arrives while the function still holds the second: nothing buffers.
        assert answer.read1(1024) == b"id: 1\ndata: first\n\n"
        recording.release.set()
        assert answer.read() == b"id: 2\ndata: second\n\n"
        answer.release_conn()
    assert recording.seen[0]["headers"]["Last-Event-Id"] == "0"


# --- the setting ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{"ingest": "https://ingest.example"}', "'ingest' is not a management API function"),
        ('{"console": "https://console.example"}', "'console' is not a management API function"),
        ('{"wiring": "https://wiring.example"}', "'wiring' is not a management API function"),
        ('{"events": "https://events.example/api"}', "must be https://<host>"),
        ('{"events": "https://events.example?x=1"}', "must be https://<host>"),
        ('{"events": "https://user:pw@events.example"}', "must be https://<host>"),
        ('{"events": "http://events.example"}', "must be https://<host>"),
        ('{"events": "ftp://events.example"}', "must be https://<host>"),
        ('{"events": 7}', "must be https://<host>"),
        ('{"events": null}', "must be https://<host>"),
        ('{"events": "https://a\\"b.example"}', "must be https://<host>"),
        ('["https://events.example"]', "must be a JSON object"),
        ("{nope", "is not JSON"),
    ],
)
def test_a_wrong_setting_stops_the_function_at_start(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        forwarding_from(value, ROUTES, MANAGEMENT)


def test_an_unset_or_empty_setting_forwards_nothing() -> None:
    assert forwarding_from(None, ROUTES, MANAGEMENT) is None
    assert forwarding_from("", ROUTES, MANAGEMENT) is None
    assert forwarding_from("{}", ROUTES, MANAGEMENT) is None


def test_the_consoles_function_refuses_ingest_in_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENVIRONMENT, json.dumps({"ingest": "https://ingest.example"}))
    with pytest.raises(ValueError, match="'ingest' is not a management API function"):
        function_client("console")


# --- the SDKs' host in the page -------------------------------------------------------------

INDEX = (
    b'<!doctype html><head><meta name="streams-ingest-origin" content="" />'
    b'<script type="module" src="/console/assets/index-AbCd1234.js"></script></head>'
)


@pytest.fixture
def dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "index.html").write_bytes(INDEX)
    monkeypatch.setattr(console_api, "DIST", tmp_path)
    return tmp_path


def test_the_page_names_ingests_host_when_it_has_its_own(
    monkeypatch: pytest.MonkeyPatch, dist: Path
) -> None:
    monkeypatch.setattr(
        console_api, "INGEST_ORIGIN", "https://streams-ingest-1.us-central1.run.app"
    )
    page = function_client("console").get("/console/")
    assert page.status_code == 200
    filled = b'content="https://streams-ingest-1.us-central1.run.app" />'
    assert b'<meta name="streams-ingest-origin" ' + filled in page.data
    assert page.data.count(b"streams-ingest-origin") == 1


def test_behind_the_load_balancer_the_page_keeps_its_own_origin(
    monkeypatch: pytest.MonkeyPatch, dist: Path
) -> None:
    monkeypatch.setattr(console_api, "INGEST_ORIGIN", None)
    assert function_client("console").get("/console/").data == INDEX


def test_the_built_page_has_the_placeholder_the_function_fills() -> None:
    # console/index.html, as vite copies it: the function fills exactly this tag.
    assert console_api.INGEST_META in (ROOT / "console" / "index.html").read_bytes()


@pytest.mark.parametrize(
    "value",
    ["https://ingest.example/v1", 'https://a"b.example', "http://ingest.example", "ingest.example"],
)
def test_a_wrong_ingest_setting_stops_the_function_at_start(value: str) -> None:
    with pytest.raises(ValueError, match=console_api.INGEST_ENVIRONMENT):
        checked_origin(console_api.INGEST_ENVIRONMENT, value)
