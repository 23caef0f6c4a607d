"""Destination connectors: golden payloads per type, config validation, write-only secrets.

Golden cases live in tests/golden/destinations/<type>/<case>.json: {config, event (canonical),
now, expected}; expected is the one request the event alone makes: {method, url, headers, body}
for HTTP, {topic, attributes, data} for Pub/Sub, {bucket, name, ...} for a file; a list of them
when it makes several; {"skipped": true}, or {"rejected": reason} when the connector refuses the
event (no identity where it needs one). Adding a case means adding a file; a type's first case
also gives the valid config the checks below use.
`UPDATE_GOLDEN=1 pytest tests/unit/test_destinations.py` rewrites every `expected` (review it).
"""

from __future__ import annotations

import copy
import gzip
import json
import os
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest

from shared.destinations import (
    CONNECTORS,
    merge_config,
    public_config,
    secret_fields,
    stored_config,
    validate_config,
)
from shared.destinations.base import (
    EventRejected,
    Outbound,
    OutboundFile,
    OutboundMessage,
    OutboundRequest,
    build_requests,
    json_bytes,
)
from shared.destinations.ga4 import sanitise_name
from shared.destinations.webhook import sign, verify_signature
from shared.domain.errors import InvalidRequest

ROOT = Path(__file__).resolve().parents[2]
GOLDEN_DIR = ROOT / "tests" / "golden" / "destinations"
GOLDEN_FILES = sorted(GOLDEN_DIR.glob("*/*.json"))
SCHEMA = json.loads((ROOT / "shared" / "schemas" / "event.schema.json").read_text())

VALID = {
    "webhook": {"url": "https://hooks.example.com/in", "secret": "whsec_0123456789abcdef"},
    "pubsub": {"topic": "projects/customer-proj/topics/events"},
    "amplitude": {"api_key": "amp-key-secret-1"},
    "mixpanel": {"project_token": "mp-token-secret-1", "api_secret": "mp-api-secret-1"},
    "ga4": {"measurement_id": "G-ABC123", "api_secret": "ga-secret-value-1"},
}
# Every other type: the config of its first golden case.
for _path in GOLDEN_FILES:
    VALID.setdefault(_path.parent.name, json.loads(_path.read_text())["config"])
SECRET_VALUES = sorted(
    {
        value
        for type_, config in VALID.items()
        for name, value in config.items()
        if name in secret_fields(type_) and isinstance(value, str)
    }
)


def build(type_: str, event: Any, config: Any, now: datetime) -> Outbound | None:
    """The one request an event alone makes (None when skipped); fails if it makes several."""
    built = build_requests(CONNECTORS[type_], event, config, now=now)
    assert len(built) <= 1, built
    return built[0] if built else None


def render(built: list[Outbound]) -> Any:
    """The outcome in the golden files' shape."""
    if not built:
        return {"skipped": True}
    if len(built) > 1:
        return [render([one]) for one in built]
    [outbound] = built
    if isinstance(outbound, OutboundFile):
        gzipped = outbound.data[:2] == b"\x1f\x8b"
        data = gzip.decompress(outbound.data) if gzipped else outbound.data
        return {
            "bucket": outbound.bucket,
            "name": outbound.name,
            "content_type": outbound.content_type,
            "content_encoding": outbound.content_encoding,
            "manifest": outbound.manifest,
            "summary": outbound.summary,
            "lines": [json.loads(line) for line in data.decode().splitlines()],
        }
    if isinstance(outbound, OutboundMessage):
        return {
            "topic": outbound.topic,
            "attributes": outbound.attributes,
            "data": json.loads(outbound.data),
        }
    return {
        "method": outbound.method,
        "url": outbound.url,
        "headers": outbound.headers,
        "body": json.loads(outbound.body),
    }


