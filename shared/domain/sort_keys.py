"""The keys that order time-stamped records (violations, quarantine, the audit log) in one
field: Firestore orders and pages by a single field cheaply."""

from __future__ import annotations


def sort_key(at: str, record_id: str) -> str:
    """A unique, time-ordered key: ISO time, then the id to order records of the same instant."""
    return f"{at}|{record_id}"


def upper_bound(at: str) -> str:
    """The greatest sort key of an instant (ids sort below this)."""
    return f"{at}|\uffff"
