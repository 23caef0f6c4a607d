"""Workspaces and the API tokens that act in them."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from shared.domain import ids
from shared.domain.errors import Conflict, InvalidRequest, NotFound, Unauthorized
from shared.domain.sources import ApiToken, Workspace, token_path, workspace_path
from shared.ports import ConfigStore, Document, Filter, Write

log = logging.getLogger("streams.workspaces")

TOKENS = "api_tokens"
# last_used_at is written at most this often per token and instance, never per request.
TOKEN_USE_WRITE_SECONDS = 60.0
# Tokens whose last write this instance remembers; past this it forgets them all (one write each).
MAX_REMEMBERED_TOKENS = 10_000


class Workspaces:
    """Creates workspaces and tokens, turns a bearer token into the token's record, and lists
    and revokes a workspace's tokens."""

    def __init__(
        self,
        store: ConfigStore,
        clock: Callable[[], datetime] = ids.utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self._store = store
        self._clock = clock
        self._monotonic = monotonic
        self._used_written_at: dict[str, float] = {}
        self._lock = threading.Lock()

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

    def create_token(
        self, workspace_id: str, name: str, expires_at: datetime | None = None
    ) -> tuple[str, ApiToken]:
        """Mint a token, valid until `expires_at` (an aware datetime) or for good; the plaintext
        is returned once and never stored."""
        self.get(workspace_id)
        if not name.strip():
            raise InvalidRequest("name must not be empty", field="name")
        now = self._clock()
        if expires_at is not None:
            if expires_at.tzinfo is None:
                raise InvalidRequest("expires_at needs a time zone (e.g. Z)", field="expires_at")
            if expires_at <= now:
                raise InvalidRequest("expires_at must be in the future", field="expires_at")
        plaintext = ids.new_api_token()
        hashed = ids.token_hash(plaintext)
        record = ApiToken(
            id=ids.new_id(),
            workspace_id=workspace_id,
            name=name,
            created_at=ids.isoformat(now),
            expires_at=None if expires_at is None else ids.isoformat(expires_at),
        )
        # The hash is the document's id; kept in it too, so that a token listed by id can be
        # found again to be revoked (queries return documents, not their ids).
        document = {**record.model_dump(), "token_hash": hashed}
        self._store.commit([Write("create", token_path(hashed), document)])
        return plaintext, record

    def authenticate(self, token: str) -> ApiToken:
        """The record of a valid token; `Unauthorized` for anything else."""
        # Refused unread when it cannot be a token, like an unknown one.
        if not ids.is_api_token(token):
            raise Unauthorized("invalid API token")
        hashed = ids.token_hash(token)
        document = self._store.get(token_path(hashed))
        if document is None:
            raise Unauthorized("invalid API token")
        record = ApiToken.model_validate(document)
        now = self._clock()
        if record.expires_at is not None and _parse(record.expires_at) <= now:
            raise Unauthorized("API token expired")
        self._note_use(hashed, now)
        return record

    def list_tokens(self, workspace_id: str) -> list[ApiToken]:
        """The workspace's tokens, oldest first (their records: never the secret or its hash)."""
        documents = self._store.query(TOKENS, [Filter("workspace_id", "==", workspace_id)])
        tokens = (ApiToken.model_validate(document) for document in documents)
        return sorted(tokens, key=lambda token: (token.created_at, token.id))

    def get_token(self, workspace_id: str, token_id: str) -> ApiToken:
        return ApiToken.model_validate(self._token_document(workspace_id, token_id))

    def revoke_token(self, workspace_id: str, token_id: str) -> None:
        """Delete the token: every later request with it is refused (401)."""
        document = self._token_document(workspace_id, token_id)
        hashed = document.get("token_hash")
        if not isinstance(hashed, str):
            # Made before tokens kept their hash: it is added at the token's next use.
            raise Conflict(
                f"API token {token_id} has not been used since tokens became revocable by id; "
                "it can be revoked after its next use",
                field="token_id",
            )
        self._store.commit([Write("delete", token_path(hashed))])

    def _token_document(self, workspace_id: str, token_id: str) -> Document:
        found = self._store.query(
            TOKENS, [Filter("workspace_id", "==", workspace_id), Filter("id", "==", token_id)]
        )
        if not found:
            raise NotFound(f"API token {token_id} not found", field="token_id")
        return found[0]

    def _note_use(self, hashed: str, now: datetime) -> None:
        """Record `last_used_at` (and the hash, for tokens made before it was kept) at most once
        per interval per token on this instance."""
        moment = self._monotonic()
        with self._lock:
            last = self._used_written_at.get(hashed)
            if last is not None and moment - last < TOKEN_USE_WRITE_SECONDS:
                return
            if len(self._used_written_at) >= MAX_REMEMBERED_TOKENS:
                self._used_written_at.clear()
            self._used_written_at[hashed] = moment
        update = {"last_used_at": ids.isoformat(now), "token_hash": hashed}
        try:
            self._store.commit([Write("update", token_path(hashed), update)])
        except Exception:
            # Bookkeeping never fails a request (the token may even be revoked meanwhile).
            log.warning("could not record the use of an API token", exc_info=True)


def _parse(moment: str) -> datetime:
    parsed = datetime.fromisoformat(moment)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
