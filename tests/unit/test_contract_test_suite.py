"""The official JSON Schema Test Suite (draft 2020-12, vendored in
tests/golden/json_schema_test_suite/) through the contract validator, as a contract's schema goes:
`to_json_schema` (the checks made when a contract is saved), then `CompiledSchema`.

A case's data is valid when the validator finds no violation other than `Undeclared-Field` (a
notion of contracts, not of JSON Schema: the contract's `undeclared_fields` policy judges it).
Two documented departures are checked rather than skipped: schemas contracts refuse when saved
(references outside the schema, `$id` below the root, recursion) and the formats contracts check
where the suite says `format` is only an annotation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.domain.schema_formats import FORMATS
from shared.domain.schema_forms import InvalidSchema, to_json_schema
from shared.domain.schema_validator import UNDECLARED_FIELD, CompiledSchema

SUITE_DIR = Path(__file__).resolve().parents[2] / "tests/golden/json_schema_test_suite"
SUITE_FILES = sorted((SUITE_DIR / "draft2020-12").glob("*.json"))
# What the message of a refused schema may say: the refusals docs/CONTRACTS.md lists.
DOCUMENTED_REFUSALS = (
    "other schemas are never fetched",
    "embedded schemas ($id below the root) are not supported",
    "recursive schemas are not supported",
)
# (file, case, test) the suite calls valid because `format` is an annotation by default, which
# contracts check on purpose (docs/CONTRACTS.md, Format-Mismatch).
CHECKED_FORMATS = {
    ("format.json", f"{name} format", f"invalid {name} string is only an annotation by default")
    for name in FORMATS
}


def outcomes(path: Path) -> tuple[list[str], int, int]:
    """The file's cases through the validator: what went wrong (empty when all is as the suite
    says, or as documented), how many tests were judged, how many cases refused."""
    problems: list[str] = []
    judged = refused = 0
    for case in json.loads(path.read_text()):
        try:
            schema, _ = to_json_schema(case["schema"])
            compiled = CompiledSchema(schema)
        except InvalidSchema as error:
            refused += 1
            if not any(reason in error.message for reason in DOCUMENTED_REFUSALS):
                problems.append(f"{case['description']}: refused: {error}")
            continue
        for test in case["tests"]:
            judged += 1
            violations = compiled.validate(test["data"], "properties")
            found = [f"{v.field} {v.type}" for v in violations if v.type != UNDECLARED_FIELD]
            valid = test["valid"]
            if (path.name, case["description"], test["description"]) in CHECKED_FORMATS:
                valid = False
            if (not found) != valid:
                problems.append(
                    f"{case['description']} / {test['description']}: expected "
                    f"{'valid' if valid else 'invalid'}, found {found or 'no violation'}"
                )
    return problems, judged, refused


def test_the_vendored_suite_is_there() -> None:
    # 41 files of the suite's 46 for draft 2020-12 (README.md lists the ones left out).
    assert len(SUITE_FILES) == 41
    assert (SUITE_DIR / "LICENSE").read_text().startswith("Copyright")


@pytest.mark.parametrize("path", SUITE_FILES, ids=[p.stem for p in SUITE_FILES])
def test_the_official_suite_passes(path: Path) -> None:
    problems, judged, _ = outcomes(path)

    assert problems == []
    assert judged > 0, "every file kept has cases contracts accept"


def test_only_the_documented_cases_are_refused() -> None:
    counts: dict[str, Any] = {p.name: outcomes(p)[1:] for p in SUITE_FILES}
    refused = {name: r for name, (_, r) in counts.items() if r}

    # Remote and relative references, `$id` below the root and recursion, nothing else.
    assert set(refused) == {"anchor.json", "ref.json", "unevaluatedItems.json"} | {
        "unevaluatedProperties.json"
    }
    assert sum(judged for judged, _ in counts.values()) >= 1_090
