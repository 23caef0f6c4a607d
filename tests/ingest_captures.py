"""Golden request captures of SDK uploads (tests/golden/ingest_captures/*.json): each holds the
request as the SDK sends it (method, path, headers, body; base64 when gzipped, and whether it is
chunked) and the answer and published events expected. Replayed against the ingest function in
tests/unit/test_ingest_captures.py and through the local gateway in
tests/e2e/test_collection_edge.py; adding a case means adding a file."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.bootstrap import Services, process_push_policy
from shared.domain.sources import EventSource, write_key_path
from shared.ports import Write
from shared.services.sources import EventSources

CAPTURES = Path(__file__).resolve().parent / "golden" / "ingest_captures"


@dataclass(frozen=True)
class Capture:
    name: str
    write_key: str
    method: str
    path: str
    headers: dict[str, str]
    chunked: bool
    body: bytes
    expected: dict[str, Any]


def load_captures() -> list[Capture]:
    captures = []
    for file in sorted(CAPTURES.glob("*.json")):
        data = json.loads(file.read_text())
        request = data["request"]
        body = (
            base64.b64decode(request["body_base64"])
            if "body_base64" in request
            else request["body"].encode()
        )
        captures.append(
            Capture(
                name=file.stem,
                write_key=data["write_key"],
                method=request["method"],
                path=request["path"],
                headers=request["headers"],
                chunked=request["chunked"],
                body=body,
                expected=data["expected"],
            )
        )
    return captures


def capture_source(services: Services, workspace_id: str, write_key: str) -> EventSource:
    """A source of `workspace_id` whose key is the captures' own (they hold it, in the body).

    The key is a fixed value, so a record left under it by an earlier run against the same
    emulators is removed first: the captures' source is always this test's.
    """
    services.store.commit([Write("delete", write_key_path(write_key))])
    sources = EventSources(
        services.store,
        services.topics,
        process_push_policy(services.settings, services.topics),
        new_key=lambda: write_key,
    )
    return sources.create(workspace_id, "Captured SDKs", created_by="captures")


def check_published(expected: list[dict[str, Any]], published: list[dict[str, Any]]) -> None:
    """Each published event holds the fields the capture expects of it, in order."""
    assert len(published) == len(expected), published
    for want, event in zip(expected, published, strict=True):
        assert {k: event.get(k) for k in want} == want, event
        assert "writeKey" not in event