def run_case(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    case = json.loads(path.read_text())
    type_ = path.parent.name
    config = validate_config(type_, case["config"])
    event_before = copy.deepcopy(case["event"])
    try:
        built = build_requests(
            CONNECTORS[type_], case["event"], config, now=datetime.fromisoformat(case["now"])
        )
    except EventRejected as rejected:
        return case, {"rejected": str(rejected)}
    assert case["event"] == event_before, "build must not mutate the event"
    return case, render(built)


def test_golden_cases_cover_every_type() -> None:
    counts = Counter(path.parent.name for path in GOLDEN_FILES)
    assert set(counts) == set(CONNECTORS)
    assert all(count >= 3 for count in counts.values()), counts


@pytest.mark.parametrize(
    "path", GOLDEN_FILES, ids=[f"{p.parent.name}/{p.stem}" for p in GOLDEN_FILES]
)
def test_golden(path: Path) -> None:
    case, actual = run_case(path)
    jsonschema.validate(case["event"], SCHEMA)  # goldens use real canonical events
    if os.environ.get("UPDATE_GOLDEN") == "1":
        case["expected"] = actual
        path.write_text(json.dumps(case, indent=2, ensure_ascii=False) + "\n")
        return
    assert actual == case["expected"]


@pytest.mark.parametrize("type_", sorted(CONNECTORS))
def test_every_event_type_builds_or_skips(type_: str) -> None:
    config = validate_config(type_, VALID[type_])
    for path in GOLDEN_FILES:
        event = json.loads(path.read_text())["event"]
        try:
            built = build_requests(CONNECTORS[type_], event, config, now=datetime.now(UTC))
        except EventRejected:
            # Refused only for want of an identity (or of what the type needs, e.g. an email).
            assert type_ not in ("webhook", "pubsub", "gcs", "slack")
            continue
        assert all(isinstance(b, OutboundRequest | OutboundMessage | OutboundFile) for b in built)
        assert set(CONNECTORS[type_].about.event_types) >= ({event["type"]} if built else set()), (
            "a type answers only the event types its catalogue lists"
        )


def test_webhook_golden_signatures_verify() -> None:
    for path in sorted((GOLDEN_DIR / "webhook").glob("*.json")):
        case = json.loads(path.read_text())
        request = build(
            "webhook",
            case["event"],
            validate_config("webhook", case["config"]),
            datetime.fromisoformat(case["now"]),
        )
        assert isinstance(request, OutboundRequest)
        headers = request.headers
        assert verify_signature(
            case["config"]["secret"],
            headers["X-Streams-Timestamp"],
            request.body,
            headers["X-Streams-Signature"],
            now=datetime.fromisoformat(case["now"]),
        )
        assert json.loads(request.body) == case["event"]


# ---- webhook signatures


def test_verify_signature_rejects_tampering_staleness_and_wrong_secret() -> None:
    secret, body, now = "s" * 32, b'{"a":1}', datetime(2024, 1, 15, 15, 0, tzinfo=UTC)
    ts = int(now.timestamp())
    header = sign(secret, ts, body)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert verify_signature(secret, ts, body, header, now=now)
    assert verify_signature(secret, str(ts), body, f"sha256=00, {header}", now=now)
    assert not verify_signature(secret, ts, b'{"a":2}', header, now=now)
    assert not verify_signature("t" * 32, ts, body, header, now=now)
    assert not verify_signature(secret, ts + 1, body, header, now=now)
    assert not verify_signature(secret, ts, body, header, now=now.replace(minute=6))
    assert verify_signature(
        secret, ts, body, header, now=now.replace(hour=20), tolerance_seconds=None
    )
    assert not verify_signature(secret, "nope", body, header, now=now)


# ---- config validation


def field_of(type_: str, raw: Any) -> str | None:
    with pytest.raises(InvalidRequest) as caught:
        validate_config(type_, raw)
    return caught.value.field


def test_unknown_type() -> None:
    assert field_of("segment-v2", {}) == "type"


@pytest.mark.parametrize("type_", sorted(CONNECTORS))
def test_config_must_be_an_object(type_: str) -> None:
    assert field_of(type_, ["x"]) == "config"


@pytest.mark.parametrize(
    ("type_", "missing"),
    [
        ("webhook", "url"),
        ("webhook", "secret"),
        ("pubsub", "topic"),
        ("amplitude", "api_key"),
        ("mixpanel", "project_token"),
        ("ga4", "measurement_id"),
        ("ga4", "api_secret"),
    ],
)
def test_missing_required_field(type_: str, missing: str) -> None:
    raw = {k: v for k, v in VALID[type_].items() if k != missing}
    with pytest.raises(InvalidRequest, match="is required") as caught:
        validate_config(type_, raw)
    assert caught.value.field == f"config.{missing}"


@pytest.mark.parametrize(
    ("type_", "changes", "field"),
    [
        ("webhook", {"url": "ftp://hooks.example.com/"}, "url"),
        ("webhook", {"url": "file:///etc/passwd"}, "url"),
        ("webhook", {"url": "https://user:pw@hooks.example.com/"}, "url"),
        ("webhook", {"url": "https://hooks.example.com/a b"}, "url"),
        ("webhook", {"url": "https:///nohost"}, "url"),
        ("webhook", {"secret": "too-short"}, "secret"),
        ("webhook", {"method": "GET"}, "method"),
        ("webhook", {"timeout_seconds": 0}, "timeout_seconds"),
        ("webhook", {"timeout_seconds": 31}, "timeout_seconds"),
        ("webhook", {"signing": "v2"}, "signing"),
        ("pubsub", {"topic": "events"}, "topic"),
        ("pubsub", {"topic": "projects/p/topics/events"}, "topic"),
        ("pubsub", {"topic": "projects/customer-proj/topics/goog-events"}, "topic"),
        ("pubsub", {"topic": "projects/customer-proj/subscriptions/events"}, "topic"),
        ("amplitude", {"region": "apac"}, "region"),
        ("amplitude", {"endpoint": "gopher://x"}, "endpoint"),
        ("amplitude", {"api_key": ""}, "api_key"),
        ("mixpanel", {"region": "au"}, "region"),
        ("mixpanel", {"endpoint": "not a url"}, "endpoint"),
        ("ga4", {"measurement_id": "UA-1234-1"}, "measurement_id"),
        ("ga4", {"endpoint": "https://x.example.com/mp/collect?api_secret=1"}, "endpoint"),
    ],
)
def test_invalid_value_names_its_field(type_: str, changes: dict[str, Any], field: str) -> None:
    assert field_of(type_, {**VALID[type_], **changes}) == f"config.{field}"


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Evil": "a\r\nX-Injected: 1"},
        {"X-Evil": "a\nb"},
        {"X-Evil": "a\x00b"},
        {"X-A": "\U0007f606"},  # B16: deliver could not encode it, and crashed on every attempt
        {"X-A": "caf\u00e9"},
        {"Bad Name": "x"},
        {"X-Evil\r\nHost": "x"},
        {"Content-Type": "text/plain"},
        {"content-length": "0"},
        {"X-Streams-Signature": "sha256=forged"},
        {"x-streams-timestamp": "0"},
        {"Host": "internal"},
        {"Transfer-Encoding": "chunked"},
        {f"X-H{i}": "v" for i in range(21)},
        {"X-Long": "v" * 5000},
        {"X-A": 1},
    ],
)
def test_webhook_header_injection_refused(headers: dict[str, Any]) -> None:
    # A header's own value at fault is named by its path: config.headers.X-A.
    field = field_of("webhook", {**VALID["webhook"], "headers": headers})
    assert field is not None and field.startswith("config.headers")


