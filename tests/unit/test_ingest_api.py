from __future__ import annotations

import base64
import dataclasses
import gzip
import json
from typing import Any

import pytest
from werkzeug.datastructures import Headers

from shared.config import Settings
from shared.domain.errors import Unavailable
from shared.domain.limits import MAX_BATCH_EVENTS, MAX_REQUEST_BYTES
from shared.domain.sources import EventSource
from tests.fakes import FakeServices
from tests.functions import function_client
from tests.unit.conftest import published


@pytest.fixture
def client() -> Any:
    return function_client("ingest")


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


TRACK = {"event": "purchase_completed", "user_id": "user-123", "properties": {"total": 99.99}}


@pytest.mark.parametrize("where", ["header", "basic", "query", "body"])
def test_write_key_from_every_place(
    client: Any, services: FakeServices, source: EventSource, where: str
) -> None:
    headers, url, body = {}, "/v1/track", dict(TRACK)
    if where == "header":
        headers = {"X-Write-Key": source.key}
    elif where == "basic":
        headers = basic(source.key)
    elif where == "query":
        url += f"?writeKey={source.key}"
    else:
        body["writeKey"] = source.key
    response = client.post(url, json=body, headers=headers)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["accepted"] == 1
    [event] = published(services, source)
    assert event["event"] == "purchase_completed" and event["userId"] == "user-123"
    assert "writeKey" not in event and event["sourceId"] == source.id


