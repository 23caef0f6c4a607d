"""Transformations: golden cases of user code, event and metadata with the expected outcome.

Cases live in tests/golden/transformations/<case>.json as {source_code, input, metadata,
expected}; `expected` is {"events": [...]} (what deliver sends; [] is a drop) or {"error",
"line"}, plus "logs" when the code logs. Adding a case means adding a file.
`UPDATE_GOLDEN=1 pytest tests/unit/test_transform_golden.py` rewrites every `expected`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from shared.transform import Limits, Program, valid_events

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden" / "transformations"
GOLDEN_FILES = sorted(GOLDEN_DIR.glob("*.json"))


def outcome(case: dict[str, Any]) -> dict[str, Any]:
    """What the runtime makes of a case, in the golden files' shape."""
    result = Program(case["source_code"], Limits()).run(case["input"], case["metadata"])
    found: dict[str, Any]
    if result.error is not None:
        found = {"error": result.error, "line": result.line}
    else:
        try:
            found = {"events": valid_events(result.output)}
        except ValueError as exc:
            found = {"error": str(exc), "line": None}
    if result.logs:
        found["logs"] = result.logs
    return found


def test_golden_cases_exist() -> None:
    assert len(GOLDEN_FILES) >= 10


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=lambda p: p.stem)
def test_golden(path: Path) -> None:
    case = json.loads(path.read_text())
    found = outcome(case)
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(
            json.dumps({**case, "expected": found}, indent=2, ensure_ascii=False) + "\n"
        )
    assert found == case["expected"]
