"""The deliver hook: a forwarding rule's transformation, run on the event in the sandbox."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.domain import ids
from shared.domain.pipeline import DeliveryMessage
from shared.domain.routing import Destination, transformation_path
from shared.domain.transformations import Transformation
from shared.ports import ConfigStore, Document, Write
from shared.services.cache import TtlCache
from shared.services.deliver import TransformOutcome
from shared.transform import CompileError, JsonText, ProgramCache, valid_events

log = logging.getLogger("streams.transform")

# Console lines quoted in a failed delivery's reason (all of them go to the function's log).
LOGS_IN_ERROR = 5
# Entries of the per-instance caches of validated transformations and of metadata JSON.
MAX_CACHED = 4096


class SandboxTransformer:
    """`Transformer` over QuickJS: each transformation version is compiled once per thread.

    Transformations are read through a short cache, like routing configuration, so an update
    reaches deliveries within `ttl_seconds`.
    """

    def __init__(
        self,
        store: ConfigStore,
        programs: ProgramCache,
        ttl_seconds: float,
        clock: Callable[[], datetime] = ids.utcnow,
    ):
        self._store = store
        self._programs = programs
        self._documents: TtlCache[Document | None] = TtlCache(ttl_seconds)
        self._clock = clock
        # path -> (the cached document, its model): validated once per read of the document.
        self._models: dict[str, tuple[Document, Transformation]] = {}
        # (workspace, source, destination id and type, rule) -> the metadata's JSON.
        self._metadata: dict[tuple[Any, ...], JsonText] = {}

    def transform(self, message: DeliveryMessage, destination: Destination) -> TransformOutcome:
        transform_id = message.transformation_id
        assert transform_id is not None, "deliver calls the transformer only for rules with one"
        path = transformation_path(message.workspace_id, transform_id)
        document = self._documents.get(path, lambda: self._store.get(path))
        if document is None:
            return TransformOutcome([], error=f"transformation {transform_id} does not exist")
        transformation = self._transformation(path, document)
        version = transformation.version
        if transformation.status != "active":
            return TransformOutcome(
                [],
                error=f"transformation {transformation.name!r} ({transform_id}) is "
                f"{transformation.status}, not active: the rule does not run it",
                version=version,
            )
        metadata = self._metadata_of(message, destination)
        key = (message.workspace_id, transform_id, transformation.version)
        try:
            result = self._programs.run(key, transformation.source_code, message.event, metadata)
        except CompileError as exc:
            if exc.permanent:
                self._mark_error(transformation, exc.message)
            message_text = f"the code does not compile: {exc.message}"
            return TransformOutcome([], error=message_text, version=version)
        for line in result.logs:
            log.debug("transformation %s console: %s", transform_id, line)
        error = result.error
        if error is None:
            try:
                events = valid_events(result.output)
                return TransformOutcome(events, logs=result.logs, version=version)
            except ValueError as exc:
                error = str(exc)
        if result.line is not None:
            error += f" (line {result.line})"
        if result.logs:
            error += "; console: " + " | ".join(result.logs[-LOGS_IN_ERROR:])
        return TransformOutcome([], error=error, logs=result.logs, version=version)

    def _transformation(self, path: str, document: Document) -> Transformation:
        """The document as a model; the cache hands out the same document object until it reads
        the document again, so it is validated once per read, not once per event."""
        cached = self._models.get(path)
        if cached is not None and cached[0] is document:
            return cached[1]
        transformation = Transformation.model_validate(document)
        if len(self._models) >= MAX_CACHED:
            self._models.clear()
        self._models[path] = (document, transformation)
        return transformation

    def _metadata_of(
        self, message: DeliveryMessage, destination: Destination
    ) -> dict[str, Any] | JsonText:
        """`transform`'s second argument, serialised once per source, destination and rule."""
        source_id = message.event.get("sourceId")
        key = (message.workspace_id, source_id, destination.id, destination.type, message.rule_id)
        found = self._metadata.get(key) if type(source_id) is str else None
        if found is not None:
            return found
        metadata = {
            "workspace_id": message.workspace_id,
            "source_id": source_id,
            "destination_id": destination.id,
            "destination_type": destination.type,
            "rule_id": message.rule_id,
        }
        if type(source_id) is str:
            found = JsonText(json.dumps(metadata, separators=(",", ":")))
            if len(self._metadata) >= MAX_CACHED:
                self._metadata.clear()
            self._metadata[key] = found
            return found
        return metadata

    def _mark_error(self, transformation: Transformation, reason: str) -> None:
        """Record that the stored code no longer compiles here (status error), unless it changed."""
        path = transformation_path(transformation.workspace_id, transformation.id)
        current = self._store.get(path)
        if current is None or current.get("version") != transformation.version:
            return
        log.warning("transformation %s does not compile: %s", transformation.id, reason)
        changes = {"status": "error", "compile_error": reason}
        self._store.commit([Write("update", path, changes)])
        self._documents.invalidate(path)
