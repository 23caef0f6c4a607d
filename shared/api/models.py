"""Request and response models shared by the API modules."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)
from pydantic.json_schema import SkipJsonSchema

from shared.domain.origins import MAX_ALLOWED_ORIGINS, canonical_origin

# A date-time as Streams writes it in answers (ISO 8601 in UTC, 2024-01-15T15:00:00.000Z): a
# string, documented as `format: date-time` so that generated clients read it as one.
Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]


def omitted_when_absent(description: str | None = None) -> Any:
    """A field of a /v1/streams answer that is left out when it has no value, never null: the
    seed's document declares none of its fields nullable, so a client generated from it refuses
    a null. Declare it `X | Absent`: the document shows `X`, not required."""
    return Field(None, exclude_if=_is_none, description=description, json_schema_extra=_no_default)


def _is_none(value: Any) -> bool:
    return value is None


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # `null`, which the documented type does not allow


# The `None` of an omitted_when_absent field, hidden from the document (it is never sent).
Absent = SkipJsonSchema[None]
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

    code: int = Field(description="the HTTP status")
    error: str = Field(description="the kind of error, e.g. invalid_request, not_found")
    message: str = Field(
        description="what is wrong, in plain words: `<field>: <what is wrong>` when a field is "
        "at fault (the value sent is never repeated)"
    )
    field: str | None = Field(
        None, description="the field at fault, as a path: pii_rules.0.action, config.secret"
    )
    details: str | None = Field(
        None, description="every problem found in the request, `; `-separated"
    )
