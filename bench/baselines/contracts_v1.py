"""FROZEN BASELINE, bench only: a contract judged as `process` judged it before issue 21
(`CompiledContract.check` at commit 44ec581: the generated predicate first, the closures only for
an event it refused), so the bench times both validators through the same `ContractSet.check`.
"""

from __future__ import annotations

from bench.baselines.schema_validator_v1 import CompiledSchema
from shared.domain.contracts import (
    TARGETS,
    CompiledContract,
    ContractFinding,
    EventContract,
    judge,
    unjudged,
)
from shared.domain.event import CanonicalEvent
from shared.domain.schema_forms import to_json_schema


class BaselineContract(CompiledContract):
    """The contract compiled by the frozen validator; judged by the same policy (`judge`)."""

    def __init__(self, contract: EventContract):
        self.contract = contract
        json_schema, _ = to_json_schema(contract.schema_definition, meta_check=False)
        self.baseline = CompiledSchema(json_schema)
        self.target = TARGETS[contract.event_type]

    def check(self, event: CanonicalEvent) -> ContractFinding | None:
        value = event.get(self.target)
        if value is None:
            value = {}
        try:
            valid = self.baseline.valid
            if valid is not None and valid(value):
                return None
            violations = self.baseline.violations(value, self.target)
        except Exception as error:
            return unjudged(self.contract, f"validation failed ({type(error).__name__}: {error})")
        return judge(self.contract, violations) if violations else None  # type: ignore[arg-type]
