"""Offline checks of the edge choice (issue 19 item 5; var.edge in terraform/variables.tf): with
`edge.kind = "load_balancer"` (the default) the load balancer of modules/edge fronts the HTTP
functions, whose run.app URLs refuse the internet; with "direct" none of it exists, and exactly
the public HTTP functions take ingress "all" and answer at their own URLs.

As in test_terraform_dedup.py, the root module's own expressions (the edge's count, each
function group's ingress, the trusted proxy hops, the outputs and the uptime check's host) are
evaluated by `terraform console` (no provider, so offline) on a copy of variables.tf, with
stand-ins for the modules' results. Each checker takes a terraform directory, so the negative
tests run it on a mutated copy.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from shared.api.routes import ROUTES, http_functions
from tests.unit.test_terraform import DEPLOY_DOC, ROOT, TERRAFORM, module_blocks
from tests.unit.test_terraform_dedup import _console, _hcl, _unbrace

GROUPS = ("http_functions", "internal_functions", "pubsub_functions")
DOMAIN = "data.example.com"
COST_DOC = ROOT / "docs" / "COST.md"


def _run_app(name: str) -> str:
    return f"https://streams-{name.replace('_', '-')}-abc123-uc.a.run.app"


def _variables(tmp_path: Path, terraform: Path = TERRAFORM) -> Path:
    tmp_path.mkdir(exist_ok=True)
    work = tmp_path / f"variables_{len(list(tmp_path.iterdir()))}"
    work.mkdir()
    shutil.copy(terraform / "variables.tf", work / "variables.tf")
    return work


def edge_wiring(tmp_path: Path, *variables: str, terraform: Path = TERRAFORM) -> dict[str, Any]:
    """What the root module makes of `variables` (besides project_id), evaluated: whether it is
    direct, the trusted proxy hops the functions are told, how many edges exist, each function
    group's ingress (through modules/function's own expression), the outputs url, edge_address
    and endpoints, and the uptime check's host."""
    root = module_blocks(terraform)
    locals_, modules, outputs = root["locals"], root["module"], root["output"]
    function = module_blocks(terraform / "modules" / "function")["resource"]
    ingress = _unbrace(
        function["google_cloudfunctions2_function.this"]["service_config"][0]["ingress_settings"]
    )
    edge_url = _hcl(module_blocks(terraform / "modules" / "edge")["output"]["url"]["value"])
    work = _variables(tmp_path, terraform)
    groups = {}
    for group in GROUPS:
        call = modules[group]
        groups[group] = ingress.replace(
            "var.ingress_settings", _hcl(call.get("ingress_settings"))
        ).replace("var.public", _hcl(call["public"]))

    def stand_in(expression: str) -> str:
        # The modules' results, which need a provider, are stood in for by locals of their shape.
        return (
            _unbrace(expression)
            .replace("module.http_functions", "local.http_functions")
            .replace("module.edge", "local.edge")
        )

    names = sorted(http_functions())
    harness = f"""
locals {{
  direct             = {_unbrace(locals_["direct"])}
  trusted_proxy_hops = {_unbrace(locals_["trusted_proxy_hops"])}
  hops_setting       = {_unbrace(locals_["settings_environment"]["STREAMS_TRUSTED_PROXY_HOPS"])}
  edge_count         = {_hcl(modules["edge"]["count"])}
  http_functions     = {{ {", ".join(f'{n} = {{ uri = "{_run_app(n)}" }}' for n in names)} }}
  edge = [for index in range(local.edge_count) : {{
    # The module's own URL, of the first domain (none under a mutated "direct": see below).
    url     = try({edge_url}, "https://no-domain")
    address = "203.0.113.10"
  }}]
  ingress = {{ {", ".join(f"{group} = {expr}" for group, expr in groups.items())} }}
  outputs = {{
    url          = {stand_in(outputs["url"]["value"])}
    edge_address = {stand_in(outputs["edge_address"]["value"])}
    endpoints    = {stand_in(outputs["endpoints"]["value"])}
  }}
  uptime_host = {stand_in(modules["monitoring"]["uptime_host"])}
}}
"""
    (work / "harness.tf").write_text(harness)
    result = _console(
        work,
        "jsonencode({direct = local.direct, hops = local.trusted_proxy_hops, "
        "hops_setting = local.hops_setting, edge_count = local.edge_count, "
        "ingress = local.ingress, outputs = local.outputs, uptime_host = local.uptime_host})",
        "project_id=streams-test",
        *variables,
    )
    assert result.returncode == 0 and "Error" not in result.stderr, result.stderr
    evaluated: dict[str, Any] = json.loads(json.loads(result.stdout.strip()))
    return evaluated


