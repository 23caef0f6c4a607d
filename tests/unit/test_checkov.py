"""checkov on terraform/: no failed check unless it is skipped with a reason in words.

checkov runs from .venv-checkov (tools/requirements-checkov.txt; `make test` builds it), with
terraform/.checkov.yaml: framework terraform, quiet, JSON output, offline. Skips are either that
file's `skip-check` entries, each with its reason in a comment on its line, or inline
`#checkov:skip=CKV_...:reason` comments in a resource's block; the reasons are checked here,
since checkov honours a skip without one.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_terraform import ROOT, TERRAFORM

CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
CONFIG = ".checkov.yaml"
CHECK_ID = r"CKV2?_[A-Z0-9]+_\d+"
CONFIG_SKIP = re.compile(rf"^\s*-\s*({CHECK_ID})\b\s*(?:#\s*(.*))?$")
INLINE_SKIP = re.compile(rf"#\s*checkov:skip=({CHECK_ID})(?::(.*))?")
# A reason is a sentence, not a token: "false positive" alone says nothing of why.
MIN_REASON_WORDS = 4


def run_checkov(terraform: Path) -> dict[str, Any]:
    """checkov's JSON report on a terraform directory, with that directory's config file."""
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: run `make test` or `make checkov`, which install it")
    result = subprocess.run(
        [
            str(CHECKOV),
            *("--directory", str(terraform)),
            *("--config-file", str(terraform / CONFIG)),
            *("--output", "json"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    # 0: all passed; 1: failed checks. Anything else is checkov itself failing.
    assert result.returncode in (0, 1), result.stderr[-3000:]
    report = json.loads(result.stdout)
    # One framework gives one report; more would give a list.
    assert isinstance(report, dict), "checkov ran more than the terraform framework"
    return report


def failed_checks(report: dict[str, Any]) -> list[str]:
    """Every failed check and parsing error, as "CHECK resource (file:lines): name"."""
    found = [
        f"{check['check_id']} {check['resource']} ({check['file_path']}:"
        f"{check['file_line_range'][0]}): {check['check_name']}"
        for check in report.get("results", {}).get("failed_checks", [])
    ]
    found += [
        f"cannot parse {path}" for path in report.get("results", {}).get("parsing_errors", [])
    ]
    return sorted(found)


def skip_reason_problems(terraform: Path) -> list[str]:
    """Skips, in the config file or inline, whose reason is missing or a token."""
    problems = []
    for number, line in enumerate((terraform / CONFIG).read_text().splitlines(), 1):
        entry = CONFIG_SKIP.match(line)
        if entry and len((entry.group(2) or "").split()) < MIN_REASON_WORDS:
            problems.append(f"{CONFIG}:{number}: {entry.group(1)} is skipped without a reason")
    for path in sorted(terraform.rglob("*.tf")):
        if ".terraform" in path.parts:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for skip in INLINE_SKIP.finditer(line):
                if len((skip.group(2) or "").split()) < MIN_REASON_WORDS:
                    where = path.relative_to(terraform)
                    problems.append(
                        f"{where}:{number}: {skip.group(1)} is skipped without a reason"
                    )
    return problems


def test_checkov_finds_no_failed_check_without_a_reason() -> None:
    report = run_checkov(TERRAFORM)
    assert report["summary"]["resource_count"] > 0, "checkov checked no resource"
    assert report["summary"]["parsing_errors"] == 0
    assert failed_checks(report) == []


def test_every_skip_has_a_reason() -> None:
    assert skip_reason_problems(TERRAFORM) == []


def test_the_run_is_terraform_only_and_offline() -> None:
    config = (TERRAFORM / CONFIG).read_text()
    assert re.search(r"^framework:\n  - terraform\n(?!  -)", config, re.M)
    assert re.search(r"^skip-download: true$", config, re.M)
    assert re.search(r"^quiet: true$", config, re.M)


# --- negative tests: a mutated copy of terraform/ -------------------------------------------


UNCHECKED_BUCKET = """
resource "google_storage_bucket" "unchecked" {
  #checkov:skip=CKV_GCP_62
  #checkov:skip=CKV_GCP_78:fine
  name     = "unchecked"
  location = "US"
}
"""


@pytest.fixture
def terraform_copy(tmp_path: Path) -> Path:
    """The checkov configuration and the root module's main.tf alone: what the negative test
    mutates, and a fraction of the whole tree's checking time (make test's budget)."""
    copy = tmp_path / "terraform"
    copy.mkdir()
    shutil.copy(TERRAFORM / CONFIG, copy / CONFIG)
    shutil.copy(TERRAFORM / "main.tf", copy / "main.tf")
    return copy


def test_a_failed_check_and_skips_without_reasons_are_detected(terraform_copy: Path) -> None:
    main = terraform_copy / "main.tf"
    main.write_text(main.read_text() + UNCHECKED_BUCKET)
    config = terraform_copy / CONFIG
    config.write_text(config.read_text() + "  - CKV_GCP_114\n")

    failed = [f for f in failed_checks(run_checkov(terraform_copy)) if ".unchecked " in f]
    # Uniform bucket-level access is neither set nor skipped: a failed check.
    assert [f for f in failed if f.startswith("CKV_GCP_29 ")], failed
    # Skipped ones, even without a reason, are checkov's to honour...
    assert not [f for f in failed if f.startswith(("CKV_GCP_62 ", "CKV_GCP_78 ", "CKV_GCP_114 "))]
    # ...and this test's to refuse.
    problems = skip_reason_problems(terraform_copy)
    assert [p.split(": ", 1)[1] for p in problems] == [
        "CKV_GCP_114 is skipped without a reason",
        "CKV_GCP_62 is skipped without a reason",
        "CKV_GCP_78 is skipped without a reason",
    ]
