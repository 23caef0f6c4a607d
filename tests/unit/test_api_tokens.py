"""API tokens: created with an optional expiry, listed by id and name (never the secret or its
hash), revoked by id (the calling token included), invisible to other workspaces; through the
API and the `streams token` CLI."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared import cli
from shared.api.audit import FUNCTION as AUDIT_FUNCTION
from shared.domain.sources import token_path
from shared.services.workspaces import TOKEN_USE_WRITE_SECONDS, Workspaces
from tests.fakes import FakeServices, recording
from tests.functions import function_client

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Clocks:
    """The wall clock and the monotonic clock a `Workspaces` reads, moved by the test."""

    def __init__(self) -> None:
        self.now = NOW
        self.monotonic = 1000.0

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.monotonic += seconds


@pytest.fixture
def clocks(services: FakeServices) -> Clocks:
    clocks = Clocks()
    # The services' own instance, with clocks the test moves (cached_property keeps it).
    services.__dict__["workspaces"] = Workspaces(
        services.store, clock=lambda: clocks.now, monotonic=lambda: clocks.monotonic
    )
    return clocks


@pytest.fixture
def client() -> Any:
    return function_client("event_keys")


class Workspace:
    def __init__(self, services: FakeServices, name: str) -> None:
        self.id = services.workspaces.create(name).id
        self.token, self.record = services.workspaces.create_token(self.id, "admin")
        self.auth = {"Authorization": f"Bearer {self.token}"}
        self.base = f"/api/v1/workspaces/{self.id}/tokens"


@pytest.fixture
def acme(services: FakeServices, clocks: Clocks) -> Workspace:
    return Workspace(services, "Acme")


@pytest.fixture
def globex(services: FakeServices, clocks: Clocks) -> Workspace:
    return Workspace(services, "Globex")


def every_document(services: FakeServices) -> str:
    return json.dumps(services.store.documents, default=str)


# --- create, list, get ------------------------------------------------------------------------


def test_a_created_token_works_and_its_secret_is_shown_only_once(
    services: FakeServices, client: Any, acme: Workspace
) -> None:
    response = client.post(
        acme.base, json={"name": "ci", "expires_at": "2026-04-01T00:00:00Z"}, headers=acme.auth
    )
    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    assert created["token"].startswith("stk_")
    assert created["name"] == "ci" and created["workspace_id"] == acme.id
    assert created["expires_at"] == "2026-04-01T00:00:00.000Z"
    assert created["created_at"] == "2026-03-01T12:00:00.000Z"
    assert client.get("/api/v1/me", headers=bearer(created["token"])).status_code == 200

    listed = client.get(acme.base, headers=acme.auth)
    assert listed.status_code == 200
    assert {(t["id"], t["name"]) for t in listed.get_json()} == {
        (acme.record.id, "admin"),
        (created["id"], "ci"),
    }
    one = client.get(f"{acme.base}/{created['id']}", headers=acme.auth).get_json()
    assert set(one) == {"id", "workspace_id", "name", "created_at", "expires_at", "last_used_at"}
    # Neither the secret nor its hash is ever answered again, or stored anywhere (audit included).
    hashed = hashlib.sha256(created["token"].encode()).hexdigest()
    for text in (listed.get_data(as_text=True), json.dumps(one)):
        assert created["token"] not in text and hashed not in text
    assert created["token"] not in every_document(services)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "ci", "expires_at": "2026-02-01T00:00:00Z"}, "expires_at"),  # past
        ({"name": "ci", "expires_at": "2026-06-01T00:00:00"}, "expires_at"),  # no time zone
        ({"name": "ci", "expires_at": "soon"}, "expires_at"),
        ({"name": "  "}, "name"),
        ({"name": "ci", "secret": "x"}, "secret"),
    ],
)
def test_a_bad_creation_is_400_naming_the_field(
    client: Any, acme: Workspace, body: dict[str, Any], field: str
) -> None:
    response = client.post(acme.base, json=body, headers=acme.auth)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["field"] == field


# --- expiry -----------------------------------------------------------------------------------


def test_an_expired_token_is_refused_with_a_plain_error(
    client: Any, acme: Workspace, clocks: Clocks
) -> None:
    expiring = client.post(
        acme.base, json={"name": "temp", "expires_at": "2026-03-01T13:00:00Z"}, headers=acme.auth
    ).get_json()
    headers = bearer(expiring["token"])
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    clocks.advance(3600)  # exactly the expiry
    response = client.get("/api/v1/me", headers=headers)
    assert response.status_code == 401
    assert response.get_json()["message"] == "API token expired"
    assert client.get("/api/v1/me", headers=acme.auth).status_code == 200  # others unaffected


# --- revoke -----------------------------------------------------------------------------------


def test_a_revoked_token_is_refused_at_once(client: Any, acme: Workspace) -> None:
    other = client.post(acme.base, json={"name": "laptop"}, headers=acme.auth).get_json()
    response = client.delete(f"{acme.base}/{other['id']}", headers=acme.auth)
    assert response.status_code == 204
    assert client.get("/api/v1/me", headers=bearer(other["token"])).status_code == 401
    assert [t["name"] for t in client.get(acme.base, headers=acme.auth).get_json()] == ["admin"]
    again = client.delete(f"{acme.base}/{other['id']}", headers=acme.auth)
    assert again.status_code == 404 and again.get_json()["field"] == "token_id"


def test_a_token_can_list_its_workspace_and_revoke_itself(client: Any, acme: Workspace) -> None:
    mine = client.get("/api/v1/me", headers=acme.auth).get_json()["token_id"]
    assert mine in [t["id"] for t in client.get(acme.base, headers=acme.auth).get_json()]
    assert client.delete(f"{acme.base}/{mine}", headers=acme.auth).status_code == 204
    assert client.get(acme.base, headers=acme.auth).status_code == 401


def test_the_revocation_is_audited_without_the_secret(
    services: FakeServices, client: Any, acme: Workspace
) -> None:
    other = client.post(acme.base, json={"name": "laptop"}, headers=acme.auth).get_json()
    client.delete(f"{acme.base}/{other['id']}", headers=acme.auth)
    audit = function_client(AUDIT_FUNCTION)
    answer = audit.get(f"/api/v1/workspaces/{acme.id}/audit-log", headers=acme.auth)
    assert answer.status_code == 200, answer.get_json()
    records = answer.get_json()["data"]
    actions = [(r["action"], r["resource_type"], r["resource_id"]) for r in records]
    assert ("revoke", "api_token", other["id"]) in actions
    assert ("create", "api_token", other["id"]) in actions
    assert other["token"] not in json.dumps(records)


# --- other workspaces' tokens are invisible ---------------------------------------------------


def test_another_workspaces_tokens_are_not_found(
    services: FakeServices, client: Any, acme: Workspace, globex: Workspace
) -> None:
    theirs = f"{acme.base}/{globex.record.id}"  # Acme's path, Globex's token id
    assert client.get(theirs, headers=acme.auth).status_code == 404
    assert client.delete(theirs, headers=acme.auth).status_code == 404
    # Globex's own paths with Acme's token: the workspace itself is not found.
    assert client.get(globex.base, headers=acme.auth).status_code == 404
    assert client.delete(f"{globex.base}/{globex.record.id}", headers=acme.auth).status_code == 404
    assert [t["id"] for t in client.get(acme.base, headers=acme.auth).get_json()] == [
        acme.record.id
    ]
    assert client.get("/api/v1/me", headers=globex.auth).status_code == 200


# --- authentication -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    ["stk_a/b", "stk_" + "A" * 42, "stk_" + "A" * 44, "stk_" + "A" * 4096, "wk_" + "A" * 43],
)
def test_a_malformed_token_is_401_without_a_lookup(
    services: FakeServices,
    client: Any,
    acme: Workspace,
    monkeypatch: pytest.MonkeyPatch,
    token: str,
) -> None:
    read: list[str] = []
    get = services.store.get
    monkeypatch.setattr(services.store, "get", recording(read, get))
    response = client.get("/api/v1/me", headers=bearer(token))
    assert response.status_code == 401
    assert response.get_json()["message"] == "invalid API token"
    assert read == []


def test_last_use_is_recorded_at_most_once_a_minute(
    services: FakeServices, client: Any, acme: Workspace, clocks: Clocks
) -> None:
    def last_used() -> str | None:
        [token] = [t for t in client.get(acme.base, headers=acme.auth).get_json()]
        return token["last_used_at"]

    assert last_used() == "2026-03-01T12:00:00.000Z"
    clocks.advance(TOKEN_USE_WRITE_SECONDS - 1)
    assert last_used() == "2026-03-01T12:00:00.000Z"
    clocks.advance(1)
    assert last_used() == "2026-03-01T12:01:00.000Z"


def test_a_token_made_before_hashes_were_kept_is_revocable_after_its_next_use(
    services: FakeServices, client: Any, acme: Workspace, clocks: Clocks
) -> None:
    old, record = services.workspaces.create_token(acme.id, "old")
    path = token_path(hashlib.sha256(old.encode()).hexdigest())
    services.store.documents[path].pop("token_hash")
    refused = client.delete(f"{acme.base}/{record.id}", headers=acme.auth)
    assert refused.status_code == 409 and refused.get_json()["field"] == "token_id"
    assert client.get("/api/v1/me", headers=bearer(old)).status_code == 200
    assert client.delete(f"{acme.base}/{record.id}", headers=acme.auth).status_code == 204
    assert client.get("/api/v1/me", headers=bearer(old)).status_code == 401


# --- the CLI ----------------------------------------------------------------------------------


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    assert cli.main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_the_cli_creates_lists_and_revokes_tokens(
    services: FakeServices, client: Any, acme: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    created = run_cli(
        capsys, "token", "create", "--workspace", acme.id, "--name", "ci", "--expires-in-days", "30"
    )
    # Thirty days from the wall clock the CLI runs on.
    in_thirty_days = datetime.now(UTC) + timedelta(days=30)
    expires_at = datetime.fromisoformat(created["expires_at"])
    assert abs(expires_at - in_thirty_days) < timedelta(minutes=1)
    assert client.get("/api/v1/me", headers=bearer(created["token"])).status_code == 200
    at = run_cli(
        capsys, "token", "create", "--workspace", acme.id, "--expires-at", "2027-01-01T00:00:00Z"
    )
    assert at["expires_at"] == "2027-01-01T00:00:00.000Z"

    listed = run_cli(capsys, "token", "list", "--workspace", acme.id)
    assert sorted(t["name"] for t in listed) == ["admin", "ci", "cli"]
    assert created["token"] not in json.dumps(listed)

    run_cli(capsys, "token", "revoke", "--workspace", acme.id, "--id", created["id"])
    assert client.get("/api/v1/me", headers=bearer(created["token"])).status_code == 401


def test_the_cli_refuses_a_bad_expiry_and_an_unknown_token(
    acme: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        cli.main(["token", "create", "--workspace", acme.id, "--expires-at", "2027-01-01"])
    with pytest.raises(SystemExit):
        cli.main(["token", "create", "--workspace", acme.id, "--expires-in-days", "-1"])
    assert cli.main(["token", "revoke", "--workspace", acme.id, "--id", "nope"]) == 1
    assert "API token nope not found" in capsys.readouterr().err


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