def test_webhook_custom_headers_are_sent_and_cannot_override_ours() -> None:
    raw = {**VALID["webhook"], "headers": {"Authorization": "Bearer t0ken-value", "X-Env": "prod"}}
    config = validate_config("webhook", raw)
    event = json.loads((GOLDEN_DIR / "webhook" / "track.json").read_text())["event"]
    request = build("webhook", event, config, datetime.now(UTC))
    assert isinstance(request, OutboundRequest)
    assert request.headers["Authorization"] == "Bearer t0ken-value"
    assert request.headers["Content-Type"] == "application/json"
    assert "Bearer t0ken-value" in request.redact


# ---- secrets are write-only


@pytest.mark.parametrize("type_", sorted(CONNECTORS))
def test_secrets_never_shown(type_: str) -> None:
    raw: dict[str, Any] = dict(VALID[type_])
    if type_ == "webhook":
        raw["headers"] = {"Authorization": "Bearer hidden-header-value"}
    config = validate_config(type_, raw)
    shown = json.dumps(public_config(type_, config)) + repr(config) + str(config)
    shown += json.dumps(public_config(type_, stored_config(config)))
    for secret in [*SECRET_VALUES, "hidden-header-value"]:
        assert secret not in shown
    assert not secret_fields(type_) & set(public_config(type_, config))


def test_secret_fields() -> None:
    assert secret_fields("webhook") == {"secret", "headers"}
    assert secret_fields("pubsub") == frozenset()
    assert secret_fields("amplitude") == {"api_key", "secret_key"}
    assert secret_fields("mixpanel") == {"project_token", "api_secret", "gdpr_token"}
    assert secret_fields("ga4") == {"api_secret"}


def test_errors_never_echo_a_secret() -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_config("webhook", {**VALID["webhook"], "secret": "short-Secret"})
    assert "short-Secret" not in caught.value.message
    with pytest.raises(InvalidRequest) as caught:
        validate_config("webhook", {**VALID["webhook"], "headers": {"X-A": "tok\n3n"}})
    assert "3n" not in caught.value.message


@pytest.mark.parametrize("type_", sorted(CONNECTORS))
def test_stored_config_round_trips_through_json(type_: str) -> None:
    config = validate_config(type_, VALID[type_])
    stored = json.loads(json.dumps(stored_config(config)))
    for name in secret_fields(type_) & set(VALID[type_]):
        assert stored[name] == VALID[type_][name]
    assert validate_config(type_, stored) == config


