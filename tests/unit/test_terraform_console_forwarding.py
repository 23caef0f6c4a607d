"""Offline checks of the console's forwarding setting in terraform/main.tf (console_environment):
with edge "direct" the console function gets STREAMS_CONSOLE_API_URLS naming every management
function, and only those, at the run.app URL Cloud Run gives it, and ingest's as
STREAMS_CONSOLE_INGEST_URL; behind the load balancer, no
setting at all.

As in test_terraform_edge_choice.py, the root module's own expressions are evaluated by
`terraform console` (no provider, so offline) on a copy of variables.tf, with stand-ins for
what needs a provider (the project number). The service names come from modules/function's own
expression, and the URLs are then handed to the code that reads them (shared/http/forward.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from shared.api.console import INGEST_ENVIRONMENT
from shared.api.routes import ROUTES, http_functions
from shared.http.forward import ENVIRONMENT, checked_origin, forwarding_from
from tests.unit.test_terraform import TERRAFORM, module_blocks
from tests.unit.test_terraform_dedup import _console, _unbrace

PROJECT_NUMBER = "123456789012"
MANAGEMENT = frozenset(http_functions()) - {"console", "ingest"}


def console_environment(tmp_path: Path, *variables: str) -> dict[str, Any]:
    """The console's forwarding environment, and each HTTP function's service name, for
    `variables` (besides project_id)."""
    locals_ = module_blocks(TERRAFORM)["locals"]
    # A template ("${var.name_prefix}-..."), kept whole: the harness quotes it.
    service = module_blocks(TERRAFORM / "modules" / "function")["locals"]["function_name"]
    service = service.replace("var.name)", "name)").replace("var.name,", "name,")
    shutil.copy(TERRAFORM / "variables.tf", tmp_path / "variables.tf")
    names = sorted(http_functions())

    def stand_in(expression: str) -> str:
        return _unbrace(expression).replace("data.google_project.this", "local.project")

    (tmp_path / "harness.tf").write_text(
        f"""
locals {{
  direct         = {_unbrace(locals_["direct"])}
  http_functions = {{ {", ".join(f"{n} = {{}}" for n in names)} }}
  project        = local.direct ? [{{ number = "{PROJECT_NUMBER}" }}] : []
  run_app_urls          = {stand_in(locals_["run_app_urls"])}
  console_api_functions = {stand_in(locals_["console_api_functions"])}
  console_environment   = {stand_in(locals_["console_environment"])}
  services = {{ for name in keys(local.http_functions) : name => "{service}" }}
}}
"""
    )
    result = _console(
        tmp_path,
        "jsonencode({environment = local.console_environment, services = local.services})",
        "project_id=streams-test",
        *variables,
    )
    assert result.returncode == 0 and "Error" not in result.stderr, result.stderr
    evaluated: dict[str, Any] = json.loads(json.loads(result.stdout.strip()))
    return evaluated


def test_direct_names_every_management_function_at_its_run_app_url(tmp_path: Path) -> None:
    evaluated = console_environment(tmp_path, 'edge={kind="direct"}', "region=europe-west1")
    urls = json.loads(evaluated["environment"][ENVIRONMENT])
    assert set(urls) == MANAGEMENT  # never ingest, never the console itself
    services = evaluated["services"]
    assert urls == {
        name: f"https://{services[name]}-{PROJECT_NUMBER}.europe-west1.run.app"
        for name in MANAGEMENT
    }
    # Cloud Run's deterministic URL exists only while "<service>-<project number>" fits a DNS
    # label (63 characters); project numbers have at most 19 digits.
    assert max(len(services[name]) for name in MANAGEMENT) + 1 + 19 <= 63
    # What the console function accepts at start.
    forwarding = forwarding_from(json.dumps(urls), ROUTES, MANAGEMENT)
    assert forwarding is not None and dict(forwarding.urls) == urls
    # The SDKs' host, for the console's snippets and webhook URLs.
    ingest = evaluated["environment"][INGEST_ENVIRONMENT]
    assert ingest == f"https://{services['ingest']}-{PROJECT_NUMBER}.europe-west1.run.app"
    assert checked_origin(INGEST_ENVIRONMENT, ingest) == ingest
    assert set(evaluated["environment"]) == {ENVIRONMENT, INGEST_ENVIRONMENT}


def test_behind_the_load_balancer_the_console_forwards_nothing(tmp_path: Path) -> None:
    evaluated = console_environment(tmp_path, 'domains=["data.example.com"]')
    assert evaluated["environment"] == {}


def test_only_the_console_gets_the_setting_and_waits_as_long_as_the_live_stream() -> None:
    root = module_blocks(TERRAFORM)
    environment = root["module"]["http_functions"]["environment"]
    assert 'each.key == "console" ? local.console_environment : {}' in environment
    assert "console_environment" not in json.dumps(
        {name: root["module"][name] for name in ("internal_functions", "pubsub_functions")}
    )
    functions = root["locals"]["functions"]
    assert functions["console"]["size"]["timeout_seconds"] == "${local.direct ? 330 : 30}"
    assert functions["events"]["size"]["timeout_seconds"] <= 330


def test_the_project_number_is_read_only_for_direct() -> None:
    main = (TERRAFORM / "main.tf").read_text()
    assert 'data "google_project" "this" {\n  count = local.direct ? 1 : 0' in main
