"""JSON across the sandbox's boundary: events and metadata in, the harness's answers out.

orjson does the work (~10x faster than the `json` module on an event); the `json` module takes
over for what orjson refuses, so every value is written or refused as it was before orjson.
"""

from __future__ import annotations

import json
from _json import encode_basestring_ascii, make_encoder, make_scanner
from typing import Any

import orjson

# `json.loads` for the harness's answers (always one JSON value, nothing around it).
_scan = make_scanner(json.JSONDecoder())  # type: ignore[arg-type]
# orjson hands anything but plain JSON types (subclasses, datetimes, dataclasses) back, and the
# `json` module then decides, as it did before orjson was used.
_ORJSON_OPTIONS = (
    orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)


class JsonText(str):
    """Text that is already the compact JSON of a value: passed to the sandbox as it is."""

    __slots__ = ()


def compact_encoder(markers: dict[int, Any]) -> make_encoder:
    """The encoder `json.dumps(value, separators=(",", ":"))` uses, built once rather than per
    call: `"".join(encoder(value, 0))`. `markers` is its cycle check, and must be empty before
    each call (an encoding that failed leaves entries behind)."""
    default = json.JSONEncoder().default
    return make_encoder(
        markers, default, encode_basestring_ascii, None, ":", ",", False, False, True
    )


class JsonEncoder:
    """Compact JSON of a value; one per thread (the fallback encoder's cycle markers are its own).

    What orjson refuses (integers past 64 bits, lone surrogates, non-string keys, the types it
    passes through) goes to the `json` module, which writes or refuses it as before. NaN and
    infinities become null with orjson, as JSON.stringify makes them (the `json` module wrote
    `NaN`, which JSON.parse refused, failing the call).
    """

    def __init__(self) -> None:
        self._markers: dict[int, Any] = {}
        self._encode = compact_encoder(self._markers)

    def __call__(self, value: Any) -> str:
        try:
            return orjson.dumps(value, option=_ORJSON_OPTIONS).decode()
        except TypeError:
            pass
        if self._markers:
            self._markers.clear()  # left by an encoding that failed
        return "".join(self._encode(value, 0))


def loads(text: str, start: int = 0) -> Any:
    """`json.loads(text[start:])`, for text that is one JSON value with nothing around it."""
    try:
        return orjson.loads(text[start:] if start else text)
    except orjson.JSONDecodeError:
        # orjson refuses what JSON.stringify can still write (a lone surrogate's escape) and
        # nests past 1024 levels: the `json` module reads the first and says what is wrong.
        pass
    try:
        value, end = _scan(text, start)
    except StopIteration:
        end = -1
    if end != len(text):
        return json.loads(text[start:])  # says what is wrong
    return value


def may_nest_deeper_than(text: str, limit: int) -> bool:
    """False when JSON `text` cannot nest past `limit`: it opens no more objects and arrays than
    that (brackets inside strings only over-count). Saves walking every result in Python."""
    return text.count("{") + text.count("[") > limit
