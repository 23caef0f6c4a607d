"""Poison events: what the stores cannot carry, and the errors that mean one event is at fault.

Ingest refuses such events; these checks are the pipeline's own guard for what still gets
through (a message published before a check existed, a contract that fails on one event), so
that one event is set aside with its reason and its neighbours go on.
"""

from __future__ import annotations

import json
from typing import Any

from shared.domain.storable import find_unstorable

# Errors that an event's own content raises in pure code (a value of the wrong type, a missing
# field, text that is not Unicode, a schema recursing without end): retrying the same event can
# never help. Anything else (an outage, a refused permission) is the pipeline's, not the event's.
DATA_ERRORS: tuple[type[Exception], ...] = (
    ValueError,  # UnicodeError and JSONDecodeError included
    TypeError,
    LookupError,  # KeyError, IndexError
    RecursionError,
    ArithmeticError,
    AttributeError,
)
# Firestore refuses maps nested deeper than this (a document counts as one level).
FIRESTORE_MAX_DEPTH = 20


def _encodes(text: str) -> bool:
    try:
        text.encode()
        return True
    except UnicodeEncodeError:
        return False


def safe_text(text: str) -> str:
    """`text` with anything UTF-8 cannot encode written as `\\udXXX`: storable and readable."""
    return text.encode("utf-8", "backslashreplace").decode()


def firestore_storable(value: Any) -> bool:
    """Whether Firestore can store `value` as a map field (shared/domain/storable.py's rules,
    arrays directly inside arrays included)."""
    return find_unstorable(value, FIRESTORE_MAX_DEPTH, nested_arrays=False) is None


def event_json(event: Any) -> str | None:
    """The event as JSON text that any store takes: readable where it can be, with `\\u`
    escapes where it holds text UTF-8 cannot encode; None when it cannot be serialised."""
    try:
        text = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    except DATA_ERRORS:
        return None
    return text if _encodes(text) else json.dumps(event, separators=(",", ":"))


def failure_reason(step: str, error: BaseException) -> str:
    """A one-line, storable reason for an event that failed `step`."""
    detail = safe_text(str(error))[:300]
    return f"{step} failed on this event: {type(error).__name__}" + (
        f": {detail}" if detail else ""
    )
