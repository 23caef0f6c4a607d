"""The pure privacy rules: IP truncation and policies, PII hashing and dropping, suppression."""

from __future__ import annotations

import copy
import hashlib
import hmac
from typing import Any

import pytest

from shared.domain.event import CanonicalEvent
from shared.domain.privacy import (
    MAX_PII_RULES,
    PiiRule,
    Suppressions,
    apply_ip_policy,
    check_pii_rules,
    hash_value,
    redact,
    truncate_ip,
)

SECRET = bytes(range(32))
OTHER_SECRET = bytes(range(1, 33))


@pytest.mark.parametrize(
    ("raw", "truncated"),
    [
        ("203.0.113.77", "203.0.113.0"),
        ("10.1.2.3", "10.1.2.0"),
        (" 198.51.100.255 ", "198.51.100.0"),
        ("2001:db8:85a3:8d3:1319:8a2e:370:7348", "2001:db8:85a3::"),
        ("2001:0db8:0001:ffff:ffff:ffff:ffff:ffff", "2001:db8:1::"),
        ("fe80::1%eth0", "fe80::"),
        ("::1", "::"),
        ("::ffff:203.0.113.77", "::ffff:203.0.113.0"),
    ],
)
def test_truncate_zeroes_the_last_octet_or_the_last_80_bits(raw: str, truncated: str) -> None:
    assert truncate_ip(raw) == truncated


@pytest.mark.parametrize("raw", ["", "not-an-ip", "300.1.1.1", "1.2.3", "example.com"])
def test_truncate_refuses_what_is_not_an_address(raw: str) -> None:
    assert truncate_ip(raw) is None


def event(**context: Any) -> CanonicalEvent:
    return {"messageId": "m-1", "type": "track", "context": {"library": {"name": "x"}, **context}}


def test_keep_returns_the_event_itself() -> None:
    original = event(ip="203.0.113.77")
    assert apply_ip_policy(original, "keep") is original


def test_truncate_and_remove_never_touch_the_input() -> None:
    original = event(ip="203.0.113.77")
    snapshot = copy.deepcopy(original)
    truncated = apply_ip_policy(original, "truncate")
    removed = apply_ip_policy(original, "remove")
    assert truncated["context"] == {"library": {"name": "x"}, "ip": "203.0.113.0"}
    assert removed["context"] == {"library": {"name": "x"}}
    assert original == snapshot


@pytest.mark.parametrize("ip", ["garbage", 12345, None])
def test_truncate_removes_a_value_it_cannot_truncate(ip: Any) -> None:
    assert "ip" not in apply_ip_policy(event(ip=ip), "truncate")["context"]


@pytest.mark.parametrize("policy", ["truncate", "remove"])
def test_an_event_without_an_ip_is_unchanged(policy: Any) -> None:
    original = event()
    assert apply_ip_policy(original, policy) is original
    # `context` null: not what ingest writes, but the policy must leave such an event alone.
    no_context: Any = {"messageId": "m", "context": None}
    assert apply_ip_policy(no_context, policy) is no_context


def test_hash_is_hmac_sha256_of_the_value_with_the_workspace_secret() -> None:
    expected = hmac.new(SECRET, b"ada@example.com", hashlib.sha256).hexdigest()
    assert hash_value("ada@example.com", SECRET) == expected
    assert hash_value("ada@example.com", SECRET) == hash_value("ada@example.com", SECRET)
    assert hash_value("ada@example.com", OTHER_SECRET) != expected
    # Not a bare SHA-256: a dictionary of known emails cannot reverse it without the secret.
    assert expected != hashlib.sha256(b"ada@example.com").hexdigest()
    # Non-strings hash as their JSON text, so 123 and "123" are the same value.
    assert hash_value(123, SECRET) == hash_value("123", SECRET)
    assert hash_value({"b": 1, "a": 2}, SECRET) == hash_value({"a": 2, "b": 1}, SECRET)


def pii_event() -> CanonicalEvent:
    return {
        "messageId": "m-1",
        "userId": "u-1",
        "properties": {
            "phone": "+44 20 7946 0000",
            "total": 5,
            "products": [{"sku": "a", "email": "x@example.com"}, {"sku": "b"}],
        },
        "traits": {"email": "ada@example.com", "plan": "pro", "nickname": None},
        "context": {"traits": {"email": "ada@example.com"}, "ip": "203.0.113.7"},
    }


