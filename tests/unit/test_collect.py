"""SDK settings, RudderStack's source configuration and the browser SDK files, through the ingest
function's entry point: the documents SDKs read, the host they name, caching and refusals."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from shared.api import collect
from shared.config import Settings
from shared.domain.sources import EventSource
from tests.fakes import FakeServices, recording
from tests.functions import function_client

SHOP = "https://shop.example.com"
ELSEWHERE = "https://copycat.example.net"
PURCHASE = {"type": "object", "properties": {"order_id": {"type": "string"}}}
LOADER = b'/*! analytics-next */try{window.analyticsWriteKey="__WRITE_KEY__"}catch(t){};var x=1;'
CHUNK = "ajs-destination.bundle.40628baed746e9904edc.js"


@pytest.fixture
def client() -> Any:
    return function_client("ingest")


@pytest.fixture
def source(services: FakeServices) -> EventSource:
    workspace = services.workspaces.create("Acme")
    return services.sources.create(workspace.id, "Web shop", "t")


@pytest.fixture
def dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "analytics-next" / "bundles").mkdir(parents=True)
    (tmp_path / "rudderstack").mkdir()
    (tmp_path / "analytics-next" / "standalone.js").write_bytes(LOADER)
    (tmp_path / "analytics-next" / "bundles" / CHUNK).write_text("chunk()")
    (tmp_path / "analytics-next" / "notes.txt").write_text("not served")
    (tmp_path / "rudderstack" / "analytics.min.js").write_text("rudderanalytics()")
    monkeypatch.setattr(collect, "DIST", tmp_path)
    return tmp_path


def trusting(services: FakeServices, hops: int) -> None:
    object.__setattr__(
        services, "settings", Settings(project_id="test-project", trusted_proxy_hops=hops)
    )


def settings_of(client: Any, key: str, **kwargs: Any) -> Any:
    return client.get(f"/v1/projects/{key}/settings", **kwargs)


# --- Segment's settings ------------------------------------------------------------------------


def test_settings_send_to_the_host_the_client_used(client: Any, source: EventSource) -> None:
    response = settings_of(client, source.key, base_url="http://collect.example.com:8080")

    assert response.status_code == 200
    document = response.get_json()
    assert document["integrations"] == {
        "Segment.io": {
            "apiKey": source.key,
            "apiHost": "collect.example.com:8080/v1",
            "protocol": "http",
        }
    }
    # Nothing that would make an SDK load code or send metrics elsewhere.
    assert document["remotePlugins"] == [] and document["enabledMiddleware"] == {}
    assert document["metrics"] == {"sampleRate": 0, "host": "collect.example.com:8080/v1"}
    # The mobile SDKs decode these as objects: never null.
    for key in ("plan", "edgeFunction", "middlewareSettings"):
        assert document[key] == {}
    assert document["streams"] == {"sourceId": source.id, "blockingContracts": []}


def test_settings_are_cacheable_for_minutes_per_forwarded_host(
    client: Any, source: EventSource
) -> None:
    response = settings_of(client, source.key, headers={"Origin": SHOP})

    assert response.headers["Cache-Control"] == "public, max-age=120"
    vary = {v.strip() for v in response.headers["Vary"].split(",")}
    assert {"X-Forwarded-Host", "X-Forwarded-Proto", "Origin"} <= vary
    assert response.headers["Access-Control-Allow-Origin"] == SHOP


def test_without_trusted_proxies_forwarded_hosts_are_ignored(
    client: Any, source: EventSource
) -> None:
    response = settings_of(
        client,
        source.key,
        base_url="http://collect.example.com",
        headers={"X-Forwarded-Host": "evil.example.net", "X-Forwarded-Proto": "http"},
    )
    assert response.get_json()["integrations"]["Segment.io"]["apiHost"] == (
        "collect.example.com/v1"
    )


def test_a_forwarded_https_upgrades_the_protocol_but_http_never_downgrades(
    client: Any, source: EventSource
) -> None:
    upgraded = settings_of(client, source.key, headers={"X-Forwarded-Proto": "https"})
    kept = settings_of(
        client,
        source.key,
        base_url="https://collect.example.com",
        headers={"X-Forwarded-Proto": "http"},
    )
    assert upgraded.get_json()["integrations"]["Segment.io"]["protocol"] == "https"
    assert kept.get_json()["integrations"]["Segment.io"]["protocol"] == "https"


def test_behind_trusted_proxies_the_nearest_forwarded_host_and_scheme_win(
    client: Any, services: FakeServices, source: EventSource
) -> None:
    trusting(services, 2)
    response = settings_of(
        client,
        source.key,
        base_url="http://streams-ingest-abc.a.run.app",
        headers={
            "X-Forwarded-Host": "forged.example.net, collect.shop.example.com",
            "X-Forwarded-Proto": "https",
        },
    )
    assert response.get_json()["integrations"]["Segment.io"] == {
        "apiKey": source.key,
        "apiHost": "collect.shop.example.com/v1",
        "protocol": "https",
    }


def test_a_forwarded_host_that_is_no_host_is_refused(
    client: Any, services: FakeServices, source: EventSource
) -> None:
    trusting(services, 1)
    response = settings_of(
        client, source.key, headers={"X-Forwarded-Host": "evil.example.net/path?x="}
    )
    assert response.status_code == 400
    assert response.get_json()["field"] == "Host"


@pytest.mark.parametrize("key", ["wk_unknownUnknownUnknownUnknown123", "not-a-key", "wk_a.b"])
def test_an_unknown_key_has_no_settings(client: Any, key: str) -> None:
    response = settings_of(client, key)
    assert response.status_code == 404
    body = response.get_json()
    assert body["error"] == "not_found" and body["field"] == "writeKey"


def test_a_revoked_key_has_no_settings(
    client: Any, services: FakeServices, source: EventSource
) -> None:
    services.sources.revoke(source.workspace_id, source.id)
    response = settings_of(client, source.key)
    assert response.status_code == 404
    assert response.get_json()["message"] == "write key revoked"


def test_a_refused_origin_gets_a_403_it_can_read(client: Any, services: FakeServices) -> None:
    workspace = services.workspaces.create("Shop")
    shop = services.sources.create(workspace.id, "Shop", "t", allowed_origins=[SHOP])

    assert settings_of(client, shop.key, headers={"Origin": SHOP}).status_code == 200
    refused = settings_of(client, shop.key, headers={"Origin": ELSEWHERE})
    assert refused.status_code == 403
    assert refused.headers["Access-Control-Allow-Origin"] == ELSEWHERE


def test_blocking_contracts_are_listed_and_others_are_not(
    client: Any, services: FakeServices, source: EventSource
) -> None:
    contract = dict(event_type="track", schema_definition=PURCHASE)
    services.contracts.create(
        source.workspace_id,
        name="Orders",
        event_name="Order Completed",
        enforcement_mode="block",
        **contract,
    )
    services.contracts.create(
        source.workspace_id,
        name="Signups",
        event_name="Signed Up",
        enforcement_mode="warn",
        undeclared_fields="block",
        **contract,
    )
    services.contracts.create(
        source.workspace_id,
        name="Loose",
        event_name="Viewed",
        enforcement_mode="warn",
        **contract,
    )
    services.contracts.create(
        source.workspace_id,
        name="Retired",
        event_name="Old",
        enforcement_mode="block",
        status="archived",
        **contract,
    )
    services.contracts.create(
        "ws-other", name="Elsewhere", event_name="Theirs", enforcement_mode="block", **contract
    )

    listed = settings_of(client, source.key).get_json()["streams"]["blockingContracts"]

    assert listed == [
        {
            "eventType": "track",
            "eventName": "Order Completed",
            "enforcementMode": "block",
            "undeclaredFields": "allow",
        },
        {
            "eventType": "track",
            "eventName": "Signed Up",
            "enforcementMode": "warn",
            "undeclaredFields": "block",
        },
    ]


def test_settings_read_nothing_per_request_beyond_the_caches(
    client: Any, services: FakeServices, source: EventSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[str] = []
    get, listing = services.store.get, services.store.list_documents
    monkeypatch.setattr(services.store, "get", recording(reads, get))
    monkeypatch.setattr(services.store, "list_documents", recording(reads, listing))

    statuses = [settings_of(client, source.key).status_code for _ in range(5)]

    assert statuses == [200] * 5
    # The key record, the source (its name) and the workspace's contracts: once each.
    assert len(reads) == 3


# --- RudderStack's source configuration --------------------------------------------------------


def test_rudderstack_gets_its_source_without_device_mode_destinations(
    client: Any, source: EventSource
) -> None:
    # As the SDK asks: configUrl + /sourceConfig/ with its own parameters and Basic auth.
    basic = base64.b64encode(f"{source.key}:".encode()).decode()
    response = client.get(
        f"/sourceConfig/?p=npm&v=3.34.1&build=modern&writeKey={source.key}"
        "&lockIntegrationsVersion=false&lockPluginsVersion=false",
        headers={"Authorization": f"Basic {basic}", "Origin": SHOP},
    )

    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == SHOP
    assert response.get_json() == {
        "source": {
            "id": source.id,
            "name": "Web shop",
            "writeKey": source.key,
            "workspaceId": source.workspace_id,
            "enabled": True,
            "config": {
                "statsCollection": {"errors": {"enabled": False}, "metrics": {"enabled": False}}
            },
            "destinations": [],
        }
    }


def test_rudderstack_may_name_the_key_by_basic_auth_alone(client: Any, source: EventSource) -> None:
    basic = base64.b64encode(f"{source.key}:".encode()).decode()
    response = client.get("/sourceConfig", headers={"Authorization": f"Basic {basic}"})
    assert response.get_json()["source"]["id"] == source.id


def test_rudderstack_without_a_key_is_a_401_and_an_unknown_key_a_404(
    client: Any, services: FakeServices, source: EventSource
) -> None:
    missing = client.get("/sourceConfig/?p=npm")
    assert missing.status_code == 401 and "missing write key" in missing.get_json()["message"]
    # A key that could never have been minted is refused before any lookup, like ingest's.
    assert client.get("/sourceConfig/?writeKey=wk_a/b").status_code == 401
    unknown = "wk_" + "n" * 43
    assert client.get(f"/sourceConfig/?writeKey={unknown}").status_code == 404
    services.sources.revoke(source.workspace_id, source.id)
    assert client.get(f"/sourceConfig/?writeKey={source.key}").status_code == 404


# --- the browser SDK files ---------------------------------------------------------------------


def test_the_loader_embeds_the_write_key_as_segments_cdn_does(
    client: Any, dist: Path, source: EventSource
) -> None:
    response = client.get(f"/analytics.js/v1/{source.key}/analytics.min.js")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert response.headers["Cache-Control"] == "public, max-age=300"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    # Loaded by <script> on pages of any origin.
    assert response.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert response.data == LOADER.replace(b"__WRITE_KEY__", source.key.encode())


def test_the_loader_revalidates_with_its_etag(client: Any, dist: Path, source: EventSource) -> None:
    path = f"/analytics.js/v1/{source.key}/analytics.min.js"
    etag = client.get(path).headers["ETag"]
    again = client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""


def test_the_loader_of_an_unknown_or_revoked_key_is_a_404(
    client: Any, services: FakeServices, dist: Path, source: EventSource
) -> None:
    unknown = client.get("/analytics.js/v1/wk_nopeNopeNopeNopeNope1234/analytics.min.js")
    assert unknown.status_code == 404 and unknown.get_json()["field"] == "writeKey"
    services.sources.revoke(source.workspace_id, source.id)
    assert client.get(f"/analytics.js/v1/{source.key}/analytics.min.js").status_code == 404


def test_chunks_are_immutable_and_only_chunks_are_served(client: Any, dist: Path) -> None:
    chunk = client.get(f"/analytics-next/bundles/{CHUNK}")
    assert chunk.status_code == 200 and chunk.data == b"chunk()"
    assert chunk.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert chunk.headers["Content-Type"] == "text/javascript; charset=utf-8"

    for name in ("notes.txt", "..%2Fstandalone.js", "other.bundle.0123456789abcdef.js"):
        response = client.get(f"/analytics-next/bundles/{name}")
        assert response.status_code == 404, name
        assert response.get_json()["error"] == "not_found"


def test_rudderstacks_sdk_is_served(client: Any, dist: Path) -> None:
    response = client.get("/rudderstack/v3/analytics.min.js")
    assert response.status_code == 200 and response.data == b"rudderanalytics()"
    assert response.headers["Content-Type"] == "text/javascript; charset=utf-8"


def test_without_a_build_the_files_answer_503_saying_how_to_build(
    client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(collect, "DIST", tmp_path / "missing")
    response = client.get("/rudderstack/v3/analytics.min.js")
    assert response.status_code == 503
    assert "make collect" in response.get_json()["message"]


BUILT = Path(collect.DIST)


@pytest.mark.skipif(not (BUILT / "manifest.json").exists(), reason="run `make collect` first")
def test_the_built_loader_has_one_key_placeholder_and_every_chunk_it_names() -> None:
    """The pinned package, as built: a new version that moved the placeholder or renamed its
    chunks must fail here, not in a customer's browser."""
    loader = (BUILT / "analytics-next" / "standalone.js").read_bytes()
    assert loader.count(collect.EMBEDDED_KEY) == 1
    manifest = json.loads((BUILT / "manifest.json").read_text())
    for name in manifest["chunks"]:
        assert collect.CHUNK_NAME.match(name), name
        assert (BUILT / "analytics-next" / "bundles" / name).is_file()
        # The loader's chunk table names each chunk by its content hash.
        assert name.rsplit(".", 2)[1].encode() in loader, name
