"""`make bench` beside `make dev` leaves nothing behind (issue 22, item 7).

The developer's stack is the session's local stack with the workspace `make dev` bootstraps
(dev.json in its state dir), a webhook destination and a rule for every event. The pipeline
bench runs beside it on the same emulators, as `python -m bench.pipeline --emulators shared`
would, and is interrupted mid-run: its rules, destinations, sources, tokens and Pub/Sub
subscriptions must be gone, and the developer's workspace and wiring untouched.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from bench.workspace import WORKSPACE_PREFIX, own_workspace
from emulators.dev import LocalStack
from emulators.stack import REPO_ROOT
from shared.bootstrap import Services
from shared.config import Settings
from shared.domain.errors import Unauthorized
from shared.domain.routing import deliver_subscription_id
from shared.domain.sources import process_subscription_id
from shared.services.topology import DEAD_LETTERS_SUBSCRIPTION
from tests.e2e.helpers import SECRET, free_ports, wait_until
from tests.webhook_receiver import WebhookReceiver, webhook_receiver

pytestmark = pytest.mark.e2e

BENCH_START_TIMEOUT = 90.0


def services_of(project: str) -> Services:
    """Services of the test process on the session's emulators, in `project`."""
    return Services(
        Settings.from_env(
            {**os.environ, "STREAMS_PROJECT_ID": project, "GOOGLE_CLOUD_PROJECT": project}
        )
    )


def pubsub(path: str) -> dict[str, Any]:
    """A GET on the Pub/Sub emulator's REST API (`path` after /v1/)."""
    response = requests.get(f"http://{os.environ['PUBSUB_EMULATOR_HOST']}/v1/{path}", timeout=10)
    response.raise_for_status()
    return dict(response.json())


def push_endpoint(project: str, subscription_id: str) -> str:
    config = pubsub(f"projects/{project}/subscriptions/{subscription_id}")["pushConfig"]
    return str(config["pushEndpoint"])


def workspace_contents(services: Services, workspace_id: str) -> dict[str, list[str]]:
    """Ids of what in a workspace can route, deliver or accept events (status where it has one)."""
    return {
        "rules": [
            f"{r.id} enabled={r.enabled}" for r in services.forwarding_rules.list(workspace_id)
        ],
        "destinations": [f"{d.id} {d.status}" for d in services.destinations.list(workspace_id)],
        "sources": [f"{s.id} {s.status}" for s in services.sources.list(workspace_id)],
        "tokens": [t.id for t in services.workspaces.list_tokens(workspace_id)],
    }


@pytest.fixture
def developer(local_stack: LocalStack) -> Iterator[tuple[dict[str, str], WebhookReceiver]]:
    """`make dev`'s workspace (bootstrapped into dev.json), delivering every event to a webhook."""
    settings = local_stack.bootstrap()
    with webhook_receiver() as receiver:
        base = f"{settings['gateway_url']}/api/v1/workspaces/{settings['workspace_id']}"
        auth = {"Authorization": f"Bearer {settings['admin_token']}"}
        destination = requests.post(
            f"{base}/destinations",
            json={
                "name": "dev hook",
                "type": "webhook",
                "config": {"url": receiver.url, "secret": SECRET},
            },
            headers=auth,
            timeout=30,
        )
        assert destination.status_code == 201, destination.text
        rule = requests.post(
            f"{base}/event-forwarding-rules",
            json={
                "name": "dev: every event",
                "destination_id": destination.json()["id"],
                "event_types": [],
                "event_names": [],
            },
            headers=auth,
            timeout=30,
        )
        assert rule.status_code == 201, rule.text
        yield settings, receiver


def run_bench(
    tmp_path: Path, local_stack: LocalStack, *args: str
) -> tuple[subprocess.Popen[bytes], Path]:
    """`python -m bench.pipeline` on the session's emulators, from a shell that holds the
    developer's settings (its state dir, with dev.json, and its project)."""
    env = {**os.environ, "STREAMS_STATE_DIR": str(local_stack.state_dir)}
    log = tmp_path / "bench.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.pipeline", "--emulators", "shared", *args],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return process, log


