"""Offline checks of the warehouse's deployment (issue 18): the private warehouse function, the
Cloud Scheduler job that alone may call it, the BigQuery grants of the two functions that sync,
and the events' deployment-wide retention.

Each checker takes a terraform directory, so the negative tests run it on a mutated copy; the
retention variable's validation and expression are evaluated by `terraform console` on copies of
the variables (no provider, so offline).
"""

from __future__ import annotations

import inspect
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from shared import bootstrap
from shared.adapters import bigquery_warehouse
from shared.api import warehouse as warehouse_api
from shared.domain import storage
from tests.unit.test_terraform import ROOT, TERRAFORM, _parse, deployed_functions, module_blocks

DATASTORES = Path("modules/datastores")
SYNC_ROUTE = next(r for r in warehouse_api.INTERNAL_ROUTES if r.function == "warehouse")
ON_DEMAND_ROUTE = next(r for r in warehouse_api.ROUTES if r.path.endswith("/warehouse/sync"))
# Roles that write data or datasets: granted project-wide only under an IAM condition.
WIDE_BIGQUERY_ROLE = re.compile(r"roles/bigquery\.(dataEditor|dataOwner|admin|user)\b")
# `warehouse = {...}` inside the internal functions' invokers.
WAREHOUSE_INVOKERS = re.compile(r"\bwarehouse = \{")
# An entry of a map of members: `name = "serviceAccount:..."` or `name = module.x.member`.
MEMBER_ENTRY = re.compile(r'(\w+) = ("(?:[^"]*)"|[^,}]+)')


def _unbrace(expression: str) -> str:
    return expression.removeprefix("${").removesuffix("}")


def _braced(text: str, start: int) -> str:
    """The text between the brace at `start` and the one that closes it."""
    depth = 0
    for index in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[index], 0)
        if depth == 0:
            return text[start + 1 : index]
    raise ValueError(f"unbalanced braces from {start}")


def _tf_text(terraform: Path) -> str:
    return "\n".join(
        path.read_text()
        for path in sorted(terraform.rglob("*.tf"))
        if ".terraform" not in path.parts
    )


# --- checkers -------------------------------------------------------------------------------


def scheduler_problems(terraform: Path = TERRAFORM) -> list[str]:
    """What keeps the Cloud Scheduler job from POSTing the sync route as its own account."""
    root = module_blocks(terraform)
    resources = root["resource"]
    problems = []
    job = resources.get("google_cloud_scheduler_job.warehouse_sync")
    if job is None:
        return ["no google_cloud_scheduler_job.warehouse_sync"]
    uri = root["locals"].get("warehouse_uri", "")
    if uri != '${module.internal_functions["warehouse"].uri}':
        problems.append(f"local.warehouse_uri is {uri!r}, not the warehouse function's uri")
    target = job["http_target"][0]
    if target.get("http_method") != SYNC_ROUTE.method:
        problems.append(
            f"the job sends {target.get('http_method')}, the route is {SYNC_ROUTE.method}"
        )
    if target.get("uri") != "${local.warehouse_uri}" + SYNC_ROUTE.path:
        problems.append(f"the job calls {target.get('uri')}, not the sync route {SYNC_ROUTE.path}")
    oidc = (target.get("oidc_token") or [{}])[0]
    if oidc.get("service_account_email") != "${google_service_account.warehouse_scheduler.email}":
        problems.append("the job's ID token is not its own account's")
    if oidc.get("audience") != "${local.warehouse_uri}":
        problems.append("the ID token's audience is not the function's URL")
    if "oauth_token" in target:
        problems.append("an OAuth token: Cloud Run accepts only ID tokens")
    if job.get("schedule") != "${var.warehouse_sync_schedule}":
        problems.append("the schedule is not var.warehouse_sync_schedule")
    if "${time_sleep.apis_ready}" not in job.get("depends_on", []):
        problems.append("the job does not wait for the APIs")
    return problems


