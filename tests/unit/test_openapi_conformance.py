"""Every route of the table against the OpenAPI document, judged by maintained validators.

For each operation a valid request (the document's own examples for ingest, the seeded
tenant's resources for the rest) goes through the real function entry points in process
(`GatewayApp`, over in-memory fakes), and openapi-core validates the request and the answer
(status, headers, body) against the document. openapi-spec-validator checks the document
itself against the OpenAPI 3.1 specification.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from openapi_core import OpenAPI
from openapi_core.configurations import Config
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_core.deserializing.media_types.util import plain_loads
from openapi_core.validation.request.exceptions import (
    InvalidRequestBody,
    SecurityValidationError,
)
from openapi_spec_validator import validate as validate_spec
from werkzeug.test import Client, EnvironBuilder, TestResponse

from shared.api import collect, console
from shared.api.routes import ROUTES, openapi_document
from shared.bootstrap import Services, set_services
from shared.http.routing import Route, find_route
from tests.fakes import FakeServices
from tests.reliability.harness import GatewayApp, Tenant, fake_services, seed_tenant

CHUNK = "ajs-destination.bundle.0123abcd.js"
ASSET = "index-AbCd1234.js"
# openapi-core reads text/plain and text/html as text; the scripts and the live stream are too.
CONFIG = Config(
    spec_validator_cls=None,  # the document is checked once, by its own test below
    extra_media_type_deserializers={
        "text/javascript": plain_loads,
        "text/event-stream": plain_loads,
    },
)


@dataclass
class Call:
    """One request, as werkzeug's test client takes it."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    json: Any = None

    def builder(self) -> EnvironBuilder:
        return EnvironBuilder(
            path=self.path,
            method=self.method,
            headers=list(self.headers.items()),
            query_string=self.query,
            json=self.json,
        )


@dataclass
class Bed:
    services: FakeServices
    client: Client
    tenant: Tenant
    openapi: OpenAPI
    document: dict[str, Any]

    def send(self, call: Call) -> tuple[TestResponse, WerkzeugOpenAPIRequest]:
        # The validator reads the request from a twin: the function consumed the original body.
        twin = call.builder().get_request()
        twin.get_data()
        return self.client.open(call.builder()), WerkzeugOpenAPIRequest(twin)

    def created(self, path: str, body: dict[str, Any]) -> str:
        """The id of a new resource, for the operations that remove one."""
        response = self.client.post(path, json=body, headers=self.tenant.auth)
        assert response.status_code == 201, response.get_data(as_text=True)
        return str(response.get_json()["id"])


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """One seeded bed for the module (seeding runs the whole pipeline), with built files of
    the browser SDKs and the console in a temporary directory."""
    built = tmp_path_factory.mktemp("dist")
    (built / "analytics-next" / "bundles").mkdir(parents=True)
    (built / "analytics-next" / "standalone.js").write_text('analytics("__WRITE_KEY__")')
    (built / "analytics-next" / "bundles" / CHUNK).write_text("chunk()")
    (built / "rudderstack").mkdir()
    (built / "rudderstack" / "analytics.min.js").write_text("rudderanalytics()")
    (built / "assets").mkdir()
    (built / "index.html").write_text("<!doctype html><title>Streams</title>")
    (built / "assets" / ASSET).write_text("console.log(1)")
    with pytest.MonkeyPatch.context() as patch:
        # As conftest's `_no_cloud`, for the module's life: a stray real client fails fast.
        patch.setenv("PUBSUB_EMULATOR_HOST", ".")
        patch.setenv("FIRESTORE_EMULATOR_HOST", ".")
        fake = fake_services()
        set_services(fake)
        patch.setattr(collect, "DIST", built)
        patch.setattr(console, "DIST", built)
        yield fake
    set_services(None)


@pytest.fixture(scope="module")
def bed(services: FakeServices) -> Bed:
    client = GatewayApp().client()
    document = openapi_document()
    openapi = OpenAPI.from_dict(document, config=CONFIG)
    return Bed(services, client, seed_tenant(services, client, "Alpha"), openapi, document)


