"""Regulations over the fakes: suppression in process (never stored, routed or forwarded; shown in
the trace), unsuppression, deletion from every store with a report, destination deletion
requests, and the API."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from shared.domain.errors import Unavailable
from shared.domain.pipeline import dead_letter_path, event_key, quarantine_collection
from shared.domain.sources import ApiToken
from shared.ports import Write
from shared.services.live import live_events_collection
from shared.services.privacy import PrivacyFilter
from shared.services.process import Processor
from shared.services.regulations import RegulationQuery, Regulations
from shared.services.workspace_config import WorkspaceConfig
from tests.fakes import FakeEventStore, FakeServices
from tests.functions import function_client
from tests.unit.pipeline_fixtures import (
    WORKSPACE_ID,
    FakeSender,
    Pipeline,
    add_destination,
    add_rule,
    http_error,
    make_events,
    make_pipeline,
    ok,
    one_topic,
    source_message,
    track,
)

TOKEN = ApiToken(id="tok-1", workspace_id=WORKSPACE_ID, name="admin", created_at="x")
AMPLITUDE = {
    "api_key": "amp-key",
    "secret_key": "amp-secret",
    "endpoint": "https://amp.example.com/2/httpapi",
}
MIXPANEL_NO_GDPR = {"project_token": "mp-token"}
MIXPANEL = {"project_token": "mp-token", "gdpr_token": "mp-gdpr", "region": "eu"}


@dataclass
class Setup:
    pipeline: Pipeline
    regulations: Regulations
    sender: FakeSender

    def suppress(self, **subject: str) -> Any:
        return self.regulations.create(WORKSPACE_ID, "suppress", TOKEN, **subject)


@pytest.fixture
def setup() -> Setup:
    pipeline = make_pipeline()
    pipeline.processor = Processor(
        pipeline.store,
        pipeline.events,
        pipeline.publisher,
        WorkspaceConfig(pipeline.store, ttl_seconds=0),
        one_topic,
        clock=pipeline.clock,
        privacy=PrivacyFilter(pipeline.store, ttl_seconds=0),
    )
    add_destination(pipeline.store, "dest-1")
    add_rule(pipeline.store, "rule-1", "dest-1")
    sender = FakeSender()
    regulations = Regulations(
        pipeline.store,
        lambda: pipeline.events,
        lambda: sender,
        clock=pipeline.clock,
    )
    return Setup(pipeline, regulations, sender)


# --- suppression -----------------------------------------------------------------------------


def test_a_suppressed_user_is_never_stored_routed_or_delivered(setup: Setup) -> None:
    regulation = setup.suppress(user_id="u-1")
    assert regulation.status == "completed" and regulation.report == {"suppression": "added"}

    outcome = setup.pipeline.process(
        source_message(make_events(track(userId="u-1"), track(userId="u-2")))
    )
    assert (outcome.suppressed, outcome.stored, outcome.deliveries) == (1, 1, 1)
    assert [r["user_id"] for r in setup.pipeline.events.rows] == ["u-2"]
    assert [m.message_id for m in setup.pipeline.delivery_messages()] == ["msg-2"]

    trace = setup.pipeline.traces.trace(WORKSPACE_ID, "msg-1")
    assert [s["stage"] for s in trace["stages"]] == ["received", "suppressed"]
    assert trace["stages"][-1]["regulation_id"] == regulation.id
    assert trace["stages"][-1]["status"] == "dropped"
    # A redelivery of the same message does not bring it back.
    again = setup.pipeline.process(source_message(make_events(track(userId="u-1")), "ps-2"))
    assert again.duplicates == 1 and len(setup.pipeline.events.rows) == 1


def test_suppression_by_anonymous_id_and_unsuppression(setup: Setup) -> None:
    setup.suppress(anonymous_id="anon-1")
    first = setup.pipeline.process(
        source_message(make_events(track(userId=None, anonymousId="anon-1", messageId="a")))
    )
    assert first.suppressed == 1

    undo = setup.regulations.create(WORKSPACE_ID, "unsuppress", TOKEN, anonymous_id="anon-1")
    assert undo.report == {"suppression": "removed"}
    later = setup.pipeline.process(
        source_message(make_events(track(userId=None, anonymousId="anon-1", messageId="b")), "p2")
    )
    assert (later.suppressed, later.stored) == (0, 1)
    noop = setup.regulations.create(WORKSPACE_ID, "unsuppress", TOKEN, anonymous_id="anon-1")
    assert noop.report == {"suppression": "not_active"}
    assert setup.suppress(user_id="u-9").report == {"suppression": "added"}
    assert setup.suppress(user_id="u-9").report == {"suppression": "already_active"}


# --- deletion --------------------------------------------------------------------------------


def seed_stores(setup: Setup) -> None:
    """Events of u-1 and u-2 in BigQuery, the quarantine, the dead letters and the live buffer."""
    store = setup.pipeline.store
    setup.pipeline.process(
        source_message(make_events(track(userId="u-1"), track(userId="u-2"), track(userId="u-1")))
    )
    for user, message_id in (("u-1", "q-1"), ("u-2", "q-2")):
        [event] = make_events(track(userId=user, messageId=message_id))
        key = event_key(message_id)
        store.commit(
            [
                Write(
                    "set",
                    f"{quarantine_collection(WORKSPACE_ID)}/{key}",
                    {"id": key, "event_json": json.dumps(event)},
                ),
                Write(
                    "set",
                    dead_letter_path(WORKSPACE_ID, f"{key}-rule-1"),
                    {"id": f"{key}-rule-1", "delivery": {"event": event}},
                ),
                Write(
                    "set",
                    f"{live_events_collection(WORKSPACE_ID)}/0000-{key}",
                    {"key": f"0000-{key}", "event": json.dumps(event)},
                ),
            ]
        )


def remaining(setup: Setup, collection: str) -> int:
    return len(setup.pipeline.store.list_documents(collection))


def test_delete_removes_the_user_from_every_store_and_reports_counts(setup: Setup) -> None:
    seed_stores(setup)
    add_destination(setup.pipeline.store, "amp", "amplitude", AMPLITUDE)
    add_destination(setup.pipeline.store, "mp", "mixpanel", MIXPANEL_NO_GDPR)

    regulation = setup.regulations.create(WORKSPACE_ID, "delete", TOKEN, user_id="u-1")

    assert regulation.status == "completed" and regulation.error is None
    assert regulation.completed_at is not None and regulation.created_by == "tok-1"
    report = regulation.report
    assert report is not None
    assert report["stores"] == {
        "bigquery": {"status": "completed", "deleted": 2},
        "quarantine": {"status": "completed", "deleted": 1},
        "dead_letters": {"status": "completed", "deleted": 1},
        "live_buffer": {"status": "completed", "deleted": 1},
    }
    assert [r["user_id"] for r in setup.pipeline.events.rows] == ["u-2"]
    for collection in (
        quarantine_collection(WORKSPACE_ID),
        f"workspaces/{WORKSPACE_ID}/dead_letters",
        live_events_collection(WORKSPACE_ID),
    ):
        assert remaining(setup, collection) == 1  # u-2's record stays

    [requested] = report["destinations"]["requested"]
    assert (requested["destination_id"], requested["type"], requested["status"]) == (
        "amp",
        "amplitude",
        "requested",
    )
    [sent] = setup.sender.sent
    assert sent.url == "https://amp.example.com/api/2/deletions/users"
    assert json.loads(sent.body) == {
        "user_ids": ["u-1"],
        "requester": f"Streams regulation {regulation.id}",
    }
    manual = {m["destination_id"]: m["reason"] for m in report["destinations"]["manual"]}
    assert set(manual) == {"dest-1", "mp"}
    assert "no deletion API" in manual["dest-1"] and "gdpr_token" in manual["mp"]


def test_mixpanel_gets_a_gdpr_deletion_by_distinct_id(setup: Setup) -> None:
    add_destination(setup.pipeline.store, "mp", "mixpanel", MIXPANEL)
    regulation = setup.regulations.create(WORKSPACE_ID, "delete", TOKEN, anonymous_id="anon-1")
    [sent] = setup.sender.sent
    assert sent.url == "https://eu.mixpanel.com/api/app/data-deletions/v3.0/?token=mp-token"
    assert sent.headers["Authorization"] == "Bearer mp-gdpr"
    assert json.loads(sent.body) == {"distinct_ids": ["anon-1"], "compliance_type": "GDPR"}
    assert "mp-gdpr" not in repr(sent)
    assert regulation.report is not None
    assert regulation.report["destinations"]["requested"][0]["status"] == "requested"


def test_amplitude_cannot_delete_an_anonymous_id(setup: Setup) -> None:
    add_destination(setup.pipeline.store, "amp", "amplitude", AMPLITUDE)
    regulation = setup.regulations.create(WORKSPACE_ID, "delete", TOKEN, anonymous_id="anon-1")
    assert setup.sender.sent == []
    assert regulation.report is not None
    manual = [
        m for m in regulation.report["destinations"]["manual"] if m["destination_id"] == "amp"
    ]
    assert "user_id" in manual[0]["reason"]


def test_a_refused_destination_request_fails_the_regulation_with_its_report(setup: Setup) -> None:
    add_destination(setup.pipeline.store, "amp", "amplitude", AMPLITUDE)
    setup.sender.results = [http_error(401)]
    regulation = setup.regulations.create(WORKSPACE_ID, "delete", TOKEN, user_id="u-1")
    assert regulation.status == "failed" and "report" in (regulation.error or "")
    assert regulation.report is not None
    [failed] = regulation.report["destinations"]["requested"]
    assert failed["status"] == "failed" and failed["http_status"] == 401
    assert "amp-secret" not in json.dumps(regulation.report)
    # The stores were still cleaned.
    assert regulation.report["stores"]["bigquery"]["status"] == "completed"


class BufferedEventStore(FakeEventStore):
    def delete_user(self, workspace_id: str, column: str, value: str) -> int:
        raise Unavailable("BigQuery refused the deletion: rows are in the streaming buffer")


def test_a_store_that_cannot_delete_now_fails_the_regulation(setup: Setup) -> None:
    seed_stores(setup)
    buffered = BufferedEventStore()
    setup.regulations = Regulations(setup.pipeline.store, lambda: buffered, lambda: setup.sender)
    regulation = setup.regulations.create(WORKSPACE_ID, "delete", TOKEN, user_id="u-1")
    assert regulation.status == "failed"
    assert regulation.report is not None
    assert regulation.report["stores"]["bigquery"]["status"] == "failed"
    assert "streaming buffer" in regulation.report["stores"]["bigquery"]["error"]
    assert regulation.report["stores"]["quarantine"] == {"status": "completed", "deleted": 1}


def test_every_step_is_recorded_pending_running_then_final(setup: Setup) -> None:
    statuses: list[str] = []
    store = setup.pipeline.store
    original = store.commit

    def spy(writes: Any) -> None:
        batch = list(writes)
        statuses.extend(w.data["status"] for w in batch if "/regulations/" in w.path)
        original(batch)

    store.commit = spy  # type: ignore[method-assign]
    setup.suppress(user_id="u-1")
    assert statuses == ["pending", "running", "completed"]


def test_list_filters_and_get(setup: Setup) -> None:
    first = setup.suppress(user_id="u-1")
    second = setup.regulations.create(WORKSPACE_ID, "delete", TOKEN, user_id="u-1")
    listed = setup.regulations.list(WORKSPACE_ID, RegulationQuery())
    assert [r.id for r in listed] == [second.id, first.id]
    only = setup.regulations.list(WORKSPACE_ID, RegulationQuery(type="suppress"))
    assert [r.id for r in only] == [first.id]
    assert setup.regulations.get(WORKSPACE_ID, first.id) == first


# --- API -------------------------------------------------------------------------------------


@pytest.fixture
def api(services: FakeServices) -> tuple[str, dict[str, str], Any]:
    workspace = services.workspaces.create("Acme")
    token, _ = services.workspaces.create_token(workspace.id, "admin")
    services.__dict__["http_sender"] = FakeSender()
    return workspace.id, {"Authorization": f"Bearer {token}"}, function_client("governance")


def test_create_list_get_through_the_api(
    services: FakeServices, api: tuple[str, dict[str, str], Any]
) -> None:
    workspace_id, auth, client = api
    base = f"/api/v1/workspaces/{workspace_id}/regulations"
    created = client.post(base, json={"type": "delete", "user_id": "u-1"}, headers=auth)
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["status"] == "completed" and body["created_by_name"] == "admin"
    assert body["report"]["stores"]["bigquery"] == {"status": "completed", "deleted": 0}
    assert client.get(f"{base}/{body['id']}", headers=auth).get_json() == body
    assert client.get(base, headers=auth).get_json() == {"data": [body]}
    assert client.get(f"{base}?status=failed", headers=auth).get_json() == {"data": []}
    assert client.get(f"{base}/nope", headers=auth).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "suppress"}, "user_id"),
        ({"type": "suppress", "user_id": "a", "anonymous_id": "b"}, "user_id"),
        ({"type": "forget", "user_id": "a"}, "type"),
        ({"type": "suppress", "user_id": ""}, "user_id"),
        ({"type": "suppress", "user_id": "x" * 257}, "user_id"),
    ],
)
def test_bad_regulations_are_400(
    api: tuple[str, dict[str, str], Any], body: dict[str, Any], field: str
) -> None:
    workspace_id, auth, client = api
    response = client.post(
        f"/api/v1/workspaces/{workspace_id}/regulations", json=body, headers=auth
    )
    assert response.status_code == 400
    assert response.get_json()["field"] == field


def test_another_workspace_regulation_is_404(
    services: FakeServices, api: tuple[str, dict[str, str], Any]
) -> None:
    workspace_id, auth, client = api
    created = client.post(
        f"/api/v1/workspaces/{workspace_id}/regulations",
        json={"type": "suppress", "user_id": "u-1"},
        headers=auth,
    ).get_json()
    other = services.workspaces.create("Other")
    other_token, _ = services.workspaces.create_token(other.id, "x")
    response = client.get(
        f"/api/v1/workspaces/{other.id}/regulations/{created['id']}",
        headers={"Authorization": f"Bearer {other_token}"},
    )
    assert response.status_code == 404


def test_sent_deletions_keep_secrets_out_of_the_answer(
    services: FakeServices, api: tuple[str, dict[str, str], Any]
) -> None:
    workspace_id, auth, client = api
    add_destination(services.store, "amp", "amplitude", AMPLITUDE, workspace_id=workspace_id)
    services.http_sender.results = [ok()]  # type: ignore[attr-defined]
    response = client.post(
        f"/api/v1/workspaces/{workspace_id}/regulations",
        json={"type": "delete", "user_id": "u-1"},
        headers=auth,
    )
    text = response.get_data(as_text=True)
    assert response.status_code == 201 and '"requested"' in text
    assert "amp-key" not in text and "amp-secret" not in text