def edge_problems(wiring: dict[str, Any], direct: bool) -> list[str]:
    """What either kind gets wrong: an edge that should not exist (or is missing), a function
    group open to the internet that should not be (or closed), outputs that lead nowhere."""
    problems = []
    expected_ingress = {
        # Public: with no load balancer, their run.app URLs are the way in.
        "http_functions": "ALLOW_ALL" if direct else "ALLOW_INTERNAL_AND_GCLB",
        # IAM-guarded private functions other functions call: open ingress either way.
        "internal_functions": "ALLOW_ALL",
        # Only Pub/Sub pushes them, which counts as internal traffic.
        "pubsub_functions": "ALLOW_INTERNAL_ONLY",
    }
    for group, wanted in expected_ingress.items():
        if wiring["ingress"][group] != wanted:
            problems.append(f"{group}: ingress {wiring['ingress'][group]}, expected {wanted}")
    if wiring["edge_count"] != (0 if direct else 1):
        problems.append(f"{wiring['edge_count']} load balancers with direct={direct}")
    outputs = wiring["outputs"]
    names = set(http_functions())
    if set(outputs["endpoints"]) != names:
        problems.append(f"endpoints for {sorted(outputs['endpoints'])}, expected {sorted(names)}")
    if direct:
        if outputs["url"] is not None or outputs["edge_address"] is not None:
            problems.append(f"url/edge_address without a load balancer: {outputs}")
        wrong = {n: u for n, u in outputs["endpoints"].items() if u != _run_app(n)}
        if wrong:
            problems.append(f"endpoints not the functions' own URLs: {wrong}")
        if wiring["uptime_host"] != _run_app("ingest").removeprefix("https://"):
            problems.append(f"uptime check on {wiring['uptime_host']}, not ingest's own host")
    else:
        if outputs["url"] != f"https://{DOMAIN}" or outputs["edge_address"] is None:
            problems.append(f"url/edge_address: {outputs['url']}, {outputs['edge_address']}")
        if set(outputs["endpoints"].values()) != {f"https://{DOMAIN}"}:
            problems.append(f"endpoints not the one base URL: {outputs['endpoints']}")
        if wiring["uptime_host"] != DOMAIN:
            problems.append(f"uptime check on {wiring['uptime_host']}, not the first domain")
    return problems


DIRECT = 'edge={ kind = "direct" }'
DOMAINS = f'domains=["{DOMAIN}"]'


# --- the variable ---------------------------------------------------------------------------


def test_the_default_edge_is_the_load_balancer(tmp_path: Path) -> None:
    work = _variables(tmp_path)
    result = _console(work, "jsonencode(var.edge)", "project_id=streams-test", DOMAINS)
    assert result.returncode == 0, result.stderr
    assert json.loads(json.loads(result.stdout.strip())) == {"kind": "load_balancer"}


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (('edge={ kind = "cdn" }', DOMAINS), "edge.kind must be load_balancer or direct"),
        ((), 'domains must list at least one host name with edge.kind = "load_balancer"'),
        ((DIRECT, DOMAINS), 'domains must be empty with edge.kind = "direct"'),
        ((DIRECT, 'domains=["Data.Example.com"]'), "domains must list fully qualified host"),
        (
            (DIRECT, "settings={ trusted_proxy_hops = 1.5 }"),
            "settings.trusted_proxy_hops must be a whole number between 0 and 10",
        ),
    ],
)
def test_the_variables_refuse_an_edge_that_cannot_be_deployed(
    tmp_path: Path, variables: tuple[str, ...], message: str
) -> None:
    work = _variables(tmp_path)
    result = _console(work, "jsonencode(var.edge)", "project_id=streams-test", *variables)
    # `terraform console` reports a refused variable and still evaluates.
    assert "Error: Invalid value for variable" in result.stderr
    assert message in " ".join(result.stderr.split())


@pytest.mark.parametrize(
    "variables",
    [
        (DOMAINS,),
        ('edge={ kind = "load_balancer" }', DOMAINS),
        (DIRECT,),
        (DIRECT, "domains=[]", "settings={ trusted_proxy_hops = 0 }"),
    ],
)
def test_the_variables_accept_each_documented_edge(
    tmp_path: Path, variables: tuple[str, ...]
) -> None:
    work = _variables(tmp_path)
    result = _console(work, "jsonencode(var.edge)", "project_id=streams-test", *variables)
    assert result.returncode == 0 and "Error" not in result.stderr, result.stderr