# --- the cases --------------------------------------------------------------------------------

# An operation's case: the requests that exercise it (setting up what they need first).
Case = Callable[[Bed], list[Call]]


def _ws(bed: Bed, tail: str = "") -> str:
    return bed.tenant.base + tail


def _bearer(method: str, tail: str, json: Any = None, **query: str) -> Case:
    """A management call on the tenant's workspace; `{name}` in `tail` is the tenant's id."""

    def case(bed: Bed) -> list[Call]:
        path = _ws(bed, tail) if not tail.startswith("/v1/") else tail
        for name in ("source_id", "destination_id", "rule_id", "transform_id", "contract_id"):
            path = path.replace("{" + name + "}", getattr(bed.tenant, name))
        path = path.replace("{stream_source_id}", bed.tenant.stream_source_id)
        path = path.replace("{token_id}", bed.tenant.token_id)
        path = path.replace("{message_id}", bed.tenant.message_ids[0])
        return [Call(method, path, dict(bed.tenant.auth), query, json)]

    return case


def _deleted(collection: str, body: dict[str, Any]) -> Case:
    """Removes a resource made for the purpose, so the seeded ones stay for other cases."""

    def case(bed: Bed) -> list[Call]:
        path = collection if collection.startswith("/v1/") else _ws(bed, collection)
        made = bed.created(path, body)
        return [Call("DELETE", f"{path}/{made}", dict(bed.tenant.auth))]

    return case


def _revoked_token(bed: Bed) -> list[Call]:
    made = bed.created(_ws(bed, "/tokens"), {"name": "short-lived"})
    return [Call("DELETE", _ws(bed, f"/tokens/{made}"), dict(bed.tenant.auth))]


def _regulation(bed: Bed) -> list[Call]:
    made = bed.created(_ws(bed, "/regulations"), {"type": "suppress", "user_id": "gone"})
    return [Call("GET", _ws(bed, f"/regulations/{made}"), dict(bed.tenant.auth))]


def _webhook(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "type": "webhook",
        "config": {"url": "https://hooks.example.com/in", "secret": "s" * 16},
    }


def _examples(bed: Bed, route: Route) -> list[dict[str, Any]]:
    """The documented examples of an ingest operation's body (they must all be accepted)."""
    operation = bed.document["paths"][route.path][route.method.lower()]
    reference = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = bed.document["components"]["schemas"][reference.rsplit("/", 1)[1]]
    assert schema.get("examples"), f"{route.operation_id}: the body schema has no examples"
    return list(schema["examples"])


# How each ingest path's calls carry the write key: every alternative of the document's
# security, the body's writeKey (its empty alternative) among them.
KEY_IN = {"/v1/b": "body", "/beacon/v1/batch": "query", "/v1/t": "basic", "/v1/p": "basic"}


def _ingest(route: Route) -> Case:
    def case(bed: Bed) -> list[Call]:
        key, calls = bed.tenant.write_key, []
        for example in _examples(bed, route):
            call = Call("POST", route.path, json=copy.deepcopy(example))
            where = KEY_IN.get(route.path, "header")
            if where == "body":
                call.json["writeKey"] = key
            elif where == "query":
                call.query["writeKey"] = key
            elif where == "basic":
                call.headers["Authorization"] = (
                    "Basic " + base64.b64encode(f"{key}:".encode()).decode()
                )
            else:
                call.headers["X-Write-Key"] = key
            calls.append(call)
        return calls

    return case


def _client_metrics(bed: Bed) -> list[Call]:
    route = next(r for r in ROUTES if r.operation_id == "ingestClientMetrics")
    return [Call("POST", route.path, json=example) for example in _examples(bed, route)]


def _preflight(route: Route) -> Case:
    def case(bed: Bed) -> list[Call]:
        path = route.path.replace("{write_key}", bed.tenant.write_key).replace("{file}", CHUNK)
        headers = {"Origin": "https://shop.example.com", "Access-Control-Request-Method": "POST"}
        return [Call("OPTIONS", path, headers)]

    return case


