"""What the quickjs-ng binding leaves out, taken from the engine's own C API: a CPU limit per
thread, and the heap a context holds.

The binding's `set_time_limit` compares C `clock()`, the CPU time of the whole process, so busy
threads elsewhere in the instance used up a transformation's budget and failed it. Here each
context gets an interrupt handler that compares the calling thread's own CPU clock instead, and
the binding's limit is never set (it would replace the handler on every call).

The binding keeps its `JSRuntime` pointer right after the Python object header; `_check` proves
that against the engine (the runtime's opaque is the context object, its memory limit is the one
set) when this module loads, so another binding version fails loudly here rather than later.
"""

from __future__ import annotations

import ctypes
import threading
import time
from typing import Any

import _quickjs
import quickjs

_engine = ctypes.CDLL(_quickjs.__file__)
_InterruptHandler = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
_engine.JS_SetInterruptHandler.argtypes = [ctypes.c_void_p, _InterruptHandler, ctypes.c_void_p]
_engine.JS_SetInterruptHandler.restype = None
_engine.JS_GetRuntimeOpaque.argtypes = [ctypes.c_void_p]
_engine.JS_GetRuntimeOpaque.restype = ctypes.c_void_p
_engine.JS_RunGC.argtypes = [ctypes.c_void_p]
_engine.JS_RunGC.restype = None

# The binding's context object: the Python object header, then `JSRuntime *runtime`.
_RUNTIME_AT = object.__basicsize__
# quickjs-ng's JSRuntime starts with its five allocator functions, then JSMallocState
# {malloc_count, malloc_size, malloc_limit, opaque}.
_MALLOC_SIZE_AT = 6 * ctypes.sizeof(ctypes.c_void_p)
_MALLOC_LIMIT_AT = 7 * ctypes.sizeof(ctypes.c_void_p)

# The calling thread's CPU clock (CLOCK_THREAD_CPUTIME_ID): time other threads run is not counted.
thread_cpu = time.thread_time


class _Deadline(threading.local):
    # Fail closed: an engine call nobody allowed CPU for is stopped at the first check.
    at = 0.0


_deadline = _Deadline()


def _over_cpu_limit(runtime: int | None, opaque: int | None) -> int:
    """The engine asks every ~10,000 steps whether to stop; it holds no GIL until this runs."""
    return 1 if thread_cpu() > _deadline.at else 0


# One C callback for every context, kept alive as long as the module.
_HANDLER = _InterruptHandler(_over_cpu_limit)


def allow_cpu(seconds: float) -> float:
    """Let the calling thread's next engine call run for `seconds` of its own CPU time; returns
    the thread's CPU clock now (each reading is a system call: callers reuse it)."""
    now = thread_cpu()
    _deadline.at = now + seconds
    return now


class Engine:
    """One binding context seen through the C API: a per-thread CPU limit, its heap in use."""

    __slots__ = ("_heap", "_runtime")

    def __init__(self, context: Any):
        runtime = ctypes.c_void_p.from_address(id(context) + _RUNTIME_AT).value
        assert runtime, "a binding context always has its runtime"
        self._runtime: int = runtime
        # Read on every call: a ctypes view of the field costs ~0.1 µs, `context.memory()` ~18.
        self._heap = ctypes.c_size_t.from_address(self._runtime + _MALLOC_SIZE_AT)
        _engine.JS_SetInterruptHandler(self._runtime, _HANDLER, None)

    def heap_bytes(self) -> int:
        """Bytes the context's runtime holds allocated (live objects and uncollected garbage)."""
        return int(self._heap.value)

    def collect(self) -> None:
        """Free the context's unreachable cycles (the binding's `gc()` also runs Python's GC)."""
        _engine.JS_RunGC(self._runtime)


def _check() -> None:
    context = quickjs.Context()
    context.set_memory_limit(48 * 1024 * 1024 + 4096)
    runtime = ctypes.c_void_p.from_address(id(context) + _RUNTIME_AT).value
    if not runtime or _engine.JS_GetRuntimeOpaque(runtime) != id(context):
        raise ImportError(f"{_quickjs.__file__}: the binding's context layout is not the known one")
    limit = ctypes.c_size_t.from_address(runtime + _MALLOC_LIMIT_AT).value
    if limit != 48 * 1024 * 1024 + 4096 or Engine(context).heap_bytes() != int(
        context.memory()["malloc_size"]
    ):
        raise ImportError(
            f"{_quickjs.__file__}: the engine's JSRuntime layout is not the known one"
        )


_check()
