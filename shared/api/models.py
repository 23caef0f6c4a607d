"""Request and response models shared by the API modules."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from shared.domain.origins import MAX_ALLOWED_ORIGINS, canonical_origin

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
# A web page's origin, stored as browsers send it in `Origin` (https://Shop.Example.com:443
# becomes https://shop.example.com).
Origin = Annotated[str, AfterValidator(canonical_origin)]
AllowedOrigins = Annotated[
    list[Origin],
    AfterValidator(lambda origins: list(dict.fromkeys(origins))),  # each once, in order
    Field(
        max_length=MAX_ALLOWED_ORIGINS,
        description=(
            "Origins of the web pages that may send events with this source's key, each "
            "scheme://host[:port] (e.g. https://shop.example.com); empty allows any. A page of "
            "another origin is refused with 403. Requests without an Origin header (servers, "
            "mobile apps) are not affected. An extension of the seed"
        ),
    ),
]


class Input(BaseModel):
    """A request body: unknown fields are an error, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid")


def _refuse_null(cls: Any, value: Any) -> Any:
    if value is None:
        raise ValueError("must not be null")
    return value


def not_null(*fields: str) -> Any:
    """The validator of a partial update whose `fields` may be omitted (they keep their value)
    but not set to null; in the model's body: `_not_null = not_null("name", ...)`."""
    return field_validator(*fields, mode="before")(_refuse_null)


class ErrorBody(BaseModel):
    """Every error answer: the HTTP status, a code, a message and the field at fault."""

    code: int
    error: str
    message: str
    field: str | None = None
    details: str | None = None