@pytest.mark.parametrize("headers", [{}, {"X-Write-Key": "wk_unknown"}, {"X-Write-Key": "garbage"}])
def test_missing_or_unknown_key_is_401(client: Any, headers: dict[str, str]) -> None:
    response = client.post("/v1/track", json=TRACK, headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"] == "unauthorized"


def test_revoked_key_is_401(client: Any, services: FakeServices, source: EventSource) -> None:
    services.sources.revoke(source.workspace_id, source.id)
    services.__dict__.pop("ingest", None)  # a fresh instance: no cached lookup
    response = client.post("/v1/track", json=TRACK, headers={"X-Write-Key": source.key})
    assert response.status_code == 401
    assert "revoked" in response.get_json()["message"]


@pytest.mark.parametrize(
    "content_type", ["application/json", "text/plain", "application/x-www-form-urlencoded", ""]
)
def test_any_content_type_is_read_as_json(
    client: Any, services: FakeServices, source: EventSource, content_type: str
) -> None:
    response = client.post(
        "/v1/track",
        data=json.dumps(TRACK),
        headers={"X-Write-Key": source.key, "Content-Type": content_type},
    )
    assert response.status_code == 200
    assert len(published(services, source)) == 1


def test_gzip_batch_with_partial_rejections(
    client: Any, services: FakeServices, source: EventSource
) -> None:
    batch = {
        "batch": [
            {"type": "track", "event": "ok", "userId": "u1", "messageId": "m1"},
            {"type": "track", "userId": "u1", "messageId": "m2"},
            {"type": "identify", "anonymousId": "a1", "traits": {"plan": "pro"}, "messageId": "m3"},
        ],
        "sentAt": "2024-01-15T15:00:00Z",
    }
    response = client.post(
        "/v1/batch",
        data=gzip.compress(json.dumps(batch).encode()),
        headers={
            **basic(source.key),
            "Content-Encoding": "gzip",
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["accepted"] == 2
    assert [(r["index"], r["messageId"]) for r in body["rejected"]] == [(1, "m2")]
    assert [e["messageId"] for e in published(services, source)] == ["m1", "m3"]


def test_single_refused_event_is_400_naming_the_field(
    client: Any, services: FakeServices, source: EventSource
) -> None:
    response = client.post("/v1/group", json={"user_id": "u"}, headers={"X-Write-Key": source.key})
    assert response.status_code == 400
    assert response.get_json()["field"] == "groupId"
    assert published(services, source) == []


def trusting(services: FakeServices, hops: int) -> None:
    services.settings = dataclasses.replace(services.settings, trusted_proxy_hops=hops)


@pytest.mark.parametrize(
    ("hops", "forwarded", "expected"),
    [
        # Google's load balancer appends `<client>,<load balancer>`.
        (2, "203.0.113.9, 10.0.0.1", "203.0.113.9"),
        # A client forging the header only adds entries on the left: never read.
        (2, "198.51.100.66, 203.0.113.9, 10.0.0.1", "203.0.113.9"),
        (2, "198.51.100.66,203.0.113.9,10.0.0.1", "203.0.113.9"),
        # The local gateway appends its peer.
        (1, "198.51.100.66, 203.0.113.9", "203.0.113.9"),
        (1, "2001:db8::7", "2001:db8::7"),
        # No trusted proxy: the header is ignored, the peer is the caller.
        (0, "198.51.100.66", "127.0.0.1"),
        # Fewer entries than trusted proxies (a request that bypassed them), or not an address
        # where the outermost proxy writes: the peer.
        (2, "198.51.100.66", "127.0.0.1"),
        (1, "not-an-address", "127.0.0.1"),
        (2, "", "127.0.0.1"),
    ],
)
def test_context_ip_trusts_only_the_configured_proxies(
    client: Any,
    services: FakeServices,
    source: EventSource,
    hops: int,
    forwarded: str,
    expected: str,
) -> None:
    trusting(services, hops)
    response = client.post(
        "/v1/track", json=TRACK, headers={"X-Write-Key": source.key, "X-Forwarded-For": forwarded}
    )
    assert response.status_code == 200, response.get_json()
    assert published(services, source)[0]["context"]["ip"] == expected


def test_trusted_proxy_hops_come_from_the_environment() -> None:
    base = {"STREAMS_PROJECT_ID": "p"}
    assert Settings.from_env(base).trusted_proxy_hops == 0  # the header is ignored by default
    assert Settings.from_env({**base, "STREAMS_TRUSTED_PROXY_HOPS": "2"}).trusted_proxy_hops == 2
    for bad in ("-1", "11", "two"):
        with pytest.raises(ValueError, match="STREAMS_TRUSTED_PROXY_HOPS"):
            Settings.from_env({**base, "STREAMS_TRUSTED_PROXY_HOPS": bad})


def test_forwarded_entries_in_several_header_lines_are_read_in_order(
    client: Any, services: FakeServices, source: EventSource
) -> None:
    trusting(services, 2)
    headers = Headers([("X-Write-Key", source.key)])
    headers.add("X-Forwarded-For", "198.51.100.66")
    headers.add("X-Forwarded-For", "203.0.113.9, 10.0.0.1")
    assert client.post("/v1/track", json=TRACK, headers=headers).status_code == 200
    assert published(services, source)[0]["context"]["ip"] == "203.0.113.9"


def test_a_spoofed_forwarded_header_does_not_reach_the_test_event(
    services: FakeServices, source: EventSource
) -> None:
    workspace_id = source.workspace_id
    token, _ = services.workspaces.create_token(workspace_id, "admin")
    response = function_client("event_keys").post(
        f"/api/v1/workspaces/{workspace_id}/event-keys/{source.id}/test-event",
        headers={"Authorization": f"Bearer {token}", "X-Forwarded-For": "198.51.100.66"},
    )
    assert response.status_code == 202
    assert published(services, source)[0]["context"]["ip"] == "127.0.0.1"


# --- no unauthenticated input reaches a 500 --------------------------------------------------


def no_lookups(services: FakeServices, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every write-key lookup (a malformed key must be refused before any)."""
    looked_up: list[str] = []
    resolve = services.sources.resolve_write_key

    def recording(key: str) -> Any:
        looked_up.append(key)
        return resolve(key)

    monkeypatch.setattr(services.sources, "resolve_write_key", recording)
    return looked_up


@pytest.mark.parametrize(
    ("data", "headers", "url"),
    [
        # A lone surrogate in the body's key: it failed to encode as a document path (500).
        (b'{"writeKey": "wk_\\ud800", "event": "x", "userId": "u"}', {}, "/v1/track"),
        # `/` in the key made the key a Firestore path of another shape (500).
        (b'{"event": "x", "userId": "u"}', {"X-Write-Key": "wk_a/b"}, "/v1/track"),
        (b'{"event": "x", "userId": "u"}', {"X-Write-Key": "wk_.."}, "/v1/track"),
        (b'{"event": "x", "userId": "u"}', {"X-Write-Key": "wk_" + "x" * 4096}, "/v1/track"),
        (b'{"event": "x", "userId": "u"}', {"X-Write-Key": "wk_\xe9t\xe9"}, "/v1/track"),
        (b'{"event": "x", "userId": "u"}', basic("wk_a/b"), "/v1/track"),
        (b'{"event": "x", "userId": "u"}', {}, "/v1/track?writeKey=wk_%ED%A0%80"),
        (b'{"event": "x", "userId": "u"}', {}, "/v1/track?writeKey=wk_a%2Fb"),
        (b'{"batch": [], "writeKey": "wk_\\udfff/x"}', {}, "/v1/batch"),
    ],
)
def test_a_malformed_write_key_is_401_without_a_lookup(
    client: Any,
    services: FakeServices,
    monkeypatch: pytest.MonkeyPatch,
    data: bytes,
    headers: dict[str, str],
    url: str,
) -> None:
    looked_up = no_lookups(services, monkeypatch)
    response = client.post(url, data=data, headers=headers)
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.get_json() == {
        "code": 401,
        "error": "unauthorized",
        "message": "unknown write key",
        "field": None,
        "details": None,
    }
    assert looked_up == []


def test_a_well_formed_unknown_key_is_looked_up_and_401(
    client: Any, services: FakeServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    looked_up = no_lookups(services, monkeypatch)
    unknown = "wk_" + "A" * 43
    response = client.post("/v1/track", json=TRACK, headers={"X-Write-Key": unknown})
    assert response.status_code == 401
    assert response.get_json()["message"] == "unknown write key"
    assert looked_up == [unknown]


def test_an_integer_longer_than_python_reads_is_not_a_500(client: Any) -> None:
    """Python refuses to read integers of more than 4,300 digits: the body parsed to a 500."""
    data = b'{"event": "x", "userId": "u", "properties": {"n": ' + b"9" * 5000 + b"}}"
    response = client.post("/v1/track", data=data)
    assert response.status_code == 401
    assert response.get_json()["error"] == "unauthorized"


def test_an_integer_longer_than_python_reads_refuses_its_event_by_field(
    client: Any, services: FakeServices, source: EventSource
) -> None:
    data = b'{"event": "x", "userId": "u", "properties": {"n": -' + b"9" * 5000 + b"}}"
    response = client.post("/v1/track", data=data, headers={"X-Write-Key": source.key})
    assert response.status_code == 400
    assert response.get_json()["field"] == "properties.n"
    assert published(services, source) == []


@pytest.mark.parametrize(
    "data",
    [
        b"{nope",
        b"",
        b"[1]",
        b"\x1f\x8bnot gzip",
        # An integer too long to read, then nesting too deep: both readings of the body fail.
        b'{"n": ' + b"1" * 5000 + b', "deep": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ],
)
def test_malformed_bodies_are_400(client: Any, source: EventSource, data: bytes) -> None:
    response = client.post("/v1/batch", data=data, headers={"X-Write-Key": source.key})
    assert response.status_code == 400
    assert response.get_json()["code"] == 400


def test_oversize_request_is_413(client: Any, source: EventSource) -> None:
    big = {
        "batch": [{"type": "track", "event": "e", "userId": "u", "properties": {"x": "y" * 1000}}]
        * 600
    }
    response = client.post("/v1/batch", json=big, headers={"X-Write-Key": source.key})
    assert response.status_code == 413


def test_gzip_bomb_is_413(client: Any, source: EventSource) -> None:
    bomb = gzip.compress(b'{"batch": [' + b" " * (MAX_REQUEST_BYTES * 4) + b"]}")
    response = client.post(
        "/v1/batch", data=bomb, headers={"X-Write-Key": source.key, "Content-Encoding": "gzip"}
    )
    assert response.status_code == 413


def test_too_many_events_is_413(client: Any, source: EventSource) -> None:
    batch = {"batch": [{"type": "track", "event": "e", "userId": "u"}] * (MAX_BATCH_EVENTS + 1)}
    response = client.post("/v1/batch", json=batch, headers={"X-Write-Key": source.key})
    assert response.status_code == 413


def test_one_message_per_request(client: Any, services: FakeServices, source: EventSource) -> None:
    batch = {"batch": [{"type": "track", "event": f"e{i}", "userId": "u"} for i in range(100)]}
    client.post("/v1/batch", json=batch, headers={"X-Write-Key": source.key})
    messages = services.publisher.published[source.pubsub_topic]
    assert len(messages) == 1
    data, attributes = messages[0]
    assert attributes["event_count"] == "100" and attributes["source_id"] == source.id
    assert len(json.loads(data)) == 100


def test_last_used_at_is_recorded(client: Any, services: FakeServices, source: EventSource) -> None:
    client.post("/v1/track", json=TRACK, headers={"X-Write-Key": source.key})
    assert services.sources.get(source.workspace_id, source.id).last_used_at is not None


# --- the paths browser and mobile SDKs post to ------------------------------------------------

SHORT_FORMS = {
    "/v1/t": ("/v1/track", {"event": "Signed Up", "userId": "u1"}),
    "/v1/i": ("/v1/identify", {"userId": "u1", "traits": {"plan": "pro"}}),
    "/v1/p": ("/v1/page", {"name": "Home", "anonymousId": "a1"}),
    "/v1/s": ("/v1/screen", {"name": "Cart", "anonymousId": "a1"}),
    "/v1/g": ("/v1/group", {"groupId": "g1", "userId": "u1"}),
    "/v1/a": ("/v1/alias", {"previousId": "a1", "userId": "u1"}),
    "/v1/b": ("/v1/batch", {"batch": [{"type": "track", "event": "E", "userId": "u1"}]}),
    "/beacon/v1/batch": ("/v1/batch", {"batch": [{"type": "page", "anonymousId": "a1"}]}),
}
# What differs between two sends of one call: ids and times the server assigns.
ASSIGNED = {"messageId", "receivedAt", "timestamp", "sentAt", "originalTimestamp"}


def comparable(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k not in ASSIGNED}


@pytest.mark.parametrize("short", sorted(SHORT_FORMS))
def test_a_short_path_is_its_long_form(
    client: Any, services: FakeServices, source: EventSource, short: str
) -> None:
    long, body = SHORT_FORMS[short]
    headers = {"X-Write-Key": source.key}
    via_long = client.post(long, json=body, headers=headers)
    via_short = client.post(short, json=body, headers=headers)
    assert via_short.status_code == via_long.status_code == 200
    assert set(via_short.get_json()) == set(via_long.get_json())
    assert via_short.get_json()["accepted"] == via_long.get_json()["accepted"] == 1
    first, second = published(services, source)
    assert comparable(first) == comparable(second)


@pytest.mark.parametrize(
    ("short", "body", "field"),
    [
        ("/v1/g", {"userId": "u1"}, "groupId"),  # a group call needs its group, as /v1/group
        ("/v1/b", {"type": "track", "event": "E", "userId": "u1"}, "batch"),  # /b is a batch
    ],
)
def test_a_short_path_refuses_what_its_long_form_refuses(
    client: Any, source: EventSource, short: str, body: dict[str, Any], field: str
) -> None:
    long = SHORT_FORMS[short][0]
    answers = [
        client.post(path, json=body, headers={"X-Write-Key": source.key}) for path in (long, short)
    ]
    assert [a.status_code for a in answers] == [400, 400]
    assert answers[0].get_json() == answers[1].get_json()
    assert answers[1].get_json()["field"] == field


def test_short_paths_are_documented() -> None:
    document = function_client("api_docs").get("/openapi.json").get_json()
    for short, (long, _) in SHORT_FORMS.items():
        operation = document["paths"][short]["post"]
        assert long in operation["summary"]
        assert operation["x-streams-function"] == "ingest"
        assert "options" in document["paths"][short]


METRICS = {
    "series": [
        {
            "type": "Counter",
            "metric": "analytics_js.invoke.track",
            "value": 1,
            "tags": {"library": "analytics.js", "library_version": "next-1.70.0"},
        }
    ]
}


def test_client_metrics_are_read_and_dropped(client: Any, services: FakeServices) -> None:
    response = client.post(
        "/v1/m",
        data=json.dumps(METRICS),
        headers={"Content-Type": "text/plain", "Origin": "https://shop.example.com"},
    )
    assert response.status_code == 200
    assert response.get_json() == {"success": True}
    assert response.headers["Access-Control-Allow-Origin"] == "https://shop.example.com"
    assert services.publisher.published == {}
    assert services.event_store.rows == []


@pytest.mark.parametrize("data", [b"", b"{nope", b"[]", b'{"series": {}}', b'{"other": []}'])
def test_malformed_client_metrics_are_400(client: Any, data: bytes) -> None:
    response = client.post("/v1/m", data=data)
    assert response.status_code == 400
    assert response.get_json()["code"] == 400


def test_client_metrics_refuse_a_large_body(client: Any) -> None:
    response = client.post("/v1/m", data=json.dumps({"series": [METRICS] * 2000}))
    assert response.status_code == 413


# --- bodies as browsers and phones send them --------------------------------------------------


def test_a_beacon_body_with_the_key_only_in_the_body(
    client: Any, services: FakeServices, source: EventSource
) -> None:
    """navigator.sendBeacon with a string: text/plain;charset=UTF-8, no header of our own."""
    body = {"writeKey": source.key, "batch": [{"type": "track", "event": "Left", "userId": "u"}]}
    response = client.post(
        "/v1/b", data=json.dumps(body), headers={"Content-Type": "text/plain;charset=UTF-8"}
    )
    assert response.status_code == 200, response.get_json()
    [event] = published(services, source)
    assert event["event"] == "Left" and "writeKey" not in event


def test_a_keepalive_fetch_with_the_key_in_the_query(
    client: Any, services: FakeServices, source: EventSource
) -> None:
    response = client.post(
        f"/v1/t?writeKey={source.key}",
        data=json.dumps({"event": "Left", "userId": "u"}),
        headers={"Content-Type": "text/plain;charset=UTF-8", "Origin": "https://shop.example.com"},
    )
    assert response.status_code == 200
    assert published(services, source)[0]["event"] == "Left"


def test_a_gzipped_mobile_batch_with_the_key_only_in_the_body(
    client: Any, services: FakeServices, source: EventSource
) -> None:
    body = {
        "batch": [{"type": "screen", "name": "Home", "anonymousId": "a"}],
        "writeKey": source.key,
    }
    response = client.post(
        "/v1/b",
        data=gzip.compress(json.dumps(body).encode()),
        headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"},
    )
    assert response.status_code == 200, response.get_json()
    assert published(services, source)[0]["name"] == "Home"


def chunked(client: Any, path: str, data: bytes, headers: dict[str, str]) -> Any:
    """A chunked upload as the server hands it over: no Content-Length, input terminated."""
    return client.post(
        path,
        data=data,
        headers={**headers, "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )


def test_a_chunked_body_without_a_length_is_read(
    client: Any, services: FakeServices, source: EventSource
) -> None:
    body = {"batch": [{"type": "track", "event": "E", "userId": "u"}], "writeKey": source.key}
    response = chunked(client, "/v1/b", gzip.compress(json.dumps(body).encode()), {})
    assert response.status_code == 200, response.get_json()
    assert len(published(services, source)) == 1


def test_a_chunked_body_is_limited_while_it_is_read(client: Any, source: EventSource) -> None:
    big = json.dumps({"batch": [{"type": "track", "event": "e" * 1000}] * 600}).encode()
    assert len(big) > MAX_REQUEST_BYTES
    response = chunked(client, "/v1/b", big, {"X-Write-Key": source.key})
    assert response.status_code == 413


def test_a_store_outage_is_a_503_with_retry_after_and_nothing_published(
    client: Any, services: FakeServices, source: EventSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write key cannot be read (Firestore down, no key cached): the SDK is told to retry,
    and nothing is published without its key."""

    def down(path: str) -> None:
        raise Unavailable("Firestore is unavailable, retry later")

    monkeypatch.setattr(services.store, "get", down)
    response = client.post("/v1/track", json=TRACK, headers={"X-Write-Key": source.key})
    assert response.status_code == 503, response.get_json()
    assert response.headers.get("Retry-After")
    assert "Firestore" in response.get_json()["message"]
    assert published(services, source) == []
