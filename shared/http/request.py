"""What a handler gets (`ApiRequest`) and may answer besides its route's default (`Reply`): the
one module that route handlers, the dispatcher (app.py), CORS and the audit trail share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Request

from shared.bootstrap import Services
from shared.domain.sources import ApiToken
from shared.http.body import client_ip
from shared.http.routing import Route


@dataclass
class ApiRequest:
    """What a handler gets: the parsed parts of the request and the services to act with."""

    raw: Request
    route: Route
    params: dict[str, str]
    # The services to act with, as handed over by the function's entry point: built on first
    # use (the docs and the console serve without any configured project).
    services_of: Callable[[], Services]
    body: Any = None
    query: Any = None
    token: ApiToken | None = None

    @property
    def services(self) -> Services:
        return self.services_of()

    @property
    def client_ip(self) -> str | None:
        """The caller's address, trusting only the configured proxies' X-Forwarded-For."""
        return client_ip(self.raw, self.services.settings.trusted_proxy_hops)

    @property
    def workspace_id(self) -> str:
        """The workspace the caller acts in: the token's, already checked against the path."""
        assert self.token is not None, "workspace_id needs a bearer-authenticated route"
        return self.token.workspace_id


@dataclass(frozen=True)
class Reply:
    """A handler result with a status or headers other than the route's defaults."""

    body: Any
    status: int
    headers: dict[str, str] | None = None
