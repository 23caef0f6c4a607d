"""Documents as the configuration store keeps them, within Firestore's documented limits
(https://firebase.google.com/docs/firestore/quotas), so that any valid JSON a user saves comes
back exactly as sent.

Users save JSON that Firestore cannot hold as a map: an empty key or one of the form `__name__`,
an array directly inside an array, nesting deeper than 20 levels, a key path longer than 1,500
bytes, an integer beyond 64 bits, or so many values that their index entries pass Firestore's
40,000 per document. Such a value is kept whole, as JSON text in a bytes field marked by
`STORED_JSON` (Streams stores no other bytes), and read back as the JSON it was; every other
value is stored as it is, so documents written before this existed read unchanged.

What cannot be kept either way is refused: a document over 1 MiB (`DocumentTooLarge`, 413) and a
path that cannot name a document (`DocumentPathInvalid`, a bug: ids are checked where they enter).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from shared.domain.errors import PayloadTooLarge
from shared.domain.ids import is_document_path
from shared.domain.storable import not_unicode

Document = dict[str, Any]

# Marks a value kept as JSON text: the prefix of its bytes.
STORED_JSON = b"streams:json\n"
MAX_DOCUMENT_BYTES = 1_048_576
# Maps and arrays nest at most 20 deep (the emulator refuses the 21st level).
MAX_DEPTH = 20
MAX_FIELD_PATH_BYTES = 1_500
MAX_INDEX_ENTRIES = 40_000
# Each value is indexed ascending and descending (arrays: one entry per element), so a value
# costs about two entries; documents of Streams' own fields use a few hundred at most.
INDEX_ENTRIES_PER_VALUE = 2
# A string compared in a query is an index entry: the emulator refuses one of 1,500 bytes.
MAX_QUERY_VALUE_BYTES = 1_499
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Each path segment of a document name costs its bytes and one; the name 16 more.
DOCUMENT_NAME_BYTES = 16
DOCUMENT_BYTES = 32


class DocumentPathInvalid(ValueError):
    """A path that cannot name a Firestore document (an id empty, reserved, with `/`...)."""


class DocumentTooLarge(PayloadTooLarge, ValueError):
    """A document over Firestore's 1 MiB: 413 to a client, and an event's own fault to the
    pipeline (a `ValueError`, so one such event is set aside, not its whole message)."""


def encode_fields(data: Document) -> Document:
    """The fields of a write as Firestore can hold them: each value it would refuse, or whose
    index entries would pass its limit, as marked JSON bytes; the others as they are."""
    encoded: Document = {}
    counts: dict[str, int] = {}
    for name, value in data.items():
        if value.__class__ is not dict and value.__class__ is not list:
            encoded[name] = value
            counts[name] = 1
            continue
        # A field name Firestore refuses is Streams' own, chosen in code: Firestore says so.
        fits, count = _fits(value, _segment(name) or len(name))
        encoded[name] = value if fits else _as_json(name, value)
        counts[name] = count if fits else 1
    # Index entries are counted per document: the fields holding the most values go first.
    entries = sum(counts.values()) * INDEX_ENTRIES_PER_VALUE
    for name in sorted(counts, key=counts.__getitem__, reverse=True):
        if entries <= MAX_INDEX_ENTRIES or counts[name] <= 1:
            break
        encoded[name] = _as_json(name, data[name])
        entries -= (counts[name] - 1) * INDEX_ENTRIES_PER_VALUE
    return encoded


def encode_document(path: str, data: Document) -> Document:
    """`data` as Firestore can hold it at `path` (`encode_fields`); `DocumentTooLarge` when
    even so it is over 1 MiB, naming its largest field."""
    encoded = encode_fields(data)
    size = document_size(path, encoded)
    if size > MAX_DOCUMENT_BYTES:
        largest = max(encoded, key=lambda name: value_size(encoded[name]), default=None)
        # Fields kept as JSON text by their service are named `<field>_json`: the client knows
        # them by the field it sent.
        field = largest.removesuffix("_json") if largest else None
        raise DocumentTooLarge(
            f"{field} is too large to store: the record would take {size:,} bytes, more than "
            f"the {MAX_DOCUMENT_BYTES:,} (1 MiB) a stored document may",
            field=field,
        )
    return encoded


def decode_document(document: Document) -> Document:
    """A stored document as it was written: values kept as JSON read back as that JSON."""
    if not any(value.__class__ is bytes for value in document.values()):
        return document
    return {name: _decoded(value) for name, value in document.items()}


def query_condition(op: str, value: Any) -> tuple[str, Any] | None:
    """`op value` as Firestore takes it in a query filter, or None when it can match nothing.

    Firestore refuses a string too long to index (1,500 bytes) in a filter; the fields Streams
    queries by (ids, names, times) never hold one. Against such shorter values, a long string
    compares as its longest indexable prefix does, `<=` for `<` and `>` for `>=`, and equals
    none of them.
    """
    if op == "in":
        kept = [item for item in value if _queryable(item)]
        return (op, kept) if kept else None
    if _queryable(value):
        return op, value
    if op in ("==", "array-contains"):
        return None
    prefix = value.encode("utf-8")[:MAX_QUERY_VALUE_BYTES].decode("utf-8", "ignore")
    return ("<=" if op in ("<", "<=") else ">"), prefix


def _queryable(value: Any) -> bool:
    return value.__class__ is not str or len(value.encode("utf-8")) <= MAX_QUERY_VALUE_BYTES


def document_size(path: str, document: Document) -> int:
    """A document's size as Firestore counts it: its name, each field's name and value, 32."""
    name = sum(len(part.encode("utf-8")) + 1 for part in path.split("/")) + DOCUMENT_NAME_BYTES
    return name + value_size(document) + DOCUMENT_BYTES


def value_size(value: Any) -> int:
    """A value's size as Firestore counts it: strings their UTF-8 bytes and one, numbers and
    times 8, booleans and null 1, bytes their length, maps each key (as a string) and value."""
    total = 0
    stack = [value]
    while stack:
        current = stack.pop()
        kind = current.__class__
        if kind is dict:
            for key, child in current.items():
                total += _text_size(key) if isinstance(key, str) else 8
                stack.append(child)
        elif kind is list:
            stack.extend(current)
        elif kind is str:
            total += _text_size(current)
        elif kind is bytes:
            total += len(current)
        elif current is None or kind is bool:
            total += 1
        else:  # int, float, datetime and whatever else a client sends as 8 bytes
            total += 8
    return total


def check_document_path(path: str) -> None:
    """Raise `DocumentPathInvalid` unless `path` can name a document (writes only: a read of
    such a path finds nothing, since nothing can be there)."""
    if not is_document_path(path):
        raise DocumentPathInvalid(f"{path!r} cannot name a Firestore document")


def firestore_refusal(document: Document) -> str | None:
    """Why Firestore refuses to store `document`, or None: for a fake of the store, which must
    refuse what Firestore refuses (the adapter never sends it such a document)."""
    for name, value in document.items():
        segment = _segment(name)
        if segment is None:
            return f"a field name Firestore refuses: {name!r}"
        if problem := _refusal(value, 1, segment):
            return f"{name}: {problem}"
    return None


def _refusal(value: Any, depth: int, path_bytes: int) -> str | None:
    if path_bytes > MAX_FIELD_PATH_BYTES:
        return f"a field path longer than {MAX_FIELD_PATH_BYTES} bytes"
    if (value.__class__ is dict or value.__class__ is list) and depth > MAX_DEPTH:
        return f"maps and arrays nested more than {MAX_DEPTH} deep"
    if value.__class__ is dict:
        for key, child in value.items():
            segment = _segment(key)
            if segment is None:
                return f"a field name Firestore refuses: {key!r}"
            if problem := _refusal(child, depth + 1, path_bytes + 1 + segment):
                return problem
    elif value.__class__ is list:
        for child in value:
            if child.__class__ is list:
                return "an array directly inside an array"
            if problem := _refusal(child, depth + 1, path_bytes):
                return problem
    elif value.__class__ is int and not INT64_MIN <= value <= INT64_MAX:
        return "an integer beyond 64 bits"
    elif value.__class__ is str and not_unicode(value):
        return "text that UTF-8 cannot encode"
    return None


def _fits(value: Any, path_bytes: int) -> tuple[bool, int]:
    """Whether Firestore holds `value` (a map or an array under a field path of `path_bytes`)
    as it is, and how many values it holds (itself included). Runs on every write, so it
    walks without recursion and spends as little as it can on each value."""
    # Each entry: a container, its depth (the field's own value is 1), its field path's size.
    stack: list[tuple[Any, int, int]] = [(value, 1, path_bytes)]
    pop, push = stack.pop, stack.append
    count = 1
    while stack:
        current, depth, used = pop()
        if depth > MAX_DEPTH:
            return False, count
        depth += 1
        if current.__class__ is dict:
            count += len(current)
            for key, child in current.items():
                segment = _segment(key)
                if segment is None or used + 1 + segment > MAX_FIELD_PATH_BYTES:
                    return False, count
                kind = child.__class__
                if kind is dict or kind is list:
                    push((child, depth, used + 1 + segment))
                elif not _scalar_fits(child):
                    return False, count
        else:
            count += len(current)
            for child in current:
                kind = child.__class__
                if kind is list:
                    return False, count  # Firestore holds no array directly in an array
                if kind is dict:
                    push((child, depth, used))
                elif not _scalar_fits(child):
                    return False, count
    return True, count


def _segment(key: Any) -> int | None:
    """A map key's bytes in a field path (quoted with backticks unless a simple name, as
    Firestore writes it: counting the quotes keeps on the safe side of the limit), or None
    for a key Firestore refuses."""
    if key.__class__ is not str or not key:
        return None
    if key[:2] == "__" and key[-2:] == "__" and len(key) >= 4:
        return None  # of the reserved form `__.*__`
    if key.isascii():
        if key.isidentifier():  # for ASCII text: [A-Za-z_][A-Za-z0-9_]*
            return len(key)
        return len(key) + 2 + key.count("`") + key.count("\\")
    if not_unicode(key):
        return None
    return len(key.encode("utf-8")) + 2 + key.count("`") + key.count("\\")


def _scalar_fits(value: Any) -> bool:
    kind = value.__class__
    if kind is str:
        return value.isascii() or not not_unicode(value)
    if kind is int:
        return INT64_MIN <= value <= INT64_MAX
    return True


def _as_json(name: str, value: Any) -> bytes:
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_not_json)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} cannot be stored: {exc}") from exc
    # surrogatepass: a lone surrogate a client escaped in JSON comes back as sent.
    return STORED_JSON + text.encode("utf-8", "surrogatepass")


def _not_json(value: Any) -> Any:
    kind = "a time" if isinstance(value, datetime) else type(value).__name__
    raise TypeError(f"{kind} is not JSON and cannot be kept with what Firestore refuses")


def _decoded(value: Any) -> Any:
    if value.__class__ is bytes and value.startswith(STORED_JSON):
        return json.loads(value[len(STORED_JSON) :].decode("utf-8", "surrogatepass"))
    return value


def _text_size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass")) + 1