# --- what each kind deploys -----------------------------------------------------------------


def test_the_load_balancer_fronts_every_public_function(tmp_path: Path) -> None:
    wiring = edge_wiring(tmp_path, DOMAINS)
    assert edge_problems(wiring, direct=False) == []
    assert (wiring["direct"], wiring["hops"], wiring["hops_setting"]) == (False, 2, "2")


def test_direct_has_no_load_balancer_and_opens_only_the_public_functions(
    tmp_path: Path,
) -> None:
    wiring = edge_wiring(tmp_path, DIRECT)
    assert edge_problems(wiring, direct=True) == []
    # Cloud Run's front end writes `<client>` alone: one trusted entry, or every event would
    # get the front end's own address (or a forged one).
    assert (wiring["direct"], wiring["hops"], wiring["hops_setting"]) == (True, 1, "1")


def test_an_explicit_proxy_hop_count_wins_over_either_default(tmp_path: Path) -> None:
    # A proxy of the customer's own in front (DEPLOY.md) adds one; 0 ignores the header.
    assert edge_wiring(tmp_path, DIRECT, "settings={ trusted_proxy_hops = 2 }")["hops"] == 2
    assert edge_wiring(tmp_path, DOMAINS, "settings={ trusted_proxy_hops = 0 }")["hops"] == 0


def test_every_route_has_an_endpoint_to_reach_it_in_either_kind(tmp_path: Path) -> None:
    # The routes (and so the SDKs, the API and the live stream) are served by the public HTTP
    # functions only; each has an entry in `endpoints`.
    for variables in ((DOMAINS,), (DIRECT,)):
        endpoints = edge_wiring(tmp_path, *variables)["outputs"]["endpoints"]
        assert {route.function for route in ROUTES} <= set(endpoints)


def test_callers_without_a_google_identity_stay_allowed_in_either_kind() -> None:
    # The invoker grant (allUsers or no invoker check) follows `public`, not the edge: ingest
    # stays invokable by anyone, the private and pushed functions by their invokers alone.
    modules = module_blocks(TERRAFORM)["module"]
    assert modules["http_functions"]["public"] is True
    assert modules["http_functions"]["public_access"] == "${var.public_access}"
    for group in ("internal_functions", "pubsub_functions"):
        assert modules[group]["public"] is False and modules[group]["invokers"]
    assert modules["edge"]["source"] == "./modules/edge"


def test_the_deploy_guide_explains_the_choice() -> None:
    doc = DEPLOY_DOC.read_text()
    section = doc.split("### Choosing the edge", 1)[1].split("\n### ", 1)[0]
    for needed in (
        'edge = { kind = "direct" }',
        "`endpoints`",
        "Cloud Armor",
        "trusted_proxy_hops",
        "ALLOW_ALL",
        "console",
        "docs/COST.md",
    ):
        assert needed in section, needed


def test_the_cost_targets_name_the_edge_each_row_assumes() -> None:
    targets = COST_DOC.read_text().split("### Targets", 1)[1].split("\n### ", 1)[0]
    assert 'edge "load_balancer"' in targets and 'edge "direct"' in targets


# --- negative tests -------------------------------------------------------------------------


@pytest.fixture
def terraform_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "terraform"
    shutil.copytree(TERRAFORM, copy, ignore=shutil.ignore_patterns(".build", ".terraform"))
    return copy


def test_a_public_function_left_closed_under_direct_is_detected(
    tmp_path: Path, terraform_copy: Path
) -> None:
    main = terraform_copy / "main.tf"
    text = main.read_text()
    opened = '  ingress_settings = local.direct ? "ALLOW_ALL" : null\n'
    assert opened in text
    main.write_text(text.replace(opened, ""))
    wiring = edge_wiring(tmp_path / "work", DIRECT, terraform=terraform_copy)
    assert edge_problems(wiring, direct=True) == [
        "http_functions: ingress ALLOW_INTERNAL_AND_GCLB, expected ALLOW_ALL"
    ]


def test_a_load_balancer_kept_under_direct_is_detected(
    tmp_path: Path, terraform_copy: Path
) -> None:
    main = terraform_copy / "main.tf"
    text = main.read_text()
    count = "  count  = local.direct ? 0 : 1\n"
    assert count in text
    main.write_text(text.replace(count, "  count  = 1\n"))
    wiring = edge_wiring(tmp_path / "work", DIRECT, terraform=terraform_copy)
    problems = edge_problems(wiring, direct=True)
    assert "1 load balancers with direct=True" in problems
    assert any(problem.startswith("url/edge_address without") for problem in problems)
