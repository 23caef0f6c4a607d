"""No contract can stall or poison `process`: patterns run on a linear-time engine (every keyword
that matches a pattern), long values are not matched, no schema is fetched, and a schema the
validator could not run (recursive, remote or dangling `$ref`, lookaround, backreferences) is
refused when saved, through the API, with the field and the reason."""

from __future__ import annotations

import time
from typing import Any

import pytest

from shared.domain.contracts import CompiledContract, EventContract
from shared.domain.event import CanonicalEvent
from shared.domain.schema_forms import InvalidSchema, to_json_schema
from shared.domain.schema_patterns import (
    MAX_PATTERN_VALUE_CHARS,
    PatternError,
    checked_pattern,
    to_re2,
)
from shared.domain.schema_validator import CompiledSchema
from tests.functions import function_client
from tests.tenants import Tenant

DIALECT = "https://json-schema.org/draft/2020-12/schema"
# Python's `re` takes about 2^n steps for this pattern on n a's and a `!`: at 27 characters the
# reproduction took 6.4 s, so at the cap it would never finish.
CATASTROPHIC = "^(a+)+$"
EVIL = "a" * (MAX_PATTERN_VALUE_CHARS - 1) + "!"
# Every place a pattern is matched: a schema, where EVIL goes (value or key), and whether not
# matching is a violation there.
PATTERN_PLACES = {
    "pattern": (
        {"properties": {"code": {"type": "string", "pattern": CATASTROPHIC}}},
        "code",
        True,
    ),
    "patternProperties": (
        {"$schema": DIALECT, "patternProperties": {CATASTROPHIC: False}},
        "key",
        False,
    ),
    "additionalProperties": (
        {
            "$schema": DIALECT,
            "patternProperties": {CATASTROPHIC: True},
            "additionalProperties": False,
        },
        "key",
        True,
    ),
    "propertyNames": (
        {"$schema": DIALECT, "propertyNames": {"pattern": CATASTROPHIC}},
        "key",
        True,
    ),
}


def saved_contract(schema_definition: dict[str, Any], mode: str = "warn") -> EventContract:
    return EventContract(
        id="c-1",
        workspace_id="ws-1",
        name="Orders",
        event_type="track",
        event_name="*",
        schema_definition=schema_definition,
        enforcement_mode=mode,  # type: ignore[arg-type]
        undeclared_fields="allow",
        status="active",
        version=1,
        created_at="2024-01-01T00:00:00.000Z",
        updated_at="2024-01-01T00:00:00.000Z",
    )


def evil_value(where: str) -> dict[str, Any]:
    return {"code": EVIL} if where == "code" else {EVIL: "x"}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("place", sorted(PATTERN_PLACES))
def test_a_catastrophic_pattern_is_matched_in_linear_time(place: str) -> None:
    definition, where, violated = PATTERN_PLACES[place]
    schema, _ = to_json_schema(definition)
    compiled = CompiledSchema(schema)

    started = time.perf_counter()
    violations = compiled.validate(evil_value(where), "properties")
    elapsed = time.perf_counter() - started

    # Python's `re` would backtrack for longer than the universe has existed.
    assert elapsed < 1.0
    assert bool(violations) is violated


def test_a_value_longer_than_the_cap_is_a_pattern_violation_saying_so() -> None:
    schema, _ = to_json_schema({"properties": {"note": {"type": "string", "pattern": "x"}}})
    compiled = CompiledSchema(schema)
    at_cap = "x" * MAX_PATTERN_VALUE_CHARS

    assert compiled.validate({"note": at_cap}, "properties") == []
    [violation] = compiled.validate({"note": at_cap + "x"}, "properties")

    assert (violation.type, violation.field, violation.expected) == (
        "Pattern-Mismatch",
        "properties.note",
        "x",
    )
    assert violation.message == (
        f"is {MAX_PATTERN_VALUE_CHARS + 1} characters; patterns are matched against at most "
        f"{MAX_PATTERN_VALUE_CHARS}"
    )


