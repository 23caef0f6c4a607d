"""QuickJS programs: one transformation compiled in one sandboxed context, and the compile check.

A context is not thread-safe and QuickJS checks its stack against the thread that created it:
a `Program` is built, used and dropped on one thread (`ProgramCache` keeps one per thread).
The CPU limit counts the calling thread's CPU time only (`shared.transform.native`).
"""

from __future__ import annotations

import re
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import quickjs

from shared.domain.limits import MAX_EVENT_DEPTH
from shared.domain.nesting import nests_deeper_than
from shared.transform.budget import HeapBudget
from shared.transform.codec import JsonEncoder, JsonText, loads, may_nest_deeper_than
from shared.transform.harness import (
    PARSE_PREFIX,
    PARSED,
    factory_length,
    factory_source,
    harness_source,
)
from shared.transform.limits import Limits
from shared.transform.native import Engine, allow_cpu, thread_cpu

# JavaScript stack per context: quickjs-ng's default is 1 MB; this is the 256 KB the original
# QuickJS had, far below the smallest thread stack functions-framework's threads get.
STACK_BYTES = 256 * 1024
# The longest line a syntax error's column is searched on (one parse per character).
COLUMN_SEARCH_CHARS = 500
_LINE = re.compile(r"<input>:(\d+)")
_TOKEN = re.compile(r": '(.*)'$")
_FRAME = re.compile(r"^\s*at (\S+) \((.*)\)\s*$")
_OUTPUT = ',"output":'


def _require_quickjs_ng() -> None:
    """The sandbox is written for quickjs-ng (its messages, globals and string handling). The
    older `quickjs` distribution installs the same `quickjs` and `_quickjs` modules, and a venv
    that had it keeps its `_quickjs` extension, which Python prefers, beside quickjs-ng's."""
    if quickjs.Context().eval("typeof Iterator") != "function":
        raise ImportError(
            f"{quickjs.__file__} runs the old QuickJS, not quickjs-ng: in this environment run "
            "`pip uninstall -y quickjs quickjs-ng && pip install quickjs-ng`"
        )


_require_quickjs_ng()


class CompileError(Exception):
    """The code cannot become a transformation: a syntax error, or no `transform` function."""

    def __init__(
        self,
        message: str,
        line: int | None = None,
        column: int | None = None,
        *,
        permanent: bool = True,
    ):
        where = ""
        if line is not None:
            where = f" at line {line}" + (f", column {column}" if column is not None else "")
        super().__init__(message + where)
        self.message = message + where
        self.line = line
        self.column = column
        # False when a limit stopped the code's top level: it may load on another try.
        self.permanent = permanent


# Not frozen: a frozen dataclass's __init__ costs ~1 µs more, on every event.
@dataclass(slots=True)
class RunResult:
    """One call: the JSON value returned (None when it returned null or undefined), or an error."""

    output: Any = None
    error: str | None = None
    line: int | None = None
    logs: list[str] = field(default_factory=list)
    duration_ms: float = 0.0
    # CPU time of the calling thread during the call.
    cpu_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


