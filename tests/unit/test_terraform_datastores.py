"""Offline checks of terraform/modules/datastores: Firestore's indexes and TTL policies are
created one at a time, and the data can be recovered (PITR, daily backups, BigQuery time travel).

Each checker takes a terraform directory, so the negative tests run it on a mutated copy.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_terraform import TERRAFORM, _parse, module_blocks

DATASTORES = Path("modules/datastores")
# The resources that are Firestore index operations: each must wait for the one before it.
INDEX_OPERATIONS = ("google_firestore_index", "google_firestore_field")
# Index operations added after the chaining, which never had a for_each address to move from.
ADDED_AFTER_CHAINING = {
    "google_firestore_field.event_claims_expires_at",
    "google_firestore_index.delivery_batches_by_destination_id",
    "google_firestore_field.delivery_batches_expires_at",
    "google_firestore_field.event_log_events",
    "google_firestore_field.delivery_batches_deliveries",
}
# `for equalities in local.<list> : "<prefix>_by_${join("_", equalities)}" => {...}`
GENERATED_KEYS = re.compile(
    r'for equalities in local\.(\w+) : "(\w+)_by_\$\{join\("_", equalities\)\}"'
)
LITERAL_KEY = re.compile(r"\b(\w+_by_\w+) = \{collection")
DEPENDENCY = re.compile(r"^\$\{(\w+\.\w+)\}$")


def datastores(terraform: Path = TERRAFORM) -> dict[str, dict[str, Any]]:
    return module_blocks(terraform / DATASTORES)


def composite_index_keys(terraform: Path = TERRAFORM) -> set[str]:
    """The keys of local.composite_indexes, evaluated from its generators and literal entries."""
    locals_ = datastores(terraform)["locals"]
    expression = locals_["composite_indexes"]
    keys = {
        f"{prefix}_by_{'_'.join(equalities)}"
        for list_name, prefix in GENERATED_KEYS.findall(expression)
        for equalities in locals_[list_name]
    }
    return keys | set(LITERAL_KEY.findall(expression))


def index_chain(terraform: Path = TERRAFORM) -> tuple[list[str], list[str]]:
    """The index operations in the order Terraform must run them, and what breaks the chain."""
    resources = datastores(terraform)["resource"]
    members = {
        address: body
        for address, body in resources.items()
        if address.split(".")[0] in INDEX_OPERATIONS
    }
    problems = []
    previous: dict[str, str | None] = {}
    for address, body in members.items():
        if "count" in body or "for_each" in body:
            problems.append(f"{address} has several instances, which run at once")
        chained = []
        for dependency in body.get("depends_on", []):
            match = DEPENDENCY.match(dependency)
            if match and match.group(1) in members:
                chained.append(match.group(1))
        if len(chained) > 1:
            problems.append(f"{address} waits for several index operations: {chained}")
        previous[address] = chained[0] if chained else None
    firsts = sorted(address for address, before in previous.items() if before is None)
    if len(firsts) != 1:
        problems.append(f"the chain must have one start, not {firsts}")
    followers: dict[str, list[str]] = {}
    for address, before in previous.items():
        if before is not None:
            followers.setdefault(before, []).append(address)
    for before, after in followers.items():
        if len(after) > 1:
            problems.append(f"{sorted(after)} all wait for {before} and run at once")
    chain = firsts[:1]
    while chain and len(followers.get(chain[-1], [])) == 1 and len(chain) <= len(members):
        chain.append(followers[chain[-1]][0])
    if not problems and set(chain) != set(members):
        problems.append(f"not on the chain: {sorted(set(members) - set(chain))}")
    return chain, problems


def index_problems(terraform: Path = TERRAFORM) -> list[str]:
    """Indexes and TTL policies of the locals without their chained block, and chain breaks."""
    blocks = datastores(terraform)
    resources, locals_ = blocks["resource"], blocks["locals"]
    _, problems = index_chain(terraform)
    for key in sorted(composite_index_keys(terraform)):
        index = resources.get(f"google_firestore_index.{key}")
        if index is None:
            problems.append(f"index {key} has no google_firestore_index block")
        elif index["collection"] != f"${{local.composite_indexes.{key}.collection}}":
            problems.append(f"google_firestore_index.{key} creates another entry of the locals")
    for collection in sorted(locals_["ttl_collections"]):
        field = resources.get(f"google_firestore_field.{collection}_expires_at")
        if field is None:
            problems.append(f"TTL collection {collection} has no google_firestore_field block")
        elif (field["collection"], field["field"], field.get("ttl_config")) != (
            collection,
            "${local.ttl_field}",
            [{}],
        ):
            problems.append(f"google_firestore_field.{collection}_expires_at is not its TTL policy")
    for collection, field_name in sorted(locals_["unindexed_maps"].items()):
        field = resources.get(f"google_firestore_field.{collection}_{field_name}")
        if field is None or (field["collection"], field.get("index_config")) != (collection, [{}]):
            problems.append(f"the map {collection}.{field_name} keeps its single-field indexes")
    return problems


def recovery_problems(terraform: Path = TERRAFORM) -> list[str]:
    """What is missing of PITR, the daily backup schedule and BigQuery time travel."""
    blocks = datastores(terraform)
    resources = blocks["resource"]
    problems = []
    database = resources["google_firestore_database.this"]
    if "var.recovery.firestore_point_in_time_recovery" not in database.get(
        "point_in_time_recovery_enablement", ""
    ):
        problems.append("the database does not set point_in_time_recovery_enablement")
    schedule = resources.get("google_firestore_backup_schedule.daily")
    if schedule is None:
        problems.append("no google_firestore_backup_schedule")
    else:
        if "create_database" in schedule.get("count", ""):
            problems.append("the backup schedule depends on whether the module made the database")
        if schedule.get("database") != "${local.database}" or "daily_recurrence" not in schedule:
            problems.append("the backup schedule is not a daily one of the functions' database")
        if "firestore_backup_retention_days * 86400}s" not in schedule.get("retention", ""):
            problems.append("the backup retention is not the variable's days")
    dataset = resources["google_bigquery_dataset.this"]
    if "var.recovery.bigquery_time_travel_hours" not in dataset.get("max_time_travel_hours", ""):
        problems.append("the dataset does not set max_time_travel_hours")
    call = module_blocks(terraform)["module"]["datastores"]
    if call.get("recovery") != "${var.recovery}":
        problems.append("the root module does not pass var.recovery to datastores")
    return problems


def recovery_defaults(directory: Path) -> dict[str, str]:
    """The `recovery` variable's attribute defaults, as written in its type."""
    type_ = module_blocks(directory)["variable"]["recovery"]["type"]
    return dict(re.findall(r"(\w+) = optional\(\w+, (\w+)\)", type_))


