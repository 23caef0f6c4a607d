"""One event fans out to several of the vendor destinations on the local stack, each through its
own connector to a local fake of the vendor (and a file in the local Cloud Storage emulator),
with a transformation on one of them."""

from __future__ import annotations

import gzip
import json
from contextlib import ExitStack
from typing import Any

import pytest
from google.cloud.storage import Client

from emulators.dev import LOCAL_BUCKET, LocalStack
from tests.e2e.helpers import Tenant, wait_until
from tests.vendor_fakes import Answer, FakeVendor, Received, fake_vendor

pytestmark = pytest.mark.e2e

ADD_PLAN = "function transform(event) { event.properties.plan = 'pro'; return event; }"


def accept(request: Received) -> Answer:
    return Answer(200, {"status": "ok"})


def values(document: Any) -> list[Any]:
    """Every scalar in a JSON document, at any depth."""
    if isinstance(document, dict):
        return [v for item in document.values() for v in values(item)]
    if isinstance(document, list):
        return [v for item in document for v in values(item)]
    return [document]


def carried(vendor: FakeVendor, marker: str) -> list[Any]:
    """The JSON bodies the vendor received that carry the event (by a value only it has)."""
    bodies = [json.loads(r.body) for r in vendor.received if r.body[:1] == b"{"]
    return [body for body in bodies if marker in values(body)]


def test_one_event_fans_out_to_several_vendors_one_transformed(
    tenant: Tenant, local_stack: LocalStack
) -> None:
    with ExitStack() as stack:
        vendors = {
            name: stack.enter_context(fake_vendor(accept))
            for name in ("posthog", "braze", "segment", "slack")
        }
        configs: dict[str, dict[str, Any]] = {
            "gcs": {"bucket": LOCAL_BUCKET, "prefix": "fanout/"},
            "posthog": {"api_key": "phc_fanout_key", "host": vendors["posthog"].url},
            "braze": {"api_key": "braze-fanout-key", "rest_endpoint": vendors["braze"].url},
            "segment": {"write_key": "fanout-write-key", "endpoint": vendors["segment"].url},
            "slack": {
                "webhook_url": f"{vendors['slack'].url}/services/T0/B0/fanout",
                "templates": {"Order Completed": "Order {{properties.order_id}}"},
            },
        }
        created = tenant.api(
            "POST",
            "/event-transformations",
            json={"name": "add plan", "source_code": ADD_PLAN},
        )
        assert created.status_code == 201, created.text
        transformation_id = created.json()["id"]
        ids = {}
        for name, config in configs.items():
            response = tenant.api(
                "POST", "/destinations", json={"name": name, "type": name, "config": config}
            )
            assert response.status_code == 201, response.text
            ids[name] = response.json()["id"]
            extra = {"transformation_id": transformation_id} if name == "posthog" else {}
            tenant.rule(ids[name], **extra)

        event = {
            "type": "track",
            "event": "Order Completed",
            "userId": "fan-user",
            "messageId": "fan-out-1",
            "properties": {"order_id": "ord-77", "total": 12.5, "currency": "EUR"},
            "context": {"traits": {"email": "fan@example.com"}},
        }
        assert tenant.send("track", event).status_code == 200

        for name in ("posthog", "braze", "segment"):
            assert wait_until(lambda n=name: carried(vendors[n], "ord-77"), timeout=30), name  # type: ignore[misc]
        assert wait_until(lambda: vendors["slack"].received, timeout=30)
        bucket = Client(project="streams-local").bucket(LOCAL_BUCKET)
        files = wait_until(
            lambda: [b for b in bucket.list_blobs(prefix="fanout/") if b.name.endswith(".gz")]
        )
        assert len(files) == 1, files
        [line] = gzip.decompress(files[0].download_as_bytes()).decode().splitlines()
        assert json.loads(line)["messageId"] == "fan-out-1"
        assert files[0].name.startswith(f"fanout/source_id={tenant.source_id}/dt=")

        # The transformation ran on PostHog's rule only.
        [posthog] = carried(vendors["posthog"], "ord-77")
        assert "pro" in values(posthog)
        for name in ("braze", "segment"):
            assert "pro" not in values(carried(vendors[name], "ord-77")[0])
        [slack] = vendors["slack"].received
        assert "Order ord-77" in values(slack.json())
        # Each vendor got its own credentials, in its own way.
        assert "phc_fanout_key" in values(posthog)
        assert vendors["braze"].received[0].headers["authorization"] == "Bearer braze-fanout-key"
        assert vendors["segment"].received[0].headers["authorization"].startswith("Basic ")

        # And the trace says where it went: delivered to all five, transformed for one.
        def stages(name: str) -> list[str]:
            trace = tenant.trace("fan-out-1")
            return [s.get("destination_id") for s in trace["stages"] if s["stage"] == name]

        assert wait_until(lambda: set(stages("delivered")) == set(ids.values()))
        assert stages("transformed") == [ids["posthog"]]
