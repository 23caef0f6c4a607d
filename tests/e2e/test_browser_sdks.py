"""Browser SDKs, real and unmodified, in headless Chromium on a page of another origin, against
the local stack: analytics.js 2.0 through Segment's snippet from Streams' own bundle URL,
RudderStack's JavaScript SDK v3 pointed at Streams, and `navigator.sendBeacon`.

Nothing reaches the internet: Chromium resolves no host name but 127.0.0.1's and sends every
other request to a proxy that is not there (loopback never goes through a proxy), and the test
fails if the page tried any. Playwright's request routing is not used for this: while it
intercepts, Playwright answers CORS preflights itself and holds keepalive requests (beacons)
back, which would hide exactly what these tests check.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request, sync_playwright

from emulators.dev import LocalStack
from shared.domain.sources import source_topic_id
from tests.e2e.helpers import Tenant
from tests.e2e.test_console import CHROMIUM, CHROMIUM_FLAGS
from tests.pubsub_helpers import TopicReader

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
LOCAL = "127.0.0.1"
# Segment's standard snippet (@segment/snippet 5.2.1), as the console gives it
# (console/src/snippets.ts): Segment's CDN host replaced by Streams', nothing passed inline.
SEGMENT_SNIPPET = (
    '!function(){var i="analytics",analytics=window[i]=window[i]||[];if(!analytics.initialize)'
    'if(analytics.invoked)window.console&&console.error&&console.error("Segment snippet '
    'included twice.");else{analytics.invoked=!0;analytics.methods=["trackSubmit","trackClick",'
    '"trackLink","trackForm","pageview","identify","reset","group","track","ready","alias",'
    '"debug","page","screen","once","off","on","addSourceMiddleware","addIntegrationMiddleware",'
    '"setAnonymousId","addDestinationMiddleware","register"];analytics.factory=function(e)'
    "{return function(){if(window[i].initialized)return window[i][e].apply(window[i],arguments)"
    ';var n=Array.prototype.slice.call(arguments);if(["track","screen","alias","group","page",'
    '"identify"].indexOf(e)>-1){var c=document.querySelector("link[rel=\'canonical\']");'
    'n.push({__t:"bpc",c:c&&c.getAttribute("href")||void 0,p:location.pathname,u:location.href,'
    "s:location.search,t:document.title,r:document.referrer})}n.unshift(e);analytics.push(n);"
    "return analytics}};for(var n=0;n<analytics.methods.length;n++){var key=analytics.methods[n]"
    ";analytics[key]=analytics.factory(key)}analytics.load=function(key,n){var t=document."
    'createElement("script");t.type="text/javascript";t.async=!0;t.setAttribute('
    '"data-global-segment-analytics-key",i);t.src="{CDN}/analytics.js/v1/" + key + '
    '"/analytics.min.js";var r=document.getElementsByTagName("script")[0];r.parentNode.'
    "insertBefore(t,r);analytics._loadOptions=n};analytics._writeKey={KEY};analytics._cdn={CDNJSON}"
    ';analytics.SNIPPET_VERSION="5.2.1";\n'
    "analytics.load({KEY});\n"
    "analytics.page();\n"
    "}}();"
)
HEAD = '<meta charset="utf-8"><link rel="icon" href="data:,"><title>Another origin</title>'
OFFLINE_FLAGS = [
    f"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE {LOCAL}",
    "--proxy-server=http://127.0.0.1:9",  # the discard port: nothing answers
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium")
    if not (ROOT / "collect" / "dist" / "manifest.json").exists():
        pytest.fail("the browser SDKs are not built: run `make collect`")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_FLAGS + OFFLINE_FLAGS, headless=True
        )
        yield launched
        launched.close()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A website of its own origin: a static server on another port than the gateway's."""
    handler = partial(_QuietHandler, directory=str(tmp_path))
    server = ThreadingHTTPServer((LOCAL, 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://{LOCAL}:{server.server_address[1]}", tmp_path
    server.shutdown()
    server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class Offline:
    """A page and what it did: every request (to 127.0.0.1 or, refused, elsewhere), the bodies
    it posted, the answers that failed, and the errors it logged."""

    def __init__(self, context: BrowserContext):
        self.context = context
        self.elsewhere: list[str] = []
        self.requests: list[tuple[str, str]] = []
        self.bodies: dict[str, list[Any]] = {}
        self.failed: list[str] = []
        self.errors: list[str] = []
        context.on("request", self._request)
        context.on("requestfailed", lambda r: self.failed.append(f"{r.failure} {r.url}"))
        context.on(
            "response",
            lambda r: (
                self.failed.append(f"{r.status} {r.request.method} {r.url}")
                if r.status >= 400
                else None
            ),
        )
        self.page = context.new_page()
        self.page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)

    def _request(self, request: Request) -> None:
        self.requests.append((request.method, request.url))
        if urlsplit(request.url).hostname != LOCAL and not request.url.startswith("data:"):
            self.elsewhere.append(request.url)
        if request.method == "POST" and request.post_data:
            path = urlsplit(request.url).path
            self.bodies.setdefault(path, []).append(json.loads(request.post_data))

    def to(self, prefix: str) -> list[tuple[str, str]]:
        return [(method, url) for method, url in self.requests if url.startswith(prefix)]


@pytest.fixture
def offline(browser: Browser) -> Iterator[Offline]:
    context = browser.new_context()
    watched = Offline(context)
    yield watched
    context.close()
    assert watched.elsewhere == [], "the page tried to reach the internet"
    assert watched.failed == [], watched.errors
    assert watched.errors == []


def topic_reader(tenant: Tenant, name: str) -> TopicReader:
    project = tenant.services.settings.project_id
    topic = f"projects/{project}/topics/{source_topic_id(tenant.source_id)}"
    return TopicReader(topic, f"{name}-{uuid.uuid4().hex[:8]}")


def by_id(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {event["messageId"]: event for event in events}


def test_analytics_js_from_streams_sends_every_call_from_another_origin(
    tenant: Tenant, local_stack: LocalStack, site: tuple[str, Path], offline: Offline
) -> None:
    origin, root = site
    gateway = tenant.gateway
    key = json.dumps(tenant.write_key)
    snippet = (
        SEGMENT_SNIPPET.replace("{CDN}", gateway)
        .replace("{CDNJSON}", json.dumps(gateway))
        .replace("{KEY}", key)
    )
    (root / "shop.html").write_text(
        f"<!doctype html><html><head>{HEAD}<script>{snippet}"
        "</script></head><body>A shop</body></html>"
    )
    reader = topic_reader(tenant, "ajs")
    page: Page = offline.page

    # ajs_ parameters make analytics.js load its queryString chunk from Streams' bundle path.
    page.goto(f"{origin}/shop.html?ajs_uid=user-linked&ajs_event=Arrived%20From%20Link")
    page.wait_for_function("() => window.analytics && window.analytics.initialized === true")
    ids = page.evaluate(
        """async () => {
            const a = window.analytics;
            const id = (ctx) => ctx.event.messageId;
            return {
                track: id(await a.track('Browser Checked Out', {total: 12.5})),
                identify: id(await a.identify('user-browser', {plan: 'pro'})),
                page: id(await a.page('Docs', 'Pricing')),
                group: id(await a.group('grp-browser', {name: 'Acme'})),
                alias: id(await a.alias('user-browser-2', 'user-browser')),
            };
        }"""
    )

    # The five calls, the snippet's page() and the link's identify and track.
    events = reader.events(expected=8)
    found = by_id(events)
    assert set(ids.values()) <= set(found), events
    track, identify, page_view = found[ids["track"]], found[ids["identify"]], found[ids["page"]]
    assert (track["type"], track["event"], track["properties"]) == (
        "track",
        "Browser Checked Out",
        {"total": 12.5},
    )
    assert (identify["type"], identify["userId"], identify["traits"]) == (
        "identify",
        "user-browser",
        {"plan": "pro"},
    )
    assert (page_view["type"], page_view["name"], page_view["properties"]["category"]) == (
        "page",
        "Pricing",
        "Docs",
    )
    assert found[ids["group"]]["groupId"] == "grp-browser"
    # analytics.js sends an alias' ids as it resolves them (the current user's, after an
    # identify): Streams stores what it sent.
    (sent_alias,) = offline.bodies["/v1/a"]
    alias = found[ids["alias"]]
    assert alias["type"] == "alias" and alias["previousId"] == "user-browser"
    assert (alias["userId"], alias["previousId"]) == (
        sent_alias["userId"],
        sent_alias["previousId"],
    )
    assert track["context"]["library"]["name"] == "analytics.js"
    assert track["context"]["page"]["url"].startswith(origin)
    assert any(e["type"] == "track" and e["event"] == "Arrived From Link" for e in events)
    assert any(e["type"] == "identify" and e["userId"] == "user-linked" for e in events)
    assert sum(e["type"] == "page" for e in events) == 2

    # Everything came from Streams: bundle, settings, chunk; events went to its short paths.
    assert ("GET", f"{gateway}/analytics.js/v1/{tenant.write_key}/analytics.min.js") in (
        offline.requests
    )
    assert ("GET", f"{gateway}/v1/projects/{tenant.write_key}/settings") in offline.requests
    assert any("/analytics-next/bundles/queryString.bundle." in u for _, u in offline.requests)
    posted = {urlsplit(url).path for method, url in offline.to(gateway) if method == "POST"}
    assert {"/v1/t", "/v1/i", "/v1/p", "/v1/g", "/v1/a"} <= posted


def test_rudderstack_sdk_v3_sends_every_call_from_another_origin(
    tenant: Tenant, site: tuple[str, Path], offline: Offline
) -> None:
    origin, root = site
    gateway = tenant.gateway
    (root / "rudder.html").write_text(
        f"<!doctype html><html><head>{HEAD}"
        f'<script src="{gateway}/rudderstack/v3/analytics.min.js"></script>'
        "<script>var sdk = new rudderanalytics.RudderAnalytics();"
        f"sdk.load({json.dumps(tenant.write_key)}, {json.dumps(gateway)}, "
        f"{{configUrl: {json.dumps(gateway)}}});</script></head><body>A shop</body></html>"
    )
    reader = topic_reader(tenant, "rudder")
    page = offline.page

    page.goto(f"{origin}/rudder.html")
    # ready() fires once the source configuration is loaded; a failed load never fires it.
    page.evaluate(
        """() => new Promise((resolve, reject) => {
            window.rudderanalytics.ready(() => resolve(true));
            setTimeout(() => reject(new Error('RudderStack never became ready')), 20000);
        })"""
    )
    page.evaluate(
        """() => {
            const r = window.rudderanalytics;
            r.page('Docs', 'Pricing');
            r.identify('rs-user', {plan: 'pro'});
            r.track('RS Checked Out', {total: 7});
            r.group('rs-group', {name: 'Acme'});
            r.alias('rs-user-2', 'rs-user');
        }"""
    )

    events = reader.events(expected=5)
    kinds = {event["type"]: event for event in events}
    assert set(kinds) == {"page", "identify", "track", "group", "alias"}, events
    assert (kinds["track"]["event"], kinds["track"]["properties"]) == (
        "RS Checked Out",
        {"total": 7},
    )
    assert kinds["identify"]["userId"] == "rs-user"
    assert kinds["page"]["name"] == "Pricing"
    assert kinds["group"]["groupId"] == "rs-group"
    assert (kinds["alias"]["userId"], kinds["alias"]["previousId"]) == ("rs-user-2", "rs-user")
    assert kinds["track"]["context"]["library"]["name"] == "RudderLabs JavaScript SDK"

    requested = {urlsplit(url).path for _, url in offline.to(gateway)}
    assert {"/rudderstack/v3/analytics.min.js", "/sourceConfig/", "/v1/track"} <= requested


def test_send_beacon_reaches_the_topic_with_the_key_in_the_query(
    tenant: Tenant, site: tuple[str, Path], offline: Offline
) -> None:
    origin, root = site
    (root / "leave.html").write_text(f"<!doctype html><html><head>{HEAD}</head><body></body>")
    reader = topic_reader(tenant, "beacon")
    message_id = f"beacon-{uuid.uuid4().hex}"
    page = offline.page
    page.goto(f"{origin}/leave.html")

    queued = page.evaluate(
        "([url, body]) => navigator.sendBeacon(url, body)",
        [
            f"{tenant.gateway}/v1/t?writeKey={tenant.write_key}",
            json.dumps({"event": "Page Left", "userId": "u-beacon", "messageId": message_id}),
        ],
    )

    assert queued is True
    evs = reader.events(expected=1)
    found = by_id(evs)
    assert found[message_id]["event"] == "Page Left"
    assert found[message_id]["type"] == "track"