@pytest.mark.parametrize(
    ("own_limit", "expected"),
    [
        # The subschema's own, smaller limit is a Length-Mismatch as well.
        (10, [("Length-Mismatch", "length <= 10"), ("Pattern-Mismatch", "x")]),
        (10_000, [("Pattern-Mismatch", "x")]),
    ],
)
def test_the_cap_beside_a_subschemas_own_max_length(
    own_limit: int, expected: list[tuple[str, str]]
) -> None:
    definition = {"properties": {"note": {"pattern": "x", "maxLength": own_limit}}}
    schema, _ = to_json_schema(definition)
    compiled = CompiledSchema(schema)

    found = compiled.validate({"note": "x" * (MAX_PATTERN_VALUE_CHARS + 1)}, "properties")

    assert [(v.type, v.expected) for v in found] == expected
    assert compiled.validate({"note": "y" * 11}, "properties")[0].expected == (
        "length <= 10" if own_limit == 10 else "x"
    )


def test_a_lone_surrogate_is_a_mismatch_not_an_error() -> None:
    schema, _ = to_json_schema({"properties": {"code": {"pattern": "^[a-z]+$"}}})
    compiled = CompiledSchema(schema)

    # JSON may escape half a surrogate pair; UTF-8 cannot encode it, nor can the library take
    # it: it is judged as U+FFFD.
    [violation] = compiled.validate({"code": "ab\ud800"}, "properties")

    assert violation.type == "Pattern-Mismatch"
    assert violation.actual == '"ab\ufffd"'


@pytest.mark.parametrize("code", ["ab\ud800", "\udfff"])
def test_a_contract_judges_a_lone_surrogate_as_a_mismatch(code: str) -> None:
    # Its one-call answer cannot read the value either: the contract judges it as U+FFFD, as
    # the schema does, rather than fail on the event.
    contract = saved_contract({"properties": {"code": {"pattern": "^[a-z]+$"}}})
    event: CanonicalEvent = {"type": "track", "event": "x", "properties": {"code": code}}

    finding = CompiledContract(contract).check(event)

    assert finding is not None and finding.error is None
    [violation] = finding.violations
    assert (violation.type, violation.field) == ("Pattern-Mismatch", "properties.code")
    assert "\ufffd" in (violation.actual or "")


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        # ECMA-262 spellings the engines read differently (translated by `to_re2`).
        (r"^caf\u00e9$", "café", True),
        (r"^\u{1F600}$", "😀", True),
        (r"^\uD83D\uDE00$", "😀", True),
        (r"^a\cJb$", "a\nb", True),
        (r"^[\b]$", "\b", True),
        (r"^[^]$", "\n", True),
        (r"^a[]", "a", False),
        # Python's end of text, in contracts written before RE2.
        (r"^abc\Z", "abc", True),
        # ECMA-262 semantics: `\d` is ASCII, `$` is the end of the text (not before a newline).
        (r"^\d+$", "١٢٣", False),
        (r"^\d+$", "123\n", False),
        # Named groups and Unicode classes, which Python's `re` does not read.
        (r"^(?<year>[0-9]{4})-", "2024-01", True),
        (r"^\p{Lu}", "Émile", True),
        # Escapes inside a class stay escapes.
        (r"^[\]\\]+$", "]\\", True),
        # `\s` is ECMA-262's (Unicode spaces), `\w` ASCII.
        (r"^\s$", "\u00a0", True),
        (r"^\w$", "é", False),
    ],
)
def test_ecma_patterns_match_as_written(pattern: str, text: str, matches: bool) -> None:
    compiled = CompiledSchema({"pattern": pattern})
    assert (compiled.validate(text, "value") == []) is matches


def test_to_re2_leaves_what_re2_reads_alone() -> None:
    assert to_re2(r"^SKU-[0-9]{3}\.\w+$") == r"^SKU-[0-9]{3}\.\w+$"
    assert to_re2(r"\u00e9\uZZZZ") == r"\x{E9}\uZZZZ"


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        ("^(?=.*[0-9])", "lookahead (?=...)"),
        ("^(?!test)", "negative lookahead (?!...)"),
        ("(?<=@)x", "lookbehind (?<=...)"),
        ("(?<!@)x", "negative lookbehind (?<!...)"),
        ("(a)\\1", "backreference (\\1)"),
        ("(?<n>a)\\k<n>", "named backreference"),
        ("(?>a+)b", "atomic group"),
        ("a*+", "possessive"),
        ("a{1001}", "more than 1000 times"),
        ("^.{0,1000}$", "too large"),
        ("(", "missing )"),
    ],
)
def test_patterns_that_could_stall_are_refused_with_the_reason(pattern: str, words: str) -> None:
    with pytest.raises(PatternError) as raised:
        checked_pattern(pattern)
    assert words in str(raised.value)