def test_outbound_request_repr_hides_query_and_headers() -> None:
    config = validate_config("ga4", VALID["ga4"])
    event = json.loads((GOLDEN_DIR / "ga4" / "page.json").read_text())["event"]
    request = build("ga4", event, config, datetime.now(UTC))
    assert "ga-secret-value-1" in request.url  # type: ignore[union-attr]
    assert "ga-secret-value-1" not in repr(request)
    assert repr(request) == "OutboundRequest(POST https://www.google-analytics.com/mp/collect)"


# ---- merging an update with the stored config


def test_merge_keeps_omitted_secrets() -> None:
    stored = stored_config(validate_config("amplitude", VALID["amplitude"]))
    merged = merge_config("amplitude", stored, {"region": "eu"})
    assert merged.api_key.get_secret_value() == "amp-key-secret-1"  # type: ignore[attr-defined]
    assert merged.region == "eu"  # type: ignore[attr-defined]


def test_merge_replaces_given_secrets_and_non_secret_fields() -> None:
    stored = stored_config(validate_config("mixpanel", {**VALID["mixpanel"], "group_key": "co"}))
    merged = merge_config("mixpanel", stored, {"project_token": "new-token"})
    assert merged.project_token.get_secret_value() == "new-token"  # type: ignore[attr-defined]
    assert merged.api_secret.get_secret_value() == "mp-api-secret-1"  # type: ignore[attr-defined]
    assert merged.group_key is None  # type: ignore[attr-defined]  # the update is the whole config


def test_merge_null_removes_an_optional_secret() -> None:
    stored = stored_config(validate_config("mixpanel", VALID["mixpanel"]))
    merged = merge_config("mixpanel", stored, {"api_secret": None})
    assert merged.api_secret is None  # type: ignore[attr-defined]


def test_merge_requires_sent_secrets_again_when_the_address_changes() -> None:
    stored = stored_config(validate_config("ga4", VALID["ga4"]))
    new = {"measurement_id": "G-ABC123", "endpoint": "https://collector.attacker.example/"}
    with pytest.raises(InvalidRequest) as caught:
        merge_config("ga4", stored, new)
    assert caught.value.field == "config.api_secret"
    merged = merge_config("ga4", stored, {**new, "api_secret": "re-entered"})
    assert merged.endpoint == new["endpoint"]  # type: ignore[attr-defined]


def test_merge_webhook_url_change_keeps_hmac_key_but_not_headers() -> None:
    raw = {**VALID["webhook"], "headers": {"Authorization": "Bearer abc-123"}}
    stored = stored_config(validate_config("webhook", raw))
    same_url = merge_config("webhook", stored, {"url": raw["url"], "method": "PUT"})
    assert same_url.headers["Authorization"].get_secret_value() == "Bearer abc-123"  # type: ignore[attr-defined]
    with pytest.raises(InvalidRequest) as caught:
        merge_config("webhook", stored, {"url": "https://other.example.com/"})
    assert caught.value.field == "config.headers"
    moved = merge_config("webhook", stored, {"url": "https://other.example.com/", "headers": {}})
    assert moved.secret.get_secret_value() == VALID["webhook"]["secret"]  # type: ignore[attr-defined]


def test_merge_validates_the_result() -> None:
    stored = stored_config(validate_config("webhook", VALID["webhook"]))
    with pytest.raises(InvalidRequest) as caught:
        merge_config("webhook", stored, {"url": "https://hooks.example.com/in", "method": "GET"})
    assert caught.value.field == "config.method"


# ---- GA4 naming rules


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Order Completed", "order_completed"),
        ("  video--played!! ", "video_played"),
        ("123 go", "go"),
        ("___", "event"),
        ("session_start", "custom_session_start"),
        ("firebase_thing", "custom_firebase_thing"),
        ("ga_x", "custom_ga_x"),
        ("a" * 60, "a" * 40),
        ("Ünïcode Név", "n_code_n_v"),
    ],
)
def test_ga4_sanitise_name(raw: str, expected: str) -> None:
    assert sanitise_name(raw) == expected
    assert len(sanitise_name(raw)) <= 40


def test_outbound_request_repr_hides_a_path_holding_a_secret() -> None:
    config = validate_config("slack", VALID["slack"])
    [first, *_] = sorted((GOLDEN_DIR / "slack").glob("*.json"))
    event = json.loads(first.read_text())
    request = build("slack", event["event"], config, datetime.now(UTC))
    assert isinstance(request, OutboundRequest)
    path = urlsplit(request.url).path
    assert path not in repr(request) and repr(request).endswith("/[redacted])")


def test_text_utf8_cannot_encode_is_sent_escaped() -> None:
    assert json_bytes({"a": "é"}) == '{"a":"é"}'.encode()
    assert json_bytes({"a": "x\ud800"}) == b'{"a":"x\\ud800"}'
