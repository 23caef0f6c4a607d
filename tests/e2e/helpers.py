"""Helpers of the end-to-end tests: a tenant of the running stack, and polling."""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from emulators.dev import DevPorts
from shared.bootstrap import Services

SECRET = "e2e-webhook-secret-0123456789"


@dataclass
class Tenant:
    """A workspace of its own, with a token, a source, and a client of the gateway."""

    gateway: str
    workspace_id: str
    token: str
    write_key: str
    source_id: str
    services: Services

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = f"{self.gateway}/api/v1/workspaces/{self.workspace_id}{path}"
        headers = {"Authorization": f"Bearer {self.token}"}
        return requests.request(method, url, headers=headers, timeout=30, **kwargs)

    def send(self, call: str, body: dict[str, Any]) -> requests.Response:
        return requests.post(
            f"{self.gateway}/v1/{call}",
            json=body,
            headers={"X-Write-Key": self.write_key},
            timeout=30,
        )

    def webhook(self, url: str, **config: Any) -> str:
        response = self.api(
            "POST",
            "/destinations",
            json={
                "name": "hook",
                "type": "webhook",
                "config": {"url": url, "secret": SECRET, **config},
            },
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def contract(
        self,
        event_name: str,
        required: str,
        mode: str,
        property_type: str = "number",
        name: str | None = None,
    ) -> dict[str, Any]:
        """A contract on tracks named `event_name` requiring one property of `property_type`,
        in effect once it returns (past process's contract cache)."""
        schema = {"properties": {required: {"type": property_type, "required": True}}}
        response = self.api(
            "POST",
            "/event-contracts",
            json={
                "name": name or f"{event_name} needs {required}",
                "event_type": "track",
                "event_name": event_name,
                "schema_definition": schema,
                "enforcement_mode": mode,
            },
        )
        assert response.status_code == 201, response.text
        time.sleep(1.2)  # past the contracts cache of the process function
        return dict(response.json())

    def rule(self, destination_id: str, **fields: Any) -> dict[str, Any]:
        body = {
            "name": "rule",
            "destination_id": destination_id,
            "event_types": [],
            "event_names": [],
            **fields,
        }
        response = self.api("POST", "/event-forwarding-rules", json=body)
        assert response.status_code == 201, response.text
        time.sleep(1.2)  # past the routing-config cache
        return dict(response.json())

    def trace(
        self, message_id: str, until: str = "processed", timeout: float = 20
    ) -> dict[str, Any]:
        """The event's trace once it reached `until` (a state, or a stage name)."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.api("GET", f"/events/{message_id}/trace")
            if response.status_code == 200:
                trace = response.json()
                stages = {s["stage"] for s in trace["stages"]}
                if trace["state"] == until or until in stages:
                    return dict(trace)
            assert time.monotonic() < deadline, f"trace of {message_id} never reached {until}"
            time.sleep(0.2)


def wait_until(predicate: Callable[[], Any], timeout: float = 20, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(interval)
    return predicate()


def free_ports(functions: int = 40) -> DevPorts:
    """A gateway port and a run of consecutive free ports for the functions (below the kernel's
    ephemeral range, so outgoing connections never take them), so test runs never collide."""
    for base in random.sample(range(20000, 30000, 50), 200):
        if all(port_free(port) for port in range(base, base + functions + 1)):
            return DevPorts(gateway=base, functions=base + 1)
    raise RuntimeError("no free run of ports for the local stack")


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