def test_a_pattern_only_the_library_cannot_read_is_refused_at_the_pattern() -> None:
    with pytest.raises(InvalidSchema) as raised:
        to_json_schema({"properties": {"sku": {"pattern": "a{,3}"}}})
    assert raised.value.path == "properties.sku.pattern"
    assert raised.value.message.startswith("is not a regular expression contracts can run")


# --- refused when saved: the domain check, then the API -----------------------------------------

RECURSIVE_PAIR = {
    "$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}},
    "$ref": "#/$defs/a",
}
# Each definition uses the next twice: 2^30 validations of one value.
DOUBLING = {
    "$ref": "#/$defs/d0",
    "$defs": {
        **{
            f"d{i}": {"allOf": [{"$ref": f"#/$defs/d{i + 1}"}, {"$ref": f"#/$defs/d{i + 1}"}]}
            for i in range(30)
        },
        "d30": {"type": "string"},
    },
}
REFUSED = [
    pytest.param({"$ref": "#"}, "$ref", "recursive", id="ref-to-root"),
    pytest.param(RECURSIVE_PAIR, "$defs.a.$ref", "recursive", id="ref-cycle"),
    pytest.param(
        {"properties": {"child": {"$ref": "#"}}},
        "properties.child.$ref",
        "recursive",
        id="ref-to-ancestor",
    ),
    pytest.param(
        {"$ref": "https://example.com/order.json"}, "$ref", "never fetched", id="remote-ref"
    ),
    pytest.param(
        {"$ref": "order.json#/$defs/x"}, "$ref", "never fetched", id="relative-remote-ref"
    ),
    pytest.param({"$ref": "#/$defs/missing"}, "$ref", "points at nothing", id="dangling-ref"),
    pytest.param(
        {"$ref": "#/properties", "properties": {"a": {}}},
        "$ref",
        "not point at a subschema",
        id="ref-to-non-schema",
    ),
    pytest.param(DOUBLING, "$defs.d", "parts with its $refs expanded", id="ref-doubling"),
    pytest.param(
        {"$defs": {"x": {"$id": "https://example.com/x", "type": "string"}}},
        "$defs.x.$id",
        "embedded",
        id="embedded-id",
    ),
    pytest.param({"$dynamicRef": "#meta"}, "$dynamicRef", "not supported", id="dynamic-ref"),
    pytest.param(
        {"properties": {"code": {"type": "string", "pattern": "^(?=.*[0-9])"}}},
        "properties.code.pattern",
        "lookahead",
        id="pattern-lookahead",
    ),
    pytest.param(
        {"$schema": DIALECT, "patternProperties": {"^(?!x_)": {}}},
        "patternProperties.^(?!x_)",
        "lookahead",
        id="patternProperties-lookahead",
    ),
    pytest.param(
        {"$schema": DIALECT, "propertyNames": {"pattern": "(a)\\1"}},
        "propertyNames.pattern",
        "backreference",
        id="propertyNames-backreference",
    ),
    pytest.param(
        {"$schema": DIALECT, "items": {"not": {"pattern": "(?<=a)b"}}},
        "items.not.pattern",
        "lookbehind",
        id="nested-pattern",
    ),
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("definition", "path", "words"), REFUSED)
def test_schemas_the_validator_cannot_run_are_refused(
    definition: dict[str, Any], path: str, words: str
) -> None:
    with pytest.raises(InvalidSchema) as raised:
        to_json_schema(definition)
    assert raised.value.path.startswith(path)
    assert words in raised.value.message


