"""The frozen normalisation of issue 19's day (bench/baselines/ingest_normalise_v1.py), which the
WSGI baseline of bench/ingest.py runs, publishes and refuses exactly what the live one does.

Issue 19 item 3 measures ingest against "today's implementation": the comparison is fair only if
the frozen copy still behaves as the live code, whatever the body. Each case goes through the
ingest service twice, once per normaliser, and must give the same message (bytes and
attributes), the same answer (message ids and rejections) or the same request-level error.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import functions_framework
import pytest
from functions_framework import _function_registry

from bench.baselines import ingest_normalise_v1
from shared.domain import limits
from shared.domain.errors import StreamsError
from shared.domain.events import IngestContext, normalise_request
from shared.domain.sources import EventSource
from shared.domain.storable import OversizedInteger
from shared.services.ingest import Ingest
from tests.fakes import FakeServices
from tests.functions import ROOT

GOLDEN_DIR = ROOT / "tests" / "golden" / "normalise"
RECEIVED_AT = datetime(2024, 1, 15, 15, 0, 5, 250000, tzinfo=UTC)


def track(index: int = 0, **fields: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": f"user-{index}",
        "messageId": f"m-{index}",
        "timestamp": "2024-01-15T15:00:04.125Z",
        "properties": {"total": 9.99, "products": [{"sku": "A", "quantity": 2}]},
        "context": {"library": {"name": "analytics-python", "version": "2.4.0"}},
        **fields,
    }


def nested(depth: int) -> dict[str, Any]:
    """An object `depth` levels deep (itself included)."""
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"n": value}
    return value


TIMESTAMPS = [
    "2024-01-15T15:00:04.125Z",
    "2024-01-15T15:00:04.000Z",
    "2024-01-15T15:00:04.990Z",  # a skew of -37 ms carries into the seconds
    "2024-01-15T15:00:04.010Z",  # one of +50 ms borrows from them
    "2024-01-15T15:00:04Z",
    "2024-01-15T15:00:04.123456Z",
    "2024-01-15T15:00:04.1234Z",
    "2024-01-15T15:00:04.125z",
    "2024-01-15T15:00:04.125+02:00",
    "2024-01-15T15:00:04.125-11:30",
    "2024-01-15T15:00:04.125",
    "2024-01-15 15:00:04.125Z",
    "2024-01-15T15:00:04,125Z",
    "2024-W03-1T15:00:04.125Z",
    "2024-W03-1T15:00:0.125Z",
    "20240115T150004.125Z",
    "2024-01-15",
    "2024-01-15Z",
    "2024-02-30T00:00:00.000Z",
    "2024-01-15T24:00:00.000Z",
    "2024-01-15T15:00:04.12aZ",
    "2024-01-15T15:00:04.125ZZ",
    "9999-12-31T23:59:59.999Z",
    "0001-01-01T00:00:00.000Z",
    "0001-01-01T00:00:00.000+01:00",
    "soon",
    "",
    5,
    None,
    ["2024-01-15T15:00:04.125Z"],
]
SENT_ATS = [
    "2024-01-15T15:00:05.250Z",  # no skew
    "2024-01-15T15:00:05.213Z",  # 37 ms behind the server
    "2024-01-15T15:00:05.300Z",  # 50 ms ahead
    "2024-01-15T15:00:09.000Z",  # seconds ahead
    "2024-01-16T15:00:05.250+01:00",
    "2023-12-31T23:59:59Z",
    "bad",
]
ODD_VALUES: list[Any] = [
    2**63 - 1,
    2**63,
    2**64 - 1,
    2**64,
    -(2**63),
    -(2**63) - 1,
    10**30,
    OversizedInteger(5000),
    1e308,
    1.5e-300,
    float("nan"),
    float("-inf"),
    "1234567890123456789012",
    '"__x__": 1',
    '"":',
    "\u00e9\U0001f600",
    "\ud800",
    "a\udfffb",
    True,
    None,
    [[1, 2], [3]],
    {"__name__": 1},
    {"__": 1, "_x_": 2, "x__": 3},
    {"": 1},
    {'a"': {"b": 1}},
    {"\ud83d": 1},
    {"k" * 1100: 1},
    {"k" * 1010: 1},
    {"\u00e9" * 600: 1},
    [{"i": i} for i in range(30)],
    nested(14),
    nested(15),
    nested(16),
]


def varied_bodies() -> list[tuple[str, Any, str | None]]:
    """(name, body, call type) cases: batches with bad items, unicode, big numbers, nested
    context, snake_case fields, sentAt skew, and single calls."""
    cases: list[tuple[str, Any, str | None]] = []
    items: list[Any] = [
        track(0),
        1,
        "text",
        None,
        [],
        track(1, type=None),
        track(2, type="purchase"),
        track(3, event=""),
        track(4, event=7),
        track(5, userId=None),
        track(6, userId=None, anonymousId="anon"),
        track(7, userId=42, anonymousId=4.0),
        track(8, userId=1.5, groupId=True),
        track(9, userId=1e20),
        track(10, userId=["u"]),
        track(11, messageId="x" * 100),
        track(12, messageId=None),
        track(13, messageId="\ud800"),
        track(14, properties="not an object"),
        track(15, context=[1]),
        track(16, integrations={"All": False, "Segment.io": True}),
        track(17, traits={"email": "a@example.com"}),
        track(18, name="page name", extra={"kept": True}, writeKey="wk", receivedAt="x"),
    ]
    cases.append(("mixed batch", {"batch": items}, None))
    cases.append(
        (
            "odd values",
            {"batch": [track(i, properties={"v": value}) for i, value in enumerate(ODD_VALUES)]},
            None,
        )
    )
    cases.append(
        (
            "odd values in context",
            {"batch": [track(i, context={"x": value}) for i, value in enumerate(ODD_VALUES)]},
            None,
        )
    )
    cases.append(
        (
            "oversize",
            {"batch": [track(0, properties={"s": "x" * limits.MAX_EVENT_BYTES}), track(1)]},
            None,
        )
    )
    cases.append(
        (
            "oversize in unicode",
            {"batch": [track(0, properties={"s": "\u00e9" * (limits.MAX_EVENT_BYTES // 2)})]},
            None,
        )
    )
    for sent_at in SENT_ATS:
        cases.append(
            (
                f"timestamps, sentAt {sent_at}",
                {
                    "batch": [track(i, timestamp=value) for i, value in enumerate(TIMESTAMPS)]
                    + [
                        track(100, timestamp=None, originalTimestamp="2024-01-15T15:00:01.500Z"),
                        track(101, timestamp="", original_timestamp="2024-01-15T15:00:01Z"),
                        track(102, timestamp=None),
                        track(103, sentAt="2024-01-15T15:00:06.000Z"),
                        track(104, sent_at="2024-01-15T15:00:05.250Z"),
                        track(105, sentAt="nope"),
                        track(106, sentAt="9999-12-31T23:59:59.999Z"),
                    ],
                    "sentAt": sent_at,
                },
                None,
            )
        )
        cases.append(
            (
                f"snake sent_at {sent_at}",
                {"batch": [track(0)], "sent_at": sent_at},
                None,
            )
        )
    for value in TIMESTAMPS:
        cases.append((f"single, timestamp {value!r}", track(0, timestamp=value), "track"))
        cases.append((f"single, sentAt {value!r}", track(0, sentAt=value), "track"))
    snake = {
        "type": "identify",
        "user_id": "u-snake",
        "anonymous_id": "a-snake",
        "message_id": "m-snake",
        "original_timestamp": "2024-01-15T15:00:01.000Z",
        "sent_at": "2024-01-15T15:00:05.000Z",
        "traits": {"plan": "pro"},
        "context": {"user_agent": "UA", "userAgent": None, "group_id": "g", "ip": ""},
    }
    cases.append(("snake_case identify", {"batch": [snake]}, None))
    cases.append(("snake_case single", {k: v for k, v in snake.items() if k != "type"}, "identify"))
    both = {**snake, "userId": "u-camel", "messageId": "", "context": {"user_agent_data": {}}}
    cases.append(("both spellings", {"batch": [both]}, None))
    calls: list[dict[str, Any]] = [
        {"type": "group", "userId": "u", "groupId": "g", "traits": {"n": 1}, "event": "x"},
        {"type": "group", "userId": "u", "group_id": 12},
        {"type": "group", "userId": "u"},
        {"type": "alias", "userId": "u", "previousId": "p"},
        {"type": "alias", "userId": "u"},
        {"type": "alias", "previous_id": "p", "anonymousId": "a"},
        {"type": "page", "anonymousId": "a", "name": "Home", "properties": {"path": "/"}},
        {"type": "screen", "anonymousId": "a", "name": 3},
        {"type": "identify", "anonymousId": "a", "name": "n", "traits": None},
    ]
    cases.append(("calls", {"batch": calls}, None))
    for call in calls:
        cases.append((f"single {call['type']}", call, call["type"]))
    cases.append(("type mismatch", track(0), "identify"))
    cases.append(("events endpoint", track(0), None))
    cases.append(("events endpoint, no type", {**track(0), "type": None}, None))
    envelope_context = {
        "library": {"name": "analytics.js", "version": "2"},
        "page": {"url": "https://example.com/\u00e9"},
        "user_agent": "Envelope UA",
        "ip": "198.51.100.1",
    }
    cases.append(
        (
            "envelope context and integrations",
            {
                "batch": [
                    track(0),
                    track(1, context={"library": {"version": "3"}, "userAgent": "Own UA"}),
                    track(2, context={"ip": None, "page": {"title": "T"}}),
                    track(3, integrations={"Amplitude": {"session": 1}}),
                    # The envelope's objects again, their keys in another order.
                    track(4, context={"library": {"version": "2", "name": "analytics.js"}}),
                    track(5, integrations={"Amplitude": {"k": "v"}, "All": True}),
                ],
                "context": envelope_context,
                "integrations": {"All": True, "Amplitude": {"k": "v"}},
                "writeKey": "wk_x",
            },
            None,
        )
    )
    cases.append(("deep envelope context", {"batch": [track(0)], "context": nested(16)}, None))
    cases.append(("envelope context ok", {"batch": [track(0)], "context": nested(15)}, None))
    cases.append(("unstorable envelope", {"batch": [track(0)], "context": {"": 1}}, None))
    cases.append(("envelope context a list", {"batch": [track(0)], "context": []}, None))
    cases.append(("envelope integrations", {"batch": [track(0)], "integrations": 1}, None))
    cases.append(("batch not a list", {"batch": {"0": track(0)}}, None))
    cases.append(("too many", {"batch": [track(i) for i in range(2501)]}, None))
    cases.append(("empty batch", {"batch": []}, None))
    cases.append(("not an object", [track(0)], "track"))
    cases.append(("unknown call", track(0), "purchase"))
    cases.append(("bench batch", {"batch": [track(i) for i in range(100)]}, None))
    return cases


def golden_bodies() -> list[tuple[str, Any, str | None]]:
    """The normalisation golden cases' inputs (tests/golden/normalise), for /v1/<call>."""
    cases = []
    for path in sorted(GOLDEN_DIR.glob("*.json")):
        case = json.loads(path.read_text())
        if case.get("entry") != "normalise_stream_event":
            cases.append((f"golden {path.stem}", case["body"], case["call_type"]))
    return cases


