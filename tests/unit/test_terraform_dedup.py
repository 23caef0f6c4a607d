"""Offline checks of the deduplication store's deployment (issue 19 item 2; terraform/dedup.tf):
with `dedup_store.kind = "valkey"` a Memorystore for Valkey instance exists, and exactly the
functions that read or write claims get Direct VPC egress, its address and the role to connect;
with "firestore" (the default) none of it exists and the claims' TTL policy does the expiring.

The wiring is evaluated, not only read: `terraform console` (no provider, so offline) runs the
root module's own expressions for `functions`, `access_roles`, `project_roles`, `apis` and the
dedup locals, on a copy of variables.tf, with a stand-in for the instance's endpoints. Each
checker takes a terraform directory, so the negative tests run it on a mutated copy.
"""

from __future__ import annotations

import inspect
import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shared.api.routes import PUBSUB_FUNCTIONS, ROUTES
from shared.services.claims import StoreClaims
from tests.fakes import InMemoryConfigStore
from tests.unit.test_terraform import DEPLOY_DOC, ROOT, TERRAFORM, _parse, module_blocks

DATASTORES = Path("modules/datastores")
# The functions whose code reads or writes claims or deliver's marks, as the code says it
# (claim_users below): process claims every event; events reads them for a trace and releases
# them for a dead-letter replay; dead_letters reads a dead-lettered message's; event_contracts
# reads and releases those of quarantined events it releases; deliver keeps a message accepted
# at once as a mark; destinations lists a destination's recent deliveries, marks included.
CLAIM_USERS = {"process", "events", "dead_letters", "event_contracts", "deliver", "destinations"}
# `def <name>(self) -> ...:` of a cached property of Services, up to the next one.
SERVICE = re.compile(
    r"    @cached_property\n    def (\w+)\(self\)[^:]*:\n(.*?)(?=\n    @|\Z)", re.S
)
VALKEY_SETTINGS = {"STREAMS_VALKEY_URL", "STREAMS_VALKEY_IAM_AUTH"}
CONNECT_ROLE = "roles/memorystore.dbConnectionUser"
VALKEY_APIS = {
    "memorystore.googleapis.com",
    "networkconnectivity.googleapis.com",
    "serviceconsumermanagement.googleapis.com",
}
# What the instance reports once its Private Service Connect endpoints exist: cluster mode
# disabled gives a primary and a reader endpoint; claims are written, so the primary's.
ENDPOINTS = """[{
  endpoints = [{
    connections = [
      { psc_auto_connection = [{
        connection_type = "CONNECTION_TYPE_READER", ip_address = "10.64.0.6", port = 6379
      }] },
      { psc_auto_connection = [{
        connection_type = "CONNECTION_TYPE_PRIMARY", ip_address = "10.64.0.5", port = 6379
      }] },
    ]
  }]
}]"""
PRIMARY_URL = "redis://10.64.0.5:6379/0"
NETWORK = "projects/host-project/global/networks/shared"
SUBNETWORK = "projects/host-project/regions/us-central1/subnetworks/streams"


def _unbrace(expression: str) -> str:
    return expression.removeprefix("${").removesuffix("}").replace('\\"', '"')


def _hcl(value: Any) -> str:
    """A parsed HCL value back as HCL: expressions unbraced, literals as JSON (valid HCL)."""
    if isinstance(value, str) and value.startswith("${"):
        return _unbrace(value)
    if isinstance(value, dict):
        return "{\n" + "\n".join(f"{key} = {_hcl(item)}" for key, item in value.items()) + "\n}"
    if isinstance(value, list):
        return "[" + ", ".join(_hcl(item) for item in value) + "]"
    return json.dumps(value)