def test_references_inside_the_schema_still_work() -> None:
    schema, _ = to_json_schema(
        {
            "$id": "https://example.com/order",
            "$defs": {"money": {"type": "number", "minimum": 0}, "~odd/name": {"type": "string"}},
            "properties": {
                "total": {"$ref": "#/$defs/money"},
                "tax": {"$ref": "#/$defs/money"},
                "note": {"$ref": "#/$defs/~0odd~1name"},
            },
        }
    )

    violations = CompiledSchema(schema).validate({"total": -1, "tax": 2, "note": 3}, "properties")

    assert [(v.field, v.type) for v in violations] == [
        ("properties.note", "Datatype-Mismatch"),
        ("properties.total", "Range-Mismatch"),
    ]


def test_pattern_properties_beside_unevaluated_properties_run() -> None:
    # Refused while the `jsonschema` library found unevaluated properties with Python's `re`.
    schema, _ = to_json_schema(
        {"$schema": DIALECT, "patternProperties": {"^x_": {}}, "unevaluatedProperties": False}
    )

    violations = CompiledSchema(schema).validate({"x_a": 1, "other": 2}, "properties")

    assert [(v.field, v.type) for v in violations] == [
        ("properties.other", "Additional-Properties")
    ]


@pytest.fixture
def client() -> Any:
    return function_client("event_contracts")


def contract_body(schema_definition: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "Orders",
        "event_type": "track",
        "event_name": "order_placed",
        "schema_definition": schema_definition,
        "enforcement_mode": "block",
    }


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("definition", "path", "words"), REFUSED)
def test_the_api_refuses_them_with_the_field_and_the_reason(
    client: Any, tenant: Tenant, definition: dict[str, Any], path: str, words: str
) -> None:
    workspace_id, auth = tenant
    url = f"/api/v1/workspaces/{workspace_id}/event-contracts"

    response = client.post(url, json=contract_body(definition), headers=auth)

    assert response.status_code == 400
    error = response.get_json()
    assert error["field"].startswith(f"schema_definition.{path}")
    assert error["message"].startswith(error["field"] + ": ") and words in error["message"]
    assert client.get(url, headers=auth).get_json() == []


def test_the_api_refuses_a_lookahead_on_update_and_keeps_the_contract(
    client: Any, tenant: Tenant
) -> None:
    workspace_id, auth = tenant
    url = f"/api/v1/workspaces/{workspace_id}/event-contracts"
    created = client.post(url, json=contract_body({"properties": {}}), headers=auth).get_json()
    change = {"schema_definition": {"properties": {"sku": {"pattern": "^(?!TEST)"}}}}

    response = client.put(f"{url}/{created['id']}", json=change, headers=auth)

    assert response.status_code == 400
    error = response.get_json()
    assert error["field"] == "schema_definition.properties.sku.pattern"
    assert error["message"] == (
        "schema_definition.properties.sku.pattern: uses negative lookahead (?!...), which "
        "contract patterns cannot use: they run on a linear-time engine without lookaround or "
        "backreferences, so that no pattern can stall validation"
    )
    assert client.get(f"{url}/{created['id']}", headers=auth).get_json() == created


def test_a_contract_judges_in_linear_time_end_to_end() -> None:
    contract = saved_contract(
        {"properties": {"code": {"type": "string", "pattern": CATASTROPHIC}}}, "block"
    )
    event: CanonicalEvent = {"type": "track", "event": "x", "properties": {"code": "a" * 27 + "!"}}

    started = time.perf_counter()
    finding = CompiledContract(contract).check(event)

    assert time.perf_counter() - started < 0.5  # Python's `re` took 6.4 s here
    assert finding is not None and finding.blocked
    assert finding.violations[0].type == "Pattern-Mismatch"


def test_process_compiles_a_saved_contract_without_the_meta_schema_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The check runs when the contract is saved; at ~0.5 ms per schema node it held `process`
    # (and the GIL) for seconds at every new version of a large contract.
    def slow_check(schema: Any) -> None:
        raise AssertionError("the meta-schema check ran while compiling a saved contract")

    monkeypatch.setattr("shared.domain.schema_forms._check_meta", slow_check)
    contract = saved_contract({"properties": {f"p{i}": {"type": "string"} for i in range(2000)}})

    compiled = CompiledContract(contract)

    assert compiled.check({"type": "track", "event": "x", "properties": {"p1": "a"}}) is None
