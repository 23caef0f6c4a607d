"""Ingest's REST clients without a network: Firestore's JSON values, the retry and error rules
(shared/adapters/rest.py), and the wiring that keeps Google's gRPC clients out of ingest."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from urllib3 import exceptions as u3

from shared.adapters.firestore_rest import field_path, from_value, parse_timestamp, to_value
from shared.adapters.pubsub_rest import HandOverPublisher
from shared.adapters.rest import RestApi, RestError, RetryPolicy
from shared.domain.errors import Unavailable
from tests.fakes import FakePublisher, FakeServices, InMemoryConfigStore

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        -(2**63),
        2**63 - 1,
        0.5,
        "caf\u00e9",
        b"\x00\xff",
        datetime(2026, 12, 3, 16, 0, 0, 123456, tzinfo=UTC),
        {"a": [1, {"b": None}], "": "empty key is a map key like any"},
        [],
        {},
    ],
)
def test_values_round_trip(value: Any) -> None:
    sent = json.loads(json.dumps(to_value(value)))  # as it travels
    assert from_value(sent) == value


def test_numbers_json_cannot_hold_travel_as_the_api_spells_them() -> None:
    assert to_value(math.inf) == {"doubleValue": "Infinity"}
    assert to_value(-math.inf) == {"doubleValue": "-Infinity"}
    assert math.isnan(from_value(to_value(math.nan)))
    assert to_value(7) == {"integerValue": "7"}  # int64 as text, as the API takes it
    assert from_value({"doubleValue": 1}) == 1.0


def test_times_are_utc_and_a_naive_time_is_taken_as_utc() -> None:
    naive = datetime(2026, 1, 2, 3, 4, 5)
    assert to_value(naive) == {"timestampValue": "2026-01-02T03:04:05.000000Z"}
    assert parse_timestamp("2026-12-03T16:11:39.591889123Z") == datetime(
        2026, 12, 3, 16, 11, 39, 591889, tzinfo=UTC
    )
    assert parse_timestamp("2026-12-03T16:11:39Z") == datetime(2026, 12, 3, 16, 11, 39, tzinfo=UTC)
    assert parse_timestamp("2026-12-03T16:11:39.55Z").microsecond == 550000


def test_values_firestore_has_no_type_for_are_refused() -> None:
    with pytest.raises(TypeError):
        to_value({1, 2})
    with pytest.raises(ValueError, match="referenceValue"):
        from_value({"referenceValue": "projects/p/databases/(default)/documents/a/b"})


def test_field_paths_quote_names_that_are_not_simple() -> None:
    assert field_path("last_used_at") == "last_used_at"
    assert field_path("a.b") == "`a.b`"
    assert field_path("tick`s\\") == "`tick\\`s\\\\`"


@dataclass
class Answer:
    status: int
    data: bytes = b"{}"


class ScriptedHttp:
    """Answers (or raises) from a script, recording each request."""

    def __init__(self, *script: Answer | Exception):
        self._script = list(script)
        self.calls: list[dict[str, Any]] = []

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        self.calls.append({"method": method, "url": url, **kwargs})
        step = self._script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


RETRIED = RetryPolicy(
    codes=frozenset({"UNAVAILABLE", "ABORTED"}), deadline_seconds=2, initial_seconds=0.001
)
ONCE = RetryPolicy(codes=frozenset(), deadline_seconds=2)


def error(status: int, code: str) -> Answer:
    return Answer(status, json.dumps({"error": {"code": status, "status": code}}).encode())


def api(http: ScriptedHttp) -> RestApi:
    return RestApi("Firestore", "http://emulator/v1/", http, {"Authorization": "Bearer owner"})


def test_a_transient_refusal_is_retried_until_answered() -> None:
    http = ScriptedHttp(error(503, "UNAVAILABLE"), error(409, "ABORTED"), Answer(200, b'{"a":1}'))
    assert api(http).call("POST", "x:commit", {"writes": []}, RETRIED) == {"a": 1}
    assert len(http.calls) == 3
    first = http.calls[0]
    assert first["url"] == "http://emulator/v1/x:commit" and first["retries"] is False
    assert first["headers"]["Authorization"] == "Bearer owner"
    assert json.loads(first["body"]) == {"writes": []}


def test_a_transient_refusal_not_retried_is_unavailable_at_once() -> None:
    http = ScriptedHttp(error(429, "RESOURCE_EXHAUSTED"))
    with pytest.raises(Unavailable, match=r"Firestore is unavailable.*429 RESOURCE_EXHAUSTED"):
        api(http).call("GET", "a/b", None, RETRIED)
    assert len(http.calls) == 1


@pytest.mark.parametrize(
    "failure",
    [
        u3.NewConnectionError(cast(Any, None), "refused"),
        u3.ReadTimeoutError(cast(Any, None), "/", "slow"),
        ConnectionRefusedError("refused"),
    ],
)
def test_a_connection_failure_is_unavailable(failure: Exception) -> None:
    http = ScriptedHttp(failure, failure)
    with pytest.raises(Unavailable):
        api(http).call("GET", "a/b", None, ONCE)
    assert len(http.calls) == 1  # a policy retrying nothing retries no connection either


def test_a_permanent_refusal_is_a_rest_error_with_its_code() -> None:
    http = ScriptedHttp(error(409, "ALREADY_EXISTS"), Answer(400, b"<html>bad</html>"))
    with pytest.raises(RestError) as exists:
        api(http).call("POST", "x:commit", {}, RETRIED)
    assert (exists.value.http_status, exists.value.code) == (409, "ALREADY_EXISTS")
    with pytest.raises(RestError) as bad:
        api(http).call("POST", "x:commit", {}, RETRIED)
    assert bad.value.code == "400" and "bad" in bad.value.message


@pytest.fixture
def offline_env() -> Iterator[dict[str, str]]:
    # Unit tests never reach a network: "." is no host (as mozilla/gcp-ingestion's tests do).
    yield {
        **os.environ,
        "STREAMS_PROJECT_ID": "rest-test",
        "FIRESTORE_EMULATOR_HOST": ".",
        "PUBSUB_EMULATOR_HOST": ".",
    }


def test_the_ingest_function_builds_its_service_without_googles_grpc_clients(
    offline_env: dict[str, str],
) -> None:
    script = (
        "import json, sys, functions_framework\n"
        "functions_framework.create_app(target='ingest', source='functions/ingest/main.py')\n"
        "main = next(m for n, m in sys.modules.items() if hasattr(m, 'services')"
        " and n.endswith('main'))\n"
        "services = main.services()\n"
        "services.ingest, services.rate_limiter._counters()\n"
        "print(json.dumps([services.rest_clients, sorted(sys.modules)]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=offline_env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    rest_clients, modules = json.loads(done.stdout)
    assert rest_clients is True
    heavy = (
        "grpc",
        "google.cloud.f",  # firestore (and functions-framework's own functions, below)
        "google.cloud.pubsub",
        "google.pubsub",
        "google.api_core",
        "google.protobuf",
        "google.auth",
    )
    # functions-framework's own `google.cloud.functions` is loaded by every function.
    heavy_loaded = [name for name in modules if name.startswith(heavy)]
    assert heavy_loaded == [n for n in heavy_loaded if n.startswith("google.cloud.functions")]
    assert "shared.adapters.firestore_rest" in modules and "shared.adapters.pubsub_rest" in modules


def test_ingest_takes_the_rest_clients_only_where_asked() -> None:
    official = FakeServices()
    assert official.rest_clients is False
    assert official.ingest._publisher is official.publisher

    store, publisher = InMemoryConfigStore(), FakePublisher()
    rest = FakeServices(rest_clients=True, rest_store=store, rest_publisher=publisher)
    assert rest.ingest._publisher is publisher
    assert rest.ingest._last_used._store is store
    assert "sources" not in rest.__dict__  # resolving keys needs no topics


class RecordingPool:
    """Stands for urllib3's pool under google-auth's `AuthorizedHttp`."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def urlopen(self, method: str, url: str, **kwargs: Any) -> Answer:
        self.calls.append({"method": method, "url": url, **kwargs})
        return Answer(200, b'{"messageIds": ["1"]}')


