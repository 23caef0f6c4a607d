"""The QuickJS sandbox: the transform contract, the limits, isolation, and what user code cannot
reach. Every containment test also checks that the runtime keeps serving afterwards."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from shared.transform import (
    CompileError,
    Limits,
    Program,
    ProgramCache,
    check,
    diff,
    output_events,
    valid_events,
)

LIMITS = Limits()
EVENT: dict[str, Any] = {
    "messageId": "m-1",
    "type": "track",
    "event": "Order Completed",
    "userId": "u-1",
    "properties": {"total": 150, "currency": "USD"},
    "context": {"ip": "203.0.113.1"},
}
METADATA = {"workspace_id": "ws-1", "source_id": "src-1", "rule_id": "rule-1"}
IDENTITY = "function transform(event, metadata) {\n  return event;\n}"


def run(source: str, event: Any = None, limits: Limits = LIMITS) -> Any:
    return Program(source, limits).run(EVENT if event is None else event, METADATA)


def healthy(program: Program | None = None) -> None:
    """The runtime still answers correctly; a program that need not be rebuilt answers again."""
    assert Program(IDENTITY, LIMITS).run(EVENT, METADATA).output == EVENT
    if program is not None and not program.broken:
        again = program.run(EVENT, METADATA)
        assert again.error is not None and again.duration_ms < 1000


# The contract of transform(event, metadata)


def test_returning_the_event_forwards_it_modified() -> None:
    source = (
        "function transform(event) {\n"
        "  if (event.properties.total > 100) {\n"
        "    event.properties.tier = 'high_value';\n"
        "  }\n"
        "  return event;\n"
        "}"
    )
    result = run(source)
    assert result.error is None
    assert result.output == {**EVENT, "properties": {**EVENT["properties"], "tier": "high_value"}}
    assert valid_events(result.output) == [result.output]


@pytest.mark.parametrize("body", ["return null;", "return undefined;", "", "return [];"])
def test_null_undefined_or_nothing_drops(body: str) -> None:
    result = run(f"function transform(event) {{\n  {body}\n}}")
    assert result.error is None
    assert output_events(result.output) == []


def test_an_array_fans_out_and_each_element_must_be_an_event() -> None:
    source = (
        "function transform(event) {\n"
        "  return [event, {...event, messageId: event.messageId + '-copy', event: 'Copied'}];\n"
        "}"
    )
    events = valid_events(run(source).output)
    assert [(e["messageId"], e["event"]) for e in events] == [
        ("m-1", "Order Completed"),
        ("m-1-copy", "Copied"),
    ]

    with pytest.raises(ValueError, match=r"event 1 of the returned array .* type is missing"):
        valid_events(run("function transform(e) { return [e, {messageId: 'x'}]; }").output)
    with pytest.raises(ValueError, match="element 1 of the returned array is a number"):
        output_events(run("function transform(e) { return [e, 5]; }").output)
    with pytest.raises(ValueError, match="messageId must be a non-empty string"):
        valid_events(run("function transform(e) { delete e.messageId; return e; }").output)
    with pytest.raises(ValueError, match="type is 'click'"):
        valid_events(run("function transform(e) { e.type = 'click'; return e; }").output)


@pytest.mark.parametrize(
    ("body", "kind"),
    [("return 5;", "a number"), ("return 'x';", "a string"), ("return true;", "a boolean")],
)
def test_a_result_that_is_not_an_event_is_a_clear_error(body: str, kind: str) -> None:
    with pytest.raises(ValueError, match=f"transform returned {kind}: return an event object"):
        output_events(run(f"function transform(e) {{ {body} }}").output)


def test_values_beyond_orjson_go_through_the_standard_json_module() -> None:
    # orjson refuses integers past 64 bits and lone surrogates, both ways: `json` handles them.
    event = {**EVENT, "properties": {"big": 2**70, "lone": "\ud800x"}}
    source = (
        "function transform(e) {\n"
        "  return {...e, seen: [typeof e.properties.big, e.properties.lone.length]};\n}"
    )
    result = run(source, event)
    assert result.error is None
    assert result.output["seen"] == ["number", 2]
    assert result.output["properties"] == {"big": float(2**70), "lone": "\ud800x"}


def test_nan_and_infinities_in_an_event_reach_the_code_as_null() -> None:
    # As JSON.stringify writes them (Python's json module accepts them at ingest).
    event = {**EVENT, "properties": {"nan": float("nan"), "inf": float("-inf")}}
    source = "function transform(e) {\n  return {...e, seen: Object.values(e.properties)};\n}"
    assert run(source, event).output["seen"] == [None, None]


def test_metadata_is_passed() -> None:
    result = run("function transform(e, metadata) {\n  return {...e, meta: metadata};\n}")
    assert result.output["meta"] == METADATA


def test_a_throw_records_the_message_and_the_line() -> None:
    source = (
        "function transform(event) {\n"
        "  if (event.properties.total > 100) {\n"
        "    throw new Error('too expensive');\n"
        "  }\n"
        "  return event;\n"
        "}"
    )
    result = run(source)
    assert (result.error, result.line, result.output) == ("Error: too expensive", 3, None)


def test_runtime_errors_name_the_line_inside_helpers() -> None:
    source = (
        "const price = (event) => {\n"
        "  return event.properties.missing.amount;\n"
        "};\n"
        "function transform(event) {\n"
        "  return {...event, price: price(event)};\n"
        "}"
    )
    result = run(source)
    assert result.error == "TypeError: cannot read property 'amount' of undefined"
    assert result.line == 2


def test_a_throw_on_the_functions_first_line_names_that_line() -> None:
    # QuickJS leaves such frames without a line; the declaring line is found instead.
    result = run("\n\nfunction transform(e) { throw new TypeError('at once'); }")
    assert (result.error, result.line) == ("TypeError: at once", 3)


def test_thrown_values_that_are_not_errors() -> None:
    assert run("function transform(e) { throw 'plain'; }").error == "threw plain"
    assert run("function transform(e) { throw {code: 7}; }").error == "Error: undefined"


def test_custom_error_classes_can_set_their_name() -> None:
    # Frozen built-ins would make `this.name = ...` throw; the sandbox keeps it working.
    source = (
        "class PriceError extends Error {\n"
        "  constructor(message) { super(message); this.name = 'PriceError'; }\n"
        "}\n"
        "function transform(e) {\n"
        "  throw new PriceError('no price');\n"
        "}"
    )
    assert run(source).error == "PriceError: no price"


def test_es2020_syntax() -> None:
    source = (
        "const pick = ({properties: {total, ...rest}}) => ({total, rest});\n"
        "class Tagger { tag(e) { return `${e.event}:${e.properties?.total ?? 0}`; } }\n"
        "function transform(event) {\n"
        "  const {total, rest} = pick(event);\n"
        "  return {\n"
        "    ...event,\n"
        "    properties: {...rest, total: total * 2, tag: new Tagger().tag(event)},\n"
        "    missing: event.context?.device?.id ?? 'none',\n"
        "    sizes: [...'abc'].map((c, i) => c.repeat(i + 1)),\n"
        "    big: (2n ** 64n).toString(),\n"
        "    entries: Object.fromEntries([['a', 1]]),\n"
        "    flat: [[1], [2, [3]]].flat(2),\n"
        "  };\n"
        "}"
    )
    result = run(source)
    assert result.error is None
    assert result.output["properties"] == {
        "currency": "USD",
        "total": 300,
        "tag": "Order Completed:150",
    }
    assert result.output["missing"] == "none"
    assert result.output["sizes"] == ["a", "bb", "ccc"]
    assert result.output["big"] == "18446744073709551616"
    assert result.output["entries"] == {"a": 1}
    assert result.output["flat"] == [1, 2, 3]


def test_results_that_cannot_become_json() -> None:
    assert run("function transform(e) { return 1n; }").error == (
        "the result cannot be converted to JSON: TypeError: BigInt are forbidden in JSON.stringify"
    )
    assert run("function transform(e) { return () => 1; }").error == (
        "transform returned a function, not an event"
    )
    assert run("async function transform(e) { return e; }").error.startswith(
        "transform returned a Promise"
    )


# Limits


def test_an_infinite_loop_is_stopped_by_the_cpu_limit() -> None:
    program = Program("function transform(e) {\n  while (true) {}\n}", LIMITS)
    result = program.run(EVENT, METADATA)
    assert result.error == "the transformation used more than 100 ms of CPU time"
    assert 90 <= result.duration_ms < 2000
    assert program.broken
    healthy()


def test_the_cpu_limit_cannot_be_caught() -> None:
    source = "function transform(e) {\n  try { while (true) {} } catch (x) { return e; }\n}"
    result = run(source, limits=Limits(cpu_ms=20))
    assert result.error == "the transformation used more than 20 ms of CPU time"
    assert result.duration_ms < 1000


def test_an_allocation_bomb_is_stopped_by_the_memory_limit() -> None:
    source = (
        "function transform(e) {\n"
        "  const hoard = [];\n"
        "  while (true) hoard.push(new Array(1000000).fill(e));\n"
        "}"
    )
    program = Program(source, LIMITS)
    result = program.run(EVENT, METADATA)
    assert result.error == "the transformation used more than 64 MB of memory"
    assert program.broken
    healthy()


def test_a_string_doubling_bomb_is_stopped() -> None:
    source = "function transform(e) {\n  let s = 'x';\n  while (true) s = s + s;\n}"
    result = run(source, limits=Limits(memory_bytes=16 * 1024 * 1024))
    # quickjs-ng concatenates into ropes, so the length limit comes before the memory limit;
    # copying the doubled string each time reaches the memory limit.
    assert result.error == "InternalError: string too long"
    copied = (
        "function transform(e) {\n  let s = 'x';\n"
        "  while (true) s = (s + s).slice(0).concat('');\n}"
    )
    result = run(copied, limits=Limits(memory_bytes=16 * 1024 * 1024))
    assert result.error == "the transformation used more than 16 MB of memory"
    healthy()


# Allocation bombs that crashed the process (SIGSEGV) under the `quickjs` 1.19.4 package this
# runtime used before quickjs-ng: exhausting memory while strings are being built, or a catch
# that goes on allocating after the memory limit.
MEMORY_BOMBS = [
    "let a = [];\n  const s = 'x'.repeat(1000);\n  for (let i = 0; ; i++) a.push(s + i);",
    "let a = [];\n  for (let i = 0; ; i++) a.push({i, s: 'y' + i});",
    "const o = {};\n  for (let i = 0; ; i++) o['k' + i] = i;",
    "let a = [];\n  try { for (;;) a.push(new Array(1000).fill(1)); }\n"
    "  catch (x) { return {...e, caught: String(x)}; }",
    "let a = [];\n  const s = 'x'.repeat(1000);\n"
    "  try { for (let i = 0; ; i++) a.push(s + i); }\n"
    "  catch (x) { console.log(x); return {...e, caught: JSON.stringify(x)}; }",
]


@pytest.mark.parametrize("megabytes", [16, 64])
@pytest.mark.parametrize("body", MEMORY_BOMBS)
def test_memory_exhaustion_is_contained_and_the_instance_keeps_serving(
    body: str, megabytes: int
) -> None:
    programs = ProgramCache(Limits(memory_bytes=megabytes * 1024 * 1024))
    source = "function transform(e) {\n  " + body + "\n}"
    for _ in range(3):
        result = programs.run(("ws", "bomb", 1), source, EVENT, METADATA)
        # Stopped by a limit, or (a catch that gave up its hoard) answered: never a crash.
        assert result.error is None or result.error.startswith(
            ("the transformation used more than", "threw null (as a call that runs out")
        ), result.error
        assert programs.run(("ws", "ok", 1), IDENTITY, EVENT, METADATA).output == EVENT
    healthy()


def test_a_thrown_null_discards_the_context() -> None:
    # quickjs-ng throws null when it runs out of memory while making the error itself.
    program = Program("function transform(e) {\n  throw null;\n}", LIMITS)
    result = program.run(EVENT, METADATA)
    assert result.error == "threw null (as a call that runs out of its 64 MB of memory does)"
    assert program.broken
    assert run("function transform(e) {\n  throw undefined;\n}").error == "threw undefined"


def test_deep_recursion_is_contained() -> None:
    source = (
        "function down(n) { return down(n + 1) + 1; }\nfunction transform(e) { return down(0); }"
    )
    program = Program(source, LIMITS)
    result = program.run(EVENT, METADATA)
    assert result.error == "RangeError: Maximum call stack size exceeded"
    # The stack hook that notes out-of-memory errors cannot run on an exhausted stack, so this
    # error carries no stack and no line.
    assert result.line is None
    healthy(program)


def test_an_output_larger_than_the_limit_is_an_error() -> None:
    program = Program(
        "function transform(e) {\n  return {...e, pad: 'x'.repeat(40000)};\n}", LIMITS
    )
    assert program.run(EVENT, METADATA).error == "the result is larger than 32768 bytes"
    # Multi-byte characters count as the bytes they encode to.
    wide = run("function transform(e) {\n  return {...e, pad: 'é'.repeat(17000)};\n}")
    assert wide.error == "the result is larger than 32768 bytes"
    healthy(program)


@pytest.mark.parametrize("depth, allowed", [(15, True), (16, False), (300, False)])
def test_results_nest_no_deeper_than_events(depth: int, allowed: bool) -> None:
    # The event is level 1, so `depth` arrays inside it make depth + 1 levels (at most 16).
    source = (
        f"function transform(e) {{\n  let o = 1;\n  for (let i = 0; i < {depth}; i++) o = [o];\n"
        "  return {type: 'track', messageId: 'm', o};\n}"
    )
    error = run(source).error
    assert error is None if allowed else error == "the result nests deeper than 16 levels"


def test_limits_are_configurable() -> None:
    small = Limits(cpu_ms=10, output_bytes=100)
    assert run("function transform(e) { return e; }", limits=small).error == (
        "the result is larger than 100 bytes"
    )


# What user code cannot reach


@pytest.mark.parametrize(
    "name",
    [
        "require",
        "process",
        "fetch",
        "XMLHttpRequest",
        "WebSocket",
        "setTimeout",
        "setInterval",
        "setImmediate",
        "queueMicrotask",
        "FinalizationRegistry",
        "WeakRef",
        "performance",
        "eval",
        "std",
        "os",
        "print",
        "__date_clock",
        "module",
        "exports",
        "Deno",
        "Bun",
    ],
)
def test_host_facilities_are_absent(name: str) -> None:
    result = run(f"function transform(e) {{\n  return {{...e, found: typeof {name}}};\n}}")
    assert result.output["found"] == "undefined"


def test_dynamic_import_loads_nothing_and_cannot_outlive_the_call() -> None:
    source = (
        "let outcome = 'pending';\n"
        "function transform(e) {\n"
        "  import('os').then(() => { outcome = 'loaded'; }, (x) => { outcome = String(x); });\n"
        "  return {...e, outcome};\n"
        "}"
    )
    program = Program(source, LIMITS)
    result = program.run(EVENT, METADATA)
    assert result.output["outcome"] == "pending"
    # The queued reaction is never run by a later call: the context is dropped instead.
    assert program.broken
    healthy()


def test_promise_reactions_do_not_run_after_the_call() -> None:
    cache = ProgramCache(LIMITS)
    source = (
        "function transform(e) {\n"
        "  Promise.resolve().then(() => { while (true) {} });\n"
        "  return e;\n"
        "}"
    )
    result = cache.run(("ws", "t", 1), source, EVENT, METADATA)
    assert result.output == EVENT
    assert cache.size() == 0  # dropped, not kept with a job queued


@pytest.mark.parametrize(
    "expression",
    [
        "(0, eval)('1')",
        "globalThis.eval('1')",
        "Function('return eval')()('1')",
        "new Function('return this')().process.exit(1)",
        "Function('return this')().require('fs')",
        "(function () { return this; })().fetch",
        "this.process.env",
        "e.constructor.constructor('return process')().env",
    ],
)
def test_eval_tricks_reach_nothing(expression: str) -> None:
    result = run(f"function transform(e) {{\n  return {{...e, got: {expression}}};\n}}")
    assert result.error is not None
    assert result.error.split(":")[0] in ("TypeError", "ReferenceError")


def test_code_cannot_escape_its_per_call_wrapper() -> None:
    with pytest.raises(CompileError, match="unexpected token"):
        check("function transform(e) { return e; }\n}); let leak = []; (function () {", LIMITS)
    # Built directly (as the test endpoint does first), the escape is detected too.
    with pytest.raises(CompileError, match="closes a block it did not open"):
        Program("function transform(e) { return e; }\n}); let leak = []; (function () {", LIMITS)


# Isolation


def test_top_level_state_is_new_on_every_call() -> None:
    source = (
        "let seen = 0;\n"
        "const stash = [];\n"
        "function transform(e) {\n"
        "  seen += 1;\n"
        "  stash.push(e.userId);\n"
        "  return {...e, seen, stash};\n"
        "}"
    )
    program = Program(source, LIMITS)
    for user in ("u-1", "u-2", "u-3"):
        result = program.run({**EVENT, "userId": user}, METADATA)
        assert (result.output["seen"], result.output["stash"]) == (1, [user])


def test_globals_and_built_ins_cannot_carry_state_between_calls() -> None:
    attempts = [
        "globalThis.leak = e.userId;",
        "Object.prototype.leak = e.userId;",
        "Array.prototype.leak = e.userId;",
        "JSON.leak = e.userId;",
        "Math.random = () => 4;",
        "Object.defineProperty(globalThis, 'leak', {value: e.userId});",
        "Error.prototype.name = e.userId;",
        "console.log = null;",
    ]
    for attempt in attempts:
        program = Program(
            "function transform(e) {\n"
            "  if (e.userId === 'writer') {\n"
            f"    {attempt}\n"
            "  }\n"
            "  return {...e, leak: globalThis.leak ?? ({}).leak ?? [].leak ?? JSON.leak ?? null,\n"
            "          random: Math.random() < 1, name: new Error('x').name};\n"
            "}",
            LIMITS,
        )
        written = program.run({**EVENT, "userId": "writer"}, METADATA)
        assert written.error is not None and written.error.startswith("TypeError"), attempt
        reader = program.run({**EVENT, "userId": "reader"}, METADATA).output
        assert (reader["leak"], reader["random"], reader["name"]) == (None, True, "Error"), attempt


def test_workspaces_never_share_a_context() -> None:
    cache = ProgramCache(LIMITS)
    source = (
        "let last = null;\n"
        "function transform(e) {\n"
        "  try { globalThis.last = e.userId; } catch (x) {}\n"
        "  const previous = globalThis.last ?? last;\n"
        "  last = e.userId;\n"
        "  return {...e, previous};\n"
        "}"
    )
    first = cache.run(("ws-a", "t", 1), source, {**EVENT, "userId": "alice"}, METADATA)
    second = cache.run(("ws-b", "t", 1), source, {**EVENT, "userId": "bob"}, METADATA)
    assert first.output["previous"] is None
    assert second.output["previous"] is None
    assert cache.program(("ws-a", "t", 1), source) is not cache.program(("ws-b", "t", 1), source)


# console


def test_console_output_is_captured() -> None:
    source = (
        "function transform(e) {\n"
        "  console.log('total', e.properties.total, {ok: true});\n"
        "  console.info('info');\n"
        "  console.warn('careful');\n"
        "  console.error(new Error('bad').message);\n"
        "  return e;\n"
        "}"
    )
    assert run(source).logs == [
        'total 150 {"ok":true}',
        "info",
        "[warn] careful",
        "[error] bad",
    ]


def test_console_output_is_bounded() -> None:
    many = run(
        "function transform(e) {\n  for (let i = 0; i < 500; i++) console.log('line', i);\n}"
    )
    assert len(many.logs) == 51
    assert many.logs[49] == "line 49"
    assert many.logs[50] == "... 450 more console line(s) dropped"

    wide = run(
        "function transform(e) {\n  for (let i = 0; i < 5; i++) console.log('y'.repeat(3000));\n}"
    )
    assert sum(len(line) for line in wide.logs[:-1]) <= 4096 + 3
    assert wide.logs[-1].endswith("more console line(s) dropped")


def test_console_output_of_a_failed_call_is_kept() -> None:
    result = run(
        "function transform(e) {\n  console.log('before');\n  throw new Error('after');\n}"
    )
    assert (result.logs, result.error) == (["before"], "Error: after")


def test_console_output_does_not_carry_over() -> None:
    program = Program("function transform(e) {\n  console.log(e.userId);\n  return e;\n}", LIMITS)
    assert program.run({**EVENT, "userId": "a"}, METADATA).logs == ["a"]
    assert program.run({**EVENT, "userId": "b"}, METADATA).logs == ["b"]


# Compiling


def test_a_syntax_error_names_line_and_column() -> None:
    with pytest.raises(CompileError) as raised:
        check("function transform(event) {\n  const x = ;\n  return event;\n}", LIMITS)
    assert (raised.value.line, raised.value.column) == (2, 13)
    assert raised.value.message == (
        "SyntaxError: unexpected token in expression: ';' at line 2, column 13"
    )


def test_an_unclosed_block_is_reported_at_the_end() -> None:
    with pytest.raises(CompileError) as raised:
        check("function transform(event) {\n  return event;\n", LIMITS)
    assert raised.value.message.startswith("SyntaxError: unexpected end of the code at line 3")


def test_the_code_must_define_transform() -> None:
    with pytest.raises(CompileError, match="must define function transform"):
        check("function transfrom(event) { return event; }", LIMITS)
    with pytest.raises(CompileError, match="must define function transform"):
        check("const transform = 5;", LIMITS)


def test_top_level_code_that_fails_is_refused_with_its_line() -> None:
    with pytest.raises(CompileError) as raised:
        check(
            "const table = {};\nconst x = table.a.b;\nfunction transform(e) { return e; }", LIMITS
        )
    assert raised.value.line == 2
    assert "cannot read property 'b' of undefined" in raised.value.message


def test_strict_mode_is_enforced() -> None:
    with pytest.raises(CompileError, match="with"):
        check("function transform(e) {\n  with (e) { return e; }\n}", LIMITS)
    assert run("function transform(e) {\n  undeclared = 1;\n  return e;\n}").error == (
        "ReferenceError: undeclared is not defined"
    )


def test_source_code_is_bounded() -> None:
    with pytest.raises(CompileError, match="longer than 65536 characters"):
        check("//" + "x" * 70000 + "\nfunction transform(e) { return e; }", LIMITS)


# Reuse


def test_a_version_is_compiled_once_per_thread_and_a_new_version_evicts_it() -> None:
    cache = ProgramCache(LIMITS)
    first = cache.program(("ws", "t", 1), IDENTITY)
    assert cache.program(("ws", "t", 1), IDENTITY) is first
    second = cache.program(("ws", "t", 2), IDENTITY)
    assert second is not first
    assert cache.size() == 1


def test_the_cache_is_bounded_per_thread() -> None:
    cache = ProgramCache(LIMITS, max_programs=3)
    for number in range(5):
        cache.program(("ws", f"t-{number}", 1), IDENTITY)
    assert cache.size() == 3


def test_each_thread_has_its_own_programs_and_concurrent_calls_are_correct() -> None:
    cache = ProgramCache(LIMITS)
    source = "function transform(e) {\n  return {...e, doubled: e.properties.total * 2};\n}"
    programs: dict[int, int] = {}
    failures: list[str] = []

    def work(worker: int) -> None:
        for number in range(200):
            event = {**EVENT, "properties": {"total": worker * 1000 + number}}
            result = cache.run(("ws", "t", 1), source, event, METADATA)
            if result.output["doubled"] != 2 * (worker * 1000 + number):
                failures.append(f"{worker}/{number}: {result}")
        programs[worker] = id(cache.program(("ws", "t", 1), source))

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(set(programs.values())) == 4


# Structural diff


def test_diff_lists_every_changed_leaf() -> None:
    expected = {"event": "a", "properties": {"total": 1, "items": [1, 2]}, "gone": True}
    actual = {"event": "a", "properties": {"total": 2, "items": [1], "tier": "x"}, "gone": 1}
    assert diff(expected, actual) == [
        {"path": "properties.total", "expected": 1, "actual": 2, "change": "changed"},
        {"path": "properties.items[1]", "expected": 2, "actual": None, "change": "removed"},
        {"path": "properties.tier", "expected": None, "actual": "x", "change": "added"},
        {"path": "gone", "expected": True, "actual": 1, "change": "changed"},
    ]
    assert diff({"a": 1.0, "b": None}, {"a": 1, "b": None}) == []
    assert diff({"a": None}, {}) == [
        {"path": "a", "expected": None, "actual": None, "change": "removed"}
    ]