def _public(path: str, **query: str) -> Case:
    def case(bed: Bed) -> list[Call]:
        return [Call("GET", path.replace("{write_key}", bed.tenant.write_key), query=query)]

    return case


def _source_config(bed: Bed) -> list[Call]:
    return [Call("GET", "/sourceConfig", query={"writeKey": bed.tenant.write_key, "v": "3"})]


def _webhook_source(bed: Bed) -> tuple[str, str]:
    """A new webhook source's id and write key."""
    made = bed.created(_ws(bed, "/event-keys"), {"name": "Hooks", "type": "webhook"})
    source = bed.client.get(_ws(bed, f"/event-keys/{made}"), headers=bed.tenant.auth)
    return made, str(source.get_json()["key"])


def _webhook_ingest(key_in: str) -> Case:
    def case(bed: Bed) -> list[Call]:
        _, key = _webhook_source(bed)
        route = next(r for r in ROUTES if r.operation_id == "ingestWebhook")
        calls = []
        for example in _examples(bed, route):
            if key_in == "path":
                calls.append(Call("POST", f"/v1/webhook/{key}", json=example))
            else:
                calls.append(Call("POST", "/v1/webhook", query={"writeKey": key}, json=example))
        return calls

    return case


def _webhook_settings(method: str, tail: str, json: Any = None) -> Case:
    def case(bed: Bed) -> list[Call]:
        made, _ = _webhook_source(bed)
        path = _ws(bed, f"/event-keys/{made}{tail}")
        return [Call(method, path, dict(bed.tenant.auth), json=json)]

    return case


