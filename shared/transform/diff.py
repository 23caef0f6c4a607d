"""Structural differences between two JSON values, path by path."""

from __future__ import annotations

from typing import Any

# Marks a side where the path does not exist (distinct from a JSON null).
MISSING: Any = object()


def diff(expected: Any, actual: Any, path: str = "") -> list[dict[str, Any]]:
    """Every leaf where `actual` differs from `expected`: {path, expected, actual, change}.

    `change` is "added" (absent from expected), "removed" (absent from actual) or "changed";
    paths read like `properties.items[0]`, the root is "". Types are strict: 1 is not true.
    """
    if isinstance(expected, dict) and isinstance(actual, dict):
        found: list[dict[str, Any]] = []
        for key in [*expected, *(k for k in actual if k not in expected)]:
            child = f"{path}.{key}" if path else str(key)
            found.extend(diff(expected.get(key, MISSING), actual.get(key, MISSING), child))
        return found
    if isinstance(expected, list) and isinstance(actual, list):
        found = []
        for index in range(max(len(expected), len(actual))):
            found.extend(
                diff(
                    expected[index] if index < len(expected) else MISSING,
                    actual[index] if index < len(actual) else MISSING,
                    f"{path}[{index}]",
                )
            )
        return found
    if _same(expected, actual):
        return []
    change = "added" if expected is MISSING else "removed" if actual is MISSING else "changed"
    return [
        {
            "path": path,
            "expected": None if expected is MISSING else expected,
            "actual": None if actual is MISSING else actual,
            "change": change,
        }
    ]


def _same(a: Any, b: Any) -> bool:
    if a is MISSING or b is MISSING:
        return a is b
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and bool(a == b)
