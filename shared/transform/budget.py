"""The instance's memory for sandboxes: how many calls may grow to their heap limit at once."""

from __future__ import annotations

import threading
from types import TracebackType

from shared.transform.limits import Limits


class HeapBudget:
    """Admits a call only while the heap limits of the calls running stay within the budget.

    A call may grow its context's heap up to `Limits.memory_bytes`; between calls a context is
    brought back under `Limits.idle_bytes` (or dropped), so the instance holds at most
    `sandbox_bytes` for running calls plus `idle_bytes` per cached context. Other calls wait for
    a running one to end, which its CPU limit bounds.
    """

    def __init__(self, limits: Limits):
        self.slots = max(1, limits.sandbox_bytes // limits.memory_bytes)
        self._free = threading.BoundedSemaphore(self.slots)

    def __enter__(self) -> None:
        self._free.acquire()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._free.release()