def invoker_problems(terraform: Path = TERRAFORM) -> list[str]:
    """Anyone but the scheduler's account who may invoke the warehouse function, or a way in
    that skips the invoker check."""
    root = module_blocks(terraform)
    call = root["module"]["internal_functions"]
    problems = []
    if call.get("public") is not False:
        problems.append("the internal functions are public")
    invokers = call["invokers"].replace('\\"', '"')
    found = list(WAREHOUSE_INVOKERS.finditer(invokers))
    if len(found) != 1:
        return [*problems, f"the warehouse function's invokers are not one map: {invokers}"]
    entries = _braced(invokers, found[0].end() - 1).strip()
    members = dict(MEMBER_ENTRY.findall(entries))
    scheduler = '"serviceAccount:${google_service_account.warehouse_scheduler.email}"'
    if members != {"scheduler": scheduler}:
        problems.append(f"the warehouse function's invokers are {entries!r}")
    if not call["invokers"].endswith("[each.key]}"):
        problems.append("the invokers are not chosen per internal function")
    # The scheduler's account holds no role: only the job and the invoker grant name it.
    account = "google_service_account.warehouse_scheduler."
    for directory in [terraform, *sorted((terraform / "modules").iterdir())]:
        blocks = module_blocks(directory)
        for address, body in blocks["resource"].items():
            if account in str(body) and address != "google_cloud_scheduler_job.warehouse_sync":
                problems.append(f"{address} names the scheduler's account")
        for name, body in blocks["module"].items():
            if account in str(body) and name != "internal_functions":
                problems.append(f"module {name} is given the scheduler's account")
    return problems


def grant_problems(terraform: Path = TERRAFORM) -> list[str]:
    """The warehouse grants of modules/datastores, missing or wider than designed."""
    blocks = module_blocks(terraform / DATASTORES)
    resources, locals_ = blocks["resource"], blocks["locals"]
    problems = []

    def grant(address: str) -> dict[str, Any]:
        body = resources.get(address)
        if body is None:
            problems.append(f"no {address}")
            return {}
        if body.get("for_each") != "${var.warehouse_syncers}":
            problems.append(f"{address} is not one grant per syncer")
        if body.get("member") != "${each.value}":
            problems.append(f"{address} grants someone else")
        return body

    creator = resources.get("google_project_iam_custom_role.warehouse_datasets", {})
    if creator.get("permissions") != ["bigquery.datasets.create"]:
        problems.append(f"the dataset creator role holds {creator.get('permissions')}")
    creates = grant("google_project_iam_member.warehouse_creates_datasets")
    if (
        creates
        and creates.get("role") != "${google_project_iam_custom_role.warehouse_datasets.name}"
    ):
        problems.append("datasets are created with another role than the custom one")

    views = grant("google_project_iam_member.warehouse_writes_views")
    prefix = "projects/${var.project_id}/datasets/${local.warehouse_dataset_prefix}"
    expression = (views.get("condition") or [{}])[0].get("expression", "").replace('\\"', '"')
    if views and expression != f'resource.name.startsWith("{prefix}")':
        problems.append(
            f"the views' grant is not limited to the workspace datasets: {expression!r}"
        )
    if locals_.get("warehouse_dataset_prefix") != "${var.bigquery.dataset_id}_ws_":
        problems.append("local.warehouse_dataset_prefix is not <dataset>_ws_")

    authorise = resources.get("google_project_iam_custom_role.warehouse_authorise", {})
    if sorted(authorise.get("permissions", [])) != [
        "bigquery.datasets.get",
        "bigquery.datasets.update",
    ]:
        problems.append(f"the authorising role holds {authorise.get('permissions')}")
    authorises = grant("google_bigquery_dataset_iam_member.warehouse_authorises")
    if authorises and (
        authorises.get("dataset_id") != "${google_bigquery_dataset.this.dataset_id}"
        or authorises.get("role") != "${google_project_iam_custom_role.warehouse_authorise.name}"
    ):
        problems.append("the authorising role is not granted on the events dataset")

    expires = grant("google_bigquery_table_iam_member.warehouse_expires_events")
    if expires and (
        expires.get("table_id") != "${google_bigquery_table.tables[var.warehouse_table].table_id}"
        or expires.get("role") != "roles/bigquery.dataEditor"
    ):
        problems.append("retention's DELETE is not granted on the events table alone")

    # Nothing BigQuery-wide without a condition, in any module.
    for directory in [terraform, *sorted((terraform / "modules").iterdir())]:
        for address, body in module_blocks(directory)["resource"].items():
            wide = WIDE_BIGQUERY_ROLE.search(str(body.get("role", "")))
            if (
                address.startswith("google_project_iam_member.")
                and wide
                and not body.get("condition")
            ):
                problems.append(f"{address}: {body['role']} on the whole project")
    return problems


