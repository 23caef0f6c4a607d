"""Privacy settings of a workspace (PII rules, the hashing secret) and the `process` step that
drops suppressed users' events and redacts PII before contracts, storage and routing."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.domain import ids
from shared.domain.errors import InvalidRequest
from shared.domain.event import CanonicalEvent
from shared.domain.privacy import PiiRule, Suppressions, check_pii_rules, redact
from shared.domain.regulations import (
    SUBJECT_FIELDS,
    privacy_settings_path,
    suppressions_collection,
)
from shared.ports import ConfigStore, Document, Write
from shared.services.cache import TtlCache

# 256-bit HMAC keys, one per workspace.
HASHING_SECRET_BYTES = 32


@dataclass(frozen=True)
class WorkspacePrivacy:
    """What `process` applies to one workspace's events (cached per instance)."""

    rules: list[PiiRule] = field(default_factory=list)
    secret: bytes = b""
    suppressions: Suppressions = field(default_factory=Suppressions)
    # (kind, value) -> the regulation that suppressed it, for the event log and trace.
    suppressed_by: dict[tuple[str, str], str] = field(default_factory=dict)
    # Whether events without a consent object are held back from destinations naming
    # consent categories (shared/domain/consent.py).
    consent_required: bool = False


@dataclass(frozen=True)
class PrivacyOutcome:
    """The events that go on (redacted) and those of suppressed users (with the regulation)."""

    passed: list[CanonicalEvent]
    suppressed: list[tuple[CanonicalEvent, str | None]]
    # The workspace's consent requirement, which routing applies.
    consent_required: bool = False


class PrivacySettings:
    """The workspace's PII rules; the hashing secret is generated here and never leaves."""

    def __init__(self, store: ConfigStore, clock: Callable[[], datetime] = ids.utcnow):
        self._store = store
        self._clock = clock

    def get(self, workspace_id: str) -> dict[str, Any]:
        """The settings as the API shows them: rules and timestamps, never the secret."""
        return _public(self._store.get(privacy_settings_path(workspace_id)))

    def put(
        self,
        workspace_id: str,
        rules: list[PiiRule],
        updated_by: str,
        consent_required: bool = False,
    ) -> dict[str, Any]:
        """Replace the rules. The hashing secret is created with the first settings and kept:
        changing it would change every hash, so joins across old and new data would break."""
        try:
            checked = check_pii_rules(rules)
        except ValueError as exc:
            field_name = str(exc).split(":", 1)[0]
            raise InvalidRequest(str(exc), field=field_name) from None
        path = privacy_settings_path(workspace_id)
        current = self._store.get(path)
        now = ids.isoformat(self._clock())
        document: Document = {
            "workspace_id": workspace_id,
            "pii_rules": [{"path": r.path, "action": r.action} for r in checked],
            "consent_required": consent_required,
            "hashing_secret": (current or {}).get("hashing_secret")
            or secrets.token_hex(HASHING_SECRET_BYTES),
            "created_at": (current or {}).get("created_at", now),
            "updated_at": now,
            "updated_by": updated_by,
        }
        self._store.commit([Write("set", path, document)])
        return _public(document)


class PrivacyFilter:
    """The `process` step: suppression, then PII rules; config cached per workspace and interval."""

    def __init__(self, store: ConfigStore, ttl_seconds: float):
        self._store = store
        self._cache: TtlCache[WorkspacePrivacy] = TtlCache(ttl_seconds)

    def apply(
        self, workspace_id: str, events: list[CanonicalEvent], replay: bool = False
    ) -> PrivacyOutcome:
        """Split suppressed users' events off and redact the others. A replayed event was
        redacted once already: its hashes are kept, so it is not hashed twice (rules added since
        still apply)."""
        config = self._cache.get(workspace_id, lambda: self.load(workspace_id))
        if not config.rules and not config.suppressions:
            return PrivacyOutcome(events, [], config.consent_required)
        passed: list[CanonicalEvent] = []
        suppressed: list[tuple[CanonicalEvent, str | None]] = []
        for event in events:
            if config.suppressions.matches(event):
                suppressed.append((event, _regulation_of(config, event)))
            else:
                passed.append(
                    redact(event, config.rules, config.secret, keep_hashes=replay)
                    if config.rules
                    else event
                )
        return PrivacyOutcome(passed, suppressed, config.consent_required)

    def load(self, workspace_id: str) -> WorkspacePrivacy:
        settings = self._store.get(privacy_settings_path(workspace_id)) or {}
        rules = [PiiRule(r["path"], r["action"]) for r in settings.get("pii_rules", [])]
        secret = (
            bytes.fromhex(settings["hashing_secret"]) if settings.get("hashing_secret") else b""
        )
        user_ids: set[str] = set()
        anonymous_ids: set[str] = set()
        suppressed_by: dict[tuple[str, str], str] = {}
        for document in self._store.list_documents(suppressions_collection(workspace_id)):
            kind, value = document["kind"], document["value"]
            (user_ids if kind == "user_id" else anonymous_ids).add(value)
            suppressed_by[(kind, value)] = document.get("regulation_id", "")
        return WorkspacePrivacy(
            rules,
            secret,
            Suppressions(frozenset(user_ids), frozenset(anonymous_ids)),
            suppressed_by,
            bool(settings.get("consent_required", False)),
        )


def _regulation_of(config: WorkspacePrivacy, event: CanonicalEvent) -> str | None:
    for kind, event_field in SUBJECT_FIELDS.items():
        value = event.get(event_field)
        if isinstance(value, str) and (kind, value) in config.suppressed_by:
            return config.suppressed_by[(kind, value)] or None
    return None


def _public(document: Document | None) -> dict[str, Any]:
    document = document or {}
    return {
        "pii_rules": document.get("pii_rules", []),
        "hashing": "hmac-sha256",
        "consent_required": bool(document.get("consent_required", False)),
        "created_at": document.get("created_at"),
        "updated_at": document.get("updated_at"),
    }
