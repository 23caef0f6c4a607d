"""The five routes of a workspace-scoped collection (list, create, get, update, delete), built once:
an API module declares what differs (service, paths, models, summaries), not five handlers."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import GenericAlias
from typing import Any, Protocol

from pydantic import BaseModel

from shared.bootstrap import Services
from shared.http.request import ApiRequest, Reply
from shared.http.routing import Route


def _as_stored(item: Any) -> Any:
    return item


@dataclass(frozen=True)
class Summaries:
    """The OpenAPI summary of each of the five operations."""

    list: str
    create: str
    get: str
    update: str
    delete: str


class WorkspaceItems(Protocol):
    """A service keeping one kind of item per workspace (contracts, destinations, ...)."""

    def list(self, workspace_id: str, /) -> Iterable[Any]: ...

    # Each service takes its own fields (the create body's, as keywords).
    @property
    def create(self) -> Callable[..., Any]: ...

    def get(self, workspace_id: str, item_id: str, /) -> Any: ...

    def update(self, workspace_id: str, item_id: str, changes: dict[str, Any], /) -> Any: ...

    def delete(self, workspace_id: str, item_id: str, /) -> None: ...


@dataclass(frozen=True)
class Collection:
    """A collection kept by one service of `Services` whose every call takes the workspace id
    first; its bound methods are the route handlers."""

    # The service among the request's, e.g. `lambda services: services.forwarding_rules`.
    service: Callable[[Services], WorkspaceItems]
    function: str
    path: str  # the collection's path; one item is at path + "/{id_param}"
    id_param: str
    operation: str  # the operation ids' noun: listForwardingRules, getForwardingRule, ...
    tag: str
    create_body: type[BaseModel]
    update_body: type[BaseModel]
    response: type[BaseModel]
    summaries: Summaries
    # The API's view of one stored item, when it differs from the stored item.
    present: Callable[[Any], Any] = _as_stored

    def _service(self, request: ApiRequest) -> WorkspaceItems:
        return self.service(request.services)

    def list(self, request: ApiRequest) -> builtins.list[Any]:
        return [self.present(item) for item in self._service(request).list(request.workspace_id)]

    def create(self, request: ApiRequest) -> Any:
        created = self._service(request).create(request.workspace_id, **request.body.model_dump())
        return self.present(created)

    def get(self, request: ApiRequest) -> Any:
        item = self._service(request).get(request.workspace_id, request.params[self.id_param])
        return self.present(item)

    def update(self, request: ApiRequest) -> Any:
        updated = self._service(request).update(
            request.workspace_id,
            request.params[self.id_param],
            request.body.model_dump(exclude_unset=True),
        )
        return self.present(updated)

    def delete(self, request: ApiRequest) -> Reply:
        self._service(request).delete(request.workspace_id, request.params[self.id_param])
        return Reply(None, 204)

    def routes(self) -> tuple[Route, ...]:
        item = f"{self.path}/{{{self.id_param}}}"
        return (
            Route(
                "GET",
                self.path,
                self.function,
                f"list{self.operation}s",
                self.summaries.list,
                self.list,
                # list[self.response], spelt so that mypy accepts a variable in it
                response=GenericAlias(builtins.list, self.response),
                tag=self.tag,
            ),
            Route(
                "POST",
                self.path,
                self.function,
                f"create{self.operation}",
                self.summaries.create,
                self.create,
                body=self.create_body,
                response=self.response,
                status=201,
                tag=self.tag,
            ),
            Route(
                "GET",
                item,
                self.function,
                f"get{self.operation}",
                self.summaries.get,
                self.get,
                response=self.response,
                tag=self.tag,
            ),
            Route(
                "PUT",
                item,
                self.function,
                f"update{self.operation}",
                self.summaries.update,
                self.update,
                body=self.update_body,
                response=self.response,
                tag=self.tag,
            ),
            Route(
                "DELETE",
                item,
                self.function,
                f"delete{self.operation}",
                self.summaries.delete,
                self.delete,
                status=204,
                tag=self.tag,
            ),
        )
