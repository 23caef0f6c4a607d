"""Pages of a workspace's list (sources, destinations, contracts...): search by name, filter by
status, newest first, continued by an opaque cursor."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from shared.domain.errors import InvalidRequest

# Enough for a screen of rows; a client wanting everything leaves `limit` out.
MAX_PAGE_SIZE = 200
# A cursor holds one creation time and one document id (at most 1,500 bytes, Firestore's limit).
MAX_CURSOR_LENGTH = 2200


class Listed(Protocol):
    """What every listed item has: a name to search, an id, and its creation time."""

    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def created_at(self) -> str: ...


Item = TypeVar("Item", bound=Listed)


@dataclass(frozen=True)
class ListFilter:
    """What a client asked of a list; `limit` None is the whole list, oldest first, as the list
    answered before it had pages (the seed's clients read it so)."""

    limit: int | None = None
    cursor: str | None = None
    search: str | None = None
    status: str | None = None


@dataclass(frozen=True)
class Page(Generic[Item]):
    items: list[Item]
    # The cursor of the page after this one; None on the last page.
    next_cursor: str | None
    # How many items match the search and status, over every page.
    total: int


def page_of(
    items: Iterable[Item], wanted: ListFilter, status_of: Callable[[Item], str]
) -> Page[Item]:
    """The page `wanted` of `items` (any order): searched, filtered, and when `limit` is set,
    newest first from after `cursor`."""
    matching = [
        item
        for item in items
        if _matches(item.name, wanted.search)
        and (wanted.status is None or status_of(item) == wanted.status)
    ]
    if wanted.limit is None:
        if wanted.cursor is not None:
            raise InvalidRequest("cursor: needs limit, the page size", field="cursor")
        return Page(sorted(matching, key=_creation_order), None, len(matching))
    newest_first = sorted(matching, key=_creation_order, reverse=True)
    after = decode_cursor(wanted.cursor) if wanted.cursor is not None else None
    # Items are placed by (created_at, id), not by position: an item created or deleted between
    # two requests neither repeats nor hides another one.
    rest = (
        newest_first if after is None else [i for i in newest_first if _creation_order(i) < after]
    )
    page = rest[: wanted.limit]
    more = len(rest) > wanted.limit
    return Page(page, encode_cursor(_creation_order(page[-1])) if more else None, len(matching))


def _matches(name: str, search: str | None) -> bool:
    # casefold: "STRASSE" finds "Straße", as a person searching expects.
    return not search or search.casefold() in name.casefold()


def _creation_order(item: Listed) -> tuple[str, str]:
    # Creation times are ISO 8601 UTC with milliseconds, so they sort as strings; the id breaks
    # ties between items created in the same millisecond.
    return (item.created_at, item.id)


def encode_cursor(position: tuple[str, str]) -> str:
    """The opaque cursor of the item at `position` (base64url of its creation time and id)."""
    text = json.dumps(list(position), separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    """The position a cursor of `encode_cursor` names; 400 naming `cursor` for anything else."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        position = json.loads(text)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        position = None
    if not _is_position(position):
        raise InvalidRequest(
            "cursor: is not a cursor this list sent (take it from X-Next-Cursor)", field="cursor"
        )
    created_at, item_id = position
    return created_at, item_id


def _is_position(value: object) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(part, str) and part for part in value)
    )
