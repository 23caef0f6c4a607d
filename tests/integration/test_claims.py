"""The deduplication window (`Claims`) against a real valkey-server, and the same contract held
by the Firestore implementation (over the in-memory store: its Firestore semantics are the
pipeline's e2e tests')."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import valkey

from shared.adapters.valkey_claims import ValkeyClaims, _name, new_client
from shared.domain.errors import Unavailable
from shared.domain.pipeline import DEDUP_HOURS, event_key
from shared.ports import Claim, Claims
from shared.services.claims import StoreClaims
from tests.e2e.helpers import free_ports
from tests.fakes import InMemoryClaims, InMemoryConfigStore

WS = "ws-claims"
KEYS = [event_key(f"msg-{n}") for n in range(5)]


@pytest.fixture(params=["valkey", "firestore"])
def claims(request: pytest.FixtureRequest, valkey_url: str) -> Iterator[Claims]:
    if request.param == "valkey":
        client = new_client(valkey_url)
        client.flushdb()
        yield ValkeyClaims(client)
    else:
        yield StoreClaims(InMemoryConfigStore())


def test_a_fresh_key_is_claimed_once_and_held_for_its_owner(claims: Claims) -> None:
    first = claims.claim(WS, KEYS[:3], "ps-1")
    again = claims.claim(WS, KEYS[:4], "ps-1")
    other = claims.claim(WS, KEYS[:4], "ps-2")

    assert all(c.new and c.owner == "ps-1" for c in first.values())
    assert [(again[k].new, again[k].owner) for k in KEYS[:4]] == [
        (False, "ps-1"),
        (False, "ps-1"),
        (False, "ps-1"),
        (True, "ps-1"),
    ]
    assert all(not c.new and c.owner == "ps-1" for c in other.values())
    assert claims.get(WS, [KEYS[0], KEYS[4]]) == {KEYS[0]: again[KEYS[0]], KEYS[4]: None}


def test_workspaces_have_windows_of_their_own(claims: Claims) -> None:
    claims.claim(WS, KEYS[:1], "ps-1")

    [claim] = claims.claim("ws-other", KEYS[:1], "ps-9").values()

    assert claim.new and claim.owner == "ps-9"


def test_duplicates_count_on_held_claims_only(claims: Claims) -> None:
    claims.claim(WS, KEYS[:1], "ps-1")

    claims.count_duplicates(WS, {KEYS[0]: 2, KEYS[1]: 1}, "2026-12-03T10:00:00.000Z")
    claims.count_duplicates(WS, {KEYS[0]: 1}, "2026-12-03T10:00:05.000Z")

    held = claims.get(WS, KEYS[:2])
    counted = held[KEYS[0]]
    assert counted is not None
    assert (counted.duplicates, counted.last_duplicate_at) == (
        3,
        "2026-12-03T10:00:05.000Z",
    )
    # A key no claim holds gets none from a count (it would have no expiry).
    assert held[KEYS[1]] is None
    [fresh] = claims.claim(WS, KEYS[1:2], "ps-2").values()
    assert fresh.new and fresh.duplicates == 0


def test_a_released_claim_is_free_again(claims: Claims) -> None:
    claims.claim(WS, KEYS[:2], "ps-1")

    claims.release(WS, KEYS[:1])

    answer = claims.claim(WS, KEYS[:2], "ps-2")
    assert (answer[KEYS[0]].new, answer[KEYS[0]].owner) == (True, "ps-2")
    assert (answer[KEYS[1]].new, answer[KEYS[1]].owner) == (False, "ps-1")


def test_of_concurrent_claims_of_one_key_exactly_one_wins(claims: Claims) -> None:
    winners: list[str] = []
    start = threading.Barrier(8)

    def race(owner: str) -> None:
        start.wait()
        [claim] = claims.claim(WS, KEYS[:1], owner).values()
        if claim.new:
            winners.append(owner)

    threads = [threading.Thread(target=race, args=(f"ps-{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(winners) == 1
    held = claims.get(WS, KEYS[:1])[KEYS[0]]
    assert held is not None and held.owner == winners[0]


def test_valkey_claims_expire_after_the_window_and_stay_small(valkey_url: str) -> None:
    client = new_client(valkey_url)
    client.flushdb()
    ValkeyClaims(client).claim(WS, KEYS, "1234567890123456")

    names = list(client.scan_iter(match=b"c:*"))
    assert len(names) == len(KEYS)
    ttl = int(client.ttl(names[0]))  # type: ignore[arg-type]
    assert DEDUP_HOURS * 3600 - 5 <= ttl <= DEDUP_HOURS * 3600
    # What a claim costs the instance (docs/DEPLOY.md sizes Memorystore by it).
    assert int(client.memory_usage(names[0])) <= 72  # type: ignore[arg-type]


def test_an_unreachable_valkey_is_unavailable_not_a_crash() -> None:
    port = free_ports(functions=1).functions
    claims = ValkeyClaims(valkey.Valkey(host="127.0.0.1", port=port, socket_connect_timeout=1))

    with pytest.raises(Unavailable, match="deduplication store"):
        claims.claim(WS, KEYS[:1], "ps-1")


@pytest.fixture(params=["valkey", "memory"])
def outcome_claims(request: pytest.FixtureRequest, valkey_url: str) -> Iterator[Claims]:
    """The windows that keep outcomes on their claims: Valkey's, and the unit tests' fake."""
    if request.param == "valkey":
        client = new_client(valkey_url)
        client.flushdb()
        yield ValkeyClaims(client)
    else:
        yield InMemoryClaims()


def test_an_outcome_stays_on_its_owners_claim_and_comes_back_whole(outcome_claims: Claims) -> None:
    # Longer than one 64-byte piece, with text that is more than one byte a character.
    outcome = '["src-1","track",1764756000123,' + '"é' * 70 + '"]'
    outcome_claims.claim(WS, KEYS[:3], "ps-1")
    outcome_claims.claim(WS, KEYS[3:4], "ps-2")
    outcome_claims.release(WS, KEYS[2:3])

    outcome_claims.settle(
        WS, "ps-1", {KEYS[0]: outcome, KEYS[1]: "short", KEYS[2]: "released", KEYS[3]: "not-mine"}
    )

    held = outcome_claims.get(WS, KEYS[:4])
    assert [None if c is None else c.outcome for c in held.values()] == [
        outcome,
        "short",
        None,  # released meanwhile: not claimed again by settling
        None,  # held by another message
    ]
    again = outcome_claims.claim(WS, KEYS[:2], "ps-1")
    assert [again[k].outcome for k in KEYS[:2]] == [outcome, "short"]
    outcome_claims.count_duplicates(WS, {KEYS[0]: 1}, "2026-12-04T10:00:00.000Z")
    counted = outcome_claims.get(WS, KEYS[:1])[KEYS[0]]
    assert counted is not None and (counted.duplicates, counted.outcome) == (1, outcome)


def test_a_claim_with_its_outcome_stays_a_compact_hash(valkey_url: str) -> None:
    client = new_client(valkey_url)
    client.flushdb()
    claims = ValkeyClaims(client)
    claims.claim(WS, KEYS[:1], "1234567890123456")
    outcome = "x" * 180  # about what a single event's plain entry takes (compact_entry)

    claims.settle(WS, "1234567890123456", {KEYS[0]: outcome})

    [name] = list(client.scan_iter(match=b"c:*"))
    assert client.object("encoding", name) == b"listpack"
    assert int(client.ttl(name)) > DEDUP_HOURS * 3600 - 5  # type: ignore[arg-type]
    # A claim and its outcome: docs/COST.md's model takes what bench.costrun measures.
    assert int(client.memory_usage(name)) <= 96 + 200  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="too long"):
        claims.settle(WS, "1234567890123456", {KEYS[0]: "x" * (claims.outcome_bytes + 1)})


def test_a_claim_is_a_string_until_it_holds_more_and_keeps_its_expiry(valkey_url: str) -> None:
    client = new_client(valkey_url)
    client.flushdb()
    claims = ValkeyClaims(client)
    claims.claim(WS, KEYS[:2], "1234567890123456")
    [first, second] = [_name(WS, key) for key in KEYS[:2]]
    assert client.type(first) == client.type(second) == b"string"
    client.expire(first, 1000)
    client.expire(second, 2000)

    claims.count_duplicates(WS, {KEYS[0]: 2}, "2026-12-04T10:00:00.000Z")
    claims.settle(WS, "1234567890123456", {KEYS[1]: "done"})

    assert client.type(first) == client.type(second) == b"hash"
    assert 990 <= int(client.ttl(first)) <= 1000  # type: ignore[arg-type]
    assert 1990 <= int(client.ttl(second)) <= 2000  # type: ignore[arg-type]
    held = claims.get(WS, KEYS[:2])
    assert held[KEYS[0]] == Claim("1234567890123456", False, 2, "2026-12-04T10:00:00.000Z")
    assert held[KEYS[1]] == Claim("1234567890123456", outcome="done")


def test_claims_made_as_hashes_by_earlier_versions_are_read_alike(valkey_url: str) -> None:
    client = new_client(valkey_url)
    client.flushdb()
    claims = ValkeyClaims(client)
    client.hset(_name(WS, KEYS[0]), mapping={"o": "ps-old", "d": "1", "t": "2026-12-01"})  # type: ignore[arg-type]

    again = claims.claim(WS, KEYS[:1], "ps-new")[KEYS[0]]
    claims.settle(WS, "ps-old", {KEYS[0]: "done"})

    assert again == Claim("ps-old", False, 1, "2026-12-01")
    assert claims.get(WS, KEYS[:1])[KEYS[0]] == Claim("ps-old", False, 1, "2026-12-01", "done")