def test_production_requests_carry_the_default_credentials_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import google.auth
    from google.oauth2.credentials import Credentials

    from shared.adapters import rest

    pool = RecordingPool()
    monkeypatch.setattr(google.auth, "default", lambda scopes: (Credentials("a-token"), "p"))
    monkeypatch.setattr(rest, "new_pool", lambda: pool)
    monkeypatch.delenv("PUBSUB_EMULATOR_HOST", raising=False)
    api = rest.google_api(
        "Pub/Sub", "PUBSUB_EMULATOR_HOST", "https://pubsub.example/v1/", rest.AuthorisedHttp
    )

    assert api.call("POST", "projects/p/topics/t:publish", {"messages": []}, ONCE) == {
        "messageIds": ["1"]
    }
    [call] = pool.calls
    assert call["url"] == "https://pubsub.example/v1/projects/p/topics/t:publish"
    assert call["headers"]["authorization"] == "Bearer a-token"
    assert call["retries"] is False and call["redirect"] is False and call["timeout"] > 0


def test_a_token_that_cannot_be_fetched_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    import google.auth
    from google.auth import exceptions

    from shared.adapters import rest

    class NoToken:
        def before_request(self, *args: Any) -> None:
            raise exceptions.TransportError("metadata server unreachable")

    monkeypatch.setattr(google.auth, "default", lambda scopes: (NoToken(), "p"))
    monkeypatch.setattr(rest, "new_pool", RecordingPool)
    api = rest.RestApi("Firestore", "https://firestore.example/v1/", rest.AuthorisedHttp(), {})
    with pytest.raises(Unavailable, match=r"Firestore is unavailable.*ConnectionError"):
        api.call("GET", "a/b", None, ONCE)


def test_publishing_hands_over_to_the_next_publisher_once_built() -> None:
    first, successor = FakePublisher(), FakePublisher()
    built = threading.Event()

    def build() -> FakePublisher:
        built.set()
        return successor

    publisher = HandOverPublisher(first, build, delay_seconds=0)
    publisher.publish("t", [(b"1", {})])
    assert built.wait(5)
    for _ in range(100):  # the thread assigns the successor just after building it
        if publisher._current is successor:
            break
        time.sleep(0.01)
    publisher.publish("t", [(b"2", {})])
    assert [data for data, _ in first.published["t"]] == [b"1"]
    assert [data for data, _ in successor.published["t"]] == [b"2"]


def test_a_successor_that_cannot_be_built_leaves_publishing_where_it_was(
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = FakePublisher()
    attempts: list[int] = []

    def build() -> FakePublisher:
        attempts.append(1)
        raise RuntimeError("no gRPC today")

    publisher = HandOverPublisher(first, build, delay_seconds=0)
    for n in range(3):
        publisher.publish("t", [(str(n).encode(), {})])
        time.sleep(0.05)
    assert len(first.published["t"]) == 3 and attempts == [1]  # built once, never again
    assert "stays on REST" in caplog.text
