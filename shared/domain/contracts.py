"""Event contracts: which events a contract judges, the policy that turns violations into an
outcome, and the summary of recorded violations. Validation itself is `schema_validator`'s.

Matching: a contract judges events of its `event_type` whose name equals its `event_name`, or
every name when `event_name` is "*". Every matching active contract judges an event on its own;
the event is blocked when any of them blocks it (the strictest outcome wins).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from shared.domain.event import CanonicalEvent
from shared.domain.routing import event_name
from shared.domain.schema_forms import to_json_schema
from shared.domain.schema_validator import (
    SCHEMA_MISMATCH,
    UNDECLARED_FIELD,
    CompiledSchema,
    Violation,
)

ContractEventType = Literal["track", "identify", "page", "screen", "group"]
EnforcementMode = Literal["allow", "warn", "block"]
ContractStatus = Literal["active", "archived"]
Action = Literal["allowed", "warned", "blocked"]

ANY_NAME = "*"
# The part of an event a contract's schema describes.
TARGETS: dict[str, Literal["properties", "traits"]] = {
    "track": "properties",
    "page": "properties",
    "screen": "properties",
    "identify": "traits",
    "group": "traits",
}
CONTRACT_EVENT_TYPES = tuple(TARGETS)
# Event types that carry a name; the others only take contracts for every name ("*").
NAMED_TYPES = frozenset({"track", "page", "screen"})
ACTIONS: dict[str, Action] = {"allow": "allowed", "warn": "warned", "block": "blocked"}
# Violations kept per event and contract, of each kind (schema, undeclared): enough to explain
# and to fix, bounded so one garbage event cannot write unbounded records.
MAX_KEPT_PER_KIND = 10
# How long the reason a contract could not judge an event may be, in its violation.
MAX_REASON_CHARS = 300


class EventContract(BaseModel):
    """A contract as stored and answered (the seed's object plus workspace, version, times)."""

    id: str
    workspace_id: str
    name: str
    event_type: ContractEventType
    event_name: str
    description: str | None = None
    schema_definition: dict[str, Any]
    enforcement_mode: EnforcementMode
    undeclared_fields: EnforcementMode
    status: ContractStatus
    version: int
    created_at: str
    updated_at: str

    def applies_to(self, event: CanonicalEvent) -> bool:
        """Active, of the event's type, and for the event's name (or every name)."""
        return (
            self.status == "active"
            and event.get("type") == self.event_type
            and (self.event_name == ANY_NAME or event_name(event) == self.event_name)
        )


@dataclass(frozen=True)
class ContractFinding:
    """One contract's judgement of one event: its violations and what the policy did with each."""

    contract: EventContract
    violations: list[Violation]
    actions: list[Action]
    # Set when judging this event failed (its one violation says why; the caller logs it).
    error: str | None = None

    @property
    def blocked(self) -> bool:
        return "blocked" in self.actions


def action_for(contract: EventContract, violation: Violation) -> Action:
    """The policy: undeclared fields follow `undeclared_fields`, everything else the mode."""
    mode = (
        contract.undeclared_fields
        if violation.type == UNDECLARED_FIELD
        else contract.enforcement_mode
    )
    return ACTIONS[mode]


def judge(contract: EventContract, violations: list[Violation]) -> ContractFinding:
    """Apply the contract's policy to its violations (capped per kind, schema ones first)."""
    if len(violations) == 1:
        violation = violations[0]
        return ContractFinding(contract, [violation], [action_for(contract, violation)])
    schema: list[Violation] = []
    undeclared: list[Violation] = []
    for violation in violations:
        (undeclared if violation.type == UNDECLARED_FIELD else schema).append(violation)
    del schema[MAX_KEPT_PER_KIND:], undeclared[MAX_KEPT_PER_KIND:]
    actions = [ACTIONS[contract.enforcement_mode]] * len(schema)
    actions += [ACTIONS[contract.undeclared_fields]] * len(undeclared)
    return ContractFinding(contract, schema + undeclared, actions)


def unjudged(contract: EventContract, reason: str, failed: bool = True) -> ContractFinding:
    """The finding when the contract could not judge an event: one Schema-Mismatch saying why,
    which the contract's `enforcement_mode` decides like any other (`block` quarantines).
    `failed`: judging this event failed (else the contract cannot judge any, known already)."""
    reason = reason if len(reason) <= MAX_REASON_CHARS else reason[: MAX_REASON_CHARS - 1] + "…"
    violation = Violation(
        SCHEMA_MISMATCH,
        TARGETS[contract.event_type],
        f"the contract could not judge this event: {reason}",
        "a contract that can run",
        None,
    )
    action = ACTIONS[contract.enforcement_mode]
    return ContractFinding(contract, [violation], [action], reason if failed else None)


class CompiledContract:
    """A contract with its schema compiled once (per contract version)."""

    def __init__(self, contract: EventContract):
        self.contract = contract
        json_schema, _ = to_json_schema(contract.schema_definition, meta_check=False)
        self.schema = CompiledSchema(json_schema)
        self.target = TARGETS[contract.event_type]

    def check(self, event: CanonicalEvent) -> ContractFinding | None:
        """The finding on an event it applies to, or None when the event is valid."""
        value = event.get(self.target)
        if value is None:
            value = {}
        try:
            try:
                if self.schema.accepts(value):
                    return None
                violations = self.schema.refusal(value, self.target)
            except UnicodeEncodeError:
                violations = self.schema.validate(value, self.target)  # U+FFFD for surrogates
        except Exception as error:
            # One event the validator fails on (e.g. a schema saved before a check that now
            # refuses it) gets its own outcome; its neighbours are judged as usual.
            return unjudged(self.contract, f"validation failed ({type(error).__name__}: {error})")
        return judge(self.contract, violations) if violations else None


class UnrunnableContract(CompiledContract):
    """A stored contract whose schema no longer compiles (saved before a rule that refuses it):
    it judges every event it matches as `unjudged`, so its owner sees why in the violations."""

    def __init__(self, contract: EventContract, reason: str):
        self.contract = contract
        self.target = TARGETS[contract.event_type]
        self.reason = f"its schema cannot run ({reason})"

    def check(self, event: CanonicalEvent) -> ContractFinding | None:
        return unjudged(self.contract, self.reason, failed=False)


def compile_contract(contract: EventContract) -> CompiledContract:
    """The contract compiled, or, when its schema cannot be, an `UnrunnableContract`."""
    try:
        return CompiledContract(contract)
    except Exception as error:
        return UnrunnableContract(contract, str(error) or type(error).__name__)


# The field holding an event's name, by event type (see `routing.event_name`).
NAME_FIELDS: dict[str, Literal["event", "name"]] = {
    "track": "event",
    "page": "name",
    "screen": "name",
}

# Per event type: the name field (None when the type has no names), the contracts by event
# name (those for every name first), and the contracts for an event of another name.
_Lookup = tuple[
    Literal["event", "name"] | None,
    dict[str, tuple[CompiledContract, ...]],
    tuple[CompiledContract, ...],
]


class ContractSet:
    """A workspace's active contracts, indexed by what they match.

    Built once per set of contract versions (`ContractValidator` caches it), with a table from
    (event type, event name) to the contracts that judge such an event, in judging order.
    """

    def __init__(self, contracts: Iterable[CompiledContract]):
        ordered = sorted(contracts, key=lambda c: (c.contract.created_at, c.contract.id))
        self._named: dict[tuple[str, str], list[CompiledContract]] = {}
        self._any: dict[str, list[CompiledContract]] = {}
        for compiled in ordered:
            contract = compiled.contract
            if contract.status != "active":
                continue
            if contract.event_name == ANY_NAME:
                self._any.setdefault(contract.event_type, []).append(compiled)
            else:
                key = (contract.event_type, contract.event_name)
                self._named.setdefault(key, []).append(compiled)
        self.size = sum(map(len, self._named.values())) + sum(map(len, self._any.values()))
        self._lookup: dict[str, _Lookup] = {}
        for event_type in {*self._any, *(t for t, _ in self._named)}:
            every = tuple(self._any.get(event_type, ()))
            by_name = {
                name: (*every, *found)
                for (kind, name), found in self._named.items()
                if kind == event_type and event_type in NAMED_TYPES
            }
            self._lookup[event_type] = (NAME_FIELDS.get(event_type), by_name, every)

    def __bool__(self) -> bool:
        return self.size > 0

    def matching(self, event: CanonicalEvent) -> list[CompiledContract]:
        """Every contract that judges the event: those for every name first, then its name's."""
        event_type = event.get("type")
        if not isinstance(event_type, str):
            return []
        found = list(self._any.get(event_type, ()))
        name = event_name(event)
        if isinstance(name, str):
            found.extend(self._named.get((event_type, name), ()))
        return found

    def check(self, event: CanonicalEvent) -> list[ContractFinding]:
        """The findings of every matching contract that found a violation (the hot path)."""
        event_type = event.get("type")
        if not isinstance(event_type, str):
            return []
        lookup = self._lookup.get(event_type)
        if lookup is None:
            return []
        name_field, by_name, contracts = lookup
        # `by_name` is filled only for NAMED_TYPES, whose name field is never None.
        if by_name and name_field is not None:
            name = event.get(name_field)
            if isinstance(name, str):
                contracts = by_name.get(name, contracts)
        if len(contracts) == 1:
            finding = contracts[0].check(event)
            return [] if finding is None else [finding]
        return [f for c in contracts if (f := c.check(event)) is not None]


# --- storage paths -----------------------------------------------------------------------------


def contracts_collection(workspace_id: str) -> str:
    return f"workspaces/{workspace_id}/event_contracts"


def contract_path(workspace_id: str, contract_id: str) -> str:
    return f"{contracts_collection(workspace_id)}/{contract_id}"


def violations_collection(workspace_id: str, contract_id: str) -> str:
    """One record per event and contract, listing that event's violations of the contract."""
    return f"{contract_path(workspace_id, contract_id)}/violations"


# --- the violations summary --------------------------------------------------------------------

_INDEX = re.compile(r"\[\d+\]")


def summarise(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Counts per field and type over violation records, and the shadow report: how many events
    `block` would have stopped that the contract let through (schema and undeclared apart)."""
    by_type: Counter[str] = Counter()
    by_field: Counter[str] = Counter()
    by_pair: Counter[tuple[str, str]] = Counter()
    events = blocked = would_block = would_block_undeclared = 0
    for record in records:
        events += 1
        items = record.get("violations") or []
        if any(v["action"] == "blocked" for v in items):
            blocked += 1
        else:
            would_block += any(v["type"] != UNDECLARED_FIELD for v in items)
            would_block_undeclared += any(v["type"] == UNDECLARED_FIELD for v in items)
        for item in items:
            field = _INDEX.sub("[]", item["field"])
            by_type[item["type"]] += 1
            by_field[field] += 1
            by_pair[(field, item["type"])] += 1
    return {
        "violations": sum(by_type.values()),
        "events": events,
        "blocked_events": blocked,
        "by_type": dict(by_type.most_common()),
        "by_field": dict(by_field.most_common()),
        "by_field_and_type": [
            {"field": field, "type": kind, "count": count}
            for (field, kind), count in by_pair.most_common()
        ],
        "shadow": {
            "would_block": would_block,
            "would_block_undeclared": would_block_undeclared,
        },
    }
