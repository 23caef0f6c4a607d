"""The console function (files of console/dist with their headers) and GET /api/v1/me."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared.api import console
from tests.fakes import FakeServices
from tests.functions import function_client

INDEX = b'<!doctype html><script type="module" src="/console/assets/index-AbCd1234.js"></script>'


@pytest.fixture
def dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_bytes(INDEX)
    (tmp_path / "assets" / "index-AbCd1234.js").write_text("console.log(1)")
    (tmp_path / "assets" / "index-Zz_y-987.css").write_text("body{}")
    (tmp_path / "assets" / "notes.txt").write_text("not served")
    (tmp_path / "secret.js").write_text("outside assets/")
    monkeypatch.setattr(console, "DIST", tmp_path)
    return tmp_path


@pytest.fixture
def client() -> Any:
    return function_client("console")


def test_index_is_html_revalidated_with_a_strict_policy(client: Any, dist: Path) -> None:
    response = client.get("/console/")
    assert response.status_code == 200
    assert response.data == INDEX
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-cache"
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "connect-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_index_revalidation_answers_304(client: Any, dist: Path) -> None:
    etag = client.get("/console/").headers["ETag"]
    again = client.get("/console/", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert client.head("/console/").status_code == 200


@pytest.mark.parametrize(
    ("if_none_match", "status"),
    [
        ('"", W/"x"', 200),  # an empty tag (B15: it was a 500) matches nothing
        ('""', 200),
        ("*", 304),
        ("W/{etag}", 304),  # If-None-Match compares weakly
        ('"other", {etag}', 304),
    ],
)
def test_if_none_match_in_any_form(
    client: Any, dist: Path, if_none_match: str, status: int
) -> None:
    etag = client.get("/console/").headers["ETag"]
    answer = client.get("/console/", headers={"If-None-Match": if_none_match.format(etag=etag)})
    assert answer.status_code == status
    assert answer.headers["ETag"] == etag


def test_console_without_slash_redirects(client: Any, dist: Path) -> None:
    response = client.get("/console")
    assert response.status_code == 308
    assert response.headers["Location"] == "/console/"


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("index-AbCd1234.js", "text/javascript; charset=utf-8"),
        ("index-Zz_y-987.css", "text/css; charset=utf-8"),
    ],
)
def test_hashed_assets_are_immutable(client: Any, dist: Path, name: str, content_type: str) -> None:
    response = client.get(f"/console/assets/{name}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == content_type
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert "Content-Security-Policy" in response.headers


@pytest.mark.parametrize(
    "path",
    [
        "/console/assets/missing-AbCd1234.js",
        "/console/assets/notes.txt",
        "/console/assets/..%2Fsecret.js",
        "/console/assets/.hidden.js",
        "/console/secret.js",
    ],
)
def test_only_known_assets_are_served(client: Any, dist: Path, path: str) -> None:
    assert client.get(path).status_code == 404


def test_an_unbuilt_console_is_a_503_that_says_how_to_build_it(
    client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(console, "DIST", tmp_path / "nothing")
    response = client.get("/console/")
    assert response.status_code == 503
    assert "make console" in response.json["message"]


def test_me_names_the_tokens_workspace(services: FakeServices) -> None:
    workspace = services.workspaces.create("Acme")
    token, record = services.workspaces.create_token(workspace.id, "admin")
    client = function_client("event_keys")
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json == {
        "workspace_id": workspace.id,
        "workspace_name": "Acme",
        "token_id": record.id,
        "token_name": "admin",
    }
    assert client.get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me", headers={"Authorization": "Bearer stk_nope"}).status_code == 401