class Program:
    """A transformation compiled in a fresh, hardened context of its own; one thread only."""

    def __init__(self, source_code: str, limits: Limits, budget: HeapBudget | None = None):
        self.limits = limits
        # Admits each call within the instance's sandbox memory; None for one-off compiles.
        self._budget = budget
        # Set when the context may hold state an engine-level failure left behind: rebuild it.
        self.broken = False
        self.source_code = source_code
        self._to_json = JsonEncoder()  # per program, so per thread
        if len(source_code) > limits.source_chars:
            raise CompileError(f"source_code is longer than {limits.source_chars} characters")
        self._context = quickjs.Context()
        self._context.set_memory_limit(limits.memory_bytes)
        self._engine = Engine(self._context)
        self._context.set_max_stack_size(STACK_BYTES)
        source = harness_source(limits.log_lines, limits.log_chars, limits.output_bytes)
        allow_cpu(limits.cpu_ms / 1000)
        self._harness = self._context.eval(source)
        try:
            allow_cpu(limits.cpu_ms / 1000)
            self._factory = self._context.eval(factory_source(source_code))
        except quickjs.JSException as exc:
            raise _compile_error(source_code, str(exc)) from None
        if self._harness("length", self._factory) != factory_length(source_code):
            # `}); ...; (function () {` would run code outside the per-call factory.
            raise CompileError(
                "source_code must be a script of its own: it closes a block it did not open"
            )
        with self._budget or nullcontext():
            allow_cpu(limits.cpu_ms / 1000)
            probe = self._call("probe")
        if isinstance(probe, str):
            raise CompileError(f"the code failed while loading: {probe}", permanent=False)
        if not probe.get("ok"):
            if "message" in probe:
                line = error_line(probe.get("stack"), source_code)
                raise CompileError(f"the code failed while loading: {probe['message']}", line)
            raise CompileError("source_code must define function transform(event, metadata)")

    def run(
        self, event: Any, metadata: dict[str, Any] | JsonText, cpu_ms: float | None = None
    ) -> RunResult:
        """Run `transform(event, metadata)` once, under the limits. Either may be given as its
        `JsonText` (e.g. metadata shared by many events, serialised once). `cpu_ms` lowers the
        CPU limit of this call (what is left of a larger budget)."""
        started = time.perf_counter()
        event_json = event if type(event) is JsonText else self._to_json(event)
        metadata_json = metadata if type(metadata) is JsonText else self._to_json(metadata)
        limit_ms = self.limits.cpu_ms if cpu_ms is None else min(cpu_ms, self.limits.cpu_ms)
        if self._budget is None:
            answer, cpu_started = self._run_within(limit_ms, event_json, metadata_json)
        else:
            with self._budget:
                answer, cpu_started = self._run_within(limit_ms, event_json, metadata_json)
        used_ms = round((thread_cpu() - cpu_started) * 1000, 3)
        duration_ms = round((time.perf_counter() - started) * 1000, 3)
        if isinstance(answer, str):
            return RunResult(error=answer, duration_ms=duration_ms, cpu_ms=used_ms)
        logs = answer["logs"]
        if answer["dropped_logs"]:
            logs.append(f"... {answer['dropped_logs']} more console line(s) dropped")
        if answer["ok"]:
            return RunResult(answer["output"], None, None, logs, duration_ms, used_ms)
        fatal = bool(answer.get("fatal"))
        self.broken = self.broken or fatal
        return RunResult(
            error=self._engine_error(answer["message"], limit_ms) if fatal else answer["message"],
            line=error_line(answer.get("stack"), self.source_code),
            logs=logs,
            duration_ms=duration_ms,
            cpu_ms=used_ms,
        )

    def heap_bytes(self) -> int:
        """Bytes the context holds now (an idle one: ~0.3 MB, at most `Limits.idle_bytes`)."""
        return self._engine.heap_bytes()

    def _run_within(
        self, limit_ms: float, event_json: str, metadata_json: str
    ) -> tuple[dict[str, Any] | str, float]:
        """The call's answer, and the thread's CPU clock when it started."""
        cpu_started = allow_cpu(limit_ms / 1000)
        answer = self._call("run", event_json, metadata_json, limit_ms=limit_ms)
        if self._engine.heap_bytes() > self.limits.idle_bytes:
            # Garbage a call leaves (cycles) stays until the engine's next collection: idle
            # contexts must not keep the heap a call was allowed.
            self._engine.collect()
            if self._engine.heap_bytes() > self.limits.idle_bytes:
                self.broken = True
        return answer, cpu_started

    def _call(
        self, operation: str, *args: str, limit_ms: float | None = None
    ) -> dict[str, Any] | str:
        """The harness's JSON answer, or a message when the engine itself stopped the call."""
        try:
            raw = self._harness(operation, self._factory, *args)
        except quickjs.JSException as exc:
            self.broken = True
            return self._engine_error(str(exc), limit_ms)
        except (UnicodeError, SystemError, ValueError) as exc:
            self.broken = True
            return f"the result cannot be read: {exc}"
        finally:
            self._discard_jobs()
        if not isinstance(raw, str):
            self.broken = True
            return "the sandbox returned no result"
        # Where the output's JSON starts in `raw`: "=" and the output when the call wrote no
        # console output (no envelope to build or parse), else last in the envelope.
        start = 1 if raw[:1] == "=" else 0
        try:
            if start:
                answer: dict[str, Any] = {
                    "ok": True,
                    "logs": [],
                    "dropped_logs": 0,
                    "output": loads(raw, 1),
                }
            else:
                answer = loads(raw)
                if operation != "run" or not answer["ok"]:
                    return answer
                start = raw.find(_OUTPUT) + len(_OUTPUT)
        except RecursionError:
            # A tiny result can nest past Python's parser: an error of the code, not a crash.
            return "the result nests too deeply"
        # JS measured UTF-16 units, the limit is UTF-8 bytes (as many as characters when all are
        # ASCII). The envelope's output is followed by its closing brace.
        end = len(raw) if raw[0] == "=" else len(raw) - 1
        size = end - start if raw.isascii() else len(raw[start:end].encode())
        if size > self.limits.output_bytes:
            return f"the result is larger than {self.limits.output_bytes} bytes"
        if may_nest_deeper_than(raw, MAX_EVENT_DEPTH) and nests_deeper_than(
            answer["output"], MAX_EVENT_DEPTH
        ):
            # Results are events, bounded like those ingest accepts.
            return f"the result nests deeper than {MAX_EVENT_DEPTH} levels"
        return answer

    def _discard_jobs(self) -> None:
        """A job the call queued (a promise reaction, a rejected `import()`) must neither run in
        a later call nor pile up: run one here, under the time limit, and drop the context."""
        try:
            if self._context.execute_pending_job():
                self.broken = True
        except quickjs.JSException:
            self.broken = True

    def _engine_error(self, text: str, limit_ms: float | None = None) -> str:
        first = text.split("\n", 1)[0]
        if "interrupted" in first:
            limit = self.limits.cpu_ms if limit_ms is None else limit_ms
            return f"the transformation used more than {limit:g} ms of CPU time"
        exhausted = ("null", "threw [uninitialized]", "InternalError:")
        if "out of memory" in first or first.rstrip() in exhausted:
            # Code cannot throw quickjs-ng's internal "uninitialized" value, nor get a thrown
            # null past the harness's catch: only the engine does, when it runs out of memory
            # while making the error. An InternalError whose message could not be read (an
            # empty one) is the same exhaustion, seen a step later.
            megabytes = self.limits.memory_bytes // (1024 * 1024)
            return f"the transformation used more than {megabytes} MB of memory"
        if "stack overflow" in first or "Maximum call stack size exceeded" in first:
            return "the transformation recursed too deeply (stack overflow)"
        if first == "threw null":
            megabytes = self.limits.memory_bytes // (1024 * 1024)
            return f"{first} (as a call that runs out of its {megabytes} MB of memory does)"
        return first or "the transformation failed in the engine"


