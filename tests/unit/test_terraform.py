"""Offline structure tests of terraform/: what must be deployed is derived from the code.

`terraform init/validate` need the registry, which these machines cannot reach, so correctness
comes from these checks: every function directory is deployed with its entry point, every
setting the code reads is set, and so on (the edge: test_terraform_edge.py). Each checker takes
a terraform directory, so the negative tests run it on a mutated copy.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest

from shared.adapters.bigquery import SCHEMA_DIR
from shared.api.routes import PUBSUB_FUNCTIONS, ROUTES, http_functions
from shared.config import Settings
from shared.domain import storage
from shared.ports import PushPolicy
from shared.services import live
from shared.services.topology import DEAD_LETTERS_SUBSCRIPTION

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "terraform"
DEPLOY_DOC = ROOT / "docs" / "DEPLOY.md"
PRIMITIVE_ROLE = re.compile(r"roles/(owner|editor|viewer)\b")
# Environment reads in shared/config.py: env.get("X", ...) and helpers called as _f(env, "X", ...).
ENV_READ = re.compile(r"""env(?:\.get\(|\s*,)\s*["']([A-Z][A-Z0-9_]*)["']""")
DECORATOR_TRIGGERS = {"http": "http", "cloud_event": "pubsub"}
RUNTIMES = {"python311", "python312"}


# --- reading HCL ----------------------------------------------------------------------------


def _clean(value: Any) -> Any:
    """python-hcl2's output without its version-specific quoting and bookkeeping keys."""
    if isinstance(value, dict):
        return {_unquote(k): _clean(v) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list):
        return [_clean(item) for item in value]
    if isinstance(value, str):
        return _unquote(value)
    return value


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text


@cache
def _parse(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        cleaned: dict[str, Any] = _clean(hcl2.load(handle))
        return cleaned


def module_blocks(directory: Path) -> dict[str, dict[str, Any]]:
    """One Terraform module's blocks: variables, outputs, modules and locals by name, resources
    by "type.name"."""
    found: dict[str, dict[str, Any]] = {
        "variable": {},
        "output": {},
        "module": {},
        "locals": {},
        "resource": {},
    }
    for path in sorted(directory.glob("*.tf")):
        parsed = _parse(path)
        for kind in ("variable", "output", "module"):
            for block in parsed.get(kind, []):
                found[kind].update(block)
        for block in parsed.get("locals", []):
            found["locals"].update(block)
        for block in parsed.get("resource", []):
            for type_, named in block.items():
                for name, body in named.items():
                    found["resource"][f"{type_}.{name}"] = body
    return found


def module_dirs(terraform: Path = TERRAFORM) -> list[Path]:
    """The root module, every module under modules/ and every example."""
    dirs = [terraform, *sorted((terraform / "modules").iterdir())]
    dirs += sorted((terraform / "examples").iterdir())
    return [d for d in dirs if d.is_dir()]


# --- what the code says must be deployed ----------------------------------------------------


def function_triggers(root: Path = ROOT) -> dict[str, str]:
    """Every functions/<name>/main.py: name -> http or pubsub, from its decorated entry point."""
    found: dict[str, str] = {}
    for main in sorted(root.glob("functions/*/main.py")):
        name = main.parent.name
        tree = ast.parse(main.read_text())
        for node in tree.body:
            # ingest's entry point is a coroutine (functions_framework.aio.http, ASGI).
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
                for decorator in node.decorator_list:
                    if (
                        isinstance(decorator, ast.Attribute)
                        and decorator.attr in DECORATOR_TRIGGERS
                    ):
                        found[name] = DECORATOR_TRIGGERS[decorator.attr]
        assert name in found, f"{main} has no decorated entry point named {name}"
    return found


def settings_read_from_env(config: Path = ROOT / "shared" / "config.py") -> set[str]:
    """Every environment variable Settings.from_env reads."""
    return set(ENV_READ.findall(config.read_text()))


def documented_unset_settings(doc: Path = DEPLOY_DOC) -> set[str]:
    """Settings docs/DEPLOY.md declares deliberately unset by Terraform (with their defaults)."""
    text = doc.read_text()
    section = text.split("## Settings Terraform leaves unset", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", section, re.M))


# --- checkers -------------------------------------------------------------------------------


def deployed_functions(terraform: Path = TERRAFORM) -> dict[str, dict[str, Any]]:
    return dict(module_blocks(terraform)["locals"]["functions"])


def function_problems(terraform: Path = TERRAFORM, root: Path = ROOT) -> list[str]:
    """Functions of functions/ that Terraform does not deploy, or deploys with the wrong trigger."""
    declared = deployed_functions(terraform)
    problems = []
    for name, trigger in function_triggers(root).items():
        if name not in declared:
            problems.append(f"functions/{name} is not deployed (add it to local.functions)")
        elif declared[name]["trigger"] != trigger:
            problems.append(f"{name}: trigger {declared[name]['trigger']}, the code says {trigger}")
    for name in declared:
        if not (root / "functions" / name / "main.py").exists():
            problems.append(f"{name} is deployed but functions/{name}/main.py does not exist")
    return problems


def unset_settings(terraform: Path = TERRAFORM) -> list[str]:
    """Settings the code reads that Terraform neither sets nor docs/DEPLOY.md declares unset."""
    env = module_blocks(terraform)["locals"]
    provided = set(env["settings_environment"]) | set(env["wiring_environment"])
    provided |= set(env["secret_settings"])
    # Settings given only to the functions that read them (ingest's geo database, the
    # cookieless key of the functions that publish through shared/services/ingest.py).
    provided |= set(env["ingest_environment"]) | set(env["cookieless_secret_settings"])
    # The Valkey claims adapter's, given to the functions with access "dedup" when
    # dedup_store.kind is valkey (terraform/dedup.tf); without them claims stay in Firestore.
    provided |= set(env["valkey_environment"])
    return sorted(settings_read_from_env() - provided - documented_unset_settings())


# --- tests: functions -----------------------------------------------------------------------


def test_every_function_directory_is_deployed_with_its_trigger() -> None:
    assert function_problems() == []


def test_route_table_and_pubsub_functions_match_the_declared_triggers() -> None:
    declared = deployed_functions()
    assert {n for n in http_functions()} <= {
        n for n, f in declared.items() if f["trigger"] == "http"
    }
    assert set(PUBSUB_FUNCTIONS) == {n for n, f in declared.items() if f["trigger"] == "pubsub"}


def test_each_function_module_call_deploys_its_group() -> None:
    modules = module_blocks(TERRAFORM)["module"]
    http, pubsub = modules["http_functions"], modules["pubsub_functions"]
    for call, group in ((http, "local.http_functions"), (pubsub, "local.pubsub_functions")):
        assert call["source"] == "./modules/function"
        assert call["for_each"] == "${" + group + "}"
        assert call["name"] == "${each.key}"
        assert call["runtime"] == "${var.runtime}"
    locals_ = module_blocks(TERRAFORM)["locals"]
    for group, trigger in (("http_functions", "http"), ("pubsub_functions", "pubsub")):
        assert f'function.trigger == "{trigger}"' in locals_[group].replace('\\"', '"')


def test_entry_point_is_the_function_name_and_runtime_is_supported() -> None:
    function = module_blocks(TERRAFORM / "modules" / "function")
    build = function["resource"]["google_cloudfunctions2_function.this"]["build_config"][0]
    assert build["entry_point"] == "${var.name}"
    assert build["runtime"] == "${var.runtime}"
    for directory in (TERRAFORM, TERRAFORM / "modules" / "function"):
        runtime = module_blocks(directory)["variable"]["runtime"]
        assert runtime["default"] in RUNTIMES
        assert "python311" in runtime["validation"][0]["condition"]
        assert set(re.findall(r"python3\d+", runtime["validation"][0]["condition"])) <= RUNTIMES


def test_sizes_fit_each_job() -> None:
    functions = deployed_functions()
    # Pushed functions must answer within the push subscriptions' ack deadline.
    for name in PUBSUB_FUNCTIONS:
        assert functions[name]["size"]["timeout_seconds"] <= PushPolicy("x").ack_deadline_seconds
    # Live streams run for MAX_STREAM_SECONDS on the function serving the streaming route.
    for route in ROUTES:
        if route.streaming:
            assert functions[route.function]["size"]["timeout_seconds"] > live.MAX_STREAM_SECONDS
    for name, function in functions.items():
        size = function["size"]
        assert size["min_instances"] <= size["max_instances"], name
        assert re.fullmatch(r"\d+(Mi|Gi)", size["memory"]), name


# --- tests: settings ------------------------------------------------------------------------


def test_every_setting_the_code_reads_is_set_or_documented() -> None:
    assert settings_read_from_env(), "found no environment reads in shared/config.py"
    assert unset_settings() == []


def test_settings_reach_the_functions_that_need_them() -> None:
    modules = module_blocks(TERRAFORM)["module"]
    locals_ = module_blocks(TERRAFORM)["locals"]
    assert "local.settings_environment" in locals_["common_environment"]
    assert "local.common_environment" in modules["pubsub_functions"]["environment"]
    assert "local.common_environment" in modules["http_functions"]["environment"]
    assert "local.wiring_environment" in modules["http_functions"]["environment"]
    # Functions that create subscriptions at run time need the push endpoints: HTTP ones only.
    for name, function in deployed_functions().items():
        if "wire" in function["access"]:
            assert function["trigger"] == "http", name


def test_production_refuses_private_destinations_by_default() -> None:
    egress = module_blocks(TERRAFORM)["variable"]["destination_egress"]["type"]
    assert re.search(r"allow_private_destinations\s*=\s*optional\(bool,\s*false\)", egress)
    env = module_blocks(TERRAFORM)["locals"]["settings_environment"]
    assert "allow_private_destinations" in env["STREAMS_ALLOW_PRIVATE_DESTINATIONS"]


def test_pubsub_names_are_the_codes() -> None:
    locals_ = module_blocks(TERRAFORM)["locals"]
    assert locals_["dead_letters_topic"] == Settings(project_id="p").dead_letters_topic
    assert locals_["dead_letters_subscription"] == DEAD_LETTERS_SUBSCRIPTION
    assert locals_["settings_environment"]["STREAMS_DEAD_LETTERS_TOPIC"] == (
        "${local.dead_letters_topic}"
    )


# --- tests: IAM -----------------------------------------------------------------------------


def test_no_primitive_roles_anywhere() -> None:
    offenders = []
    for path in sorted(TERRAFORM.rglob("*.tf")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if PRIMITIVE_ROLE.search(line) and "regex(" not in line:
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_every_function_has_its_own_service_account() -> None:
    function = module_blocks(TERRAFORM / "modules" / "function")["resource"]
    assert "google_service_account.this" in function
    service = function["google_cloudfunctions2_function.this"]["service_config"][0]
    assert service["service_account_email"] == "${google_service_account.this.email}"


# --- tests: BigQuery and Firestore ----------------------------------------------------------


def test_bigquery_schemas_are_the_codes_files() -> None:
    tables = module_blocks(TERRAFORM)["module"]["datastores"]["bigquery"]["tables"]
    for schema in sorted(SCHEMA_DIR.glob("*.json")):
        table = tables.get(schema.stem)
        assert table, f"BigQuery table {schema.stem} ({schema.name}) is not deployed"
        path = Path(table["schema_file"].replace("${local.source_root}", str(ROOT)))
        assert path.resolve() == schema.resolve()
        assert json.loads(path.read_text()) == json.loads(schema.read_text())
    events = tables[storage.EVENTS_TABLE]
    assert events["partition_field"] == storage.PARTITION_FIELD
    assert tuple(events["clustering"]) == storage.CLUSTERING_FIELDS
    datastores = module_blocks(TERRAFORM / "modules" / "datastores")["resource"]
    table = datastores["google_bigquery_table.tables"]
    assert "jsondecode(file(each.value.schema_file))" in table["schema"]
    assert table["time_partitioning"][0]["field"] == "${each.value.partition_field}"


def test_firestore_ttl_policies_cover_expiring_collections() -> None:
    datastores = module_blocks(TERRAFORM / "modules" / "datastores")
    ttl = datastores["locals"]["ttl_collections"]
    # The dedup log and the live stream's collections expire by `expires_at` (code comments).
    assert {"event_log", "live_events", "live_sessions"} <= set(ttl)
    # One chained TTL block per collection: tests/unit/test_terraform_datastores.py.
    assert datastores["locals"]["ttl_field"] == "expires_at"
    # Collections the live feed queries by expires_at keep their index.
    assert ttl["live_events"]["indexed"] is True and ttl["live_sessions"]["indexed"] is True


# --- tests: conventions ---------------------------------------------------------------------


def test_every_variable_and_output_has_a_description() -> None:
    missing = []
    for directory in module_dirs():
        blocks = module_blocks(directory)
        for kind in ("variable", "output"):
            for name, body in blocks[kind].items():
                if not str(body.get("description", "")).strip():
                    missing.append(f"{directory.relative_to(ROOT)}: {kind} {name}")
    assert missing == []


def test_object_variables_are_validated() -> None:
    unvalidated = []
    for directory in module_dirs():
        for name, body in module_blocks(directory)["variable"].items():
            if "object(" in str(body.get("type", "")) and not body.get("validation"):
                unvalidated.append(f"{directory.relative_to(ROOT)}: {name}")
    assert unvalidated == []


def test_modules_have_the_standard_shape() -> None:
    for directory in [TERRAFORM, *sorted((TERRAFORM / "modules").iterdir())]:
        for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf"):
            assert (directory / name).exists(), f"{directory.relative_to(ROOT)}/{name}"
    assert (TERRAFORM / "examples" / "basic" / "main.tf").exists()


def test_terraform_fmt() -> None:
    binary = shutil.which("terraform") or "/usr/local/bin/terraform"
    if not Path(binary).exists():
        pytest.skip("terraform is not installed")
    result = subprocess.run(
        [binary, "fmt", "-check", "-recursive", str(TERRAFORM)],
        capture_output=True,
        text=True,
        env={**os.environ, "CHECKPOINT_DISABLE": "1"},
        timeout=60,
    )
    assert result.returncode == 0, f"terraform fmt would change: {result.stdout}"


# --- negative tests: the checkers catch what is missing -------------------------------------


@pytest.fixture
def terraform_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "terraform"
    shutil.copytree(TERRAFORM, copy, ignore=shutil.ignore_patterns(".build", ".terraform"))
    return copy


def test_a_missing_function_is_detected(terraform_copy: Path) -> None:
    main = terraform_copy / "main.tf"
    main.write_text(main.read_text().replace("    ingest = {", "    not_ingest = {", 1))
    _parse.cache_clear()
    problems = function_problems(terraform_copy)
    assert "functions/ingest is not deployed (add it to local.functions)" in problems


def test_a_missing_setting_is_detected(terraform_copy: Path) -> None:
    main = terraform_copy / "main.tf"
    text = main.read_text()
    line = re.search(r"^ *STREAMS_DELIVERY_MAX_ATTEMPTS *=.*\n", text, re.M)
    assert line
    main.write_text(text.replace(line.group(0), ""))
    _parse.cache_clear()
    assert unset_settings(terraform_copy) == ["STREAMS_DELIVERY_MAX_ATTEMPTS"]