@pytest.mark.parametrize(
    "interrupt",
    [
        # Both signals in `make reliability`, to keep `make test` short: a bench's cleanup is
        # the tooling's, not the pipeline's, guarantee.
        pytest.param(signal.SIGINT, id="SIGINT", marks=pytest.mark.reliability),
        pytest.param(signal.SIGTERM, id="SIGTERM", marks=pytest.mark.reliability),
    ],
)
def test_an_interrupted_pipeline_bench_leaves_nothing_active(
    interrupt: signal.Signals,
    developer: tuple[dict[str, str], WebhookReceiver],
    local_stack: LocalStack,
    tmp_path: Path,
) -> None:
    settings, dev_receiver = developer
    project = settings["project_id"]
    dev_services = services_of(project)
    dev_json = (local_stack.state_dir / "dev.json").read_text()
    dev_before = workspace_contents(dev_services, settings["workspace_id"])
    dev_endpoint = push_endpoint(project, process_subscription_id(settings["source_id"]))

    bench_project = f"streams-bench-{uuid.uuid4().hex[:8]}"
    ports = free_ports(functions=20)
    process, log = run_bench(
        tmp_path,
        local_stack,
        *("--project", bench_project),
        *("--gateway-port", str(ports.gateway), "--functions-port", str(ports.functions)),
        *("--rate", "20", "--warmup", "1", "--duration", "120", "--settle", "1.5"),
        *("--senders", "2", "--drain", "1"),
    )
    bench = services_of(bench_project)
    try:
        found = wait_until(
            lambda: re.search(r"Workspace '[^']+' \(([\w-]+)\)", log.read_text()),
            BENCH_START_TIMEOUT,
        )
        assert found, f"the bench never made its workspace:\n{log.read_text()}"
        workspace_id = found.group(1)
        # Mid-run: the bench's rule is routing its events to its receiver.
        assert wait_until(
            lambda: bench.store.list_documents(f"workspaces/{workspace_id}/delivery_batches"), 30
        ), f"no delivery in the bench's workspace:\n{log.read_text()}"
        live = workspace_contents(bench, workspace_id)
        assert len(live["rules"]) == 1 and len(live["destinations"]) == 1, live
    finally:
        process.send_signal(interrupt)
        process.wait(timeout=60)
    output = log.read_text()
    assert process.returncode == 130, output
    assert "Interrupted" in output

    # The bench's own workspace, the only one in its project, can no longer do anything.
    [workspace] = bench.store.list_documents("workspaces")
    assert workspace["id"] == workspace_id
    assert workspace["name"].startswith(f"{WORKSPACE_PREFIX}pipeline ")
    after = workspace_contents(bench, workspace_id)
    assert after["rules"] == [] and after["destinations"] == [] and after["tokens"] == [], after
    assert after["sources"] == [], after
    # Only the project's dead-letter subscription is left: none pushes to the stopped functions.
    subscriptions = pubsub(f"projects/{bench_project}/subscriptions").get("subscriptions", [])
    assert [s["name"].rsplit("/", 1)[1] for s in subscriptions] == [DEAD_LETTERS_SUBSCRIPTION]

    # The developer's workspace, dev.json and wiring are as they were, and events still arrive.
    assert workspace_contents(dev_services, settings["workspace_id"]) == dev_before
    assert (local_stack.state_dir / "dev.json").read_text() == dev_json
    assert push_endpoint(project, process_subscription_id(settings["source_id"])) == dev_endpoint
    message_id = f"after-bench-{uuid.uuid4()}"
    sent = requests.post(
        f"{settings['gateway_url']}/v1/track",
        headers={"X-Write-Key": settings["write_key"]},
        data=json.dumps({"event": "Signed Up", "userId": "dev", "messageId": message_id}),
        timeout=10,
    )
    assert sent.status_code == 200, sent.text
    assert wait_until(
        lambda: any(r.event["messageId"] == message_id for r in dev_receiver.delivered()), 20
    ), "the developer's event did not reach the developer's webhook after the bench"


# In `make reliability`, to keep `make test` within its 15 minutes: the bench's own
# guard, like the interruption cases above.
@pytest.mark.reliability
def test_the_pipeline_bench_refuses_a_project_another_stack_uses(
    developer: tuple[dict[str, str], WebhookReceiver], local_stack: LocalStack, tmp_path: Path
) -> None:
    """Starting there would re-point the developer's push subscriptions to the bench's
    functions: every event of theirs would go to a dead address once the bench stopped."""
    settings, _ = developer
    project = settings["project_id"]
    dev_endpoint = push_endpoint(project, process_subscription_id(settings["source_id"]))
    ports = free_ports(functions=20)
    process, log = run_bench(
        tmp_path,
        local_stack,
        *("--project", project),
        *("--gateway-port", str(ports.gateway), "--functions-port", str(ports.functions)),
    )
    try:
        process.wait(timeout=60)
    finally:
        if process.poll() is None:  # it did not refuse: stop it, and its stack with it
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)
    output = log.read_text()
    assert process.returncode == 2, output
    assert f"project {project}" in output and "'Local development'" in output, output
    assert push_endpoint(project, process_subscription_id(settings["source_id"])) == dev_endpoint
    assert not any(
        ws["name"].startswith(WORKSPACE_PREFIX)
        for ws in services_of(project).store.list_documents("workspaces")
    ), "the bench created a workspace in a project it refused"


def test_a_bench_workspace_is_dismantled_when_the_run_fails(local_stack: LocalStack) -> None:
    """An exception mid-run: the `with` block's exit removes what the bench made, including a
    destination and rule made after the workspace, and their Pub/Sub subscriptions."""
    services = Services(Settings.from_env())
    project = services.settings.project_id
    with (
        pytest.raises(RuntimeError, match="mid-run"),
        own_workspace(services, "isolation test") as ws,
    ):
        destination = services.destinations.create(
            ws.workspace_id,
            name="hook",
            type="webhook",
            config={"url": "http://127.0.0.1:9/hook", "secret": SECRET},
        )
        services.forwarding_rules.create(
            ws.workspace_id,
            name="every event",
            destination_id=destination.id,
            event_types=[],
            event_names=[],
        )
        subscriptions = [
            deliver_subscription_id(destination.id),
            process_subscription_id(ws.source_id),
        ]
        for subscription in subscriptions:
            assert push_endpoint(project, subscription)  # wired while the run lasts
        raise RuntimeError("the bench failed mid-run")

    after = workspace_contents(services, ws.workspace_id)
    assert after["rules"] == [] and after["destinations"] == [] and after["tokens"] == [], after
    assert after["sources"] == []
    assert services.sources.resolve_write_key(ws.write_key) is None
    with pytest.raises(Unauthorized):
        services.workspaces.authenticate(ws.admin_token)
    for subscription in subscriptions:
        response = requests.get(
            f"http://{os.environ['PUBSUB_EMULATOR_HOST']}/v1/projects/{project}/subscriptions/{subscription}",
            timeout=10,
        )
        assert response.status_code == 404, f"{subscription} still exists"