def random_bodies(count: int, seed: int = 19) -> list[tuple[str, Any, str | None]]:
    """Batches of items built from the odd values above, in random places and combinations."""
    rng = random.Random(seed)
    keys = ["userId", "anonymousId", "messageId", "timestamp", "sentAt", "event", "name"]
    keys += ["type", "properties", "context", "traits", "integrations", "extra", "", "__k__"]

    def value(depth: int) -> Any:
        roll = rng.random()
        if roll < 0.25 and depth < 18:
            return {rng.choice([*keys, "a", "\u00e9", "__", '"']): value(depth + 1)}
        if roll < 0.35 and depth < 18:
            return [value(depth + 1) for _ in range(rng.randint(0, 3))]
        if roll < 0.6:
            return rng.choice(TIMESTAMPS + SENT_ATS)
        return rng.choice(ODD_VALUES)

    cases: list[tuple[str, Any, str | None]] = []
    for number in range(count):
        batch = []
        for index in range(rng.randint(1, 6)):
            item = track(index)
            for _ in range(rng.randint(0, 4)):
                item[rng.choice(keys)] = value(1)
            batch.append(item)
        body: dict[str, Any] = {"batch": batch}
        if rng.random() < 0.5:
            body["sentAt"] = rng.choice(SENT_ATS[:-1])
        cases.append((f"random {number}", body, None))
    return cases


