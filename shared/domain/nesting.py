"""How deeply JSON values nest, checked without recursion (hostile input nests thousands deep)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def nests_deeper_than(value: Any, limit: int) -> bool:
    """Whether objects and arrays in `value` nest more than `limit` levels; stops at the first."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, dict):
            children: Iterable[Any] = current.values()
        elif isinstance(current, list):
            children = current
        else:
            continue
        if depth + 1 > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