CONTRACT = {
    "name": "Purchase Completed Schema",
    "event_type": "track",
    "event_name": "purchase_completed",
    "schema_definition": {"properties": {"order_id": {"type": "string", "required": True}}},
    "enforcement_mode": "warn",
}
TRANSFORMATION = {"name": "Enrich", "source_code": "function transform(event) { return event; }"}
CASES: dict[str, Case] = {
    # ingest: each path's documented examples; the SDK configuration and files
    **{r.operation_id: _ingest(r) for r in ROUTES if r.request_schema and r.auth == "write_key"},
    "ingestClientMetrics": _client_metrics,
    "getSdkSettings": _public("/v1/projects/{write_key}/settings"),
    "getRudderStackSourceConfig": _source_config,
    "getAnalyticsJs": _public("/analytics.js/v1/{write_key}/analytics.min.js"),
    "getAnalyticsJsChunk": _public(f"/analytics-next/bundles/{CHUNK}"),
    "getRudderStackJs": _public("/rudderstack/v3/analytics.min.js"),
    **{r.operation_id: _preflight(r) for r in ROUTES if r.method == "OPTIONS"},
    # event sources and tokens
    "listEventSources": _bearer("GET", "/event-keys"),
    "createEventSource": _bearer("POST", "/event-keys", {"name": "Web App"}),
    "getEventSource": _bearer("GET", "/event-keys/{source_id}"),
    "revokeEventSource": _deleted("/event-keys", {"name": "Old app"}),
    "sendTestEvent": _bearer("POST", "/event-keys/{source_id}/test-event"),
    # webhook sources: their ingest (the key in the path, or the query) and settings
    "ingestWebhook": _webhook_ingest("path"),
    "ingestWebhookQueryKey": _webhook_ingest("query"),
    "getEventSourceWebhook": _webhook_settings("GET", "/webhook"),
    "updateEventSourceWebhook": _webhook_settings(
        "PUT", "/webhook", {"signature": "github", "secret": "It's a Secret to Everybody"}
    ),
    "sendTestWebhook": _webhook_settings("POST", "/test-webhook", {"headers": {"X-A": "1"}}),
    "getEventSourcePrivacy": _bearer("GET", "/event-keys/{source_id}/privacy"),
    "updateEventSourcePrivacy": _bearer(
        "PUT", "/event-keys/{source_id}/privacy", {"ip_policy": "keep"}
    ),
    "getEventSourceOrigins": _bearer("GET", "/event-keys/{source_id}/origins"),
    "updateEventSourceOrigins": _bearer(
        "PUT", "/event-keys/{source_id}/origins", {"allowed_origins": []}
    ),
    "getEventSourceRateLimit": _bearer("GET", "/event-keys/{source_id}/rate-limit"),
    "updateEventSourceRateLimit": _bearer(
        "PUT", "/event-keys/{source_id}/rate-limit", {"rate_limit": None}
    ),
    "getMe": lambda bed: [Call("GET", "/api/v1/me", dict(bed.tenant.auth))],
    "listApiTokens": _bearer("GET", "/tokens"),
    "createApiToken": _bearer(
        "POST", "/tokens", {"name": "ci", "expires_at": "2099-01-01T00:00:00Z"}
    ),
    "getApiToken": _bearer("GET", "/tokens/{token_id}"),
    "revokeApiToken": _revoked_token,
    # forwarding rules, transformations, contracts, quarantine
    "listForwardingRules": _bearer("GET", "/event-forwarding-rules"),
    "createForwardingRule": lambda bed: _bearer(
        "POST",
        "/event-forwarding-rules",
        {"name": "All tracks", "destination_id": bed.tenant.destination_id, "event_types": []},
    )(bed),
    "getForwardingRule": _bearer("GET", "/event-forwarding-rules/{rule_id}"),
    "updateForwardingRule": _bearer(
        "PUT", "/event-forwarding-rules/{rule_id}", {"name": "Everything"}
    ),
    "deleteForwardingRule": lambda bed: _deleted(
        "/event-forwarding-rules", {"name": "Brief", "destination_id": bed.tenant.destination_id}
    )(bed),
    "listTransformations": _bearer("GET", "/event-transformations"),
    "createTransformation": _bearer("POST", "/event-transformations", TRANSFORMATION),
    "getTransformation": _bearer("GET", "/event-transformations/{transform_id}"),
    "updateTransformation": _bearer(
        "PUT", "/event-transformations/{transform_id}", {"description": "passes events on"}
    ),
    "deleteTransformation": _deleted("/event-transformations", TRANSFORMATION),
    "testTransformation": _bearer(
        "POST",
        "/event-transformations/{transform_id}/test",
        {"input": {"type": "track", "event": "Order Completed", "properties": {"total": 5}}},
    ),
    "listEventContracts": _bearer("GET", "/event-contracts"),
    "createEventContract": _bearer("POST", "/event-contracts", CONTRACT),
    "getEventContract": _bearer("GET", "/event-contracts/{contract_id}"),
    "updateEventContract": _bearer(
        "PUT", "/event-contracts/{contract_id}", {"description": "orders need an id"}
    ),
    "deleteEventContract": _deleted("/event-contracts", CONTRACT),
    "listContractViolations": _bearer(
        "GET", "/event-contracts/{contract_id}/violations", limit="10"
    ),
    "validateEventContractSchema": _bearer(
        "POST",
        "/event-contracts/validate-schema",
        {"schema_definition": CONTRACT["schema_definition"]},
    ),
    "proposeEventContractSchema": _bearer(
        "GET", "/event-contracts/proposal", event_type="track", event_name="purchase_completed"
    ),
    "countEventContractViolations": _bearer("GET", "/event-contracts/violation-counts", hours="24"),
    "listQuarantine": _bearer("GET", "/quarantine", limit="10"),
    "replayQuarantine": _bearer("POST", "/quarantine/replay", {"dry_run": True}),
    # destinations
    "listDestinations": _bearer("GET", "/destinations"),
    "createDestination": _bearer("POST", "/destinations", _webhook("Hook")),
    "getDestination": _bearer("GET", "/destinations/{destination_id}"),
    "updateDestination": _bearer("PUT", "/destinations/{destination_id}", {"name": "Renamed"}),
    "deleteDestination": _deleted("/destinations", _webhook("Unused")),
    "listDestinationTypes": _bearer("GET", "/destination-types"),
    "getDestinationType": _bearer("GET", "/destination-types/amplitude"),
    "testDestination": _bearer(
        "POST",
        "/destinations/{destination_id}/test",
        {"event": {"event": "Order Completed", "userId": "u1"}},
    ),
    "listDestinationDeliveries": _bearer(
        "GET", "/destinations/{destination_id}/deliveries", limit="10"
    ),
    # events: trace, dead letters, volume, live
    "getEventTrace": _bearer("GET", "/events/{message_id}/trace"),
    "listDeadLetters": _bearer(
        "GET", "/dead-letters", limit="10", **{"from": "2020-01-01T00:00:00Z"}
    ),
    "replayDeadLetters": _bearer("POST", "/dead-letters/replay", {"dry_run": True}),
    "getEventVolume": _bearer("GET", "/events/volume", hours="24"),
    "getConsentVolume": _bearer("GET", "/events/consent-volume", hours="24"),
    "streamLiveEvents": _bearer("GET", "/events/live", event_type="track"),
    # the stream API
    "sendEvent": lambda bed: _bearer(
        "POST",
        "/v1/streams/events",
        {"sourceId": bed.tenant.stream_source_id, "type": "signup", "userId": "user-1"},
    )(bed),
    "listStreamDestinations": _bearer("GET", "/v1/streams/destinations"),
    "createStreamDestination": _bearer("POST", "/v1/streams/destinations", _webhook("Stream")),
    "listStreamSources": _bearer("GET", "/v1/streams/sources"),
    "createStreamSource": _bearer("POST", "/v1/streams/sources", {"name": "App", "type": "server"}),
    "getStreamSource": _bearer("GET", "/v1/streams/sources/{stream_source_id}"),
    "deleteStreamSource": _deleted("/v1/streams/sources", {"name": "Gone", "type": "mobile"}),
    "debugStreamSource": _bearer("GET", "/v1/streams/sources/{source_id}/debug", limit="5"),
    "queryEvents": _bearer("GET", "/v1/streams/events", eventType="Order Completed", limit="5"),
    # governance
    "getPrivacySettings": _bearer("GET", "/privacy"),
    "updatePrivacySettings": _bearer(
        "PUT", "/privacy", {"pii_rules": [{"path": "context.traits.email", "action": "hash"}]}
    ),
    "listRegulations": _bearer("GET", "/regulations", type="suppress"),
    "createRegulation": _bearer("POST", "/regulations", {"type": "suppress", "user_id": "u-9"}),
    "getRegulation": _regulation,
    "listAuditLog": _bearer("GET", "/audit-log", limit="5"),
    # warehouse
    "getWarehouse": _bearer("GET", "/warehouse"),
    "updateWarehouseSettings": _bearer(
        "PUT", "/warehouse/settings", {"max_event_tables": 10, "retention_days": 90}
    ),
    "syncWarehouse": _bearer("POST", "/warehouse/sync"),
    # the document and the console
    "getOpenApi": _public("/openapi.json"),
    "getHealth": _public("/healthz"),
    "getConsole": _public("/console/"),
    "redirectConsole": _public("/console"),
    "getConsoleAsset": _public(f"/console/assets/{ASSET}"),
}


