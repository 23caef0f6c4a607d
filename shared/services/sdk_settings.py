"""SDK settings: the source behind a write key, as the configuration documents describe it.

Every page view of a website asks for its settings, so nothing here reads per request: the key
comes from ingest's own cached lookup, and the source's name and its workspace's contracts from
a cache of their own, refreshed every `ttl_seconds`.
"""

from __future__ import annotations

from shared.domain.contracts import EventContract
from shared.domain.errors import NotFound, Unauthorized
from shared.domain.sdk_settings import SourceProfile
from shared.domain.sources import WriteKey
from shared.services.cache import TtlCache
from shared.services.contracts import EventContracts
from shared.services.ingest import Ingest
from shared.services.sources import EventSources


class SdkSettings:
    """Resolves a write key for the settings, source-config and SDK bundle routes."""

    def __init__(
        self,
        ingest: Ingest,
        sources: EventSources,
        contracts: EventContracts,
        ttl_seconds: float,
    ):
        self._ingest = ingest
        self._sources = sources
        self._contracts = contracts
        self._names: TtlCache[str] = TtlCache(ttl_seconds)
        self._workspace_contracts: TtlCache[tuple[EventContract, ...]] = TtlCache(ttl_seconds)

    def key(self, write_key: str, origin: str | None) -> WriteKey:
        """The active source of `write_key`: `NotFound` for an unknown or revoked key (what a
        CDN answers for a project it does not have), `Forbidden` for an origin it refuses."""
        try:
            return self._ingest.authorize(write_key, origin)
        except Unauthorized as error:
            raise NotFound(error.message, field="writeKey") from None

    def profile(self, write_key: str, origin: str | None) -> SourceProfile:
        """The key's source with its name and its workspace's contracts (cached reads)."""
        key = self.key(write_key, origin)
        name = self._names.get(
            key.source_id, lambda: self._sources.get(key.workspace_id, key.source_id).name
        )
        contracts = self._workspace_contracts.get(
            key.workspace_id, lambda: tuple(self._contracts.list(key.workspace_id))
        )
        return SourceProfile(key, name, contracts)
