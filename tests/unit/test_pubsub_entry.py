"""The Pub/Sub-triggered functions take both push shapes: the emulator's and Eventarc's."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from shared.bootstrap import Services
from shared.domain.events import IngestContext, normalise_request
from shared.domain.ids import utcnow
from tests.functions import function_client


def source_message(services: Services) -> tuple[str, dict[str, Any]]:
    workspace = services.workspaces.create("Acme")
    source = services.sources.create(workspace.id, "Web", "t")
    ctx = IngestContext(workspace.id, source.id, utcnow(), None)
    events = normalise_request({"event": "Signed Up", "userId": "u1"}, "track", ctx).events
    message = {
        "data": base64.b64encode(json.dumps(events).encode()).decode(),
        "attributes": {"workspace_id": workspace.id, "source_id": source.id},
        "messageId": "pubsub-1",
        "publishTime": "2026-11-22T10:00:00Z",
    }
    return events[0]["messageId"], message


def stored_ids(services: Services) -> list[str]:
    return [row["message_id"] for row in services.event_store.rows]  # type: ignore[attr-defined]


def test_emulator_push_body(services: Services) -> None:
    message_id, message = source_message(services)
    # What the emulator pushes: no ce-* headers, `subscription` beside the message.
    body = {"subscription": "projects/p/subscriptions/s", "message": message}
    response = function_client("process").post("/", json=body)
    assert response.status_code == 200
    assert stored_ids(services) == [message_id]


def test_eventarc_cloudevent(services: Services) -> None:
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


@pytest.mark.parametrize(
    "data", [b"not json", b"{}", json.dumps([{"workspaceId": "other", "messageId": "m"}]).encode()]
)
def test_unprocessable_messages_are_acknowledged_not_retried(
    services: Services, data: bytes
) -> None:
    message = {
        "data": base64.b64encode(data).decode(),
        "attributes": {"workspace_id": "w", "source_id": "s"},
        "messageId": "pubsub-bad",
    }
    response = function_client("process").post(
        "/", json={"subscription": "projects/p/subscriptions/s", "message": message}
    )
    assert response.status_code == 200
    assert stored_ids(services) == []


def test_a_transient_failure_answers_500_so_pubsub_redelivers(services: Services) -> None:
    from shared.domain.errors import Unavailable

    _, message = source_message(services)
    services.event_store.fail = Unavailable("BigQuery down")  # type: ignore[attr-defined]
    response = function_client("process").post(
        "/", json={"subscription": "projects/p/subscriptions/s", "message": message}
    )
    assert response.status_code == 500
    services.event_store.fail = None  # type: ignore[attr-defined]
    assert (
        function_client("process")
        .post("/", json={"subscription": "projects/p/subscriptions/s", "message": message})
        .status_code
        == 200
    )
    assert len(stored_ids(services)) == 1
