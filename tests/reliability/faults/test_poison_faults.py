"""Poison messages on the local stack: an event the pipeline cannot carry is set aside with its
reason, the good events beside it are stored and delivered, and nothing loops.

Each poison message is published straight to the source topic (signed, as ingest publishes):
ingest now refuses these events, but a message published before a check existed, or a contract
written past the API, still reaches `process`.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.domain.contracts import contracts_collection
from shared.domain.event import CanonicalEvent
from shared.domain.events import IngestContext, normalise_request
from shared.domain.sources import source_topic_id
from shared.ports import Write
from shared.services.contract_validator import contract_document
from shared.services.ingest import MESSAGE_SCHEMA
from tests.e2e.helpers import Tenant
from tests.reliability.faults.accounting import dead_letters, record, track
from tests.reliability.faults.conftest import StackFactory
from tests.reliability.faults.receiver import Destination
from tests.reliability.faults.stack import FaultStack, wait_for

pytestmark = pytest.mark.timeout(600)

# Once settled, a function whose log grows by more than this over QUIET_SECONDS is looping
# (the loop the issue saw logged 7.5 tracebacks a second).
QUIET_SECONDS = 10.0
QUIET_LINES = 3


def canonical(tenant: Tenant, *calls: dict[str, Any]) -> list[CanonicalEvent]:
    """The events as ingest would publish them for the tenant's source."""
    context = IngestContext(tenant.workspace_id, tenant.source_id, datetime.now(UTC), None)
    items = [{"type": "track", **call} for call in calls]
    batch = normalise_request({"batch": items}, None, context, lambda: "unused")
    assert not batch.rejections, batch.rejections
    return batch.events


def publish_raw(tenant: Tenant, events: list[CanonicalEvent]) -> None:
    """One source-topic message, as ingest publishes one (signed by the stack's publisher)."""
    services = tenant.services
    topic = services.topics.topic_path(source_topic_id(tenant.source_id))
    data = json.dumps(events).encode()  # ASCII JSON: a lone surrogate travels as `\ud800`
    attributes = {
        "schema": MESSAGE_SCHEMA,
        "workspace_id": tenant.workspace_id,
        "source_id": tenant.source_id,
        "event_count": str(len(events)),
    }
    services.publisher.publish(topic, [(data, attributes)])


def log_lines(stack: FaultStack, function: str) -> int:
    assert stack.local is not None
    path = stack.local.functions[function].log_path
    return len(path.read_text(errors="replace").splitlines()) if path.exists() else 0


def quiet(stack: FaultStack, *functions: str) -> dict[str, int]:
    """How many lines each function logged over QUIET_SECONDS of no traffic."""
    before = {name: log_lines(stack, name) for name in functions}
    time.sleep(QUIET_SECONDS)
    return {name: log_lines(stack, name) - before[name] for name in functions}


def letters(tenant: Tenant, **params: Any) -> list[dict[str, Any]]:
    response = tenant.api("GET", "/dead-letters", params={"limit": 1000, **params})
    assert response.status_code == 200, response.text
    return list(response.json())


def webhook_tenant(stack: FaultStack, destination: Destination) -> tuple[Tenant, str]:
    tenant = stack.tenant()
    destination_id = tenant.webhook(destination.url)
    tenant.rule(destination_id)
    return tenant, destination_id


