"""Transformations: a workspace's JavaScript that forwarding rules apply to events."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

# draft: saved, compiles, not run by rules; active: run by rules; error: the stored code no longer
# compiles where it runs (set by deliver). docs/TRANSFORMATIONS.md has the whole lifecycle.
TransformationStatus = Literal["draft", "active", "error"]


class Transformation(BaseModel):
    """The seed's Transformation object plus its workspace, version and timestamps."""

    id: str
    workspace_id: str
    name: str
    description: str = ""
    source_code: str
    test_input: dict[str, Any] | None = None
    test_output: Any = None
    status: TransformationStatus = "active"
    # Increases on every update: compiled programs are cached per (id, version).
    version: int = 1
    # Why the stored code stopped compiling (status error); null otherwise.
    compile_error: str | None = None
    created_at: str
    updated_at: str


def transformations_collection(workspace_id: str) -> str:
    return f"workspaces/{workspace_id}/transformations"
