"""Consent-aware routing and the sources' bot policies, through process (docs/PRIVACY.md)."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from shared import structured_log
from shared.domain.consent import CONSENT_DENIED, consent_refusal
from shared.domain.outcomes import BOT_DROPPED_REASON, BOT_STORE_ONLY_REASON, Observed
from shared.domain.pipeline import delivery_id, parse_source_message
from shared.domain.regulations import privacy_settings_path
from shared.domain.routing import destination_path
from shared.services.process import BOTS_DROPPED
from shared.services.volume import EventVolume
from tests.fakes import FakeServices
from tests.functions import function_client
from tests.tenants import Tenant
from tests.unit.pipeline_fixtures import (
    SOURCE_ID,
    START,
    WORKSPACE_ID,
    Pipeline,
    add_destination,
    add_rule,
    identify,
    make_events,
    make_pipeline,
    source_message,
    track,
)

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def consent(**preferences: bool) -> dict[str, Any]:
    return {"consent": {"categoryPreferences": preferences}}


@pytest.mark.parametrize(
    ("categories", "context", "required", "refused"),
    [
        # A destination that needs no category takes everything.
        ([], consent(Advertising=False), True, None),
        ([], {}, True, None),
        # Every category it needs must be granted, with `true` itself.
        (["Analytics"], consent(Analytics=True, Advertising=False), False, None),
        (["Advertising"], consent(Analytics=True, Advertising=False), False, "Advertising"),
        (["Advertising", "Analytics"], consent(Analytics=True), False, "Advertising"),
        (["Analytics"], {"consent": {"categoryPreferences": {"Analytics": "yes"}}}, False, "An"),
        # An empty object is consent given to nothing.
        (["Analytics"], consent(), False, "Analytics"),
        # No consent object: not enforced, unless the workspace requires consent.
        (["Analytics"], {}, False, None),
        (["Analytics"], {"consent": {}}, False, None),
        (["Analytics"], {}, True, "requires consent for Analytics"),
        (["Analytics"], {"consent": {"categoryPreferences": None}}, True, "requires consent"),
    ],
)
def test_an_event_goes_where_every_needed_category_is_granted(
    categories: list[str], context: dict[str, Any], required: bool, refused: str | None
) -> None:
    reason = consent_refusal({"context": context}, categories, required)
    if refused is None:
        assert reason is None
    else:
        assert reason is not None and reason.startswith("consent denied") and refused in reason


def consent_pipeline(*, required: bool = False) -> Pipeline:
    """Three destinations: ads (Advertising), analytics (Analytics), plain (none); a rule each."""
    pipeline = make_pipeline(privacy=True)
    for destination_id, categories in (
        ("ads", ["Advertising"]),
        ("analytics", ["Analytics"]),
        ("plain", []),
    ):
        add_destination(pipeline.store, destination_id)
        pipeline.store.documents[destination_path(WORKSPACE_ID, destination_id)][
            "consent_categories"
        ] = categories
        add_rule(pipeline.store, f"r-{destination_id}", destination_id)
    if required:
        pipeline.store.documents[privacy_settings_path(WORKSPACE_ID)] = {
            "workspace_id": WORKSPACE_ID,
            "pii_rules": [],
            "consent_required": True,
        }
    return pipeline


def routed(pipeline: Pipeline) -> set[tuple[str, str]]:
    return {(m.message_id, m.destination_id) for m in pipeline.delivery_messages()}


def test_consent_matrix_delivered_or_consent_denied_with_the_reason_traced() -> None:
    pipeline = consent_pipeline()
    events = make_events(
        track(context=consent(Advertising=False, Analytics=True)),
        track(context=consent(Advertising=True, Analytics=True)),
        track(context=consent()),
        track(),  # no consent object, not required: not enforced
    )

    pipeline.process(source_message(events))

    assert routed(pipeline) == {
        ("msg-1", "analytics"),
        ("msg-1", "plain"),
        ("msg-2", "ads"),
        ("msg-2", "analytics"),
        ("msg-2", "plain"),
        ("msg-3", "plain"),
        ("msg-4", "ads"),
        ("msg-4", "analytics"),
        ("msg-4", "plain"),
    }
    # Held back, never lost: each event's row says from where (the volume API counts them),
    # and its trace shows the outcome per destination.
    denied = {row["message_id"]: row["consent_denied"] for row in pipeline.events.rows}
    assert denied == {
        "msg-1": ["ads"],
        "msg-2": [],
        "msg-3": ["ads", "analytics"],
        "msg-4": [],
    }
    stages = pipeline.traces.trace(WORKSPACE_ID, "msg-1")["stages"]
    [held] = [s for s in stages if s["stage"] == CONSENT_DENIED]
    assert held["destination_id"] == "ads" and held["rule_id"] == "r-ads"
    assert held["status"] == "skipped"
    assert held["reason"] == "consent denied: not granted for Advertising"


def test_a_workspace_that_requires_consent_holds_back_events_without_it() -> None:
    pipeline = consent_pipeline(required=True)
    events = make_events(track(), track(context=consent(Analytics=True)))

    pipeline.process(source_message(events))

    assert routed(pipeline) == {("msg-1", "plain"), ("msg-2", "analytics"), ("msg-2", "plain")}
    denied = {row["message_id"]: row["consent_denied"] for row in pipeline.events.rows}
    assert denied == {"msg-1": ["ads", "analytics"], "msg-2": ["ads"]}


def test_an_identify_granting_consent_reaches_the_destinations_refused_before() -> None:
    pipeline = consent_pipeline()
    refused = make_events(identify(context=consent(Advertising=False)))
    pipeline.process(source_message(refused))
    assert ("msg-1", "ads") not in routed(pipeline)

    granted = make_events(identify(messageId="later", context=consent(Advertising=True)))
    pipeline.process(source_message(granted, pubsub_message_id="ps-2"))

    assert ("later", "ads") in routed(pipeline)
    pipeline.pump_deliveries()
    record = pipeline.delivery(delivery_id("later", "r-ads"))
    assert record is not None and record["status"] == "delivered"


def test_the_volume_api_counts_consent_denied_per_destination_and_hour() -> None:
    pipeline = consent_pipeline()
    pipeline.process(
        source_message(
            make_events(
                track(context=consent(Advertising=False, Analytics=False)),
                track(context=consent(Advertising=False, Analytics=True)),
            )
        )
    )
    volume = EventVolume(pipeline.events, clock=lambda: START + timedelta(minutes=30))

    assert volume.consent_denials(WORKSPACE_ID, hours=1) == [
        {
            "destination_id": "ads",
            "outcome": "consent_denied",
            "hour_bucket": START.strftime("%Y-%m-%dT%H:00:00Z"),
            "event_count": 2,
        },
        {
            "destination_id": "analytics",
            "outcome": "consent_denied",
            "hour_bucket": START.strftime("%Y-%m-%dT%H:00:00Z"),
            "event_count": 1,
        },
    ]
    assert [r["destination_id"] for r in volume.consent_denials(WORKSPACE_ID, 1, "analytics")] == [
        "analytics"
    ]


class Seen:
    def __init__(self) -> None:
        self.observed: list[Observed] = []

    def observe(self, workspace_id: str, source_id: str, observed: list[Observed]) -> None:
        self.observed += observed


def bot_run(policy: str) -> tuple[Pipeline, Any, Seen]:
    seen = Seen()
    pipeline = make_pipeline(observers=[seen])
    add_destination(pipeline.store, "dest")
    add_rule(pipeline.store, "r-all", "dest")
    events = make_events(
        track(context={"userAgent": GOOGLEBOT}),
        track(context={"userAgent": CHROME}),
        track(),  # a server SDK's: no user agent, never a bot
    )
    message = replace(source_message(events), bot_policy=policy)  # type: ignore[arg-type]
    return pipeline, pipeline.process(message), seen


def test_keep_tags_bots_and_forwards_them() -> None:
    pipeline, outcome, _ = bot_run("keep")

    contexts = {row["message_id"]: row["context"] for row in pipeline.events.rows}
    assert '"bot":true' in contexts["msg-1"]
    assert '"bot"' not in contexts["msg-2"] and '"bot"' not in (contexts["msg-3"] or "")
    # Device enrichment ran too: the browser's device, OS and browser are filled.
    assert '"browser":{"name":"Chrome"' in contexts["msg-2"]
    assert {m.message_id for m in pipeline.delivery_messages()} == {"msg-1", "msg-2", "msg-3"}
    assert outcome.bots_dropped == 0


def test_store_only_stores_bots_and_forwards_them_nowhere() -> None:
    pipeline, outcome, _ = bot_run("store_only")

    assert [row["message_id"] for row in pipeline.events.rows] == ["msg-1", "msg-2", "msg-3"]
    assert {m.message_id for m in pipeline.delivery_messages()} == {"msg-2", "msg-3"}
    stages = pipeline.traces.trace(WORKSPACE_ID, "msg-1")["stages"]
    assert [(s["stage"], s["reason"]) for s in stages if s["stage"] == "skipped"] == [
        ("skipped", BOT_STORE_ONLY_REASON)
    ]
    assert outcome.skipped == 1


def test_drop_records_the_bots_event_as_dropped_with_its_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    structured = logging.getLogger(structured_log.LOGGER_NAME)
    structured.addHandler(caplog.handler)
    try:
        pipeline, outcome, seen = bot_run("drop")
    finally:
        structured.removeHandler(caplog.handler)

    assert [row["message_id"] for row in pipeline.events.rows] == ["msg-2", "msg-3"]
    assert {m.message_id for m in pipeline.delivery_messages()} == {"msg-2", "msg-3"}
    assert outcome.bots_dropped == 1 and outcome.stored == 2
    entry = pipeline.log_entry("msg-1")
    assert entry is not None and entry["state"] == "done" and entry["reason"] == BOT_DROPPED_REASON
    assert pipeline.traces.trace(WORKSPACE_ID, "msg-1")["stages"][-1] == {
        **pipeline.traces.trace(WORKSPACE_ID, "msg-1")["stages"][-1],
        "stage": "ignored",
        "status": "dropped",
        "reason": BOT_DROPPED_REASON,
    }
    assert [(o.event["messageId"], o.status) for o in seen.observed if o.status != "stored"] == [
        ("msg-1", "dropped")
    ]
    # Counted: one structured line per message, which a log-based metric can sum.
    [line] = [json.loads(r.getMessage()) for r in caplog.records if BOTS_DROPPED in r.getMessage()]
    assert (line["message"], line["events"], line["source_id"]) == (BOTS_DROPPED, 1, SOURCE_ID)


def test_the_policy_travels_in_the_message_and_an_unknown_one_keeps() -> None:
    data = b'[{"messageId":"m","workspaceId":"ws"}]'
    base = {"workspace_id": "ws", "source_id": "s"}
    assert parse_source_message(data, {**base, "bot_policy": "drop"}, "p").bot_policy == "drop"
    assert parse_source_message(data, base, "p").bot_policy == "keep"
    assert parse_source_message(data, {**base, "bot_policy": "later"}, "p").bot_policy == "keep"


def test_a_source_privacy_resource_sets_the_bot_policy_and_cookieless_mode(
    services: FakeServices, tenant: Tenant
) -> None:
    workspace_id, auth = tenant
    keys = function_client("event_keys")
    base = f"/api/v1/workspaces/{workspace_id}/event-keys"
    source = keys.post(base, json={"name": "Web", "bot_policy": "drop"}, headers=auth).get_json()
    privacy = f"{base}/{source['id']}/privacy"
    assert keys.get(privacy, headers=auth).get_json() == {
        **keys.get(privacy, headers=auth).get_json(),
        "ip_policy": "keep",
        "bot_policy": "drop",
        "cookieless": False,
    }

    body = {"ip_policy": "truncate", "bot_policy": "store_only", "cookieless": True}
    changed = keys.put(privacy, json=body, headers=auth).get_json()
    assert {k: changed[k] for k in body} == body
    # Ingest's write-key record carries both (its bot policy goes to process in each message).
    record = services.sources.resolve_write_key(source["key"])
    assert record is not None and (record.bot_policy, record.cookieless) == ("store_only", True)
    # A PUT is whole: omitted settings take their defaults.
    reset = keys.put(privacy, json={"ip_policy": "keep"}, headers=auth).get_json()
    assert (reset["bot_policy"], reset["cookieless"]) == ("keep", False)

    for field, value in (("bot_policy", "block"), ("cookieless", "yes")):
        bad = keys.put(privacy, json={"ip_policy": "keep", field: value}, headers=auth)
        assert (bad.status_code, bad.get_json()["field"]) == (400, field)


def test_a_destination_names_its_consent_categories(services: FakeServices, tenant: Tenant) -> None:
    workspace_id, auth = tenant
    client = function_client("destinations")
    base = f"/api/v1/workspaces/{workspace_id}/destinations"
    config = {"url": "https://93.184.216.34/streams", "secret": "s" * 32}
    webhook = {"name": "Ads", "type": "webhook", "config": config}
    body = {**webhook, "consent_categories": ["Advertising"]}
    created = client.post(base, json=body, headers=auth)
    assert created.status_code == 201, created.get_json()
    destination = created.get_json()
    assert destination["consent_categories"] == ["Advertising"]

    url = f"{base}/{destination['id']}"
    both = ["Advertising", "Analytics"]
    updated = client.put(url, json={"consent_categories": both}, headers=auth)
    assert updated.get_json()["consent_categories"] == both
    assert client.get(url, headers=auth).get_json()["consent_categories"] == both
    # Process reads them from the stored destination.
    stored = services.store.get(destination_path(workspace_id, destination["id"]))
    assert stored is not None and stored["consent_categories"] == both

    for categories, field in (
        (["Ads", "Ads"], "consent_categories"),
        ([""], "consent_categories.0"),
        (["x"] * 21, "consent_categories"),
        (None, "consent_categories"),
    ):
        bad = client.put(url, json={"consent_categories": categories}, headers=auth)
        assert bad.status_code == 400, (categories, bad.get_json())
        assert bad.get_json()["field"].replace("[0]", ".0") == field, bad.get_json()
