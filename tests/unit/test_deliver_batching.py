"""Deliver joins a message's deliveries into the destination's batch requests, isolates a bad
event when a vendor refuses a batch for good, keeps to the destination's rate, reads vendors'
answers through the connector, and writes files through the FileWriter port."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.destinations.base import About, Batching, Part, RateLimit
from shared.domain.errors import InvalidRequest, Unavailable
from shared.ports import OutboundFile, OutboundRequest, SendResult
from shared.services import deliver as deliver_module
from shared.services.deliver import RetryDelivery
from shared.services.pacing import Pacer
from shared.services.rate_limiter import RateLimiter
from tests.fakes import InMemoryCounterStore
from tests.unit.pipeline_fixtures import (
    BATCH_ID,
    add_destination,
    dead_letter_envelopes,
    delivery_message,
    http_error,
    make_events,
    make_pipeline,
    ok,
    track,
)

AMPLITUDE = {"api_key": "amp-key-secret-1"}


def messages(count: int) -> list[Any]:
    return [
        delivery_message(
            message_id=f"m{i}", event=make_events(track(messageId=f"m{i}", userId=f"u{i}"))[0]
        )
        for i in range(count)
    ]


def uploaded_ids(body: bytes) -> list[str]:
    return [event["insert_id"] for event in json.loads(body)["events"]]


def test_a_messages_deliveries_share_one_batch_request() -> None:
    pipeline = make_pipeline()
    add_destination(pipeline.store, "dest-1", type_="amplitude", config=dict(AMPLITUDE))

    outcomes = pipeline.deliverer.deliver_all(messages(5), BATCH_ID)

    assert [o.status for o in outcomes] == ["delivered"] * 5
    [request] = pipeline.sender.sent
    assert uploaded_ids(request.body) == ["m0", "m1", "m2", "m3", "m4"]


def test_a_batch_refused_for_good_is_sent_again_one_delivery_at_a_time() -> None:
    pipeline = make_pipeline()
    add_destination(pipeline.store, "dest-1", type_="amplitude", config=dict(AMPLITUDE))
    # The batch is refused (400), then each alone: only m1 is refused again.
    pipeline.sender.results.extend([http_error(400), ok(), http_error(400), ok()])

    outcomes = pipeline.deliverer.deliver_all(messages(3), BATCH_ID)

    assert [o.status for o in outcomes] == ["delivered", "dead_lettered", "delivered"]
    sent = [uploaded_ids(request.body) for request in pipeline.sender.sent]
    assert sent == [["m0", "m1", "m2"], ["m0"], ["m1"], ["m2"]]
    [letter] = dead_letter_envelopes(pipeline)
    assert letter["delivery"]["message_id"] == "m1"
    assert letter["reason_code"] == "http_error"


def test_a_batch_to_retry_retries_every_delivery_in_it() -> None:
    pipeline = make_pipeline()
    add_destination(pipeline.store, "dest-1", type_="amplitude", config=dict(AMPLITUDE))
    pipeline.sender.results.append(http_error(503))

    with pytest.raises(RetryDelivery, match="3 of 3 to retry"):
        pipeline.deliverer.deliver_all(messages(3), BATCH_ID)
    assert len(pipeline.sender.sent) == 1


def test_the_connector_reads_the_vendors_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.destinations.amplitude import AmplitudeConnector

    # A vendor that answers 200 with an error code it documents as transient.
    def classify(self: Any, result: SendResult) -> str | None:
        return "retry" if b'"transient"' in result.body else None

    monkeypatch.setattr(AmplitudeConnector, "classify", classify, raising=False)
    pipeline = make_pipeline()
    add_destination(pipeline.store, "dest-1", type_="amplitude", config=dict(AMPLITUDE))
    pipeline.sender.results.append(
        SendResult("delivered", 200, "HTTP 200", 1.0, body=b'{"error":"transient"}')
    )

    with pytest.raises(RetryDelivery):
        pipeline.deliverer.deliver_all(messages(2), BATCH_ID)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_pacer_keeps_to_the_rate_and_never_past_the_deadline() -> None:
    clock = FakeClock()
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    limit = RateLimit(requests=2, per_seconds=1.0)

    # A burst of the window's requests at once, then one every half second.
    assert [pacer.acquire("d1", limit, deadline=200) for _ in range(4)] == [True] * 4
    assert clock.slept == [pytest.approx(0.5), pytest.approx(0.5)]
    # Another destination has its own bucket.
    assert pacer.acquire("d2", limit, deadline=200) and len(clock.slept) == 2
    # A token that would come only after the deadline is not waited for, nor taken.
    assert not pacer.acquire("d1", limit, deadline=clock.now + 0.1)
    assert len(clock.slept) == 2
    assert pacer.acquire("d1", limit, deadline=clock.now + 1)
    assert clock.slept[-1] == pytest.approx(0.5)
    assert pacer.acquire("d1", None, deadline=0)  # no limit, no wait


def sends_in_30_seconds(*, shared: bool) -> tuple[int, InMemoryCounterStore]:
    """What two deliver instances pacing one destination at 5 requests a second send in 30 s
    of trying all the time (each send may wait up to a second for its turn)."""
    clock = FakeClock()
    store = InMemoryCounterStore()
    wall = lambda: 1_000_000.0 + clock.now  # noqa: E731 -- windows run on wall-clock time
    instances = [
        Pacer(
            RateLimiter(lambda: store, clock=wall) if shared else None,
            clock=clock,
            sleep=clock.sleep,
        )
        for _ in range(2)
    ]
    limit = RateLimit(requests=5, per_seconds=1.0)
    sent = 0
    start = clock.now
    while clock.now - start < 30:
        for pacer in instances:
            sent += pacer.acquire("dest-1", limit, deadline=clock.now + 1)
        clock.now += 0.05
    return sent, store


def test_instances_sharing_the_window_keep_the_rate_together() -> None:
    alone, _ = sends_in_30_seconds(shared=False)
    together, store = sends_in_30_seconds(shared=True)
    # Alone, each instance keeps to the rate: twice it in all. Sharing the window, the two keep
    # to it together: 30 s at 5 a second plus a burst per 10 s window (165), give or take the
    # second an instance's knowledge of the others lags.
    assert alone >= 2 * 150, alone
    assert together <= 165 * 1.1, together
    assert all(path.startswith("rate_windows/destination-dest-1-") for path in store.documents)


class FakeFiles:
    def __init__(self, error: Exception | None = None) -> None:
        self.written: list[OutboundFile] = []
        self.error = error

    def write(self, file: OutboundFile) -> str:
        if self.error is not None:
            raise self.error
        self.written.append(file)
        return f"gs://{file.bucket}/{file.name}"


class FilesConnector:
    """A connector writing one file per batch of an hour's events."""

    type = "files"
    about = About("files", "docs", ("track",), batching=Batching(max_parts=10))

    def parts(self, event: Any, config: Any, *, now: Any) -> list[Part]:
        return [Part("hour", event["messageId"])]

    def request(self, key: str, payloads: Any, config: Any, *, now: Any) -> OutboundFile:
        return OutboundFile("bucket", f"{key}/{'-'.join(payloads)}", b"", "x", "manifest")


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (None, "delivered"),
        (InvalidRequest("the bucket does not exist"), "dead_lettered"),
        (Unavailable("Cloud Storage answered 503"), "retry"),
    ],
)
def test_files_go_through_the_file_writer(
    error: Exception | None, status: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = FakeFiles(error)
    pipeline = make_pipeline()
    # The writer the bootstrap would give, and a connector making files.
    monkeypatch.setattr(pipeline.deliverer._outlets, "_files", lambda: files)
    monkeypatch.setattr(deliver_module, "connector_for", lambda kind: FilesConnector())
    add_destination(pipeline.store, "dest-1", type_="webhook")

    if status == "retry":
        with pytest.raises(RetryDelivery, match="503"):
            pipeline.deliverer.deliver_all(messages(2), BATCH_ID)
        return
    outcomes = pipeline.deliverer.deliver_all(messages(2), BATCH_ID)
    assert [o.status for o in outcomes] == [status] * 2
    if status == "delivered":
        assert [f.name for f in files.written] == ["hour/m0-m1"]
    else:
        [letter, _] = dead_letter_envelopes(pipeline)
        assert (letter["reason_code"], letter["reason"]) == (
            "file_refused",
            "the bucket does not exist",
        )


class BreaksOnOne:
    """A connector whose joined request cannot be built when one event's part is bad."""

    type = "breaks"
    about = About("breaks", "docs", ("track",), batching=Batching(max_parts=10))

    def parts(self, event: Any, config: Any, *, now: Any) -> list[Part]:
        return [Part("all", event["messageId"])]

    def request(self, key: str, payloads: Any, config: Any, *, now: Any) -> Any:
        if "m1" in payloads:
            raise KeyError("the vendor's field for m1")
        return AMPLITUDE_REQUEST


AMPLITUDE_REQUEST = OutboundRequest("POST", "https://api2.amplitude.com/2/httpapi", {}, b"{}")


def test_a_request_one_delivery_breaks_fails_only_that_delivery(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipeline = make_pipeline()
    monkeypatch.setattr(deliver_module, "connector_for", lambda kind: BreaksOnOne())
    add_destination(pipeline.store, "dest-1", type_="webhook")

    outcomes = pipeline.deliverer.deliver_all(messages(3), BATCH_ID)

    assert [o.status for o in outcomes] == ["delivered", "dead_lettered", "delivered"]
    assert len(pipeline.sender.sent) == 2  # m0 and m2, each alone
    [letter] = dead_letter_envelopes(pipeline)
    assert letter["reason_code"] == "unprocessable_event"
    assert "KeyError" in letter["reason"]