CASES = varied_bodies() + golden_bodies() + random_bodies(150)


def outcome(
    services: FakeServices,
    source: EventSource,
    normalise: Callable[..., Any],
    body: Any,
    call_type: str | None,
) -> dict[str, Any]:
    """What ingesting `body` with `normalise` gives: the published message (bytes, attributes)
    and the answer, or the request-level error."""
    numbers = itertools.count(1)
    ingest = Ingest(
        services.sources,
        services.publisher,
        services.store,
        key_cache_seconds=5,
        clock=lambda: RECEIVED_AT,
        new_message_id=lambda: f"gen-{next(numbers)}",
    )
    ingest.normalise = normalise
    key = ingest.authorize(source.key)
    before = len(services.publisher.published.get(source.pubsub_topic, []))
    try:
        result = ingest.accept(key, body, call_type, "203.0.113.7")
    except StreamsError as error:
        return {"error": (type(error).__name__, error.status, error.message, error.field)}
    return {
        "messages": services.publisher.published.get(source.pubsub_topic, [])[before:],
        "message_ids": result.message_ids,
        "rejections": [asdict(rejection) for rejection in result.rejections],
    }


def test_the_corpus_reaches_every_outcome() -> None:
    """The corpus is varied: accepted events, each kind of refusal, and request errors."""
    reasons: set[str] = set()
    for _, body, call_type in CASES:
        ctx = IngestContext("ws", "src", RECEIVED_AT, None)
        try:
            batch = normalise_request(body, call_type, ctx)
        except StreamsError as error:
            reasons.add(error.message)
            continue
        reasons.update(rejection.reason for rejection in batch.rejections)
    wanted = {
        limits.NOT_AN_OBJECT,
        limits.TOO_DEEP,
        limits.NOT_UNICODE,
        limits.INTEGER_OUT_OF_RANGE,
        limits.EMPTY_KEY,
        limits.RESERVED_KEY,
        limits.FIELD_PATH_TOO_LONG,
        limits.TOO_LARGE,
        limits.TYPE_REQUIRED,
        limits.TYPE_UNKNOWN,
        limits.TYPE_MISMATCH,
        limits.NOT_AN_OBJECT_FIELD.format("properties"),
        limits.NOT_AN_ID.format("userId"),
        limits.MESSAGE_ID_TOO_LONG,
        limits.IDENTITY_REQUIRED,
        limits.EVENT_REQUIRED,
        limits.NAME_NOT_A_STRING,
        limits.GROUP_ID_REQUIRED,
        limits.PREVIOUS_ID_REQUIRED,
        limits.USER_ID_REQUIRED,
        limits.BAD_TIMESTAMP.format("timestamp"),
        limits.BAD_TIMESTAMP.format("sentAt"),
        limits.CORRECTION_OUT_OF_RANGE,
    }
    assert wanted <= reasons, wanted - reasons