# --- tests ----------------------------------------------------------------------------------


def test_every_index_and_ttl_policy_is_created_one_after_another() -> None:
    assert index_problems() == []
    chain, _ = index_chain()
    locals_ = datastores()["locals"]
    assert len(chain) == len(composite_index_keys()) + len(locals_["ttl_collections"]) + len(
        locals_["unindexed_maps"]
    )


def test_the_indexes_of_the_queries_are_all_defined() -> None:
    # The combinations the services' queries filter by (comments of main.tf's locals).
    keys = composite_index_keys()
    assert len([k for k in keys if k.startswith("dead_letters_by_")]) == 7
    assert len([k for k in keys if k.startswith("audit_log_by_")]) == 7
    assert {"regulations_by_type_status", "quarantine_by_status"} <= keys
    assert {"delivery_batches_by_destination_id", "violations_by_workspace_id"} <= keys


def test_previous_addresses_move_to_the_chained_blocks() -> None:
    # A deployment made when each kind was one for_each resource keeps its indexes.
    moves = _parse(TERRAFORM / DATASTORES / "moved.tf")["moved"]
    targets = {move["to"].removeprefix("${").removesuffix("}") for move in moves}
    sources = {move["from"] for move in moves}
    chained = {a for a in datastores()["resource"] if a.split(".")[0] in INDEX_OPERATIONS}
    assert targets == chained - ADDED_AFTER_CHAINING
    assert chained >= ADDED_AFTER_CHAINING
    assert len(sources) == len(moves)
    assert all(
        re.fullmatch(r'\$\{google_firestore_(index\.composite|field\.ttl)\["[\w-]+"\]\}', s)
        for s in sources
    )


