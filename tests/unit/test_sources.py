from __future__ import annotations

import pytest

from shared.domain.errors import Forbidden, InvalidRequest, NotFound, Unauthorized
from shared.domain.origins import canonical_origin, origin_allowed
from shared.domain.sources import write_key_path
from shared.ports import Write
from tests.fakes import FakeServices


def test_create_source_creates_topic_and_resolvable_key(services: FakeServices) -> None:
    workspace = services.workspaces.create("Acme")
    source = services.sources.create(workspace.id, "Web App", created_by="token-1")

    assert source.status == "active"
    assert source.key.startswith("wk_") and len(source.key) > 40
    assert source.pubsub_topic in services.topics.topics
    assert source.pubsub_topic.endswith(source.id)
    resolved = services.sources.resolve_write_key(source.key)
    assert resolved is not None
    assert (resolved.workspace_id, resolved.source_id, resolved.status) == (
        workspace.id,
        source.id,
        "active",
    )


def test_keys_are_unique(services: FakeServices) -> None:
    workspace = services.workspaces.create("Acme")
    keys = {services.sources.create(workspace.id, f"s{i}", "t").key for i in range(50)}
    assert len(keys) == 50


def test_revoke_marks_source_and_key_revoked_and_is_idempotent(services: FakeServices) -> None:
    workspace = services.workspaces.create("Acme")
    source = services.sources.create(workspace.id, "Web", "t")

    revoked = services.sources.revoke(workspace.id, source.id)
    again = services.sources.revoke(workspace.id, source.id)

    assert revoked.status == again.status == "revoked"
    assert services.sources.get(workspace.id, source.id).status == "revoked"
    record = services.sources.resolve_write_key(source.key)
    assert record is not None and record.status == "revoked"


def test_sources_are_scoped_to_their_workspace(services: FakeServices) -> None:
    first = services.workspaces.create("A")
    second = services.workspaces.create("B")
    source = services.sources.create(first.id, "Web", "t")

    assert [s.id for s in services.sources.list(first.id)] == [source.id]
    assert services.sources.list(second.id) == []
    with pytest.raises(NotFound):
        services.sources.get(second.id, source.id)
    with pytest.raises(NotFound):
        services.sources.revoke(second.id, source.id)


def test_unknown_write_keys_resolve_to_nothing(services: FakeServices) -> None:
    assert services.sources.resolve_write_key("wk_nope") is None
    assert services.sources.resolve_write_key("not-a-key") is None


def test_tokens_authenticate_only_their_plaintext(services: FakeServices) -> None:
    workspace = services.workspaces.create("Acme")
    token, record = services.workspaces.create_token(workspace.id, "admin")

    assert services.workspaces.authenticate(token) == record
    stored = services.store.documents
    assert all(token not in str(doc) for doc in stored.values()), "plaintext token stored"
    for bad in ("", "stk_wrong", token + "x", "Bearer " + token):
        with pytest.raises(Unauthorized):
            services.workspaces.authenticate(bad)


def test_token_for_unknown_workspace_is_refused(services: FakeServices) -> None:
    with pytest.raises(NotFound):
        services.workspaces.create_token("missing", "admin")


def test_workspace_name_must_not_be_blank(services: FakeServices) -> None:
    with pytest.raises(InvalidRequest):
        services.workspaces.create("  ")


def test_allowed_origins_live_on_the_source_and_its_key_record(services: FakeServices) -> None:
    workspace = services.workspaces.create("Acme")
    source = services.sources.create(
        workspace.id, "Web", "t", allowed_origins=["https://shop.example.com"]
    )
    key = services.sources.resolve_write_key(source.key)
    assert key is not None and key.allowed_origins == ["https://shop.example.com"]

    changed = services.sources.set_allowed_origins(workspace.id, source.id, [])
    assert changed.allowed_origins == [] and changed.updated_at >= source.updated_at
    key = services.sources.resolve_write_key(source.key)
    assert key is not None and key.allowed_origins == []
    assert services.sources.get(workspace.id, source.id).allowed_origins == []
    with pytest.raises(NotFound):
        services.sources.set_allowed_origins(workspace.id, "no-such-source", [])


def test_records_stored_before_allowed_origins_allow_any(services: FakeServices) -> None:
    workspace = services.workspaces.create("Acme")
    source = services.sources.create(workspace.id, "Web", "t")
    # A key record as it was stored before the field existed.
    record = source.write_key_record().model_dump(exclude={"allowed_origins"})
    services.store.commit([Write("set", write_key_path(source.key), record)])
    key = services.sources.resolve_write_key(source.key)
    assert key is not None and key.allowed_origins == []
    assert services.ingest.authorize(source.key, "https://any.example").source_id == source.id


def test_ingest_refuses_an_origin_the_source_does_not_list(services: FakeServices) -> None:
    workspace = services.workspaces.create("Acme")
    source = services.sources.create(
        workspace.id, "Web", "t", allowed_origins=["https://shop.example.com"]
    )
    assert services.ingest.authorize(source.key, "https://shop.example.com").source_id == source.id
    assert services.ingest.authorize(source.key, None).source_id == source.id
    with pytest.raises(Forbidden) as refused:
        services.ingest.authorize(source.key, "https://shop.example.com.evil.example")
    assert refused.value.field == "Origin"
    # A revoked key is refused as revoked, whatever the origin.
    services.sources.revoke(workspace.id, source.id)
    services.__dict__.pop("ingest", None)
    with pytest.raises(Unauthorized):
        services.ingest.authorize(source.key, "https://elsewhere.example")


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("https://shop.example.com", "https://shop.example.com"),
        ("  HTTPS://SHOP.example.COM  ", "https://shop.example.com"),
        ("https://shop.example.com:443", "https://shop.example.com"),
        ("http://shop.example.com:80", "http://shop.example.com"),
        ("http://shop.example.com:443", "http://shop.example.com:443"),
        ("https://localhost:3000", "https://localhost:3000"),
        ("https://[::1]:8443", "https://[::1]:8443"),
        ("https://münchen.example", "https://xn--mnchen-3ya.example"),
        ("ionic://localhost", "ionic://localhost"),
    ],
)
def test_canonical_origin(text: str, canonical: str) -> None:
    assert canonical_origin(text) == canonical


@pytest.mark.parametrize(
    "text",
    ["https://a.example/", "a.example", "https://a.example:0", "https://-a.example", "null", "*"],
)
def test_canonical_origin_refuses_what_is_not_an_origin(text: str) -> None:
    with pytest.raises(ValueError):
        canonical_origin(text)


def test_origin_allowed() -> None:
    assert origin_allowed([], "https://any.example")
    assert origin_allowed(["https://a.example"], None)
    assert origin_allowed(["https://a.example"], "https://a.example")
    assert not origin_allowed(["https://a.example"], "https://b.example")
    assert not origin_allowed(["https://a.example"], "null")
