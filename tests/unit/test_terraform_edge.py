"""Offline tests of the edge (terraform/modules/edge) and of the order one apply needs.

The URL map is checked by routing every path of the route table the way the load balancer
does: route rules by priority, the first whose full path or path template matches. The Cloud
Armor body limit is a provider-free submodule, so `terraform console` evaluates it here.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from shared.api.routes import ROUTES, http_functions
from shared.http.edge_config import render_routes, route_rules
from shared.http.routing import PARAM, Route, allowed_methods, find_route
from tests.unit.test_terraform import (
    DEPLOY_DOC,
    TERRAFORM,
    _parse,
    deployed_functions,
    module_blocks,
)

EDGE = TERRAFORM / "modules" / "edge"
ROUTES_FILE = EDGE / "routes.json"


def load_rules(terraform: Path = TERRAFORM) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = json.loads(
        (terraform / "modules" / "edge" / "routes.json").read_text()
    )["route_rules"]
    return rules


def _template_regex(template: str) -> re.Pattern[str]:
    """A URL map path template as a regex: `*` is one non-empty segment."""
    parts = [("[^/]+" if part == "*" else re.escape(part)) for part in template.split("/")]
    return re.compile("/".join(parts))


def edge_function(rules: list[dict[str, Any]], path: str) -> str:
    """The function the load balancer sends `path` to: the first matching rule by priority, or
    the URL map's default service (api_docs)."""
    for rule in sorted(rules, key=lambda rule: rule["priority"]):
        if "full_path_match" in rule and rule["full_path_match"] == path:
            return str(rule["function"])
        template = rule.get("path_template_match")
        if template and _template_regex(template).fullmatch(path):
            return str(rule["function"])
    return "api_docs"


def concrete_path(route: Route) -> str:
    """A request path of the route, each parameter filled with a value no literal has."""
    return PARAM.sub(lambda match: f"x-{match.group(1).lower()}-1", route.path)


def misrouted(terraform: Path = TERRAFORM) -> list[str]:
    """Routes whose paths the URL map sends to another function than the one serving them."""
    rules = load_rules(terraform)
    wrong = []
    for route in ROUTES:
        reached = edge_function(rules, concrete_path(route))
        if reached != route.function:
            wrong.append(f"{route.method} {route.path} -> {reached}, served by {route.function}")
    return wrong


# --- the URL map ----------------------------------------------------------------------------


def test_routes_file_is_current() -> None:
    assert ROUTES_FILE.read_text() == render_routes(ROUTES), (
        "terraform/modules/edge/routes.json is stale: run `make openapi`"
    )


def test_every_route_reaches_its_function_through_the_load_balancer() -> None:
    assert misrouted() == []


def test_a_literal_segment_wins_at_the_edge_as_in_the_router() -> None:
    rules = load_rules()
    for literal in ("proposal", "validate-schema", "violation-counts"):
        path = f"/api/v1/workspaces/w1/event-contracts/{literal}"
        route, _, _ = find_route(ROUTES, allowed_methods(ROUTES, path)[0], path)
        assert route is not None and route.path.endswith(literal)
        assert edge_function(rules, path) == route.function
        # The template the literal must win over comes later.
        literal_rule = next(r for r in rules if r.get("path_template_match", "").endswith(literal))
        by_id = next(r for r in rules if r.get("path_template_match", "").endswith("-contracts/*"))
        assert literal_rule["priority"] < by_id["priority"]


def test_every_method_of_a_path_is_served_by_one_function() -> None:
    # The load balancer routes by path alone, so the generator refuses a path split between
    # functions; this is the route table's side of that contract.
    by_path: dict[str, set[str]] = {}
    for route in ROUTES:
        by_path.setdefault(route.path, set()).add(route.function)
    assert {path: f for path, f in by_path.items() if len(f) > 1} == {}
    with pytest.raises(ValueError, match="routes by path only"):
        route_rules([ROUTES[0], Route("GET", ROUTES[0].path, "other", "x", "x", print)])


def test_priorities_are_unique_and_templates_use_single_segment_wildcards() -> None:
    rules = load_rules()
    assert len({rule["priority"] for rule in rules}) == len(rules)
    for rule in rules:
        assert ("full_path_match" in rule) != ("path_template_match" in rule), rule
        template = rule.get("path_template_match", "")
        # URL maps allow at most 5 wildcards in a template; every `*` stands for one segment.
        assert template.count("*") <= 5 and "**" not in template and "{" not in template


