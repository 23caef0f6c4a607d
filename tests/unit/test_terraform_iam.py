"""Offline tests of least privilege in terraform/ (issue 17 item 5): nobody publishes to Pub/Sub
project-wide; each run-time topic grants its own publishers as it is wired."""

from __future__ import annotations

import inspect
import re

from shared.adapters import pubsub
from tests.unit.test_terraform import TERRAFORM, deployed_functions, module_blocks

# Who publishes to which kind of run-time topic, and why (the code paths that call publish).
EXPECTED_PUBLISHERS = {
    # ingest: every accepted event; event_keys: test events; streams: POST /v1/streams/events;
    # events: dead-letter replay; event_contracts: quarantine replay.
    "publish_sources": {"ingest", "event_keys", "streams", "events", "event_contracts"},
    # process: one message per matched destination; events: dead-letter replay.
    "publish_deliveries": {"process", "events"},
}


def test_no_function_publishes_project_wide() -> None:
    root = module_blocks(TERRAFORM)
    assert "publish" not in str(root["locals"]["access_roles"])
    text = "\n".join(path.read_text() for path in TERRAFORM.rglob("*.tf"))
    project_grants = re.findall(
        r'resource "google_project_iam_member"[^{]*\{(?:[^{}]|\{[^{}]*\})*\}', text
    )
    assert project_grants and not any("pubsub.publisher" in grant for grant in project_grants)


def test_each_kind_of_topic_names_exactly_its_publishers() -> None:
    functions = deployed_functions()
    for access, expected in EXPECTED_PUBLISHERS.items():
        holders = {name for name, function in functions.items() if access in function["access"]}
        assert holders == expected, access
    locals_ = module_blocks(TERRAFORM)["locals"]
    environment = locals_["settings_environment"]
    assert (
        "local.topic_publishers.publish_sources" in environment["STREAMS_SOURCE_TOPIC_PUBLISHERS"]
    )
    assert (
        "local.topic_publishers.publish_deliveries"
        in environment["STREAMS_DELIVERY_TOPIC_PUBLISHERS"]
    )
    # The CLI wires with the same grants (streams reconcile re-grants topics made before).
    cli = module_blocks(TERRAFORM)["output"]["cli_environment"]["value"]
    assert "STREAMS_SOURCE_TOPIC_PUBLISHERS" in cli and "STREAMS_DELIVERY_TOPIC_PUBLISHERS" in cli


def test_publisher_members_are_the_accounts_the_function_module_creates() -> None:
    root = module_blocks(TERRAFORM)["locals"]["function_accounts"]
    module = module_blocks(TERRAFORM / "modules" / "function")["locals"]
    account_id = module["account_id"].removeprefix("${").removesuffix("}")
    # The module: trimsuffix(substr(local.function_name, 0, 30), "-") with
    # function_name = "${var.name_prefix}-${replace(var.name, "_", "-")}".
    assert account_id == 'trimsuffix(substr(local.function_name, 0, 30), "-")'
    assert module["function_name"] == '${var.name_prefix}-${replace(var.name, "_", "-")}'
    expected = 'trimsuffix(substr("${var.name_prefix}-${replace(name, "_", "-")}", 0, 30), "-")'
    assert expected in root.replace('\\"', '"')
    assert "@${var.project_id}.iam.gserviceaccount.com" in root


def test_the_wiring_role_can_grant_on_topics_and_the_adapter_does() -> None:
    role = module_blocks(TERRAFORM / "modules" / "pubsub")["resource"][
        "google_project_iam_custom_role.wiring"
    ]
    permissions = set(role["permissions"])
    assert {"pubsub.topics.getIamPolicy", "pubsub.topics.setIamPolicy"} <= permissions
    source = inspect.getsource(pubsub.PubSubTopicAdmin)
    assert "get_iam_policy" in source and "set_iam_policy" in source
    # Nothing broader than topics: no project IAM, no subscriptions' policies.
    assert not any(
        p.startswith(("resourcemanager.", "pubsub.subscriptions.setIam")) for p in permissions
    )


def test_only_the_private_wiring_function_holds_the_wiring_rights() -> None:
    functions = deployed_functions()
    assert {name for name, f in functions.items() if "wire" in f["access"]} == {"wiring"}
    assert functions["wiring"]["internal"] is True and functions["wiring"]["trigger"] == "http"
    clients = {name for name, f in functions.items() if "wiring_client" in f["access"]}
    assert clients == {"event_keys", "destinations", "streams"}
    root = module_blocks(TERRAFORM)
    locals_ = root["locals"]
    # Not behind the load balancer: the public group leaves internal functions out.
    assert "!try(function.internal, false)" in locals_["http_functions"]
    assert "try(function.internal, false)" in locals_["internal_functions"]
    call = root["module"]["internal_functions"]
    assert call["for_each"] == "${local.internal_functions}"
    assert call["public"] is False
    assert 'contains(function.access, \\"wiring_client\\")' in call["invokers"] or (
        'contains(function.access, "wiring_client")' in call["invokers"]
    )
    # It wires directly; the public functions wire through it.
    assert "local.internal_environment" in call["environment"]
    assert 'key != \\"STREAMS_WIRING_URL\\"' in locals_["internal_environment"] or (
        'key != "STREAMS_WIRING_URL"' in locals_["internal_environment"]
    )
    assert "module.internal_functions" in locals_["wiring_environment"]["STREAMS_WIRING_URL"]
    assert "local.wiring_environment" in root["module"]["http_functions"]["environment"]
    # The pubsub module's wiring role and actAs go to the wire holders only.
    assert 'local.members_with[\\"wire\\"]' in str(root["module"]["pubsub_identity"]) or (
        'local.members_with["wire"]' in str(root["module"]["pubsub_identity"])
    )
