"""Maps a webhook source's requests to events, in process: by the source's settings, or by its
transformation (`function transform(request)`) in the QuickJS sandbox that runs destination
transformations, under the same limits and versioning (docs/TRANSFORMATIONS.md)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.domain.event import CanonicalEvent
from shared.domain.routing import transformation_path
from shared.domain.sources import source_path
from shared.domain.transformations import Transformation
from shared.domain.webhook_mapping import (
    IGNORED_REASON,
    MappingError,
    RequestItem,
    calls_from_output,
    calls_without_code,
    request_events,
)
from shared.domain.webhooks import WebhookSettings
from shared.ports import ConfigStore, Document
from shared.services.cache import TtlCache
from shared.transform import CompileError, ProgramCache

log = logging.getLogger("streams.webhooks")

# Console lines of the code quoted in a mapping error's reason.
LOGS_IN_ERROR = 5


@dataclass(frozen=True)
class MappedRequest:
    """What one webhook request became: its events; or why it became none, either on purpose
    (`ignored`: the transformation returned null) or for an error (`error`: dead-lettered)."""

    events: list[CanonicalEvent] = field(default_factory=list)
    error: str | None = None
    ignored: str | None = None


@dataclass(frozen=True)
class SourceSettings:
    """A source's webhook settings as process reads them; `exists` False once it is deleted."""

    exists: bool
    settings: WebhookSettings


class WebhookMapper:
    """Webhook requests to events. Settings and transformations are read through a short
    cache, like routing configuration, so a change reaches process within `ttl_seconds`."""

    def __init__(self, store: ConfigStore, programs: ProgramCache, ttl_seconds: float):
        self._store = store
        self._programs = programs
        self._settings: TtlCache[SourceSettings] = TtlCache(ttl_seconds)
        self._transformations: TtlCache[Document | None] = TtlCache(ttl_seconds)

    def settings(self, workspace_id: str, source_id: str) -> SourceSettings:
        path = source_path(workspace_id, source_id)
        return self._settings.get(path, lambda: self._load_settings(path))

    def map(self, workspace_id: str, source_id: str, event: Mapping[str, Any]) -> MappedRequest:
        """Map one webhook request (as published by ingest); never raises for the request's
        own content or the source's configuration: those are `error`s, kept with the request."""
        try:
            item = RequestItem.from_event(event)
            found = self.settings(workspace_id, source_id)
            if not found.exists:
                raise MappingError(f"source {source_id} no longer exists")
            settings = found.settings
            if settings.transformation_id is None:
                calls = calls_without_code(item, settings)
            else:
                calls = self._run(workspace_id, source_id, settings.transformation_id, item)
                if not calls:
                    return MappedRequest(ignored=IGNORED_REASON)
            provider = None if settings.signature == "none" else settings.signature
            return MappedRequest(request_events(item, calls, workspace_id, source_id, provider))
        except MappingError as exc:
            return MappedRequest(error=str(exc))

    def _load_settings(self, path: str) -> SourceSettings:
        document = self._store.get(path)
        if document is None:
            return SourceSettings(False, WebhookSettings.model_validate({}))
        stored = document.get("webhook")
        # A webhook source not configured yet maps by the defaults (a fixed event name).
        return SourceSettings(True, WebhookSettings.model_validate(stored or {}))

    def _run(
        self, workspace_id: str, source_id: str, transform_id: str, item: RequestItem
    ) -> list[dict[str, Any]]:
        path = transformation_path(workspace_id, transform_id)
        document = self._transformations.get(path, lambda: self._store.get(path))
        if document is None:
            raise MappingError(f"the source's transformation {transform_id} does not exist")
        transformation = Transformation.model_validate(document)
        if transformation.status != "active":
            raise MappingError(
                f"the source's transformation {transformation.name!r} ({transform_id}) is "
                f"{transformation.status}, not active"
            )
        metadata = {"workspace_id": workspace_id, "source_id": source_id}
        key = (workspace_id, transform_id, transformation.version)
        try:
            result = self._programs.run(
                key, transformation.source_code, item.transform_input(), metadata
            )
        except CompileError as exc:
            raise MappingError(f"the transformation does not compile: {exc.message}") from None
        for line in result.logs:
            log.debug("source transformation %s console: %s", transform_id, line)
        if result.error is None:
            try:
                return calls_from_output(result.output)
            except MappingError as exc:
                error = str(exc)
        else:
            error = f"the transformation failed: {result.error}"
        if result.line is not None:
            error += f" (line {result.line})"
        if result.logs:
            error += "; console: " + " | ".join(result.logs[-LOGS_IN_ERROR:])
        raise MappingError(error)