def test_firestore_has_point_in_time_recovery_and_daily_backups() -> None:
    assert recovery_problems() == []


def test_recovery_defaults_are_the_documented_ones() -> None:
    expected = {
        "firestore_point_in_time_recovery": "true",
        "firestore_backup_retention_days": "7",
        "bigquery_time_travel_hours": "168",
    }
    assert recovery_defaults(TERRAFORM) == expected
    assert recovery_defaults(TERRAFORM / DATASTORES) == expected


# --- negative tests: the checkers catch what is missing -------------------------------------


@pytest.fixture
def terraform_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "terraform"
    shutil.copytree(TERRAFORM, copy, ignore=shutil.ignore_patterns(".build", ".terraform"))
    return copy


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))


def test_an_index_outside_the_chain_is_detected(terraform_copy: Path) -> None:
    indexes = terraform_copy / DATASTORES / "firestore_indexes.tf"
    _edit(
        indexes,
        "depends_on = [google_firestore_index.regulations_by_type]\n",
        "",
    )
    problems = index_problems(terraform_copy)
    assert any("the chain must have one start" in problem for problem in problems), problems


def test_two_indexes_waiting_for_the_same_one_are_detected(terraform_copy: Path) -> None:
    indexes = terraform_copy / DATASTORES / "firestore_indexes.tf"
    _edit(
        indexes,
        "depends_on = [google_firestore_index.regulations_by_status]\n",
        "depends_on = [google_firestore_index.regulations_by_type]\n",
    )
    problems = index_problems(terraform_copy)
    assert any("all wait for google_firestore_index.regulations_by_type" in p for p in problems)


def test_an_index_without_its_block_is_detected(terraform_copy: Path) -> None:
    main = terraform_copy / DATASTORES / "main.tf"
    _edit(
        main,
        'regulation_filters = [["type"], ["status"], ["type", "status"]]',
        'regulation_filters = [["type"], ["status"], ["type", "status"], ["subject"]]',
    )
    assert index_problems(terraform_copy) == [
        "index regulations_by_subject has no google_firestore_index block"
    ]


def test_a_ttl_collection_without_its_block_is_detected(terraform_copy: Path) -> None:
    main = terraform_copy / DATASTORES / "main.tf"
    tokens = "    tokens = { indexed = false }\n"
    _edit(main, "  ttl_collections = {\n", "  ttl_collections = {\n" + tokens)
    assert index_problems(terraform_copy) == [
        "TTL collection tokens has no google_firestore_field block"
    ]


def test_missing_recovery_settings_are_detected(terraform_copy: Path) -> None:
    main = terraform_copy / DATASTORES / "main.tf"
    text = main.read_text()
    text = re.sub(r"\n  point_in_time_recovery_enablement = .*\n", "\n", text)
    text = re.sub(r"\n  max_time_travel_hours = .*\n", "\n", text)
    text = text.replace(
        "count = var.recovery.firestore_backup_retention_days > 0 ? 1 : 0",
        "count = var.firestore.create_database ? 1 : 0",
    )
    main.write_text(text)
    assert recovery_problems(terraform_copy) == [
        "the database does not set point_in_time_recovery_enablement",
        "the backup schedule depends on whether the module made the database",
        "the dataset does not set max_time_travel_hours",
    ]