def check(source_code: str, limits: Limits, budget: HeapBudget | None = None) -> None:
    """Raise `CompileError` (with line, and column for syntax errors) unless the code is usable."""
    if len(source_code) > limits.source_chars:
        raise CompileError(f"source_code is longer than {limits.source_chars} characters")
    syntax = _syntax_error(source_code, limits)
    if syntax is not None:
        raise syntax
    Program(source_code, limits, budget)


def _syntax_error(source_code: str, limits: Limits) -> CompileError | None:
    """The first syntax error of the code parsed as a script, with its line and column."""
    context = _parser(limits)
    first = _parse(context, source_code)
    if first is None:
        return None
    message, line = first
    if message.endswith(": ''"):
        # The parser met the end of the code: a bracket, brace or quote is left open.
        message = message.split(":", 1)[0] + ": unexpected end of the code"
        line = min(line or 1, source_code.count("\n") + 1)
    if line is None:
        return CompileError(message)
    lines = source_code.split("\n")
    return CompileError(message, line, _column(context, lines, message, line))


def _compile_error(source_code: str, text: str) -> CompileError:
    first = text.split("\n", 1)[0]
    found = _LINE.search(text)
    line = int(found.group(1)) if found else None
    if line is not None and line > source_code.count("\n") + 1:
        line = source_code.count("\n") + 1
    return CompileError(first, line)


def _parser(limits: Limits) -> Any:
    context = quickjs.Context()
    context.set_memory_limit(limits.memory_bytes)
    # Parsing runs none of the code: the engine never asks the CPU limit's handler here.
    context.set_max_stack_size(STACK_BYTES)  # parses as deeply as a `Program` compiles
    return context


def _parse(context: Any, source_code: str) -> tuple[str, int | None] | None:
    """(message, line) of the code's syntax error, or None when it parses."""
    try:
        context.eval(PARSE_PREFIX + source_code)
    except quickjs.JSException as exc:
        text = str(exc)
        first = text.split("\n", 1)[0]
        if first == PARSED:
            return None
        found = _LINE.search(text)
        return first, int(found.group(1)) if found else None
    return None


def _column(context: Any, lines: list[str], message: str, line: int) -> int | None:
    """QuickJS reports no column: find the shortest prefix of the line with the same error."""
    if line > len(lines):
        return None
    text = lines[line - 1]
    before = "\n".join(lines[: line - 1]) + ("\n" if line > 1 else "")
    token = _TOKEN.search(message)
    for end in range(1, min(len(text), COLUMN_SEARCH_CHARS) + 1):
        if _parse(context, before + text[:end]) == (message, line):
            width = len(token.group(1)) if token else 1
            return max(1, end - width + 1)
    return len(text) + 1 if text.strip() else 1


def error_line(stack: str | None, source_code: str) -> int | None:
    """The user's line an error was thrown at, from a QuickJS stack.

    Native frames are skipped and the harness's frames end the search. QuickJS leaves out the
    line of a frame still on its function's first line: that is the line declaring the function.
    """
    for frame in (stack or "").splitlines():
        found = _FRAME.match(frame)
        if found is None:
            continue
        name, where = found.groups()
        if name.startswith("__streams_"):
            return None
        if where == "native":
            continue
        line = _LINE.search(where)
        if line is not None:
            return int(line.group(1))
        declared = _declaration_line(name, source_code)
        if declared is not None:
            return declared
    return None


def _declaration_line(name: str, source_code: str) -> int | None:
    """The line declaring function `name`, when exactly one line does."""
    if name == "<anonymous>":
        # The per-call factory: the user's top-level code, which starts on line 1.
        return 1
    escaped = re.escape(name)
    pattern = re.compile(
        rf"\bfunction\s*\*?\s*{escaped}\s*\(|\b{escaped}\s*[:=]\s*(async\b\s*)?"
        rf"(function\b|\(|[A-Za-z_$][\w$]*\s*=>)|\bclass\s+{escaped}\b"
    )
    lines = [n for n, text in enumerate(source_code.split("\n"), 1) if pattern.search(text)]
    return lines[0] if len(lines) == 1 else None