def test_redact_hashes_and_drops_along_paths_without_touching_the_input() -> None:
    original = pii_event()
    snapshot = copy.deepcopy(original)
    rules = [
        PiiRule("traits.email", "hash"),
        PiiRule("context.traits.email", "hash"),
        PiiRule("properties.phone", "drop"),
        PiiRule("properties.products.email", "hash"),
        PiiRule("traits.nickname", "hash"),
        PiiRule("properties.missing.deeper", "drop"),
    ]
    redacted = redact(original, rules, SECRET)
    digest = hash_value("ada@example.com", SECRET)
    assert redacted["traits"] == {"email": digest, "plan": "pro", "nickname": None}
    assert redacted["context"]["traits"] == {"email": digest}
    assert "phone" not in redacted["properties"] and redacted["properties"]["total"] == 5
    assert redacted["properties"]["products"] == [
        {"sku": "a", "email": hash_value("x@example.com", SECRET)},
        {"sku": "b"},
    ]
    assert redacted["userId"] == "u-1" and redacted["context"]["ip"] == "203.0.113.7"
    assert original == snapshot


def test_rules_that_match_nothing_return_the_event_itself() -> None:
    original = pii_event()
    assert redact(original, [PiiRule("traits.phone", "hash")], SECRET) is original
    assert redact(original, [], SECRET) is original


def test_a_hashed_list_hashes_each_element() -> None:
    original: CanonicalEvent = {"traits": {"emails": ["a@example.com", None]}}
    redacted = redact(original, [PiiRule("traits.emails", "hash")], SECRET)
    assert redacted["traits"]["emails"] == [hash_value("a@example.com", SECRET), None]


@pytest.mark.parametrize(
    "path",
    [
        "email",
        "userId",
        "anonymousId",
        "properties",
        "properties.",
        "properties..email",
        "properties.a b",
        "timestamp.x",
        "properties." + ".".join("k" * 10),
    ],
)
def test_a_bad_path_is_refused_with_its_index(path: str) -> None:
    with pytest.raises(ValueError, match=r"^pii_rules\[1\]\.path"):
        check_pii_rules([PiiRule("traits.email", "hash"), PiiRule(path, "hash")])


def test_duplicates_and_too_many_rules_are_refused() -> None:
    with pytest.raises(ValueError, match="listed twice"):
        check_pii_rules([PiiRule("traits.email", "hash"), PiiRule("traits.email", "drop")])
    too_many = [PiiRule(f"properties.p{i}", "drop") for i in range(MAX_PII_RULES + 1)]
    with pytest.raises(ValueError, match="at most"):
        check_pii_rules(too_many)
    assert check_pii_rules(too_many[:MAX_PII_RULES]) == too_many[:MAX_PII_RULES]


def test_suppressions_match_by_user_id_or_anonymous_id() -> None:
    suppressions = Suppressions(frozenset({"u-1"}), frozenset({"anon-9"}))
    assert suppressions.matches({"userId": "u-1", "anonymousId": None})
    assert suppressions.matches({"userId": None, "anonymousId": "anon-9"})
    assert suppressions.matches({"userId": "u-2", "anonymousId": "anon-9"})
    assert not suppressions.matches({"userId": "u-2", "anonymousId": "u-1"})
    assert not suppressions.matches({"userId": None, "anonymousId": None})
    assert not Suppressions()


def test_a_replayed_event_keeps_its_hashes_and_gets_new_rules() -> None:
    once = redact(pii_event(), [PiiRule("traits.email", "hash")], SECRET)
    rules = [PiiRule("traits.email", "hash"), PiiRule("properties.phone", "hash")]
    again = redact(once, rules, SECRET, keep_hashes=True)
    assert again["traits"]["email"] == hash_value("ada@example.com", SECRET)
    assert again["properties"]["phone"] == hash_value("+44 20 7946 0000", SECRET)
    # Without keep_hashes (a fresh event), a hash-looking value is hashed like any other.
    assert redact(once, rules, SECRET)["traits"]["email"] != once["traits"]["email"]