def test_the_url_map_sends_each_rule_to_its_functions_backend() -> None:
    edge = module_blocks(EDGE)
    url_map = edge["resource"]["google_compute_url_map.https"]
    matcher = url_map["path_matcher"][0]
    dynamic = matcher["dynamic"][0]["route_rules"]
    assert dynamic["for_each"] == "${local.route_rules}"
    content = dynamic["content"][0]
    assert content["service"] == (
        "${google_compute_backend_service.functions[route_rules.value.function].id}"
    )
    match = content["match_rules"][0]
    assert "route_rules.value.full_path_match" in match["full_path_match"]
    assert "route_rules.value.path_template_match" in match["path_template_match"]
    assert 'file("${path.module}/routes.json")' in edge["locals"]["route_rules"]
    # Unknown paths get a function's JSON 404.
    assert "api_docs" in url_map["default_service"] and "api_docs" in matcher["default_service"]
    assert "api_docs" in http_functions()


def test_every_http_function_has_a_serverless_backend() -> None:
    root = module_blocks(TERRAFORM)["module"]["edge"]
    assert root["source"] == "./modules/edge"
    assert "module.http_functions" in root["functions"] and "function.name" in root["functions"]
    resources = module_blocks(EDGE)["resource"]
    neg = resources["google_compute_region_network_endpoint_group.functions"]
    assert neg["network_endpoint_type"] == "SERVERLESS"
    assert neg["cloud_run"][0]["service"] == "${each.value}"
    backend = resources["google_compute_backend_service.functions"]
    assert backend["for_each"] == "${var.functions}"
    assert backend["load_balancing_scheme"] == "EXTERNAL_MANAGED"
    # A serverless backend's timeout is its service's: none is set that could cut live streams.
    assert "timeout_sec" not in backend


def test_https_with_a_managed_certificate_and_http_redirects() -> None:
    resources = module_blocks(EDGE)["resource"]
    certificate = resources["google_compute_managed_ssl_certificate.this"]
    assert certificate["managed"][0]["domains"] == "${var.domains}"
    assert certificate["lifecycle"][0]["create_before_destroy"] is True
    proxy = resources["google_compute_target_https_proxy.this"]
    assert "managed_ssl_certificate.this" in str(proxy["ssl_certificates"])
    assert resources["google_compute_ssl_policy.modern"]["min_tls_version"] == "TLS_1_2"
    redirect = resources["google_compute_url_map.http_redirect"]["default_url_redirect"][0]
    assert redirect["https_redirect"] is True
    assert redirect["redirect_response_code"] == "PERMANENT_REDIRECT"
    ports = {
        resources[f"google_compute_global_forwarding_rule.{name}"]["port_range"]
        for name in ("https", "http")
    }
    assert ports == {"443", "80"}
    assert module_blocks(TERRAFORM)["variable"]["domains"]["validation"]


def test_http_functions_admit_only_the_load_balancer_and_internal_traffic() -> None:
    function = module_blocks(TERRAFORM / "modules" / "function")["resource"]
    service = function["google_cloudfunctions2_function.this"]["service_config"][0]
    assert service["ingress_settings"] == (
        '${coalesce(var.ingress_settings, var.public ? "ALLOW_INTERNAL_AND_GCLB" : '
        '"ALLOW_INTERNAL_ONLY")}'
    )
    # The internal module call overrides it (below), the public one only with edge "direct"
    # (no load balancer: test_terraform_edge_choice.py), the pushed one never.
    assert "ingress_settings" not in module_blocks(TERRAFORM)["module"]["pubsub_functions"]
    public = module_blocks(TERRAFORM)["module"]["http_functions"]
    assert public["ingress_settings"] == '${local.direct ? "ALLOW_ALL" : null}'
    # Open ingress only for the private wiring function, which IAM guards (its invokers), and
    # the public ones under edge "direct".
    for path in TERRAFORM.rglob("*.tf"):
        if path.name != "variables.tf":
            for line in path.read_text().splitlines():
                if '"ALLOW_ALL"' in line and "contains(" not in line:
                    assert "ingress_settings" in line and path.name == "main.tf", (path, line)
    internal = module_blocks(TERRAFORM)["module"]["internal_functions"]
    assert internal["ingress_settings"] == "ALLOW_ALL" and internal["public"] is False
    assert "wiring_client" in internal["invokers"]
    # allUsers only when public_access asks for it; otherwise the invoker check is turned off.
    invoker = function["google_cloud_run_v2_service_iam_member.invoker"]["for_each"]
    assert 'var.public_access == "all_users"' in invoker
    no_check = function["terraform_data.no_invoker_check"]
    assert 'var.public_access == "no_invoker_check"' in no_check["count"]
    command = no_check["provisioner"][0]["local-exec"]["command"]
    assert "--no-invoker-iam-check" in command
    root = module_blocks(TERRAFORM)
    assert root["module"]["http_functions"]["public_access"] == "${var.public_access}"
    assert root["variable"]["public_access"]["default"] == "all_users"


