"""Request and response models shared by the API modules."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class Input(BaseModel):
    """A request body: unknown fields are an error, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid")


class ErrorBody(BaseModel):
    """Every error answer: the HTTP status, a code, a message and the field at fault."""

    code: int
    error: str
    message: str
    field: str | None = None
    details: str | None = None