# In `make reliability` since session 11, to keep `make test` within its 15 minutes; the same
# path is unit-tested in tests/unit/test_poison_messages.py.
@pytest.mark.reliability
def test_a_lone_surrogate_message_id_beside_a_good_event(fault_stack: StackFactory) -> None:
    """The quick scenario: one message, one poison event, one good one."""
    stack = fault_stack()
    with Destination() as destination:
        tenant, _ = webhook_tenant(stack, destination)
        good, bad = canonical(tenant, track("good-1", 1), track("bad-1", 2))
        bad["messageId"] = "x-\ud800"
        publish_raw(tenant, [good, bad])

        delivered = wait_for(lambda: destination.delivered().get("good-1"), timeout=120)
        set_aside = wait_for(lambda: letters(tenant, reason="unprocessable_event"), timeout=60)
        stored = stack.wait_for_rows(tenant.workspace_id, {"good-1"}, timeout=120)
        logged = quiet(stack, "process", "dead_letters")

    record("poison_lone_surrogate", {"log_lines_while_quiet": logged})
    assert delivered == 1
    assert stored == {"good-1": 1}
    [letter] = set_aside
    assert letter["kind"] == "event" and letter["message_id"] == "x-\\ud800"
    assert "lone surrogate" in letter["reason"]
    assert all(lines <= QUIET_LINES for lines in logged.values()), logged


@pytest.mark.reliability
def test_a_recursive_contract_written_past_the_api(fault_stack: StackFactory) -> None:
    stack = fault_stack()
    with Destination() as destination:
        tenant, _ = webhook_tenant(stack, destination)
        contract = tenant.services.contracts.create(
            tenant.workspace_id,
            name="recursive",
            event_type="track",
            event_name="Recursive",
            schema_definition={"type": "object"},
            enforcement_mode="block",
        )
        document = contract_document(contract)
        # What the API now refuses: a schema whose `$ref` leads back into itself.
        document["schema_definition_json"] = json.dumps(
            {"type": "object", "properties": {"a": {"$ref": "#/properties/a"}}}
        )
        path = f"{contracts_collection(tenant.workspace_id)}/{contract.id}"
        tenant.services.store.commit([Write("set", path, document)])
        time.sleep(1.5)  # past the contracts' cache
        innocent, matching = canonical(
            tenant,
            track("innocent-1", 1),
            {**track("matching-1", 2), "event": "Recursive", "properties": {"a": {"a": 1}}},
        )
        publish_raw(tenant, [innocent, matching])

        delivered = wait_for(lambda: destination.delivered().get("innocent-1"), timeout=120)
        trace = wait_for(lambda: settled_trace(tenant, "matching-1"), timeout=60)
        logged = quiet(stack, "process", "dead_letters")

    record("poison_recursive_contract", {"log_lines_while_quiet": logged})
    assert delivered == 1
    assert trace, "the matching event ends with a reason"
    assert all(lines <= QUIET_LINES for lines in logged.values()), logged


def settled_trace(tenant: Tenant, message_id: str) -> list[dict[str, Any]] | None:
    """The stages that ended an event's road without a delivery (with their reasons), once any."""
    response = tenant.api("GET", f"/events/{message_id}/trace")
    if response.status_code != 200:
        return None
    ends = [s for s in response.json()["stages"] if s["stage"] in ("blocked", "dead_lettered")]
    return ends if ends and all(s.get("reason") or s.get("violations") for s in ends) else None


@pytest.mark.reliability
def test_an_empty_key_reaches_a_dead_letter_and_is_replayed(fault_stack: StackFactory) -> None:
    stack = fault_stack()
    with Destination() as destination:
        tenant, destination_id = webhook_tenant(stack, destination)
        [event] = canonical(tenant, track("empty-key-1", 1))
        event["properties"][""] = 1  # what ingest now refuses
        destination.down()
        publish_raw(tenant, [event])

        recorded = wait_for(lambda: dead_letters(tenant, destination_id), timeout=180)
        logged = quiet(stack, "deliver", "dead_letters")
        destination.up()
        response = tenant.api(
            "POST", "/dead-letters/replay", json={"destination_id": destination_id}
        )
        delivered = wait_for(lambda: destination.delivered().get("empty-key-1"), timeout=120)

    record("poison_empty_key", {"log_lines_while_quiet": logged})
    [letter] = recorded
    assert letter["reason_code"] == "retries_exhausted"
    assert response.status_code == 200 and response.json()["replayed"] == [letter["id"]]
    assert delivered == 1
    assert all(lines <= QUIET_LINES for lines in logged.values()), logged