# --- Cloud Armor ----------------------------------------------------------------------------


def _armor_rules() -> dict[int, dict[str, Any]]:
    policy = module_blocks(EDGE)["resource"]["google_compute_security_policy.ingest"]
    return {int(rule["priority"]): rule for rule in policy["rule"]}


def test_cloud_armor_protects_ingest_only_with_sized_limits() -> None:
    backend = module_blocks(EDGE)["resource"]["google_compute_backend_service.functions"]
    assert backend["security_policy"] == (
        '${each.key == "ingest" && var.ingest.enabled ? '
        "google_compute_security_policy.ingest[0].id : null}"
    )
    policy = module_blocks(EDGE)["resource"]["google_compute_security_policy.ingest"]
    assert policy["count"] == "${var.ingest.enabled ? 1 : 0}"
    rules = _armor_rules()
    keyed = {
        rule["rate_limit_options"][0].get(
            "enforce_on_key_name", rule["rate_limit_options"][0]["enforce_on_key"]
        ): rule
        for rule in rules.values()
        if rule["action"] == "throttle"
    }
    assert set(keyed) == {"Authorization", "X-Write-Key", "IP"}
    for key, rule in keyed.items():
        options = rule["rate_limit_options"][0]
        assert options["exceed_action"] == "deny(429)", key
        threshold = options["rate_limit_threshold"][0]
        assert threshold["interval_sec"] == 60
        variable = "per_ip" if key == "IP" else "per_write_key"
        assert threshold["count"] == f"${{var.ingest.requests_per_minute_{variable}}}"
    # The keyed rules come first: a request that conforms to one is not tried against the next.
    assert keyed["Authorization"]["priority"] < keyed["IP"]["priority"]
    assert keyed["X-Write-Key"]["priority"] < keyed["IP"]["priority"]
    body = next(rule for rule in rules.values() if "content-length" in str(rule["match"]))
    assert body["action"] == "deny(403)" and "module.body_limit.pattern" in str(body["match"])
    assert body["priority"] < min(rule["priority"] for rule in keyed.values())
    assert rules[2147483647]["action"] == "allow"
    root = module_blocks(TERRAFORM)
    assert root["module"]["edge"]["ingest"] == "${var.ingest_protection}"


def test_cloud_armor_defaults_are_generous_and_documented() -> None:
    protection = module_blocks(TERRAFORM)["variable"]["ingest_protection"]["type"]
    defaults = dict(re.findall(r"(\w+)\s*=\s*optional\(number,\s*([\d.]+)\)", protection))
    assert int(defaults["requests_per_minute_per_ip"]) >= 6000
    assert int(defaults["requests_per_minute_per_write_key"]) >= 60000
    # Above ingest's own 500 KB limit, so the edge never refuses a body ingest would accept.
    assert int(defaults["max_body_bytes"]) > 500 * 1024
    doc = DEPLOY_DOC.read_text()
    for name, value in defaults.items():
        assert f"`{name}`" in doc, name
        shown = f"{int(float(value)):,}" if float(value) >= 1 else value
        assert shown in doc, (name, shown)


