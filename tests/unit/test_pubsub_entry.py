"""The Pub/Sub-triggered functions take both push shapes: the emulator's and Eventarc's."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from shared.config import LOCAL_MESSAGE_SIGNING_KEY
from shared.domain.events import IngestContext, normalise_request
from shared.domain.ids import utcnow
from shared.domain.message_encoding import DEFLATE, ENCODING_ATTRIBUTE, deflated
from shared.domain.signing import SIGNATURE_ATTRIBUTE, MessageSigner
from tests.fakes import FakeServices
from tests.functions import function_client


def pushed(
    services: FakeServices, data: bytes, attributes: dict[str, str], *, signed: bool = True
) -> dict[str, Any]:
    """A pushed message as Pub/Sub delivers it; `signed` as Streams' own publisher signs."""
    if signed:
        [(_, attributes)] = services.signer.sign([(data, attributes)])
    return {
        "data": base64.b64encode(data).decode(),
        "attributes": attributes,
        "messageId": "pubsub-1",
        "publishTime": "2026-11-22T10:00:00Z",
    }


def source_message(services: FakeServices, *, signed: bool = True) -> tuple[str, dict[str, Any]]:
    workspace = services.workspaces.create("Acme")
    source = services.sources.create(workspace.id, "Web", "t")
    ctx = IngestContext(workspace.id, source.id, utcnow(), None)
    events = normalise_request({"event": "Signed Up", "userId": "u1"}, "track", ctx).events
    attributes = {"workspace_id": workspace.id, "source_id": source.id}
    message = pushed(services, json.dumps(events).encode(), attributes, signed=signed)
    return events[0]["messageId"], message


def stored_ids(services: FakeServices) -> list[str]:
    return [row["message_id"] for row in services.event_store.rows]


def test_emulator_push_body(services: FakeServices) -> None:
    message_id, message = source_message(services)
    # What the emulator pushes: no ce-* headers, `subscription` beside the message.
    body = {"subscription": "projects/p/subscriptions/s", "message": message}
    response = function_client("process").post("/", json=body)
    assert response.status_code == 200
    assert stored_ids(services) == [message_id]


def test_eventarc_cloudevent(services: FakeServices) -> None:
    message_id, message = source_message(services)
    headers = {
        "ce-id": "pubsub-1",
        "ce-source": "//pubsub.googleapis.com/projects/p/topics/t",
        "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
        "ce-specversion": "1.0",
        "Content-Type": "application/json",
    }
    body = {"message": message, "subscription": "projects/p/subscriptions/eventarc-s"}
    response = function_client("process").post("/", json=body, headers=headers)
    assert response.status_code == 200
    assert stored_ids(services) == [message_id]


def test_a_deflated_message_is_processed_as_published(services: FakeServices) -> None:
    workspace = services.workspaces.create("Acme")
    source = services.sources.create(workspace.id, "Web", "t")
    ctx = IngestContext(workspace.id, source.id, utcnow(), None)
    batch = [{"type": "track", "event": f"Step {n}", "userId": "u1"} for n in range(20)]
    events = normalise_request({"batch": batch}, None, ctx).events
    attributes = {"workspace_id": workspace.id, "source_id": source.id}
    # As Streams' own publisher sends it: deflated, then signed.
    [(data, attributes)] = [deflated(json.dumps(events).encode(), attributes)]
    assert attributes[ENCODING_ATTRIBUTE] == DEFLATE

    body = {
        "subscription": "projects/p/subscriptions/s",
        "message": pushed(services, data, attributes),
    }
    response = function_client("process").post("/", json=body)

    assert response.status_code == 200
    assert sorted(stored_ids(services)) == sorted(e["messageId"] for e in events)


@pytest.mark.parametrize(
    "data", [b"not json", b"{}", json.dumps([{"workspaceId": "other", "messageId": "m"}]).encode()]
)
def test_unprocessable_messages_are_acknowledged_not_retried(
    services: FakeServices, data: bytes
) -> None:
    message = pushed(services, data, {"workspace_id": "w", "source_id": "s"})
    response = function_client("process").post(
        "/", json={"subscription": "projects/p/subscriptions/s", "message": message}
    )
    assert response.status_code == 200
    assert stored_ids(services) == []


def test_a_transient_failure_answers_500_so_pubsub_redelivers(services: FakeServices) -> None:
    from shared.domain.errors import Unavailable

    _, message = source_message(services)
    services.event_store.fail = Unavailable("BigQuery down")
    response = function_client("process").post(
        "/", json={"subscription": "projects/p/subscriptions/s", "message": message}
    )
    assert response.status_code == 500
    services.event_store.fail = None
    assert (
        function_client("process")
        .post("/", json={"subscription": "projects/p/subscriptions/s", "message": message})
        .status_code
        == 200
    )
    assert len(stored_ids(services)) == 1


@pytest.mark.parametrize("function", ["process", "deliver", "dead_letters"])
@pytest.mark.parametrize("forgery", ["unsigned", "wrong key", "altered data"])
def test_messages_streams_did_not_sign_are_acknowledged_and_ignored(
    services: FakeServices, function: str, forgery: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Whatever reaches an internal topic some other way cannot name a workspace's events,
    deliveries or dead letters: it is dropped before anything reads it."""
    _, message = source_message(services, signed=forgery != "unsigned")
    if forgery == "wrong key":
        other = MessageSigner("another-deployment-key-of-32-chars-or-more")
        [(_, attributes)] = other.sign([(base64.b64decode(message["data"]), {})])
        message["attributes"][SIGNATURE_ATTRIBUTE] = attributes[SIGNATURE_ATTRIBUTE]
    elif forgery == "altered data":
        events = json.loads(base64.b64decode(message["data"]))
        events[0]["userId"] = "someone-else"
        message["data"] = base64.b64encode(json.dumps(events).encode()).decode()
    body = {"subscription": "projects/p/subscriptions/s", "message": message}
    response = function_client(function).post("/", json=body)
    assert response.status_code == 200  # acknowledged: a forgery is never worth a retry
    assert stored_ids(services) == []
    assert services.publisher.published == {}
    assert (
        services.store.list_documents(  # nothing recorded for any workspace
            f"workspaces/{message['attributes']['workspace_id']}/dead_letters"
        )
        == []
    )
    assert any("refusing message pubsub-1" in r.getMessage() for r in caplog.records)


def test_unsigned_messages_pass_only_while_an_upgrade_allows_them(services: FakeServices) -> None:
    services.signer = MessageSigner(LOCAL_MESSAGE_SIGNING_KEY, accept_unsigned=True)
    message_id, message = source_message(services, signed=False)
    body = {"subscription": "projects/p/subscriptions/s", "message": message}
    assert function_client("process").post("/", json=body).status_code == 200
    assert stored_ids(services) == [message_id]
