"""The web console with edge "direct" (docs/DEPLOY.md, "Choosing the edge"), in a real browser:
no load balancer, so the page comes from the console function's own origin, which forwards the
management API to the functions serving it (shared/http/forward.py) and names ingest's own host
in the snippets. Each function of the local stack plays its run.app host, and one more console
process is configured as Terraform configures it with edge "direct" (STREAMS_CONSOLE_API_URLS,
STREAMS_CONSOLE_INGEST_URL), with no gateway between the page and it.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, expect

from emulators.dev import FUNCTION_START_TIMEOUT, LocalStack, function_command
from emulators.processes import ManagedProcess, tcp_open
from shared.api.console import INGEST_ENVIRONMENT
from shared.api.routes import PUBSUB_FUNCTIONS, http_functions
from shared.http.forward import ENVIRONMENT
from tests.e2e.helpers import Tenant
from tests.e2e.test_console import (
    LAPTOP,
    Watched,
    live_and_watched,
    open_page,
    send,
    sign_in,
)
from tests.e2e.test_console import browser as browser  # the fixture, for this module

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def direct_console(
    local_stack: LocalStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, str]]]:
    # Each function's own URL, in the order the local stack gives out its ports (emulators/dev.py).
    kinds = [*http_functions(), *PUBSUB_FUNCTIONS]
    urls = {
        name: f"http://{HOST}:{local_stack.ports.functions + offset}"
        for offset, name in enumerate(kinds)
    }
    assert requests.get(urls["ingest"] + "/healthz", timeout=10).status_code == 200
    management = {
        name: urls[name] for name in http_functions() if name not in ("console", "ingest")
    }
    port = _free_port()
    state = tmp_path_factory.mktemp("direct-console")
    process = ManagedProcess(
        name="function-console-direct",
        command=function_command("console", port),
        log_path=state / "console.log",
        pid_path=state / "console.pid",
        env={ENVIRONMENT: json.dumps(management), INGEST_ENVIRONMENT: urls["ingest"]},
        cwd=ROOT,
        health_check=lambda: tcp_open(HOST, port),
    )
    process.start()
    try:
        process.wait_healthy(FUNCTION_START_TIMEOUT)
        yield f"http://{HOST}:{port}", urls
    finally:
        process.stop()


def test_the_console_works_from_its_own_origin(
    browser: Browser, direct_console: tuple[str, dict[str, str]], tenant: Tenant
) -> None:
    origin, urls = direct_console
    context = browser.new_context(viewport=LAPTOP, base_url=origin)
    console = Watched(context.new_page())
    page = sign_in(console, tenant)  # GET /api/v1/me, through the console's origin

    # A source created through the console; its snippets name ingest's host, not the page's.
    page.get_by_label("New source name").fill("Direct app")
    page.get_by_role("button", name="Create source").click()
    expect(
        page.get_by_role("heading", name="Send events to \u201cDirect app\u201d")
    ).to_be_visible()
    web = page.get_by_test_id("snippet").inner_text()
    assert f'analytics._cdn="{urls["ingest"]}"' in web and origin not in web
    page.get_by_role("tab", name="curl").click()
    curl = page.get_by_test_id("snippet").inner_text()
    assert f"curl -X POST {urls['ingest']}/v1/track" in curl
    match = re.search(r"X-Write-Key: (wk_[A-Za-z0-9_-]+)", curl)
    assert match, curl

    # The live stream, forwarded to events as it is written, shows an event sent to ingest.
    open_page(page, "Live debugger")
    live_and_watched(page)
    send(urls["ingest"], match.group(1), "track", {"event": "Direct Signup", "userId": "u1"})
    rows = page.get_by_test_id("live-event")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Direct Signup")

    # The page asked its own origin alone: no other host, so no CORS and the same CSP.
    assert [url for url in console.urls if not url.startswith(("data:", origin + "/"))] == []
    context.close()
    assert console.errors == []
