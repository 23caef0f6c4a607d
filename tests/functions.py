"""Test clients of the real function entry points, through functions-framework's own app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import functions_framework

ROOT = Path(__file__).resolve().parent.parent


def function_client(name: str) -> Any:
    """A Flask test client of `functions/<name>/main.py`, as functions-framework serves it."""
    app = functions_framework.create_app(
        target=name, source=str(ROOT / "functions" / name / "main.py")
    )
    return app.test_client()