def _console(work: Path, expression: str, *variables: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("terraform")
    if binary is None:
        pytest.skip("terraform is not installed")
    return subprocess.run(
        [binary, "console", "-no-color", *(f"-var={v}" for v in variables)],
        cwd=work,
        input=expression,
        capture_output=True,
        text=True,
        env={"CHECKPOINT_DISABLE": "1", "PATH": "/usr/bin:/bin", "HOME": str(work)},
        timeout=60,
    )


def _root_variables(dedup_store: str) -> tuple[str, ...]:
    return ("project_id=streams-test", 'domains=["data.example.com"]', f"dedup_store={dedup_store}")


# --- checkers -------------------------------------------------------------------------------


def claim_users(root: Path = ROOT) -> set[str]:
    """The functions that reach claims: the Services built on the claims or the event log
    (shared/bootstrap.py), and the functions whose routes or push handlers use one of them."""
    source = (root / "shared" / "bootstrap.py").read_text()
    users = {"valkey", "claims", "event_log", "delivery_records"}
    services = dict(SERVICE.findall(source))
    # Services built on those, until none is added (the event log is built on the claims).
    while True:
        more = {
            name
            for name, body in services.items()
            if name not in users and any(f"self.{u}" in body for u in users)
        }
        if not more:
            break
        users |= more
    uses = re.compile(rf"services(?:\(\))?\.({'|'.join(sorted(users))})\b")
    functions = {
        route.function
        for route in ROUTES
        # A handler may be a functools.partial of the function that holds the code.
        if uses.search(inspect.getsource(getattr(route.handler, "func", route.handler)))
    }
    for name in PUBSUB_FUNCTIONS:
        if uses.search((root / "functions" / name / "main.py").read_text()):
            functions.add(name)
    return functions


def _access_of(functions: dict[str, Any]) -> dict[str, Any]:
    """The functions map with what the wiring reads (access), without the sizes, whose values
    may be expressions of other locals (the console's timeout depends on the edge)."""
    return {name: {"access": function["access"]} for name, function in functions.items()}


def dedup_wiring(
    tmp_path: Path,
    dedup_store: str,
    terraform: Path = TERRAFORM,
    extra: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The root module's dedup wiring for one value of var.dedup_store, evaluated: by function,
    its extra environment, its Direct VPC egress and its project roles; the APIs enabled; how
    many of each dedup resource exist."""
    root = module_blocks(terraform)
    locals_ = root["locals"]
    resources = root["resource"]
    valkey = '"valkey"' in dedup_store.replace(" ", "")
    work = tmp_path / f"wiring_{len(list(tmp_path.iterdir()))}"
    work.mkdir()
    shutil.copy(terraform / "variables.tf", work / "variables.tf")
    # The resources, which need a provider, are stood in for by locals of their shape.
    instances = ENDPOINTS if valkey else "[]"
    primary = _unbrace(locals_["valkey_primary"]).replace(
        "google_memorystore_instance.dedup", "local.instances"
    )
    network = _unbrace(locals_["dedup_network"]).replace(
        "one(google_compute_network.dedup[*].id)", '"projects/streams-test/global/networks/created"'
    )
    subnetwork = _unbrace(locals_["dedup_subnetwork"]).replace(
        "one(google_compute_subnetwork.dedup[*].id)",
        '"projects/streams-test/regions/us-central1/subnetworks/created"',
    )
    counts = {
        address: _unbrace(resources[address]["count"])
        for address in (
            "google_compute_network.dedup",
            "google_compute_subnetwork.dedup",
            "google_network_connectivity_service_connection_policy.dedup",
            "google_memorystore_instance.dedup",
        )
    }
    harness = f"""
locals {{
  functions = jsondecode(<<-EOT
    {json.dumps(_access_of(locals_["functions"]))}
  EOT
  )
  valkey             = {_unbrace(locals_["valkey"])}
  access_roles       = {_hcl(locals_["access_roles"])}
  project_roles      = {_unbrace(locals_["project_roles"])}
  apis               = {_unbrace(locals_["apis"])}
  instances          = {instances}
  valkey_primary     = {primary}
  valkey_environment = {_hcl(locals_["valkey_environment"])}
  dedup_network      = {network}
  dedup_subnetwork   = {subnetwork}
  dedup_users        = {_unbrace(locals_["dedup_users"])}
  dedup_environment  = {_unbrace(locals_["dedup_environment"])}
  dedup_direct_vpc   = {_unbrace(locals_["dedup_direct_vpc"])}
  counts             = {{ {", ".join(f'"{a}" = {c}' for a, c in counts.items())} }}
}}
"""
    (work / "harness.tf").write_text(harness)
    result = _console(
        work,
        "jsonencode({environment = local.dedup_environment, direct_vpc = local.dedup_direct_vpc, "
        "roles = local.project_roles, apis = local.apis, counts = local.counts})",
        *_root_variables(dedup_store),
        *extra,
    )
    assert result.returncode == 0 and "Error" not in result.stderr, result.stderr
    evaluated: dict[str, Any] = json.loads(json.loads(result.stdout.strip()))
    return evaluated


def dedup_problems(wiring: dict[str, Any], valkey: bool) -> list[str]:
    """Functions given what only the claim users need (or denied it), for either kind."""
    problems = []
    expected = CLAIM_USERS if valkey else set()
    with_env = {name for name, env in wiring["environment"].items() if env}
    with_vpc = {name for name, vpc in wiring["direct_vpc"].items() if vpc}
    with_role = {name for name, roles in wiring["roles"].items() if CONNECT_ROLE in roles}
    for what, holders in (("Valkey settings", with_env), ("Direct VPC egress", with_vpc)):
        if holders != expected:
            problems.append(f"{what} on {sorted(holders)}, expected {sorted(expected)}")
    if with_role != expected:
        problems.append(f"{CONNECT_ROLE} for {sorted(with_role)}, expected {sorted(expected)}")
    for name in with_env:
        if set(wiring["environment"][name]) != VALKEY_SETTINGS:
            problems.append(f"{name}: environment {sorted(wiring['environment'][name])}")
    return problems


# --- tests: the variable --------------------------------------------------------------------


def test_the_default_store_is_firestore(tmp_path: Path) -> None:
    work = tmp_path / "variables"
    work.mkdir()
    shutil.copy(TERRAFORM / "variables.tf", work / "variables.tf")
    result = _console(
        work,
        "jsonencode(var.dedup_store)",
        "project_id=streams-test",
        'domains=["data.example.com"]',
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(json.loads(result.stdout.strip())) == {
        "kind": "firestore",
        # Under Memorystore's SLA; shared-core-nano has none (trials only, docs/DEPLOY.md).
        "node_type": "standard-small",
        "replica_count": 0,
        "network": None,
        "subnetwork": None,
        "create_connection_policy": True,
    }


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{ kind = "redis" }', "dedup_store.kind must be firestore or valkey"),
        ('{ kind = "valkey", node_type = "nano" }', "dedup_store.node_type must be"),
        ('{ kind = "valkey", replica_count = 6 }', "a whole number from 0 to 5"),
        ('{ kind = "valkey", replica_count = 1.5 }', "a whole number from 0 to 5"),
        (f'{{ kind = "valkey", network = "{NETWORK}" }}', "go together"),
        (f'{{ kind = "valkey", subnetwork = "{SUBNETWORK}" }}', "go together"),
        (
            f'{{ kind = "valkey", network = "shared", subnetwork = "{SUBNETWORK}" }}',
            "must be a network id",
        ),
        (
            f'{{ kind = "valkey", network = "{NETWORK}", subnetwork = "streams" }}',
            "must be a subnetwork id",
        ),
    ],
)
def test_the_variable_refuses_what_cannot_be_deployed(
    tmp_path: Path, value: str, message: str
) -> None:
    work = tmp_path / "variables"
    work.mkdir()
    shutil.copy(TERRAFORM / "variables.tf", work / "variables.tf")
    result = _console(work, "jsonencode(var.dedup_store)", *_root_variables(value))
    # `terraform console` reports a refused variable and still evaluates.
    assert "Error: Invalid value for variable" in result.stderr
    assert message in " ".join(result.stderr.split())


@pytest.mark.parametrize(
    "value",
    [
        "{}",
        '{ kind = "valkey" }',
        '{ kind = "valkey", node_type = "shared-core-nano", replica_count = 2 }',
        f'{{ kind = "valkey", network = "{NETWORK}", subnetwork = "{SUBNETWORK}", '
        "create_connection_policy = false }",
    ],
)
def test_the_variable_accepts_each_documented_shape(tmp_path: Path, value: str) -> None:
    work = tmp_path / "variables"
    work.mkdir()
    shutil.copy(TERRAFORM / "variables.tf", work / "variables.tf")
    result = _console(work, "jsonencode(var.dedup_store)", *_root_variables(value))
    assert result.returncode == 0 and "Error" not in result.stderr, result.stderr


# --- tests: what each kind deploys ----------------------------------------------------------


def test_firestore_deploys_no_valkey_and_wires_no_function(tmp_path: Path) -> None:
    wiring = dedup_wiring(tmp_path, "{}")
    assert dedup_problems(wiring, valkey=False) == []
    assert set(wiring["counts"].values()) == {0}
    assert not VALKEY_APIS & set(wiring["apis"])


def test_valkey_wires_exactly_the_functions_that_use_claims(tmp_path: Path) -> None:
    wiring = dedup_wiring(tmp_path, '{ kind = "valkey" }')
    assert dedup_problems(wiring, valkey=True) == []
    # The primary endpoint's address, not the reader's; IAM authentication on.
    for name in CLAIM_USERS:
        assert wiring["environment"][name] == {
            "STREAMS_VALKEY_URL": PRIMARY_URL,
            "STREAMS_VALKEY_IAM_AUTH": "true",
        }
        assert wiring["direct_vpc"][name] == {
            "network": "projects/streams-test/global/networks/created",
            "subnetwork": "projects/streams-test/regions/us-central1/subnetworks/created",
            "egress": "PRIVATE_RANGES_ONLY",
        }
    assert set(wiring["counts"].values()) == {1}
    assert set(wiring["apis"]) >= VALKEY_APIS


def test_a_given_network_is_used_and_none_is_created(tmp_path: Path) -> None:
    wiring = dedup_wiring(
        tmp_path,
        f'{{ kind = "valkey", network = "{NETWORK}", subnetwork = "{SUBNETWORK}", '
        "create_connection_policy = false }",
    )
    assert dedup_problems(wiring, valkey=True) == []
    assert wiring["direct_vpc"]["process"] == {
        "network": NETWORK,
        "subnetwork": SUBNETWORK,
        "egress": "PRIVATE_RANGES_ONLY",
    }
    assert wiring["counts"] == {
        "google_compute_network.dedup": 0,
        "google_compute_subnetwork.dedup": 0,
        "google_network_connectivity_service_connection_policy.dedup": 0,
        "google_memorystore_instance.dedup": 1,
    }


def test_the_instance_is_valkey_8_with_iam_auth_and_a_primary_endpoint() -> None:
    instance = module_blocks(TERRAFORM)["resource"]["google_memorystore_instance.dedup"]
    assert instance["engine_version"] == "VALKEY_8_0"
    assert instance["authorization_mode"] == "IAM_AUTH"
    # One shard behind a primary endpoint: the claims client (valkey.Valkey) is not
    # cluster-aware, and STREAMS_VALKEY_URL names that endpoint.
    assert instance["mode"] == "CLUSTER_DISABLED" and instance["shard_count"] == 1
    assert "CONNECTION_TYPE_PRIMARY" in module_blocks(TERRAFORM)["locals"]["valkey_primary"]
    # A full instance refuses claims rather than evict live ones (a shorter window).
    assert instance["engine_configs"] == {"maxmemory-policy": "noeviction"}
    endpoints = instance["desired_auto_created_endpoints"][0]
    assert endpoints["network"] == "${local.dedup_network}"
    # Memorystore creates its endpoints only where a service connection policy allows it.
    assert (
        "${google_network_connectivity_service_connection_policy.dedup}" in (instance["depends_on"])
    )
    policy = module_blocks(TERRAFORM)["resource"][
        "google_network_connectivity_service_connection_policy.dedup"
    ]
    assert policy["service_class"] == "gcp-memorystore"
    assert policy["psc_config"][0]["subnetworks"] == ["${local.dedup_subnetwork}"]
    # A missing primary endpoint fails the apply instead of leaving the functions on Firestore.
    postcondition = instance["lifecycle"][0]["postcondition"][0]["condition"]
    assert "CONNECTION_TYPE_PRIMARY" in postcondition and "== 1" in postcondition


def test_the_claim_users_are_the_functions_whose_code_reaches_claims() -> None:
    assert claim_users() == CLAIM_USERS


def test_both_function_groups_take_the_dedup_wiring() -> None:
    modules = module_blocks(TERRAFORM)["module"]
    for group in ("pubsub_functions", "http_functions"):
        call = modules[group]
        assert call["direct_vpc"] == "${local.dedup_direct_vpc[each.key]}", group
        assert "local.dedup_environment[each.key]" in call["environment"], group
        assert call["project_roles"] == "${local.project_roles[each.key]}", group
    functions = module_blocks(TERRAFORM)["locals"]["functions"]
    # The claim users are all in these two groups, none internal.
    assert all(not functions[name].get("internal", False) for name in CLAIM_USERS)
    assert {n for n, f in functions.items() if "dedup" in f["access"]} == CLAIM_USERS


def test_a_function_never_gets_a_connector_and_direct_vpc_together() -> None:
    function = module_blocks(TERRAFORM / "modules" / "function")
    service = function["resource"]["google_cloudfunctions2_function.this"]["service_config"][0]
    assert "var.direct_vpc" in service["direct_vpc_egress"]
    interface = service["dynamic"][0]["direct_vpc_network_interface"]
    assert "var.direct_vpc" in interface["for_each"]
    preconditions = function["resource"]["google_cloudfunctions2_function.this"]["lifecycle"][0]
    conditions = [p["condition"] for p in preconditions["precondition"]]
    assert "${var.vpc_connector == null || var.direct_vpc == null}" in conditions
    # deliver's connector (destination_egress) and the dedup egress never meet: deliver
    # leaves the store out when it has the connector (evaluated in the test below).
    connector = module_blocks(TERRAFORM)["module"]["pubsub_functions"]["vpc_connector"]
    assert 'each.key == "deliver"' in connector.replace('\\"', '"')


def test_deliver_with_a_connector_keeps_its_records_in_firestore(tmp_path: Path) -> None:
    connector = 'destination_egress={ vpc_connector = "projects/p/locations/r/connectors/c" }'
    wiring = dedup_wiring(tmp_path, '{ kind = "valkey" }', extra=(connector,))

    assert not wiring["environment"]["deliver"] and wiring["direct_vpc"]["deliver"] is None
    assert CONNECT_ROLE not in wiring["roles"]["deliver"]
    others = CLAIM_USERS - {"deliver"}
    assert {n for n, env in wiring["environment"].items() if env} == others


def test_the_provider_floor_has_direct_vpc_egress_for_functions() -> None:
    for directory in (TERRAFORM, TERRAFORM / "modules" / "function", TERRAFORM / "examples/basic"):
        terraform = _parse(directory / "versions.tf")["terraform"][0]
        google = terraform["required_providers"][0]["google"]
        floor = re.match(r">= (\d+)\.(\d+)", google["version"])
        assert floor, google["version"]
        assert (int(floor.group(1)), int(floor.group(2))) >= (7, 21), directory


def test_the_deploy_guide_describes_what_is_deployed() -> None:
    doc = DEPLOY_DOC.read_text()
    section = doc.split("### Deduplication store", 1)[1].split("\n### ", 1)[0]
    variable = module_blocks(TERRAFORM)["variable"]["dedup_store"]
    accepted = re.findall(r'"([a-z-]+)"', variable["validation"][1]["condition"])
    # The sizing table lists exactly the node types the variable accepts, the default marked.
    sizing = section.split("**Sizing.**", 1)[1].split("\n\n**", 1)[0]
    table = re.findall(r"^\| `([a-z-]+)`( \(default\))? \|", sizing, re.M)
    assert [name for name, _ in table] == accepted
    assert [name for name, default in table if default] == ["standard-small"]
    assert 'node_type = optional(string, "standard-small")' in variable["type"]
    # What the instance is, as the guide says it.
    instance = module_blocks(TERRAFORM)["resource"]["google_memorystore_instance.dedup"]
    assert instance["transit_encryption_mode"] == "TRANSIT_ENCRYPTION_DISABLED"
    assert "**No TLS in transit.**" in section and "TRANSIT_ENCRYPTION_DISABLED" in section
    assert "Switching starts a new window" in section
    assert instance["engine_configs"]["maxmemory-policy"] in section
    for name in CLAIM_USERS:
        assert f"`{name}`" in section, name


# --- tests: Firestore's claims expire -------------------------------------------------------


def test_firestore_claims_expire_by_the_ttl_policy() -> None:
    store = InMemoryConfigStore()
    now = datetime(2026, 1, 1, tzinfo=UTC)
    StoreClaims(store, clock=lambda: now).claim("w1", ["k1"], "message-1")
    (path,) = [p for p in store.documents if "/k1" in p]
    collection = path.split("/")[-2]
    datastores = module_blocks(TERRAFORM / DATASTORES)
    ttl_field = datastores["locals"]["ttl_field"]
    # The policy's collection group and field are the ones the code writes, a timestamp.
    assert collection in datastores["locals"]["ttl_collections"]
    assert isinstance(store.documents[path][ttl_field], datetime)
    field = datastores["resource"][f"google_firestore_field.{collection}_expires_at"]
    assert (field["collection"], field["ttl_config"]) == (collection, [{}])
    # Nothing queries claims by expiry: no index on an ever-increasing timestamp.
    assert datastores["locals"]["ttl_collections"][collection]["indexed"] is False


# --- negative tests: the checkers catch what is wrong ---------------------------------------


@pytest.fixture
def terraform_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "terraform"
    shutil.copytree(TERRAFORM, copy, ignore=shutil.ignore_patterns(".build", ".terraform"))
    return copy


def test_a_function_missing_its_dedup_access_is_detected(
    terraform_copy: Path, tmp_path: Path
) -> None:
    main = terraform_copy / "main.tf"
    text = main.read_text()
    line = '      access = ["firestore", "dedup"]\n'
    assert text.count(line) == 1  # dead_letters'
    main.write_text(text.replace(line, '      access = ["firestore"]\n'))
    _parse.cache_clear()
    work = tmp_path / "work"
    work.mkdir()
    try:
        wiring = dedup_wiring(work, '{ kind = "valkey" }', terraform_copy)
    finally:
        _parse.cache_clear()
    problems = dedup_problems(wiring, valkey=True)
    assert any("Direct VPC egress on" in p for p in problems), problems
    assert any(CONNECT_ROLE in p for p in problems), problems


def test_the_role_given_regardless_of_the_kind_is_detected(
    terraform_copy: Path, tmp_path: Path
) -> None:
    main = terraform_copy / "main.tf"
    text = main.read_text()
    role = 'dedup = local.valkey ? ["roles/memorystore.dbConnectionUser"] : []'
    # The role is kept from the functions that do not reach the store (dedup_users) too.
    users = 'access == "dedup" && !local.dedup_users[name] ? [] : '
    assert text.count(role) == 1 and text.count(users) == 1
    text = text.replace(role, 'dedup = ["roles/memorystore.dbConnectionUser"]')
    main.write_text(text.replace(users, ""))
    _parse.cache_clear()
    work = tmp_path / "work"
    work.mkdir()
    try:
        wiring = dedup_wiring(work, "{}", terraform_copy)
    finally:
        _parse.cache_clear()
    assert dedup_problems(wiring, valkey=False) == [
        f"{CONNECT_ROLE} for {sorted(CLAIM_USERS)}, expected []"
    ]
