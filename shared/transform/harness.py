"""The JavaScript side of the sandbox: set up once per context, before any user code runs.

It installs a bounded `console`, removes `eval`, freezes every built-in reachable from the global
object (so no call can leave state behind for the next), and answers three operations:
"run" (one event through the user's code), "probe" (does the code define `transform`) and
"length" (the source length of the compiled factory, to detect code that escapes its wrapper).
"""

from __future__ import annotations

# Evaluates to a dispatcher function; the three numbers are filled in by `harness_source`.
_HARNESS = r"""
(function (maxLines, maxChars, maxOutput) {
  "use strict";
  const g = globalThis;
  const stringify = JSON.stringify;
  const parse = JSON.parse;
  const StringOf = String;
  const freeze = Object.freeze;
  const getPrototypeOf = Object.getPrototypeOf;
  const describeProperty = Object.getOwnPropertyDescriptor;
  const defineProperty = Object.defineProperty;
  const ownKeys = Reflect.ownKeys;
  const functionSource = Function.prototype.toString;

  let lines = [];
  let chars = 0;
  let dropped = 0;

  function show(value) {
    if (typeof value === "string") return value;
    try {
      const text = stringify(value);
      if (text !== undefined) return text;
    } catch (error) {}
    try {
      return StringOf(value);
    } catch (error) {
      return "[unprintable]";
    }
  }

  function logger(prefix) {
    return function (...args) {
      if (lines.length >= maxLines || chars >= maxChars) {
        dropped += 1;
        return;
      }
      let line = prefix + args.map(show).join(" ");
      if (chars + line.length > maxChars) line = line.slice(0, maxChars - chars) + "...";
      chars += line.length;
      lines.push(line);
    };
  }

  defineProperty(g, "console", {
    value: {
      log: logger(""),
      info: logger(""),
      debug: logger(""),
      warn: logger("[warn] "),
      error: logger("[error] "),
    },
    writable: false,
    enumerable: false,
    configurable: false,
  });
  // Indirect eval could declare global `let` bindings, which freezing cannot stop.
  delete g.eval;
  // quickjs-ng's host-like extras: a job queue, callbacks run after garbage collection (that is,
  // in some later call), GC-observing references and a clock; none belongs in a transform.
  for (const name of ["queueMicrotask", "FinalizationRegistry", "WeakRef", "performance",
                      "__date_clock"]) {
    delete g[name];
  }

  // Freezing a prototype makes `instance.name = x` throw when the prototype has `name` (the
  // "override mistake"); these common ones become accessors that define an own property instead.
  function overridable(proto, names) {
    for (const name of names) {
      const property = describeProperty(proto, name);
      if (property === undefined || !("value" in property)) continue;
      const value = property.value;
      defineProperty(proto, name, {
        get() {
          return value;
        },
        set(next) {
          if (this === proto) throw new TypeError("cannot change the built-in " + name);
          defineProperty(this, name, {
            value: next,
            writable: true,
            enumerable: true,
            configurable: true,
          });
        },
        enumerable: property.enumerable,
        configurable: false,
      });
    }
  }
  overridable(Object.prototype, ["constructor", "toString", "valueOf", "toLocaleString"]);
  overridable(Function.prototype, ["toString"]);
  overridable(Array.prototype, ["toString"]);
  for (const type of [Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError,
                      URIError, InternalError, AggregateError]) {
    overridable(type.prototype, ["constructor", "name", "message", "toString"]);
  }

  // quickjs-ng lets code catch its out-of-memory error and carry on. The engine passes every
  // error it makes through this hook, which notes that one (the call then fails all the same and
  // its context is dropped), and formats the stack as quickjs-ng does without a hook.
  let outOfMemory = false;
  const InternalErrorType = InternalError;
  Error.prepareStackTrace = function (error, sites) {
    if (error instanceof InternalErrorType && error.message === "out of memory") {
      outOfMemory = true;
    }
    let text = "";
    for (const site of sites) {
      const where = site.isNative() ? "native" : site.getFileName() + ":" +
        site.getLineNumber() + ":" + site.getColumnNumber();
      text += "    at " + (site.getFunctionName() || "<anonymous>") + " (" + where + ")\n";
    }
    return text;
  };

  const hardened = new Set();
  function harden(root) {
    const todo = [root];
    while (todo.length > 0) {
      const value = todo.pop();
      if (value === null || value === undefined) continue;
      if (typeof value !== "object" && typeof value !== "function") continue;
      if (hardened.has(value)) continue;
      hardened.add(value);
      freeze(value);
      todo.push(getPrototypeOf(value));
      for (const key of ownKeys(value)) {
        const property = describeProperty(value, key);
        if ("value" in property) todo.push(property.value);
        else todo.push(property.get, property.set);
      }
    }
  }
  harden(g);
  // Intrinsics reachable through syntax rather than from the global object.
  harden(function* () {});
  harden(async function () {});
  harden(async function* () {});
  harden([][Symbol.iterator]());
  harden(new Map()[Symbol.iterator]());
  harden(new Set()[Symbol.iterator]());
  harden(""[Symbol.iterator]());
  harden("x".matchAll(/x/g));
  harden((function* () {})());
  harden((async function* () {})());

  function describe(error) {
    try {
      if (error !== null && typeof error === "object") {
        const name = error.name;
        const text = StringOf(error.message);
        return {
          message: (typeof name === "string" && name ? name : "Error") + ": " + text,
          stack: typeof error.stack === "string" ? error.stack.slice(0, 2000) : null,
          fatal: error instanceof InternalError && (text === "out of memory" || text === ""),
        };
      }
      // quickjs-ng throws null (or an internal "uninitialized" value) when it runs out of
      // memory while making the error itself: such a context is not trusted again.
      const shown = show(error);
      return { message: "threw " + shown, stack: null,
               fatal: error === null || shown === "[uninitialized]" };
    } catch (failure) {
      return { message: "threw a value that cannot be described", stack: null, fatal: false };
    }
  }

  function fail(kind, problem) {
    return stringify({
      ok: false,
      kind: kind,
      message: StringOf(problem.message).slice(0, 1000),
      stack: problem.stack,
      fatal: problem.fatal,
      logs: lines,
      dropped_logs: dropped,
    });
  }

  function isThenable(value) {
    try {
      return value !== null && (typeof value === "object" || typeof value === "function") &&
        typeof value.then === "function";
    } catch (error) {
      return false;
    }
  }

  const OUT_OF_MEMORY = { message: "InternalError: out of memory", stack: null, fatal: true };

  function __streams_run(factory, eventJson, metadataJson) {
    lines = [];
    chars = 0;
    dropped = 0;
    outOfMemory = false;
    let result;
    try {
      const transform = factory();
      if (typeof transform !== "function") {
        return fail("definition", { message: "no function transform(event, metadata) is defined",
                                    stack: null, fatal: false });
      }
      result = transform(parse(eventJson), parse(metadataJson));
    } catch (error) {
      return fail("error", outOfMemory ? OUT_OF_MEMORY : describe(error));
    }
    if (outOfMemory) return fail("error", OUT_OF_MEMORY);
    if (isThenable(result)) {
      return fail("output", { message: "transform returned a Promise: it must return its result " +
                              "synchronously (async code is not supported)", stack: null,
                              fatal: false });
    }
    let output;
    try {
      output = result === undefined ? "null" : stringify(result);
    } catch (error) {
      const problem = describe(error);
      problem.message = "the result cannot be converted to JSON: " + problem.message;
      problem.stack = null;
      return fail("output", problem);
    }
    if (output === undefined) {
      return fail("output", { message: "transform returned a " + typeof result +
                              ", not an event", stack: null, fatal: false });
    }
    // A toJSON method may have caught one too.
    if (outOfMemory) return fail("error", OUT_OF_MEMORY);
    if (output.length > maxOutput) {
      return fail("output", { message: "the result is larger than " + maxOutput + " bytes",
                              stack: null, fatal: false });
    }
    // Without console output the answer is "=" and the output: no envelope to build or parse.
    // Built with join (one flat string): quickjs-ng's binding cannot return the rope strings
    // that `+` and template literals make of long operands.
    if (lines.length === 0 && dropped === 0) return ["=", output].join("");
    return ['{"ok":true,"logs":', stringify(lines), ',"dropped_logs":', dropped, ',"output":',
            output, "}"].join("");
  }

  function __streams_probe(factory) {
    outOfMemory = false;
    try {
      const ok = typeof factory() === "function";
      if (outOfMemory) return stringify({ ok: false, message: OUT_OF_MEMORY.message, stack: null });
      return stringify({ ok: ok, logs: lines });
    } catch (error) {
      const problem = describe(error);
      return stringify({ ok: false, message: problem.message, stack: problem.stack });
    } finally {
      lines = [];
      chars = 0;
      dropped = 0;
    }
  }

  // Frames of functions named __streams_* are the harness's: user frames all sit above them.
  return function __streams_harness(operation, factory, eventJson, metadataJson) {
    if (operation === "run") return __streams_run(factory, eventJson, metadataJson);
    if (operation === "probe") return __streams_probe(factory);
    return functionSource.call(factory).length;
  };
})
"""

# The user's code becomes the body of a strict function that is called once per event, so its
# top-level declarations are new on every call. Nothing precedes the code on its first line, so
# line numbers in errors are the user's own.
FACTORY_PREFIX = '(function () {"use strict";'
FACTORY_SUFFIX = '\nreturn typeof transform === "function" ? transform : undefined;\n})'

# Parses the code as a script without running any of it: the throw runs first.
PARSED = "__streams_parsed__"
PARSE_PREFIX = f'"use strict";throw "{PARSED}";'


def harness_source(max_lines: int, max_chars: int, max_output: int) -> str:
    """The harness, applied to its limits: evaluates to the dispatcher function."""
    return f"{_HARNESS.strip()}({max_lines}, {max_chars}, {max_output})"


def factory_source(source_code: str) -> str:
    """The user's code wrapped as its per-call factory."""
    return FACTORY_PREFIX + source_code + FACTORY_SUFFIX


def factory_length(source_code: str) -> int:
    """What `Function.prototype.toString` measures (UTF-16 units) for an intact factory."""
    inner = factory_source(source_code)[1:-1]
    return len(inner.encode("utf-16-le")) // 2
