"""The transformation runtime: user JavaScript in a QuickJS sandbox (pure: no cloud imports).

See docs/TRANSFORMATIONS.md for the contract of `transform(event, metadata)` and the limits.
"""

from shared.transform.budget import HeapBudget
from shared.transform.cache import ProgramCache
from shared.transform.codec import JsonText
from shared.transform.diff import diff
from shared.transform.engine import CompileError, Program, RunResult, check
from shared.transform.events import event_problem, output_events, valid_events
from shared.transform.limits import Limits

__all__ = [
    "CompileError",
    "HeapBudget",
    "JsonText",
    "Limits",
    "Program",
    "ProgramCache",
    "RunResult",
    "check",
    "diff",
    "event_problem",
    "output_events",
    "valid_events",
]