def access_list_problems(terraform: Path = TERRAFORM) -> list[str]:
    """What would make Terraform remove the authorised-dataset entries the syncs add."""
    problems = []
    resources = module_blocks(terraform / DATASTORES)["resource"]
    if "access" in resources["google_bigquery_dataset.this"]:
        problems.append("the dataset's access blocks are authoritative")
    text = _tf_text(terraform)
    for kind in (
        "google_bigquery_dataset_iam_policy",
        "google_bigquery_dataset_iam_binding",
        "google_bigquery_dataset_access",
    ):
        if f'resource "{kind}"' in text:
            problems.append(f"{kind} rewrites the access list")
    # google_bigquery_dataset_iam_member keeps dataset/view/routine entries since 6.6.
    for directory in (terraform, terraform / DATASTORES):
        versions = _parse(directory / "versions.tf")["terraform"][0]
        for providers in versions.get("required_providers", []):
            google = providers.get("google")
            if google is None:
                continue
            floor = re.search(r">=\s*(\d+)\.(\d+)", google["version"])
            if not floor or (int(floor.group(1)), int(floor.group(2))) < (6, 6):
                problems.append(f"{directory.name}: google provider {google['version']} < 6.6")
    return problems


# --- evaluation of the retention variable ---------------------------------------------------


