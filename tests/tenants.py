"""A workspace and a management token for it: what every API test calls the functions as."""

from __future__ import annotations

from shared.bootstrap import Services

# The workspace id and the headers that carry its admin token.
Tenant = tuple[str, dict[str, str]]


def tenant_of(services: Services, name: str = "Acme") -> Tenant:
    """A new workspace named `name`, with an admin token."""
    workspace = services.workspaces.create(name)
    token, _ = services.workspaces.create_token(workspace.id, "admin")
    return workspace.id, {"Authorization": f"Bearer {token}"}