def _body_limit_pattern(tmp_path: Path, max_bytes: int) -> str:
    binary = shutil.which("terraform")
    if binary is None:
        pytest.skip("terraform is not installed")
    work = tmp_path / "body_limit"
    if not work.exists():
        shutil.copytree(EDGE / "body_limit", work)
        # No provider and no backend: init works offline.
        subprocess.run(
            [binary, "init", "-input=false", "-no-color"],
            cwd=work,
            check=True,
            capture_output=True,
            env={"CHECKPOINT_DISABLE": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
            timeout=60,
        )
    result = subprocess.run(
        [binary, "console", "-no-color", f"-var=max_bytes={max_bytes}"],
        cwd=work,
        input="local.pattern",
        check=True,
        capture_output=True,
        text=True,
        env={"CHECKPOINT_DISABLE": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        timeout=60,
    )
    return str(json.loads(result.stdout.strip()))


@pytest.mark.parametrize("max_bytes", [1, 9, 10, 99, 100, 524288, 1048576, 2999999])
def test_the_body_limit_pattern_matches_exactly_the_sizes_above_the_limit(
    tmp_path: Path, max_bytes: int
) -> None:
    pattern = re.compile(_body_limit_pattern(tmp_path, max_bytes))
    rng = random.Random(max_bytes)
    sizes = {0, 1, max_bytes - 1, max_bytes, max_bytes + 1, max_bytes * 10, 10**12}
    sizes |= {rng.randrange(0, max_bytes * 3 + 2) for _ in range(2000)}
    for size in sorted(s for s in sizes if s >= 0):
        assert bool(pattern.fullmatch(str(size))) == (size > max_bytes), size
        # A padded header is read the same way.
        assert bool(pattern.fullmatch("00" + str(size))) == (size > max_bytes), size
    assert not pattern.fullmatch("") and not pattern.fullmatch("12a")


# --- one apply into an empty project --------------------------------------------------------


def _depends_on(body: dict[str, Any]) -> list[str]:
    return [str(item) for item in body.get("depends_on", [])]


def test_everything_waits_for_the_apis_not_just_their_enabling() -> None:
    root = module_blocks(TERRAFORM)
    sleep = root["resource"]["time_sleep.apis_ready"]
    assert _depends_on(sleep) == ["${google_project_service.apis}"]
    assert sleep["create_duration"] == '${var.enable_apis ? "60s" : "0s"}'
    # Nothing else depends on the enabling itself: only on the wait after it.
    text = "\n".join(path.read_text() for path in TERRAFORM.glob("*.tf"))
    assert text.count("depends_on = [google_project_service.apis]") == 1
    waiting = [
        name for name, body in root["resource"].items() if "time_sleep.apis_ready" in str(body)
    ]
    waiting += [name for name, body in root["module"].items() if "apis_ready" in str(body)]
    for needed in (
        "google_storage_bucket.sources",
        "google_service_account.build",
        "google_project_service_identity.pubsub",
        "datastores",
        "pubsub_identity",
        "edge",
    ):
        assert needed in waiting, needed


def test_the_pubsub_service_agent_is_created_before_it_is_granted() -> None:
    root = module_blocks(TERRAFORM)
    identity = root["resource"]["google_project_service_identity.pubsub"]
    assert identity["service"] == "pubsub.googleapis.com"
    assert identity["provider"] == "google-beta"
    agent = root["module"]["pubsub_identity"]["pubsub_agent"]
    assert "google_project_service_identity.pubsub.email" in agent
    pubsub = (TERRAFORM / "modules" / "pubsub" / "main.tf").read_text()
    assert "data.google_project" not in pubsub and "var.pubsub_agent" in pubsub


def test_builds_start_after_their_roles_have_propagated() -> None:
    root = module_blocks(TERRAFORM)
    sleep = root["resource"]["time_sleep.build_iam_propagation"]
    assert set(_depends_on(sleep)) == {
        "${google_project_iam_member.build}",
        "${google_project_iam_member.build_reads_staged_sources}",
        "${google_storage_bucket_iam_member.build_reads_sources}",
        "${google_artifact_registry_repository_iam_member.build_pushes_images}",
    }
    for group in ("http_functions", "pubsub_functions"):
        assert _depends_on(root["module"][group]) == ["${time_sleep.build_iam_propagation}"]
    versions = _parse(TERRAFORM / "versions.tf")["terraform"][0]["required_providers"][0]
    assert versions["time"]["source"] == "hashicorp/time"


def test_deploy_doc_has_no_manual_steps_left() -> None:
    doc = DEPLOY_DOC.read_text()
    assert "gcloud services enable" not in doc
    assert "run `terraform apply` again" not in doc
    assert "live_url" not in doc and "API Gateway" not in doc.split("## Caveats")[0]
    assert "iam.allowedPolicyMemberDomains" in doc and "no_invoker_check" in doc


# --- negative tests -------------------------------------------------------------------------


@pytest.fixture
def terraform_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "terraform"
    shutil.copytree(TERRAFORM, copy, ignore=shutil.ignore_patterns(".build", ".terraform"))
    return copy


def test_a_missing_route_rule_is_detected(terraform_copy: Path) -> None:
    routes = terraform_copy / "modules" / "edge" / "routes.json"
    document = json.loads(routes.read_text())
    document["route_rules"] = [
        rule for rule in document["route_rules"] if rule.get("full_path_match") != "/v1/batch"
    ]
    routes.write_text(json.dumps(document))
    assert any(line.startswith("POST /v1/batch -> api_docs") for line in misrouted(terraform_copy))


def test_a_rule_sent_to_the_wrong_function_is_detected(terraform_copy: Path) -> None:
    routes = terraform_copy / "modules" / "edge" / "routes.json"
    document = json.loads(routes.read_text())
    for rule in document["route_rules"]:
        if rule.get("full_path_match") == "/healthz":
            rule["function"] = "events"
    routes.write_text(json.dumps(document))
    assert misrouted(terraform_copy) == [
        "GET /healthz -> events, served by ingest",
        "OPTIONS /healthz -> events, served by ingest",
    ]


def test_a_parameter_rule_before_its_literal_sibling_is_detected(terraform_copy: Path) -> None:
    routes = terraform_copy / "modules" / "edge" / "routes.json"
    document = json.loads(routes.read_text())
    # The contract-by-id template ahead of every literal: `.../proposal` would reach it.
    for rule in document["route_rules"]:
        if rule.get("path_template_match", "").endswith("/event-contracts/*"):
            rule["priority"] = 0
            rule["function"] = "destinations"
    routes.write_text(json.dumps(document))
    wrong = misrouted(terraform_copy)
    assert any("event-contracts/proposal -> destinations" in line for line in wrong)


# --- sizes that fit a new project -----------------------------------------------------------


def _full_scale(scale: str) -> tuple[float, float]:
    """vCPUs and GiB of every function at its maximum instance count at `scale`."""
    root = module_blocks(TERRAFORM)["locals"]
    caps = root["starter_max_instances"]
    cpu = memory = 0.0
    for name, function in deployed_functions().items():
        size = function["size"]
        count = size["max_instances"]
        if scale == "starter":
            count = min(count, caps.get(name, 3))
        gib = float(size["memory"][:-2]) / (1024 if size["memory"].endswith("Mi") else 1)
        cpu += count * float(size["cpu"])
        memory += count * gib
    return cpu, memory


def test_starter_scale_fits_a_new_project_and_the_stated_sums_are_true() -> None:
    root = module_blocks(TERRAFORM)
    assert root["variable"]["scale"]["default"] == "starter"
    assert "lookup(local.starter_max_instances, name, 3)" in str(root["locals"]["scaled_sizes"])
    assert "local.scaled_sizes" in str(root["locals"]["sizes"])
    starter, large = _full_scale("starter"), _full_scale("large")
    # Well inside the regional quotas a new project starts with.
    assert starter[0] <= 64 and starter[1] <= 64
    stated = {
        "starter": f"{starter[0]:.0f} vCPU and {starter[1]:.0f} GiB",
        "large": f"{large[0]:.0f} vCPU and {large[1]:.0f} GiB",
    }
    doc = DEPLOY_DOC.read_text()
    variables = (TERRAFORM / "variables.tf").read_text()
    for text in stated.values():
        assert text in doc, text
    assert stated["starter"] in variables
    assert f"{large[0]:.0f} vCPU, {large[1]:.0f} GiB" in variables


def test_the_build_account_holds_only_the_documented_roles_scoped() -> None:
    root = module_blocks(TERRAFORM)["resource"]
    assert (
        root["google_project_iam_member.build"]["for_each"]
        == '${toset(["roles/logging.logWriter"])}'
    )
    staged = root["google_project_iam_member.build_reads_staged_sources"]
    assert staged["role"] == "roles/storage.objectAdmin"
    assert 'startsWith(\\"projects/_/buckets/gcf-v2-\\")' in staged["condition"][0]["expression"]
    writer = root["google_artifact_registry_repository_iam_member.build_pushes_images"]
    assert writer["role"] == "roles/artifactregistry.writer"
    assert "google_artifact_registry_repository.functions" in writer["repository"]
    text = "\n".join(path.read_text() for path in TERRAFORM.rglob("*.tf"))
    assert "cloudbuild.builds.builder" not in text
    modules = module_blocks(TERRAFORM)["module"]
    for group in ("http_functions", "pubsub_functions"):
        assert "artifact_registry_repository.functions.id" in modules[group]["docker_repository"]
    build = module_blocks(TERRAFORM / "modules" / "function")["resource"][
        "google_cloudfunctions2_function.this"
    ]["build_config"][0]
    assert build["docker_repository"] == "${var.docker_repository}"