def _console(
    work: Path, tmp_path: Path, expression: str, *variables: str
) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("terraform")
    if binary is None:
        pytest.skip("terraform is not installed")
    return subprocess.run(
        [binary, "console", "-no-color", *(f"-var={v}" for v in variables)],
        cwd=work,
        input=expression,
        capture_output=True,
        text=True,
        env={"CHECKPOINT_DISABLE": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        timeout=60,
    )


def root_bigquery(tmp_path: Path, value: str) -> subprocess.CompletedProcess[str]:
    """The root module's variables (alone: no provider) with bigquery = value."""
    work = tmp_path / "root_variables"
    if not work.exists():
        work.mkdir()
        shutil.copy(TERRAFORM / "variables.tf", work / "variables.tf")
    return _console(
        work,
        tmp_path,
        "jsonencode(var.bigquery)",
        "project_id=streams-test",
        'domains=["data.example.com"]',
        f"bigquery={value}",
    )


def expiration_ms(tmp_path: Path, days: str, terraform: Path = TERRAFORM) -> Any:
    """The events table's partition expiration, the module's own expression evaluated with the
    datastores variables (the root passes var.bigquery.partition_expiration_days through)."""
    table = module_blocks(terraform / DATASTORES)["resource"]["google_bigquery_table.tables"]
    expression = _unbrace(table["time_partitioning"][0]["expiration_ms"]).replace('\\"', '"')
    work = tmp_path / f"datastores_{days}"
    work.mkdir()
    shutil.copy(terraform / DATASTORES / "variables.tf", work / "variables.tf")
    (work / "expiration.tf").write_text(f"locals {{\n  expiration_ms = {expression}\n}}\n")
    result = _console(
        work,
        tmp_path,
        "jsonencode(local.expiration_ms)",
        "project_id=streams-test",
        'firestore={ location_id = "us-central1" }',
        'bigquery={ dataset_id = "streams", location = "US", tables = {}, '
        f"partition_expiration_days = {days} }}",
    )
    assert result.returncode == 0 and "Error" not in result.stderr, result.stderr
    return json.loads(json.loads(result.stdout.strip()))


# --- tests: the function and its schedule ---------------------------------------------------


def test_warehouse_is_a_private_function_serving_the_sync_route() -> None:
    functions = deployed_functions()
    warehouse = functions["warehouse"]
    assert warehouse["trigger"] == "http" and warehouse["internal"] is True
    assert SYNC_ROUTE.method == "POST" and SYNC_ROUTE.path == "/internal/warehouse/sync"
    # Not behind the load balancer: no public route reaches it.
    routes = json.loads((TERRAFORM / "modules" / "edge" / "routes.json").read_text())
    assert "warehouse" not in {rule.get("function") for rule in routes["route_rules"]}
    # One sync at a time, within Cloud Scheduler's longest attempt deadline (30 minutes).
    size = warehouse["size"]
    assert size["concurrency"] == 1 and size["max_instances"] == 1
    assert size["timeout_seconds"] <= 1800
    job = module_blocks(TERRAFORM)["resource"]["google_cloud_scheduler_job.warehouse_sync"]
    assert "min(local.sizes.warehouse.timeout_seconds, 1800)" in job["attempt_deadline"]


def test_the_scheduler_posts_the_sync_route_with_an_id_token_of_its_own_account() -> None:
    assert scheduler_problems() == []
    variable = module_blocks(TERRAFORM)["variable"]["warehouse_sync_schedule"]
    assert variable["default"] == "0 * * * *"
    apis = module_blocks(TERRAFORM)["locals"]["apis"]
    assert '"cloudscheduler.googleapis.com"' in apis.replace('\\"', '"')


def test_only_the_schedulers_account_may_invoke_the_warehouse_function() -> None:
    assert invoker_problems() == []
    account = module_blocks(TERRAFORM)["resource"]["google_service_account.warehouse_scheduler"]
    assert account["account_id"] == "${var.name_prefix}-warehouse-cron"
    # 12 characters of prefix at most (variables.tf) leave the id within 30.
    assert len("x" * 12 + "-warehouse-cron") <= 30


# --- tests: BigQuery grants ------------------------------------------------------------------


def test_the_two_syncing_functions_and_only_they_hold_the_warehouse_grants() -> None:
    functions = deployed_functions()
    holders = {name for name, function in functions.items() if "warehouse" in function["access"]}
    # The scheduled sync, and the on-demand one the events function serves.
    assert holders == {"warehouse", ON_DEMAND_ROUTE.function} == {"warehouse", "events"}
    for name in holders:
        # Queries need jobUser on the project and dataViewer on the events dataset.
        assert "bigquery_read" in functions[name]["access"], name
        # No dataEditor on the whole events dataset: retention needs the events table only.
        assert "bigquery_write" not in functions[name]["access"], name
    root = module_blocks(TERRAFORM)
    assert '"warehouse"' in root["locals"]["members_with"].replace('\\"', '"')
    call = root["module"]["datastores"]
    assert call["warehouse_syncers"].replace('\\"', '"') == '${local.members_with["warehouse"]}'
    assert call["name_prefix"] == "${var.name_prefix}"


def test_each_warehouse_grant_exists_scoped_as_designed() -> None:
    assert grant_problems() == []
    variables = module_blocks(TERRAFORM / DATASTORES)["variable"]
    assert variables["warehouse_table"]["default"] == storage.EVENTS_TABLE
    # The names the grants are scoped to are the code's.
    assert re.search(r'f"\{self\.settings\.bigquery_dataset\}_ws_"', inspect.getsource(bootstrap))
    adapter = inspect.getsource(bigquery_warehouse.BigQueryWarehouse)
    assert "create_dataset(" in adapter and "update_dataset(" in adapter
    assert '"access_entries"' in adapter and "DELETE FROM" in adapter


def test_terraform_keeps_the_access_entries_the_syncs_add() -> None:
    assert access_list_problems() == []


# --- tests: retention -----------------------------------------------------------------------


def test_the_retention_variable_reaches_the_events_partition_expiration(tmp_path: Path) -> None:
    call = module_blocks(TERRAFORM)["module"]["datastores"]["bigquery"]
    assert call["partition_expiration_days"] == "${var.bigquery.partition_expiration_days}"
    assert (
        module_blocks(TERRAFORM)["variable"]["bigquery"]["type"].count(
            "partition_expiration_days = optional(number)"
        )
        == 1
    )
    assert expiration_ms(tmp_path, "30") == 30 * 86_400_000
    assert expiration_ms(tmp_path, "null") is None


@pytest.mark.parametrize("days", ["0", "-1", "1.5", "36501"])
def test_the_retention_variable_refuses_what_is_not_1_to_36500_days(
    tmp_path: Path, days: str
) -> None:
    result = root_bigquery(tmp_path, f"{{ partition_expiration_days = {days} }}")
    # `terraform console` reports a refused variable and still evaluates.
    assert "Error: Invalid value for variable" in result.stderr
    assert "a whole number of days from 1 to 36500" in " ".join(result.stderr.split())


@pytest.mark.parametrize("days", ["1", "90", "36500", "null"])
def test_the_retention_variable_accepts_1_to_36500_days_or_forever(
    tmp_path: Path, days: str
) -> None:
    result = root_bigquery(tmp_path, f"{{ partition_expiration_days = {days} }}")
    assert result.returncode == 0 and "Error" not in result.stderr, result.stderr
    # The datastores module accepts whatever the root module does.
    if days != "null":
        assert expiration_ms(tmp_path, days) == int(days) * 86_400_000


# --- negative tests: the checkers catch what is wrong ---------------------------------------


@pytest.fixture
def terraform_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "terraform"
    shutil.copytree(TERRAFORM, copy, ignore=shutil.ignore_patterns(".build", ".terraform"))
    return copy


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))


