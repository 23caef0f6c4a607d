"""A workspace's API tokens: /api/v1/workspaces/{id}/tokens (served by event_keys, beside `me`).

Any token of a workspace may list, create and revoke the workspace's tokens, itself included;
the secret is shown once, in the answer that creates it, and only its hash is stored."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, Field

from shared.api.models import Input, Name, Timestamp
from shared.domain.sources import ApiToken
from shared.http.request import ApiRequest
from shared.http.routing import Route

FUNCTION = "event_keys"
BASE = "/api/v1/workspaces/{workspace_id}/tokens"


class ApiTokenCreate(Input):
    name: Name
    expires_at: AwareDatetime | None = Field(
        None,
        description="When the token stops working (ISO-8601 with a time zone, in the future); "
        "omitted or null: never",
    )


class ApiTokenObject(BaseModel):
    """A token as listed: its id, name and dates, never the secret or its hash."""

    id: str
    workspace_id: str
    name: str
    created_at: Timestamp
    expires_at: Timestamp | None = Field(description="null: never expires")
    last_used_at: Timestamp | None = Field(
        description="Last use, updated at most once a minute; null: not used since recorded"
    )


class CreatedApiToken(ApiTokenObject):
    """A new token: the only answer that carries the secret."""

    token: str = Field(description="The bearer token; shown once, not stored (only its SHA-256)")


def list_tokens(request: ApiRequest) -> list[ApiToken]:
    return request.services.workspaces.list_tokens(request.workspace_id)


def create_token(request: ApiRequest) -> CreatedApiToken:
    body: ApiTokenCreate = request.body
    token, record = request.services.workspaces.create_token(
        request.workspace_id, body.name, body.expires_at
    )
    return CreatedApiToken(token=token, **record.model_dump())


def get_token(request: ApiRequest) -> ApiToken:
    return request.services.workspaces.get_token(request.workspace_id, request.params["token_id"])


def revoke_token(request: ApiRequest) -> None:
    request.services.workspaces.revoke_token(request.workspace_id, request.params["token_id"])


TAG = "API Tokens"
ROUTES = (
    Route(
        "GET",
        BASE,
        FUNCTION,
        "listApiTokens",
        "The workspace's API tokens (id, name, dates; never the secret)",
        list_tokens,
        response=list[ApiTokenObject],
        tag=TAG,
    ),
    Route(
        "POST",
        BASE,
        FUNCTION,
        "createApiToken",
        "Create an API token for the workspace, optionally expiring; the secret is shown once",
        create_token,
        body=ApiTokenCreate,
        response=CreatedApiToken,
        status=201,
        tag=TAG,
    ),
    Route(
        "GET",
        BASE + "/{token_id}",
        FUNCTION,
        "getApiToken",
        "One of the workspace's API tokens",
        get_token,
        response=ApiTokenObject,
        tag=TAG,
    ),
    Route(
        "DELETE",
        BASE + "/{token_id}",
        FUNCTION,
        "revokeApiToken",
        "Revoke an API token (the calling one included): every later request with it is 401",
        revoke_token,
        status=204,
        tag=TAG,
    ),
)
