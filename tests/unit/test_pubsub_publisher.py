"""The Pub/Sub publisher adapter over a fake gRPC channel: retries, errors as 503s, one RPC."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest

from shared.adapters import pubsub
from shared.adapters.pubsub import PubSubPublisher
from shared.domain.errors import Unavailable

TOPIC = "projects/p/topics/t"


class RpcError(grpc.RpcError):
    """What the gRPC stub raises: a status code and details."""

    def __init__(self, code: grpc.StatusCode):
        super().__init__(code.name)
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._code.name

    def trailing_metadata(self) -> tuple[()]:
        return ()


class FakeChannel:
    """Answers Publish RPCs with `answer(request)`: ids, or an error to raise."""

    def __init__(self, answer: Callable[[Any], list[str] | RpcError]):
        self.answer = answer
        self.calls: list[tuple[Any, float, Any]] = []

    def unary_unary(self, method: str, request_serializer: Any, response_deserializer: Any) -> Any:
        assert method == "/google.pubsub.v1.Publisher/Publish"

        def call(request: Any, timeout: float, metadata: Any) -> Any:
            # The request must survive the wire format exactly as the real stub sends it.
            request = type(request).FromString(request_serializer(request))
            self.calls.append((request, timeout, metadata))
            outcome = self.answer(request)
            if isinstance(outcome, RpcError):
                raise outcome
            return response_deserializer(
                pubsub._PublishResponse(message_ids=outcome).SerializeToString()
            )

        return call


class FakeClient:
    def __init__(self, channel: FakeChannel):
        self.transport = type("Transport", (), {"grpc_channel": channel})()


def publisher(answer: Callable[[Any], list[str] | RpcError]) -> tuple[PubSubPublisher, FakeChannel]:
    channel = FakeChannel(answer)
    return PubSubPublisher(FakeClient(channel)), channel


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pubsub.time, "sleep", lambda seconds: None)


def ids_for(request: Any) -> list[str]:
    return [f"id-{m.data.decode()}" for m in request.messages]


def test_publishes_data_and_attributes_with_the_topic_routing_header() -> None:
    pub, channel = publisher(ids_for)
    ids = pub.publish(TOPIC, [(b"a", {"k": "v"}), (b"b", {})])
    assert ids == ["id-a", "id-b"]
    [(request, timeout, metadata)] = channel.calls
    assert request.topic == TOPIC
    assert [(m.data, dict(m.attributes)) for m in request.messages] == [
        (b"a", {"k": "v"}),
        (b"b", {}),
    ]
    assert 0 < timeout <= pubsub.ATTEMPT_TIMEOUT_SECONDS
    assert ("x-goog-request-params", f"topic={TOPIC}") in metadata


@pytest.mark.parametrize(
    "code",
    [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.INTERNAL],
)
def test_transient_errors_are_retried(code: grpc.StatusCode) -> None:
    failures = [RpcError(code), RpcError(code)]
    pub, channel = publisher(lambda request: failures.pop() if failures else ids_for(request))
    assert pub.publish(TOPIC, [(b"a", {})]) == ["id-a"]
    assert len(channel.calls) == 3


def test_unavailable_until_the_deadline_is_a_503(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [0.0]
    monkeypatch.setattr(pubsub.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(
        pubsub.time, "sleep", lambda seconds: clock.__setitem__(0, clock[0] + seconds)
    )
    pub, channel = publisher(lambda request: RpcError(grpc.StatusCode.UNAVAILABLE))
    with pytest.raises(Unavailable) as raised:
        pub.publish(TOPIC, [(b"a", {})])
    assert raised.value.status == 503 and raised.value.retry_after == 5
    assert 3 < len(channel.calls) < 30
    assert clock[0] <= pubsub.CALL_TIMEOUT_SECONDS


def test_a_missing_topic_is_a_503_without_retries() -> None:
    pub, channel = publisher(lambda request: RpcError(grpc.StatusCode.NOT_FOUND))
    with pytest.raises(Unavailable, match="does not exist"):
        pub.publish(TOPIC, [(b"a", {})])
    assert len(channel.calls) == 1


def test_a_permanent_error_is_not_retried() -> None:
    pub, channel = publisher(lambda request: RpcError(grpc.StatusCode.PERMISSION_DENIED))
    with pytest.raises(Exception, match="PERMISSION_DENIED"):
        pub.publish(TOPIC, [(b"a", {})])
    assert len(channel.calls) == 1


def test_an_invalid_message_fails_only_its_caller() -> None:
    def answer(request: Any) -> list[str] | RpcError:
        if any(m.data == b"bad" for m in request.messages):
            return RpcError(grpc.StatusCode.INVALID_ARGUMENT)
        return ids_for(request)

    pub, _ = publisher(answer)
    with pytest.raises(Exception, match="INVALID_ARGUMENT"):
        pub.publish(TOPIC, [(b"bad", {})])
    assert pub.publish(TOPIC, [(b"good", {})]) == ["id-good"]


def test_a_full_queue_is_a_503_retry_after_1(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pubsub, "MAX_PENDING_MESSAGES", 0)
    pub, _ = publisher(ids_for)
    pub._queue._pending.messages = 1  # as if another request's messages were in flight
    with pytest.raises(Unavailable) as raised:
        pub.publish(TOPIC, [(b"a", {})])
    assert raised.value.retry_after == 1


def test_more_than_one_rpc_of_messages_is_split() -> None:
    pub, channel = publisher(ids_for)
    messages: list[tuple[bytes, dict[str, str]]] = [(str(i).encode(), {}) for i in range(2500)]
    assert pub.publish(TOPIC, messages) == [f"id-{i}" for i in range(2500)]
    assert [len(request.messages) for request, _, _ in channel.calls] == [1000, 1000, 500]