def test_every_route_has_a_case_and_every_case_a_route() -> None:
    operations = {route.operation_id for route in ROUTES}
    assert not operations - set(CASES), f"routes without a case: {operations - set(CASES)}"
    assert not set(CASES) - operations, f"cases of no route: {set(CASES) - operations}"


@pytest.mark.parametrize("route", ROUTES, ids=[route.operation_id for route in ROUTES])
def test_request_and_answer_conform_to_the_document(bed: Bed, route: Route) -> None:
    case = CASES.get(route.operation_id)
    assert case is not None, f"{route.operation_id} has no conformance case"
    calls = case(bed)
    assert calls
    for call in calls:
        found, _, _ = find_route(ROUTES, call.method, call.path)
        assert found is route, f"{call.method} {call.path} is not {route.operation_id}'s"
        response, request = bed.send(call)
        assert response.status_code == route.status, response.get_data(as_text=True)[:500]
        if route.request_schema is not None:
            # Every documented example is accepted whole.
            assert not response.get_json().get("rejected"), response.get_json()
        bed.openapi.validate_request(request)
        bed.openapi.validate_response(request, WerkzeugOpenAPIResponse(response))


def test_a_current_etag_answers_304_as_documented(bed: Bed) -> None:
    path = f"/analytics-next/bundles/{CHUNK}"
    etag = bed.client.get(path).headers["ETag"]
    response, request = bed.send(Call("GET", path, {"If-None-Match": etag}))
    assert response.status_code == 304
    bed.openapi.validate_response(request, WerkzeugOpenAPIResponse(response))


