"""The route table's building blocks: one `Route` per operation, matched by method and path."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

# bearer: a management API token; write_key: a source's key, resolved by the ingest handler
# itself because Segment SDKs may put it in the (possibly gzipped) body; none: public.
Auth = Literal["bearer", "write_key", "none"]

PARAM = re.compile(r"\{(\w+)\}")
# Path parameters that are not document ids, so not held to Firestore's id rules: a messageId is
# chosen by the client (`__main__` is a fine one) and found through its digest, a write key is
# checked for its minted shape by its handler, and files are the bundled scripts' names. Every
# other parameter names a document by its id, and one no document can have names nothing.
NOT_DOCUMENT_IDS = frozenset({"message_id", "write_key", "file", "asset"})


@dataclass(frozen=True)
class Route:
    """One operation: where it lives, which function serves it, and its contract."""

    method: str
    path: str
    function: str
    operation_id: str
    summary: str
    handler: Callable[..., Any]
    auth: Auth = "bearer"
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    # False: an empty body is read as `{}` (every field of `body` then takes its default).
    body_required: bool = True
    # Publishes events through a source, so the source's rate limit may answer 429.
    rate_limited: bool = False
    # The documented body of a route that reads its body itself (ingest: any content type,
    # gzip, batches whose bad items are refused one by one): the OpenAPI document shows it,
    # nothing validates requests with it.
    request_schema: type[BaseModel] | None = None
    response: Any = None
    status: int = 200
    tag: str = ""
    streaming: bool = False
    # Headers a successful answer may carry, (name, JSON type, what it holds), for the OpenAPI
    # document.
    response_headers: tuple[tuple[str, str, str], ...] = ()
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        regex = PARAM.sub(
            lambda m: f"(?P<{m.group(1)}>[^/]+)",
            re.escape(self.path).replace(r"\{", "{").replace(r"\}", "}"),
        )
        object.__setattr__(self, "pattern", re.compile(f"{regex}/?"))

    def match(self, path: str) -> dict[str, str] | None:
        """The path parameters when `path` is this route's, else None."""
        # fullmatch: `$` would also match before a trailing newline ("/v1/track\n").
        found = self.pattern.fullmatch(path)
        return found.groupdict() if found else None

    @property
    def params(self) -> list[str]:
        return PARAM.findall(self.path)

    @property
    def document_params(self) -> list[str]:
        """The path parameters that are document ids (all but `NOT_DOCUMENT_IDS`)."""
        return [name for name in self.params if name not in NOT_DOCUMENT_IDS]


def allowed_methods(routes: tuple[Route, ...], path: str) -> list[str]:
    """The methods `path` answers to among `routes` (HEAD wherever GET), for an `Allow` header;
    empty when no route has the path."""
    methods = [route.method for route, _ in _matching(routes, path)]
    if "GET" in methods:
        methods.append("HEAD")
    return list(dict.fromkeys(methods))


def find_route(
    routes: tuple[Route, ...], method: str, path: str
) -> tuple[Route | None, dict[str, str], bool]:
    """The route for (method, path), its parameters, and whether the path exists at all."""
    matching = _matching(routes, path)
    for route, params in matching:
        if route.method == method or (method == "HEAD" and route.method == "GET"):
            return route, params, True
    return None, {}, bool(matching)


def _matching(routes: tuple[Route, ...], path: str) -> list[tuple[Route, dict[str, str]]]:
    """The routes of `path`'s most specific template, with their parameters: a literal segment
    wins over a parameter, so `PUT .../event-contracts/proposal` is a 405 of the `proposal`
    route, never an update of a contract whose id would be "proposal"."""
    found = [(route, params) for route in routes if (params := route.match(path)) is not None]
    fewest = min((len(params) for _, params in found), default=0)
    return [(route, params) for route, params in found if len(params) == fewest]
