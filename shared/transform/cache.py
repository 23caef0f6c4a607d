"""Compiled programs, kept per thread: compiled once per transformation version and reused."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from shared.transform.budget import HeapBudget
from shared.transform.codec import JsonText
from shared.transform.engine import Program, RunResult
from shared.transform.limits import Limits

# (workspace_id, transformation_id, version)
Key = tuple[str, str, int]
# Programs one thread keeps (a context is ~0.2 MB when idle); the least recently used goes first.
MAX_PROGRAMS_PER_THREAD = 32


class ProgramCache:
    """Programs by (workspace, transformation, version), one set per thread.

    A QuickJS context may only be used by the thread that created it, so each thread of the
    instance compiles its own copy. A new version of a transformation evicts the older ones.
    """

    def __init__(self, limits: Limits, max_programs: int = MAX_PROGRAMS_PER_THREAD):
        self.limits = limits
        # Shared by every thread's programs: the instance's memory for running calls.
        self.budget = HeapBudget(limits)
        self._max_programs = max_programs
        self._local = threading.local()

    def run(
        self, key: Key, source_code: str, event: Any, metadata: dict[str, Any] | JsonText
    ) -> RunResult:
        """Run the transformation version `key` (compiling it on this thread's first use).

        Raises `CompileError` when the code does not compile.
        """
        programs = self._programs()
        program = programs.get(key)
        if program is None:
            program = self.program(key, source_code)
        else:
            programs.move_to_end(key)
        result = program.run(event, metadata)
        if program.broken:
            programs.pop(key, None)
        return result

    def program(self, key: Key, source_code: str) -> Program:
        programs = self._programs()
        program = programs.get(key)
        if program is not None:
            programs.move_to_end(key)
            return program
        program = Program(source_code, self.limits, self.budget)
        for old in [k for k in programs if k[:2] == key[:2]]:
            del programs[old]
        programs[key] = program
        while len(programs) > self._max_programs:
            programs.popitem(last=False)
        return program

    def size(self) -> int:
        """Programs held by the calling thread."""
        return len(self._programs())

    def _programs(self) -> OrderedDict[Key, Program]:
        programs: OrderedDict[Key, Program] | None = getattr(self._local, "programs", None)
        if programs is None:
            programs = self._local.programs = OrderedDict()
        return programs
