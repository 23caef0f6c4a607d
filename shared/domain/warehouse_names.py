"""Warehouse names: Segment's snake_case for tables and columns, made unique and safe for BigQuery.

Rules (docs/WAREHOUSE.md):
- camelCase and acronyms split into words ("orderId" -> order_id, "HTMLTitle" -> html_title);
  anything but ASCII letters and digits separates words; accents fold to their letter ("Prix net
  €" -> prix_net); the result is lower case.
- A name starting with a digit gets a leading underscore ("2fa" -> _2fa); one with nothing left
  ("€€") is `_` and a hash of the original, so it stays stable.
- At most MAX_NAME_CHARS characters, cut before any suffix.
- Collisions: the names a table has already (its standard columns, or the standard tables) win;
  then keys in the order they were first seen take the next free `name`, `name_2`, `name_3`, ...
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable

# BigQuery allows 300 characters in a column name and 1,024 in a table's; one bound for both
# leaves room for a collision suffix and keeps names readable.
MAX_NAME_CHARS = 120
_WORD_BOUNDARIES = (
    re.compile(r"([a-z0-9])([A-Z])"),  # orderId -> order_Id
    re.compile(r"([A-Z]+)([A-Z][a-z])"),  # HTMLTitle -> HTML_Title
)
_NOT_NAME = re.compile(r"[^A-Za-z0-9]+")
# A key that cannot be written inside a BigQuery JSONPath literal (the emulator and BigQuery
# disagree on escapes there): its values stay in the table's JSON column, it gets no column.
_UNADDRESSABLE = re.compile(r"['\"\\\x00-\x1f]")


def snake_case(name: str) -> str:
    """Segment's warehouse spelling of an event name, property or trait."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    for boundary in _WORD_BOUNDARIES:
        folded = boundary.sub(r"\1_\2", folded)
    words = _NOT_NAME.sub("_", folded).strip("_").lower()
    if not words:
        return "_" + hashlib.sha256(name.encode()).hexdigest()[:8]
    if words[0].isdigit():
        words = "_" + words
    return words[:MAX_NAME_CHARS].rstrip("_") or words[:MAX_NAME_CHARS]


def addressable(key: str) -> bool:
    """Whether a key can be read into a column by a JSONPath literal."""
    return bool(key) and _UNADDRESSABLE.search(key) is None


def unique_names(keys: Iterable[str], taken: Iterable[str]) -> dict[str, str]:
    """Each key's name, in the order given, never one of `taken` nor one given before."""
    used = {name.lower() for name in taken}
    names: dict[str, str] = {}
    for key in keys:
        base = snake_case(key)
        name, suffix = base, 1
        while name in used:
            suffix += 1
            name = f"{base}_{suffix}"
        used.add(name)
        names[key] = name
    return names
