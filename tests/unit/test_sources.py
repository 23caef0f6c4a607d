from __future__ import annotations

import pytest

from shared.bootstrap import Services
from shared.domain.errors import InvalidRequest, NotFound, Unauthorized


def test_create_source_creates_topic_and_resolvable_key(services: Services) -> None:
    workspace = services.workspaces.create("Acme")
    source = services.sources.create(workspace.id, "Web App", created_by="token-1")

    assert source.status == "active"
    assert source.key.startswith("wk_") and len(source.key) > 40
    assert source.pubsub_topic in services.topics.topics  # type: ignore[attr-defined]
    assert source.pubsub_topic.endswith(source.id)
    resolved = services.sources.resolve_write_key(source.key)
    assert resolved is not None
    assert (resolved.workspace_id, resolved.source_id, resolved.status) == (
        workspace.id,
        source.id,
        "active",
    )


def test_keys_are_unique(services: Services) -> None:
    workspace = services.workspaces.create("Acme")
    keys = {services.sources.create(workspace.id, f"s{i}", "t").key for i in range(50)}
    assert len(keys) == 50


def test_revoke_marks_source_and_key_revoked_and_is_idempotent(services: Services) -> None:
    workspace = services.workspaces.create("Acme")
    source = services.sources.create(workspace.id, "Web", "t")

    revoked = services.sources.revoke(workspace.id, source.id)
    again = services.sources.revoke(workspace.id, source.id)

    assert revoked.status == again.status == "revoked"
    assert services.sources.get(workspace.id, source.id).status == "revoked"
    record = services.sources.resolve_write_key(source.key)
    assert record is not None and record.status == "revoked"


def test_sources_are_scoped_to_their_workspace(services: Services) -> None:
    first = services.workspaces.create("A")
    second = services.workspaces.create("B")
    source = services.sources.create(first.id, "Web", "t")

    assert [s.id for s in services.sources.list(first.id)] == [source.id]
    assert services.sources.list(second.id) == []
    with pytest.raises(NotFound):
        services.sources.get(second.id, source.id)
    with pytest.raises(NotFound):
        services.sources.revoke(second.id, source.id)


def test_unknown_write_keys_resolve_to_nothing(services: Services) -> None:
    assert services.sources.resolve_write_key("wk_nope") is None
    assert services.sources.resolve_write_key("not-a-key") is None


def test_tokens_authenticate_only_their_plaintext(services: Services) -> None:
    workspace = services.workspaces.create("Acme")
    token, record = services.workspaces.create_token(workspace.id, "admin")

    assert services.workspaces.authenticate(token) == record
    stored = services.store.documents  # type: ignore[attr-defined]
    assert all(token not in str(doc) for doc in stored.values()), "plaintext token stored"
    for bad in ("", "stk_wrong", token + "x", "Bearer " + token):
        with pytest.raises(Unauthorized):
            services.workspaces.authenticate(bad)


def test_token_for_unknown_workspace_is_refused(services: Services) -> None:
    with pytest.raises(NotFound):
        services.workspaces.create_token("missing", "admin")


def test_workspace_name_must_not_be_blank(services: Services) -> None:
    with pytest.raises(InvalidRequest):
        services.workspaces.create("  ")
