"""User regulations (suppress, unsuppress, delete) and where their records live."""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import BaseModel

from shared.domain.event import EventKey

RegulationType = Literal["suppress", "unsuppress", "delete"]
RegulationStatus = Literal["pending", "running", "completed", "failed"]
SubjectKind = Literal["user_id", "anonymous_id"]
# The event field each kind of subject is matched on.
SUBJECT_FIELDS: dict[SubjectKind, EventKey] = {"user_id": "userId", "anonymous_id": "anonymousId"}


class Regulation(BaseModel):
    """One request about one user, with how it went: `report` once it has run."""

    id: str
    workspace_id: str
    type: RegulationType
    user_id: str | None = None
    anonymous_id: str | None = None
    status: RegulationStatus
    report: dict[str, Any] | None = None
    error: str | None = None
    created_by: str
    created_by_name: str | None = None
    created_at: str
    updated_at: str
    completed_at: str | None = None

    @property
    def subject(self) -> tuple[SubjectKind, str]:
        """The kind of id the regulation names, and its value."""
        if self.user_id is not None:
            return "user_id", self.user_id
        assert self.anonymous_id is not None
        return "anonymous_id", self.anonymous_id


def regulations_collection(workspace_id: str) -> str:
    return f"workspaces/{workspace_id}/regulations"


def regulation_path(workspace_id: str, regulation_id: str) -> str:
    return f"{regulations_collection(workspace_id)}/{regulation_id}"


def suppressions_collection(workspace_id: str) -> str:
    return f"workspaces/{workspace_id}/suppressions"


def suppression_path(workspace_id: str, kind: SubjectKind, value: str) -> str:
    # Ids are client-chosen and may contain '/': the document id is a digest of kind and value.
    digest = hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()[:40]
    return f"{suppressions_collection(workspace_id)}/{digest}"


def privacy_settings_path(workspace_id: str) -> str:
    return f"workspaces/{workspace_id}/privacy/settings"