def test_a_scheduler_calling_elsewhere_or_as_another_account_is_detected(
    terraform_copy: Path,
) -> None:
    warehouse = terraform_copy / "warehouse.tf"
    _edit(
        warehouse,
        "warehouse_uri}/internal/warehouse/sync",
        "warehouse_uri}/internal/warehouse/other",
    )
    _edit(
        warehouse,
        "service_account_email = google_service_account.warehouse_scheduler.email",
        'service_account_email = "someone@example.com"',
    )
    _parse.cache_clear()
    assert scheduler_problems(terraform_copy) == [
        "the job calls ${local.warehouse_uri}/internal/warehouse/other, not the sync route "
        "/internal/warehouse/sync",
        "the job's ID token is not its own account's",
    ]


def test_another_invoker_of_the_warehouse_function_is_detected(terraform_copy: Path) -> None:
    _edit(
        terraform_copy / "main.tf",
        "warehouse = { scheduler = ",
        'warehouse = { events = module.http_functions["events"].member, scheduler = ',
    )
    _parse.cache_clear()
    problems = invoker_problems(terraform_copy)
    assert len(problems) == 1 and "the warehouse function's invokers are" in problems[0]


def test_a_role_given_to_the_schedulers_account_is_detected(terraform_copy: Path) -> None:
    text = (terraform_copy / "warehouse.tf").read_text()
    (terraform_copy / "warehouse.tf").write_text(
        text
        + '\nresource "google_project_iam_member" "scheduler_extra" {\n'
        + '  project = var.project_id\n  role    = "roles/bigquery.jobUser"\n'
        + '  member  = "serviceAccount:${google_service_account.warehouse_scheduler.email}"\n}\n'
    )
    _parse.cache_clear()
    assert invoker_problems(terraform_copy) == [
        "google_project_iam_member.scheduler_extra names the scheduler's account"
    ]


def test_wider_warehouse_grants_are_detected(terraform_copy: Path) -> None:
    main = terraform_copy / DATASTORES / "main.tf"
    text = main.read_text()
    # The views' grant without its condition, and the creator role widened.
    text = re.sub(
        r'(resource "google_project_iam_member" "warehouse_writes_views" \{.*?)'
        r"\n  condition \{.*?\n  \}\n",
        r"\1\n",
        text,
        flags=re.S,
    )
    text = text.replace(
        'permissions = ["bigquery.datasets.create"]',
        'permissions = ["bigquery.datasets.create", "bigquery.tables.list"]',
    )
    text = text.replace(
        "table_id   = google_bigquery_table.tables[var.warehouse_table].table_id",
        'table_id   = "other"',
    )
    main.write_text(text)
    _parse.cache_clear()
    assert grant_problems(terraform_copy) == [
        "the dataset creator role holds ['bigquery.datasets.create', 'bigquery.tables.list']",
        "the views' grant is not limited to the workspace datasets: ''",
        "retention's DELETE is not granted on the events table alone",
        "google_project_iam_member.warehouse_writes_views: roles/bigquery.dataEditor on the "
        "whole project",
    ]


def test_an_authoritative_access_list_is_detected(terraform_copy: Path) -> None:
    main = terraform_copy / DATASTORES / "main.tf"
    _edit(
        main,
        "  max_time_travel_hours = tostring(var.recovery.bigquery_time_travel_hours)\n",
        "  max_time_travel_hours = tostring(var.recovery.bigquery_time_travel_hours)\n"
        '  access {\n    role          = "OWNER"\n    special_group = "projectOwners"\n  }\n',
    )
    _edit(
        main,
        'resource "google_bigquery_dataset_iam_member" "readers" {',
        'resource "google_bigquery_dataset_iam_binding" "readers" {',
    )
    _parse.cache_clear()
    assert access_list_problems(terraform_copy) == [
        "the dataset's access blocks are authoritative",
        "google_bigquery_dataset_iam_binding rewrites the access list",
    ]


def test_retention_that_no_longer_reaches_the_table_is_detected(
    terraform_copy: Path, tmp_path: Path
) -> None:
    _edit(
        terraform_copy / DATASTORES / "main.tf",
        "var.bigquery.partition_expiration_days * 86400000",
        "var.bigquery.partition_expiration_days * 1000",
    )
    _parse.cache_clear()
    assert expiration_ms(tmp_path, "30", terraform_copy) != 30 * 86_400_000


def test_the_deploy_doc_describes_the_warehouse() -> None:
    doc = (ROOT / "docs" / "DEPLOY.md").read_text()
    section = doc.split("### Warehouse", 1)[1].split("\n## ", 1)[0]
    for needed in (
        "warehouse_sync_schedule",
        SYNC_ROUTE.path,
        "bigquery.datasets.create",
        "bigquery.datasets.update",
        "partition_expiration_days",
        "retention_days",
        "roles/bigquery.dataViewer",
        "roles/bigquery.jobUser",
    ):
        assert needed in section, needed
