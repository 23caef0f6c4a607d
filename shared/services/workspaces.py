"""Workspaces and the API tokens that act in them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from shared.domain import ids
from shared.domain.errors import InvalidRequest, NotFound, Unauthorized
from shared.domain.sources import ApiToken, Workspace, token_path, workspace_path
from shared.ports import ConfigStore, Write


class Workspaces:
    """Creates workspaces and tokens, and turns a bearer token into the token's record."""

    def __init__(self, store: ConfigStore, clock: Callable[[], datetime] = ids.utcnow):
        self._store = store
        self._clock = clock

    def create(self, name: str) -> Workspace:
        if not name.strip():
            raise InvalidRequest("name must not be empty", field="name")
        workspace = Workspace(id=ids.new_id(), name=name, created_at=ids.isoformat(self._clock()))
        self._store.create(workspace_path(workspace.id), workspace.model_dump())
        return workspace

    def get(self, workspace_id: str) -> Workspace:
        document = self._store.get(workspace_path(workspace_id))
        if document is None:
            raise NotFound(f"workspace {workspace_id} not found")
        return Workspace.model_validate(document)

    def create_token(self, workspace_id: str, name: str) -> tuple[str, ApiToken]:
        """Mint a token; the plaintext is returned once and never stored."""
        self.get(workspace_id)
        plaintext = ids.new_api_token()
        record = ApiToken(
            id=ids.new_id(),
            workspace_id=workspace_id,
            name=name,
            created_at=ids.isoformat(self._clock()),
        )
        self._store.commit(
            [Write("create", token_path(ids.token_hash(plaintext)), record.model_dump())]
        )
        return plaintext, record

    def authenticate(self, token: str) -> ApiToken:
        """The record of a valid token; `Unauthorized` for anything else."""
        if not token.startswith(ids.API_TOKEN_PREFIX):
            raise Unauthorized("invalid API token")
        document = self._store.get(token_path(ids.token_hash(token)))
        if document is None:
            raise Unauthorized("invalid API token")
        return ApiToken.model_validate(document)