def test_errors_conform_to_the_document(bed: Bed) -> None:
    refused = [
        Call("POST", "/v1/track", {"X-Write-Key": bed.tenant.write_key}, json={"userId": "u"}),
        Call("GET", _ws(bed, "/destinations/nope"), dict(bed.tenant.auth)),
        Call("POST", _ws(bed, "/destinations"), dict(bed.tenant.auth), json={"name": 5}),
    ]
    for call, status in zip(refused, (400, 404, 400), strict=True):
        response, request = bed.send(call)
        assert response.status_code == status
        bed.openapi.validate_response(request, WerkzeugOpenAPIResponse(response))


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/track", {"userId": "u"}),  # no event
        ("/v1/track", {"event": "Signed Up"}),  # no identity
        ("/v1/track", {"event": "Signed Up", "user_id": ""}),  # an empty id is no id
        ("/v1/group", {"userId": "u"}),  # no groupId
        ("/v1/alias", {"anonymousId": "a", "previousId": "p"}),  # alias needs userId
        ("/v1/batch", {"batch": [{"event": "x", "userId": "u"}]}),  # an item without type
        ("/v1/events", {"type": "purchase", "userId": "u"}),  # not a call type
    ],
)
def test_the_document_refuses_what_ingest_refuses(bed: Bed, path: str, body: Any) -> None:
    call = Call("POST", path, {"X-Write-Key": bed.tenant.write_key}, json=body)
    _, request = bed.send(call)
    with pytest.raises(InvalidRequestBody):
        bed.openapi.validate_request(request)


def test_a_key_only_in_the_body_needs_the_empty_security_alternative(bed: Bed) -> None:
    call = Call("POST", "/v1/b", json={"batch": [], "writeKey": bed.tenant.write_key})
    response, request = bed.send(call)
    assert response.status_code == 200
    bed.openapi.validate_request(request)
    # Without the empty alternative, the validator would refuse what ingest accepts.
    strict = copy.deepcopy(bed.document)
    operation = strict["paths"]["/v1/b"]["post"]
    operation["security"] = [alternative for alternative in operation["security"] if alternative]
    with pytest.raises(SecurityValidationError):
        OpenAPI.from_dict(strict, config=CONFIG).validate_request(request)


def test_the_document_is_valid_openapi_3_1() -> None:
    validate_spec(openapi_document())


def test_every_answer_timestamp_is_a_date_time() -> None:
    schemas = openapi_document()["components"]["schemas"]
    stamps = {
        f"{name}.{field}": prop
        for name, schema in schemas.items()
        for field, prop in schema.get("properties", {}).items()
        if field.endswith(("_at", "At", "timestamp", "hour_bucket"))
        or (name == "TimeRange" and field in ("from", "to"))
        or field == "at"
    }
    assert stamps
    undated = [
        where
        for where, prop in stamps.items()
        if "date-time" not in str(prop) and not where.startswith(("EventInput", "ApiTokenCreate"))
    ]
    assert not undated, f"timestamps without format date-time: {undated}"
