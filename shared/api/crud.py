"""The five routes of a workspace-scoped collection (list, create, get, update, delete), built once:
an API module declares what differs (service, paths, models, summaries), not five handlers."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from types import GenericAlias
from typing import Any, Literal, Protocol
from urllib.parse import urlencode

from pydantic import BaseModel, Field, create_model

from shared.api.models import Input
from shared.bootstrap import Services
from shared.domain.paging import MAX_CURSOR_LENGTH, MAX_PAGE_SIZE, ListFilter, Page, page_of
from shared.http.request import ApiRequest, Reply
from shared.http.routing import Route


def _as_stored(item: Any) -> Any:
    return item


class ListQuery(Input):
    """The query of a list: every parameter optional, so `GET <list>` answers the whole list, as
    the seed's clients expect."""

    limit: int | None = Field(
        None,
        ge=1,
        le=MAX_PAGE_SIZE,
        description="Page size: with it the list is newest first and paged (the next page's "
        "cursor in X-Next-Cursor and Link); without it, every match, oldest first",
    )
    cursor: str | None = Field(
        None,
        max_length=MAX_CURSOR_LENGTH,
        description="The X-Next-Cursor of the previous page (with the same limit, q and status)",
    )
    q: str | None = Field(
        None,
        max_length=200,
        description="Only items whose name contains this text, ignoring case",
    )


# The headers of a list's answer (shared/domain/paging.py says what a page costs).
PAGE_HEADERS = (
    ("X-Total-Count", "integer", "How many items match q and status, over every page"),
    ("X-Next-Cursor", "string", "The cursor of the next page; absent on the last page"),
    (
        "Link",
        "string",
        'The next page\'s URL, as `<url>; rel="next"` (RFC 8288); absent on the last page',
    ),
)


def list_query(name: str, status: Any) -> type[ListQuery]:
    """The query model of a list whose items' status is of the type `status` (a Literal), or
    of one without statuses when None."""
    if status is None:
        return ListQuery
    field = Field(None, description="Only items with this status (e.g. hide revoked ones)")
    return create_model(name, __base__=ListQuery, status=(status | None, field))


def list_filter(request: ApiRequest) -> ListFilter:
    query: ListQuery = request.query
    search = query.q.strip() if query.q else None
    return ListFilter(
        limit=query.limit,
        cursor=query.cursor,
        search=search or None,
        status=getattr(query, "status", None),
    )


def page_reply(
    request: ApiRequest, page: Page[Any], present: Callable[[Any], Any] = _as_stored
) -> Reply:
    """The page as a JSON array (the seed's answer), its position in the headers."""
    headers = {"X-Total-Count": str(page.total)}
    if page.next_cursor is not None:
        args = {**request.raw.args.to_dict(), "cursor": page.next_cursor}
        headers["X-Next-Cursor"] = page.next_cursor
        headers["Link"] = f'<{request.raw.path}?{urlencode(args)}>; rel="next"'
    return Reply([present(item) for item in page.items], 200, headers)


def status_of(item: Any) -> str:
    """An item's status as `status=` filters it: forwarding rules have none but `enabled`."""
    enabled = getattr(item, "enabled", None)
    if isinstance(enabled, bool):
        return "enabled" if enabled else "disabled"
    return str(item.status)


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

    def list(self, request: ApiRequest) -> Reply:
        # Firestore: the whole collection is read (one read per item of the workspace's list)
        # and searched in memory, whatever the page size: a search by substring is no Firestore
        # query, and a few hundred items per workspace make one read of them cheap enough.
        items = self._service(request).list(request.workspace_id)
        return page_reply(request, page_of(items, list_filter(request), status_of), self.present)

    @cached_property
    def list_query(self) -> type[ListQuery]:
        fields = self.response.model_fields
        if "status" in fields:
            status: Any = fields["status"].annotation
        elif "enabled" in fields:
            status = Literal["enabled", "disabled"]
        else:
            status = None
        return list_query(f"{self.operation}ListQuery", status)

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
                query=self.list_query,
                # list[self.response], spelt so that mypy accepts a variable in it
                response=GenericAlias(builtins.list, self.response),
                response_headers=PAGE_HEADERS,
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
