"""Privacy rules applied to canonical events (pure): IP policies, PII hashing and dropping, and
matching a suppressed user. docs/PRIVACY.md describes them and where the pipeline applies them.

Like normalisation, these functions never mutate their input: the objects they change are copied
along the changed paths, everything else is shared with the input.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from shared.domain.event import CanonicalEvent

IpPolicy = Literal["keep", "truncate", "remove"]
IP_POLICIES: tuple[IpPolicy, ...] = ("keep", "truncate", "remove")
PiiAction = Literal["hash", "drop"]

# Bits kept by `truncate`: IPv4 /24 (the last octet zeroed), IPv6 /48 (the last 80 bits zeroed).
IPV4_PREFIX = 24
IPV6_PREFIX = 48

# The canonical event's objects a PII rule may reach into. Ids (userId, anonymousId, ...) are
# not redactable: deduplication, regulations and every destination key on them.
PII_ROOTS = ("properties", "traits", "context", "integrations", "extras")
MAX_PII_RULES = 100
MAX_PATH_DEPTH = 10
# A path: a root, then 1-9 keys separated by dots (a key holds no dot and no whitespace).
PII_PATH = re.compile(
    rf"^(?:{'|'.join(PII_ROOTS)})(?:\.[^.\s]{{1,100}}){{1,{MAX_PATH_DEPTH - 1}}}$"
)


def ip_address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address a value holds (surrounding spaces ignored), or None. An IPv6 zone
    (`%eth0`) names an interface of the sender's own host: it is never part of the address."""
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        return ipaddress.IPv6Address(address.packed)
    return address


def truncate_ip(value: str) -> str | None:
    """The address with its host part zeroed (/24 or /48); None when it is not an IP address.

    An IPv4-mapped IPv6 address (`::ffff:1.2.3.4`) is truncated as the IPv4 address it holds.
    """
    address = ip_address(value)
    if address is None:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            mapped = ipaddress.ip_network(f"{address.ipv4_mapped}/{IPV4_PREFIX}", strict=False)
            return f"::ffff:{mapped.network_address}"
        return str(ipaddress.ip_network(f"{address}/{IPV6_PREFIX}", strict=False).network_address)
    return str(ipaddress.ip_network(f"{address}/{IPV4_PREFIX}", strict=False).network_address)


def apply_ip_policy(event: CanonicalEvent, policy: IpPolicy) -> CanonicalEvent:
    """The event with `context.ip` kept, truncated or removed.

    `truncate` removes a value that is not an IP address: what cannot be truncated is not kept.
    """
    if policy == "keep":
        return event
    context = event.get("context")
    if not isinstance(context, dict) or "ip" not in context:
        return event
    new_context = dict(context)
    ip = new_context.pop("ip")
    if policy == "truncate" and isinstance(ip, str):
        truncated = truncate_ip(ip)
        if truncated is not None:
            new_context["ip"] = truncated
    return {**event, "context": new_context}


@dataclass(frozen=True)
class PiiRule:
    """One field path of the canonical event and what to do with its value."""

    path: str
    action: PiiAction

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self.path.split("."))


def check_pii_rules(rules: Iterable[PiiRule]) -> list[PiiRule]:
    """The rules, validated; ValueError naming the first bad rule (`pii_rules[i]...`)."""
    checked = list(rules)
    if len(checked) > MAX_PII_RULES:
        raise ValueError(f"pii_rules: at most {MAX_PII_RULES} rules")
    seen: set[str] = set()
    for index, rule in enumerate(checked):
        if not PII_PATH.match(rule.path):
            raise ValueError(
                f"pii_rules[{index}].path: {rule.path!r} is not a field path under one of "
                f"{', '.join(PII_ROOTS)} (dot-separated, at most {MAX_PATH_DEPTH} keys)"
            )
        if rule.action not in ("hash", "drop"):
            raise ValueError(f"pii_rules[{index}].action: must be hash or drop")
        if rule.path in seen:
            raise ValueError(f"pii_rules[{index}].path: {rule.path!r} is listed twice")
        seen.add(rule.path)
    return checked


def hash_value(value: Any, secret: bytes) -> str:
    """HMAC-SHA256 (hex) of a value: a string as is, anything else as its compact JSON text."""
    text = value if isinstance(value, str) else _canonical_json(value)
    return hmac.new(secret, text.encode("utf-8"), hashlib.sha256).hexdigest()


def redact(
    event: CanonicalEvent, rules: Iterable[PiiRule], secret: bytes, keep_hashes: bool = False
) -> CanonicalEvent:
    """The event with every rule applied: hashed values replaced by their HMAC, dropped keys gone.

    A path crosses arrays: `properties.products.email` reaches the `email` of every product. A
    path that leads nowhere changes nothing; a null value stays null (there is nothing to hide).
    `keep_hashes` leaves values that already look like a hash alone, for events redacted once
    before (a quarantine replay), so that a replay never hashes a hash.
    """
    hasher = _Hasher(secret, keep_hashes)
    result = event
    for rule in rules:
        result = _apply(result, rule.keys, rule.action, hasher)
    return result


@dataclass(frozen=True)
class _Hasher:
    secret: bytes
    keep_hashes: bool

    def __call__(self, value: Any) -> Any:
        if value is None or (self.keep_hashes and isinstance(value, str) and HASHED.match(value)):
            return value
        return hash_value(value, self.secret)


# What `hash_value` returns.
HASHED = re.compile(r"^[0-9a-f]{64}$")


def _apply(node: Any, keys: tuple[str, ...], action: PiiAction, hasher: _Hasher) -> Any:
    """`node` with the rule applied below it; the same object when nothing changed."""
    if isinstance(node, list):
        changed = [_apply(item, keys, action, hasher) for item in node]
        if all(new is old for new, old in zip(changed, node, strict=True)):
            return node
        return changed
    if not isinstance(node, dict) or keys[0] not in node:
        return node
    key, rest = keys[0], keys[1:]
    value = node[key]
    if rest:
        new_value = _apply(value, rest, action, hasher)
        if new_value is value:
            return node
        return {**node, key: new_value}
    if action == "drop":
        return {k: v for k, v in node.items() if k != key}
    if value is None:
        return node
    if isinstance(value, list):
        return {**node, key: [hasher(v) for v in value]}
    hashed = hasher(value)
    return node if hashed is value else {**node, key: hashed}


def _canonical_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


@dataclass(frozen=True)
class Suppressions:
    """The user ids and anonymous ids whose events a workspace no longer takes."""

    user_ids: frozenset[str] = frozenset()
    anonymous_ids: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.user_ids or self.anonymous_ids)

    def matches(self, event: CanonicalEvent) -> bool:
        """Whether the event belongs to a suppressed user (by userId, or by anonymousId)."""
        return (
            event.get("userId") in self.user_ids or event.get("anonymousId") in self.anonymous_ids
        )
