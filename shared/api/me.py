"""Who a token is: GET /api/v1/me (served by event_keys). The console signs in with it."""

from __future__ import annotations

from pydantic import BaseModel

from shared.http.request import ApiRequest
from shared.http.routing import Route

FUNCTION = "event_keys"


class Me(BaseModel):
    """The calling token and the workspace it acts in."""

    workspace_id: str
    workspace_name: str
    token_id: str
    token_name: str


def get_me(request: ApiRequest) -> Me:
    assert request.token is not None
    workspace = request.services.workspaces.get(request.workspace_id)
    return Me(
        workspace_id=workspace.id,
        workspace_name=workspace.name,
        token_id=request.token.id,
        token_name=request.token.name,
    )


ROUTES = (
    Route(
        "GET",
        "/api/v1/me",
        FUNCTION,
        "getMe",
        "The calling token's workspace (id and name) and the token's own id and name",
        get_me,
        response=Me,
        tag="Workspace",
    ),
)
