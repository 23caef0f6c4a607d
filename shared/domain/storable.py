"""What every store of the pipeline can hold: checked once per event at ingest, without recursion.

An accepted event travels as UTF-8 JSON (Pub/Sub), into BigQuery JSON columns and into Firestore
maps (a dead letter holds its event as one). Python's JSON reader accepts what some of these
refuse, and an event one of them refuses would fail downstream on every retry. So ingest refuses
it up front, with the field at fault (docs/EVENTS.md lists the rules):

- text that is not Unicode: a lone surrogate (`"\\ud800"`) cannot be encoded as UTF-8;
- integers beyond 64 bits (Firestore and BigQuery store 64-bit integers);
- empty keys and keys of the form `__name__` (Firestore refuses them in maps);
- keys leading to a value longer than `MAX_FIELD_PATH_BYTES` together (Firestore caps a field
  path at 1,500 bytes, and records nest an event a few levels down);
- nesting deeper than the event limit (Firestore maps nest at most 20 levels).

An array directly inside an array is valid Segment data (coordinates, matrices) that Firestore
refuses in a map: ingest takes it, and the records that keep an event in Firestore (dead
letters) keep such an event as JSON text instead (`shared/domain/poison.py` asks
`nested_arrays=False`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from shared.domain import limits

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

Path = tuple[str | int, ...]


class OversizedInteger:
    """An integer literal longer than Python reads (`sys.get_int_max_str_digits()`, 4,300 digits):
    the body still parses with this in its place, and only what holds it is refused."""

    __slots__ = ("digits",)

    def __init__(self, digits: int):
        self.digits = digits

    def __repr__(self) -> str:
        return f"OversizedInteger(digits={self.digits})"


@dataclass(frozen=True, slots=True)
class Unstorable:
    """Why a value cannot be carried, and where (a field path such as `properties.items[0]`)."""

    reason: str
    field: str | None


def find_unstorable(
    value: Any,
    max_depth: int,
    path: Path = (),
    check_strings: bool = True,
    check_paths: bool = True,
    *,
    nested_arrays: bool = True,
) -> Unstorable | None:
    """The first reason `value` (found at `path` in its event) cannot be stored, or None.

    Runs on every ingested event, so callers skip what they know holds: `check_strings=False`
    for a value orjson encoded (every string is then Unicode, every integer within 64 bits
    unsigned), `check_paths=False` for one whose compact JSON is at most `MAX_FIELD_PATH_BYTES`
    (every key path is shorter than the text holding it).
    """
    if value.__class__ is not dict and value.__class__ is not list:
        return _scalar(value, path, check_strings)
    # Each entry: a container, its depth, its key path's size (+1, see below), where it is.
    # `where` is a linked list (parent_where, key): built per container, joined only to report.
    stack: list[tuple[Any, int, int, Any]] = [(value, len(path), _path_bytes(path), _linked(path))]
    pop, push = stack.pop, stack.append
    nested: Unstorable | None = None
    while stack:
        current, depth, used, where = pop()
        if depth >= max_depth:
            return Unstorable(limits.TOO_DEEP, None)
        depth += 1
        if current.__class__ is dict:
            for key, child in current.items():
                if not key:
                    return Unstorable(limits.EMPTY_KEY, _name(where))
                if key[0] == "_" and key[:2] == "__" and key[-2:] == "__" and len(key) >= 4:
                    return Unstorable(limits.RESERVED_KEY, _name((where, key)))
                size = 0
                if check_paths or check_strings:
                    if key.isascii():
                        size = used + len(key) + 1
                    elif check_strings and not_unicode(key):
                        return Unstorable(limits.NOT_UNICODE, _name((where, key)))
                    else:
                        size = used + len(key.encode("utf-8")) + 1
                    # The sizes count a dot before every key, the first included: one over.
                    if check_paths and size > limits.MAX_FIELD_PATH_BYTES + 1:
                        return Unstorable(limits.FIELD_PATH_TOO_LONG, _name((where, key)))
                kind = child.__class__
                if kind is dict or kind is list:
                    push((child, depth, size, (where, key)))
                elif kind is int:
                    if child > INT64_MAX or child < INT64_MIN:
                        return Unstorable(limits.INTEGER_OUT_OF_RANGE, _name((where, key)))
                elif check_strings and kind is not float and kind is not bool:
                    # Strings, None and unreadable integers: only where orjson refused the value.
                    problem = _scalar(child, (*_path(where), key), check_strings)
                    if problem is not None:
                        return problem
        else:
            for index, child in enumerate(current):
                kind = child.__class__
                if kind is dict:
                    push((child, depth, used, (where, index)))
                elif kind is list and not nested_arrays:
                    # Reported once the walk is over: nesting too deep says more, and is found
                    # only by walking on.
                    nested = nested or Unstorable(limits.NESTED_ARRAY, _name((where, index)))
                    push((child, depth, used, (where, index)))
                elif kind is list:
                    push((child, depth, used, (where, index)))
                elif kind is int:
                    if child > INT64_MAX or child < INT64_MIN:
                        return Unstorable(limits.INTEGER_OUT_OF_RANGE, _name((where, index)))
                elif check_strings and kind is not float and kind is not bool:
                    # Strings, None and unreadable integers: only where orjson refused the value.
                    problem = _scalar(child, (*_path(where), index), check_strings)
                    if problem is not None:
                        return problem
    return nested


# A run of 19 digits, which every integer beyond 64 bits has (and no float orjson writes: 17 at
# most), is a run of 19 zeros once every digit is a "0" and every other byte a space.
_DIGITS_AS_ZEROS = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_LONG_DIGITS = b"0" * 19


def plainly_storable(encoded: bytes, max_depth: int, wide_integers: bool = True) -> bool:
    """Whether the orjson text of a dict or list (`encoded`) shows that `find_unstorable(value,
    max_depth, (), check_strings=False, check_paths=False)` finds nothing: ~2 us for an event
    where the walk takes ~7. False means "walk to know": a string value holding `"__` or 19
    digits, say, is suspect here and fine there. `wide_integers=False`: the caller knows every
    integer is within 53 bits (orjson's `OPT_STRICT_INTEGER` wrote the text).

    orjson wrote every key as `"key":` (a quote inside text is escaped), so: no `"":`, no empty
    key; no `"__`, no key of the form `__name__`; at most `max_depth` brackets in all, no nesting
    deeper than `max_depth` containers; and no 19 digits in a row, no integer beyond 64 bits
    (orjson refuses those below -2**63, writes those up to 2**64 - 1).
    """
    return (
        b'"":' not in encoded
        and b'"__' not in encoded
        and encoded.count(b"{") + encoded.count(b"[") <= max_depth
        and not (wide_integers and _LONG_DIGITS in encoded.translate(_DIGITS_AS_ZEROS))
    )


def find_unencodable(value: Any) -> Unstorable | None:
    """The first text that is not Unicode or integer too long to read in `value`, or None: what
    no store can take, whatever else it accepts (configuration bodies are checked with this)."""
    # orjson refuses every text that is not Unicode, and any object it does not know (an
    # OversizedInteger among them): what it writes holds nothing this looks for, known in ~1 us
    # where the walk takes ~15 for an event (process screens every event with this). What it
    # refuses for other reasons (an integer beyond 64 bits, a key that is not text) the walk
    # decides.
    try:
        orjson.dumps(value)
    except TypeError:
        pass
    else:
        return None
    stack: list[tuple[Any, Any]] = [(value, None)]
    while stack:
        current, where = stack.pop()
        if current.__class__ is dict:
            for key, child in current.items():
                if not_unicode(key):
                    return Unstorable(limits.NOT_UNICODE, _name((where, key)))
                stack.append((child, (where, key)))
        elif current.__class__ is list:
            stack.extend((child, (where, index)) for index, child in enumerate(current))
        elif current.__class__ is OversizedInteger:
            return Unstorable(limits.INTEGER_OUT_OF_RANGE, _name(where))
        elif current.__class__ is str and not_unicode(current):
            return Unstorable(limits.NOT_UNICODE, _name(where))
    return None


def _linked(path: Path) -> Any:
    where: Any = None
    for part in path:
        where = (where, part)
    return where


def _path(where: Any) -> Path:
    parts: list[str | int] = []
    while where is not None:
        where, part = where
        parts.append(part)
    return tuple(reversed(parts))


def _name(where: Any) -> str | None:
    return field_name(_path(where))


def field_name(path: Path) -> str | None:
    """A field path in plain words: `properties.items[0].name`; None for the event itself.
    Text that is not Unicode is shown as its escape, so the name can always be answered."""
    name = ""
    for part in path:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            text = part if part.isascii() else part.encode("utf-8", "backslashreplace").decode()
            name += f".{text}" if name else text
    return name or None


def _scalar(value: Any, path: Path, check_strings: bool) -> Unstorable | None:
    """What is wrong with a value that is not a container, if anything."""
    kind = value.__class__
    if kind is int:
        if not INT64_MIN <= value <= INT64_MAX:
            return Unstorable(limits.INTEGER_OUT_OF_RANGE, field_name(path))
    elif kind is OversizedInteger:
        return Unstorable(limits.INTEGER_OUT_OF_RANGE, field_name(path))
    elif kind is str and check_strings and not_unicode(value):
        return Unstorable(limits.NOT_UNICODE, field_name(path))
    return None


def not_unicode(text: str) -> bool:
    """Whether `text` holds a lone surrogate (the only str that UTF-8 cannot encode)."""
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _path_bytes(path: Path) -> int:
    # Counted as in the walk: each key's UTF-8 bytes and a dot, so one more than the path's size.
    return sum(
        len(part.encode("utf-8", "surrogatepass")) + 1 for part in path if isinstance(part, str)
    )
