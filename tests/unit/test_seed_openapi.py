"""The second seed's own OpenAPI document (the Boltic Streams API, normative for /v1/streams)
judges Streams' answers: a client generated from it must work for every operation it names.

tests/golden/seeds/boltic-streams-api.yaml is the document's OpenAPI part, verbatim from the
seed (checked against ../shared/seeds when that is beside the repository). Its one server is
Boltic's `https://api.boltic.io/v1`; Streams serves the same paths under `/v1`. Each operation
goes through the real function entry points in process (`GatewayApp` over in-memory fakes), and
openapi-core validates the request and the answer, errors included, against the seed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from werkzeug.test import Client, EnvironBuilder

from shared.bootstrap import Services, set_services
from tests.fakes import FakeServices
from tests.reliability.harness import GatewayApp, Tenant, fake_services, seed_tenant

ROOT = Path(__file__).resolve().parents[2]
COPY = ROOT / "tests" / "golden" / "seeds" / "boltic-streams-api.yaml"
ORIGINAL = ROOT.parent / "shared" / "seeds" / "boltic-streams-api.txt"
SEED = yaml.safe_load(COPY.read_text())


def seed_operations() -> list[tuple[str, str]]:
    return [
        (method.upper(), path)
        for path, item in SEED["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    ]


@pytest.fixture(scope="module")
def services() -> Iterator[Services]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PUBSUB_EMULATOR_HOST", ".")
        patch.setenv("FIRESTORE_EMULATOR_HOST", ".")
        fake = fake_services()
        set_services(fake)
        yield fake
    set_services(None)


@pytest.fixture(scope="module")
def client(services: FakeServices) -> Client:
    return GatewayApp().client()


@pytest.fixture(scope="module")
def tenant(services: FakeServices, client: Client) -> Tenant:
    return seed_tenant(services, client, "Alpha")


@pytest.fixture(scope="module")
def seed() -> OpenAPI:
    document = {**SEED, "servers": [{"url": "/v1"}]}
    return OpenAPI.from_dict(document)


def judged(
    seed: OpenAPI, client: Client, method: str, path: str, valid: bool, **request: Any
) -> tuple[int, Any]:
    """Send one request; the seed validates the answer, and the request when it is meant to be
    `valid` (a bad one is sent on purpose, to see its error answered as the seed says)."""
    builder = EnvironBuilder(path=path, method=method, **request)
    twin = builder.get_request()
    twin.get_data()  # the function consumes the original's body: the validator reads a twin
    response = client.open(EnvironBuilder(path=path, method=method, **request))
    openapi_request = WerkzeugOpenAPIRequest(twin)
    if valid:
        seed.validate_request(openapi_request)
    template = "/" + path.removeprefix("/v1/")
    documented = next(
        operation["responses"]
        for candidate, item in SEED["paths"].items()
        for verb, operation in item.items()
        if verb == method.lower() and _matches(candidate, template)
    )
    if str(response.status_code) in documented:
        seed.validate_response(openapi_request, WerkzeugOpenAPIResponse(response))
    else:
        # A status the seed leaves out (a 401 where it lists none): a client takes it as an
        # error, and it carries the seed's Error fields.
        assert response.status_code >= 400, response.status_code
        assert {"code", "message"} <= set(response.get_json()), response.get_json()
    return response.status_code, response.get_json(silent=True)


def _matches(template: str, path: str) -> bool:
    parts, wanted = template.strip("/").split("/"), path.strip("/").split("/")
    return len(parts) == len(wanted) and all(
        p.startswith("{") or p == w for p, w in zip(parts, wanted, strict=True)
    )


def calls(tenant: Tenant, client: Client) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Each seed operation's requests: a success and the documented errors."""
    auth = tenant.auth
    made = client.post(
        "/v1/streams/sources", json={"name": "Doomed", "type": "mobile"}, headers=auth
    ).get_json()
    source = tenant.stream_source_id
    return {
        ("GET", "/streams/sources"): [
            {"headers": auth, "expect": 200},
            {"headers": {}, "expect": 401},
        ],
        ("POST", "/streams/sources"): [
            {"headers": auth, "json": {"name": "Web", "type": "javascript"}, "expect": 201},
            {"headers": auth, "json": {"name": "Web"}, "expect": 400},
        ],
        ("GET", "/streams/sources/{sourceId}"): [
            {"path": source, "headers": auth, "expect": 200},
            {"path": "0b5c5d8e-0000-4000-8000-000000000000", "headers": auth, "expect": 404},
        ],
        ("DELETE", "/streams/sources/{sourceId}"): [
            {"path": made["id"], "headers": auth, "expect": 204},
            {"path": made["id"], "headers": auth, "expect": 404},
        ],
        ("GET", "/streams/sources/{sourceId}/debug"): [
            {"path": source, "headers": auth, "query_string": {"limit": "5"}, "expect": 200},
        ],
        ("POST", "/streams/events"): [
            # EventInput requires sourceId and type only.
            {"headers": auth, "json": {"sourceId": source, "type": "signup"}, "expect": 202},
            {
                "headers": auth,
                "json": {
                    "sourceId": source,
                    "type": "purchase",
                    "properties": {"total": 5},
                    "userId": "u1",
                    "anonymousId": "a1",
                    "timestamp": "2026-12-01T10:00:00Z",
                    "context": {"locale": "de-DE"},
                },
                "expect": 202,
            },
            {"headers": auth, "json": {"type": "signup"}, "expect": 400},
        ],
        ("GET", "/streams/events"): [
            {"headers": auth, "expect": 200},
            {
                "headers": auth,
                "query_string": {"sourceId": source, "eventType": "purchase", "limit": "10"},
                "expect": 200,
            },
        ],
        ("GET", "/streams/destinations"): [{"headers": auth, "expect": 200}],
        ("POST", "/streams/destinations"): [
            {
                "headers": auth,
                "json": {
                    "name": "Hook",
                    "type": "webhook",
                    "config": {"url": "https://hooks.example.com/in", "secret": "s" * 16},
                },
                "expect": 201,
            },
            {"headers": auth, "json": {"name": "Hook", "type": "webhook"}, "expect": 400},
        ],
    }


def test_every_seed_operation_is_answered_as_the_seed_documents(
    seed: OpenAPI, client: Client, tenant: Tenant
) -> None:
    cases = calls(tenant, client)
    assert sorted(cases) == sorted(seed_operations()), "every seed operation needs a case"
    deviations = []
    for (method, template), requests in cases.items():
        for request in requests:
            request = dict(request)
            expect = request.pop("expect")
            tail = request.pop("path", None)
            path = "/v1" + template.replace("{sourceId}", tail or "")
            try:
                status, body = judged(seed, client, method, path, expect < 400, **request)
            except Exception as exc:  # every deviation at once, not only the first
                deviations.append(f"{method} {path}: {exc!r} {getattr(exc, '__cause__', None)!r}")
                continue
            if status != expect:
                deviations.append(f"{method} {path}: {status}, expected {expect}: {body}")
    assert not deviations, "\n".join(deviations)


def test_the_vendored_seed_is_the_seed() -> None:
    if not ORIGINAL.exists():
        pytest.skip("../shared/seeds is not beside the repository")
    original = ORIGINAL.read_text()
    assert COPY.read_text().strip() == original[original.index("openapi: 3.0.3") :].strip()