@pytest.mark.parametrize(
    ("body", "call_type"),
    [(body, call_type) for _, body, call_type in CASES],
    ids=[name for name, _, _ in CASES],
)
def test_the_frozen_normalisation_publishes_and_refuses_what_the_live_one_does(
    services: FakeServices, source: EventSource, body: Any, call_type: str | None
) -> None:
    live = outcome(services, source, normalise_request, body, call_type)
    frozen = outcome(services, source, ingest_normalise_v1.normalise_request, body, call_type)
    assert live == frozen


def test_the_wsgi_baseline_entry_normalises_with_the_frozen_copy(
    services: FakeServices, source: EventSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bench/ingest.py serves this entry as "today's implementation": it must run the frozen
    normalisation, and still publish what the live entry publishes."""
    with monkeypatch.context() as patch:
        # The framework picks ASGI by the function's name, which the live entry registered.
        patch.setattr(_function_registry, "ASGI_FUNCTIONS", set())
        app = functions_framework.create_app(
            target="ingest", source=str(Path(ROOT, "bench", "baselines", "ingest_wsgi_v1.py"))
        )
    body = {"batch": [track(0), track(1, userId=None), track(2, properties={"n": 2**64})]}
    response = app.test_client().post("/v1/batch", json=body, headers={"X-Write-Key": source.key})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert services.ingest.normalise is ingest_normalise_v1.normalise_request
    answer = response.get_json()
    assert (answer["accepted"], [r["index"] for r in answer["rejected"]]) == (1, [1, 2])
    [(data, attributes)] = services.publisher.published[source.pubsub_topic]
    assert [event["messageId"] for event in json.loads(data)] == ["m-0"]
    assert attributes["event_count"] == "1"
