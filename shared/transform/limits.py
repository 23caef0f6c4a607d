"""What one transformation call may use: CPU time, memory, output and console output."""

from __future__ import annotations

from dataclasses import dataclass

KB = 1024
MB = 1024 * KB


@dataclass(frozen=True)
class Limits:
    """Per-call limits of the sandbox; `shared.config.Settings` holds the deployment's values."""

    # CPU time of one call (the user's top-level code, transform() and serialising its result).
    cpu_ms: int = 100
    # Heap of one context; a context serves one transformation version on one thread.
    memory_bytes: int = 64 * MB
    # Sum of the heap limits of the calls running at once in the instance (`HeapBudget`).
    sandbox_bytes: int = 512 * MB
    # Heap a context may keep between calls (an idle one holds ~0.3 MB); above it, its garbage
    # is collected, and a context still above it is dropped.
    idle_bytes: int = 1 * MB
    # UTF-8 bytes of the JSON the call returns (one event, or a fan-out's array).
    output_bytes: int = 32 * KB
    # console.log/info/warn/error lines kept per call, and their total characters.
    log_lines: int = 50
    log_chars: int = 4 * KB
    # Largest source_code accepted.
    source_chars: int = 64 * KB
