"""The deduplication window in Valkey (Memorystore for Valkey in production, valkey-server under
`make dev` and the tests): one key per claimed event, expired by Valkey itself.

Claims cost no Firestore operation at all. A claim is a plain string, its owner (a Pub/Sub
message id: digits, which Valkey keeps as an integer inside the key's object): about 85 bytes of
the instance's memory for the window, where a hash took 110 (`python -m bench.valkey_memory`;
docs/DEPLOY.md sizes the instance by it). A claim that comes to hold more, the duplicates turned
away or an outcome (`settle`), becomes a hash (field o: the owner; d: duplicates; t: when the
last came; r0, r1, ...: the outcome), keeping its expiry; claims made as hashes by earlier
versions are read alike. A message's claims are one server-side script call (one round trip,
atomic per key and for the message): the instance runs with cluster mode disabled
(terraform/dedup.tf), so one script may touch every key.

An outcome is cut into fields of at most 64 bytes: Valkey keeps a hash whose values all fit
`hash-max-listpack-value` (64 by default, and Memorystore's) as one compact listpack; a single
longer value turns it into a hash table for good, about 160 bytes more a claim (measured with
`INFO memory` on valkey-server 7.2).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import valkey
from valkey.credentials import CredentialProvider

from shared.adapters import operation_counts
from shared.domain.errors import Unavailable
from shared.domain.pipeline import DEDUP_HOURS
from shared.ports import Claim

OUTCOME_PIECE_BYTES = 64
OUTCOME_PIECES = 8
OUTCOME_FIELDS = [f"r{n}" for n in range(OUTCOME_PIECES)]
HELD_FIELDS = ["o", "d", "t", *OUTCOME_FIELDS]
# Shared by the scripts. held(key): false when no claim, else the HELD_FIELDS' values ('' for
# none). owner(key): the claim's owner, or false. as_hash(key): a string claim made a hash with
# the same owner and expiry, so that fields can be added.
FUNCTIONS = (
    "local fields = {"
    + ", ".join(f"'{field}'" for field in HELD_FIELDS)
    + "}"
    + """
local function held(key)
  local kind = redis.call('TYPE', key).ok
  if kind == 'none' then return false end
  local values
  if kind == 'string' then
    values = {redis.call('GET', key)}
  else
    values = redis.call('HMGET', key, unpack(fields))
  end
  for n = 1, #fields do values[n] = values[n] or '' end
  return values
end
local function owner(key)
  local kind = redis.call('TYPE', key).ok
  if kind == 'string' then return redis.call('GET', key) end
  if kind == 'hash' then return redis.call('HGET', key, 'o') end
  return false
end
local function as_hash(key)
  if redis.call('TYPE', key).ok == 'string' then
    local ttl = redis.call('PTTL', key)
    local claimed_by = redis.call('GET', key)
    redis.call('DEL', key)
    redis.call('HSET', key, 'o', claimed_by)
    if ttl > 0 then redis.call('PEXPIRE', key, ttl) end
  end
end
"""
)
# KEYS: the claims; ARGV: owner, seconds to hold them. Per key, {1} when this call claimed it,
# else {0, the HELD_FIELDS' values}.
CLAIM = (
    FUNCTIONS
    + """
local answers = {}
for i, key in ipairs(KEYS) do
  if redis.call('SET', key, ARGV[1], 'NX', 'EX', ARGV[2]) then
    answers[i] = {1}
  else
    answers[i] = {0, unpack(held(key) or {})}
  end
end
return answers
"""
)
# KEYS: the claims. Per key, {} when no claim holds it, else the HELD_FIELDS' values.
GET = (
    FUNCTIONS
    + """
local answers = {}
for i, key in ipairs(KEYS) do
  answers[i] = held(key) or {}
end
return answers
"""
)
# KEYS: the claims; ARGV: owner, then per key its pieces' count and the pieces. A key no longer
# held by the owner is left alone (never created).
SETTLE = (
    FUNCTIONS
    + """
local at = 2
for _, key in ipairs(KEYS) do
  local count = tonumber(ARGV[at])
  if owner(key) == ARGV[1] then
    as_hash(key)
    for n = 1, count do
      redis.call('HSET', key, 'r' .. (n - 1), ARGV[at + n])
    end
  end
  at = at + count + 1
end
return 0
"""
)
# KEYS: the claims; ARGV: when, then each key's count. Only a claim still held counts: HINCRBY on
# an expired key would create one without a TTL.
COUNT = (
    FUNCTIONS
    + """
for i, key in ipairs(KEYS) do
  if owner(key) then
    as_hash(key)
    redis.call('HINCRBY', key, 'd', ARGV[i + 1])
    redis.call('HSET', key, 't', ARGV[1])
  end
end
return 0
"""
)
TIMEOUT_SECONDS = 5.0


class ValkeyClaims:
    """`Claims` as Valkey hashes named by the workspace and the event's key (`_name`)."""

    outcome_bytes = OUTCOME_PIECE_BYTES * OUTCOME_PIECES

    def __init__(self, client: valkey.Valkey):
        self._client = client
        self._claim = client.register_script(CLAIM)
        self._count = client.register_script(COUNT)
        self._settle = client.register_script(SETTLE)
        self._held = client.register_script(GET)
        self._seconds = DEDUP_HOURS * 3600

    def claim(self, workspace_id: str, keys: Sequence[str], owner: str) -> dict[str, Claim]:
        unique = list(dict.fromkeys(keys))
        if not unique:
            return {}
        # Not in a pipeline: a pipeline checks its scripts exist (SCRIPT EXISTS) on every
        # execute, a round trip more per message; EVALSHA alone loads the script only once.
        answers = self._call(
            lambda: self._claim(
                keys=[_name(workspace_id, k) for k in unique], args=[owner, self._seconds]
            )
        )
        claims: dict[str, Claim] = {}
        for key, answer in zip(unique, answers, strict=True):
            if answer[0] == 1:
                claims[key] = Claim(owner, new=True)
            else:
                claims[key] = _held(answer[1:])
        operation_counts.valkey_kept(claims=sum(c.new for c in claims.values()))
        return claims

    def get(self, workspace_id: str, keys: Sequence[str]) -> dict[str, Claim | None]:
        unique = list(dict.fromkeys(keys))
        if not unique:
            return {}
        answers = self._call(lambda: self._held(keys=[_name(workspace_id, k) for k in unique]))
        return {
            key: _held(held) if held else None for key, held in zip(unique, answers, strict=True)
        }

    def count_duplicates(self, workspace_id: str, counts: Mapping[str, int], at: str) -> None:
        if counts:
            self._call(
                lambda: self._count(
                    keys=[_name(workspace_id, k) for k in counts], args=[at, *counts.values()]
                )
            )

    def release(self, workspace_id: str, keys: Sequence[str]) -> None:
        if keys:
            self._call(lambda: self._client.delete(*[_name(workspace_id, k) for k in keys]))

    def settle(self, workspace_id: str, owner: str, outcomes: Mapping[str, str]) -> None:
        if not outcomes:
            return
        args: list[str | bytes] = [owner]
        for outcome in outcomes.values():
            pieces = _pieces(outcome.encode())
            if len(pieces) > OUTCOME_PIECES:
                raise ValueError(f"an outcome of {len(outcome.encode())} bytes is too long")
            args += [str(len(pieces)), *pieces]
        self._call(lambda: self._settle(keys=[_name(workspace_id, k) for k in outcomes], args=args))
        operation_counts.valkey_kept(outcomes=len(outcomes))

    def _call(self, run: Callable[[], Any]) -> Any:
        return call(run)


def call(run: Callable[[], Any]) -> Any:
    """`run`'s answer; `Unavailable` when Valkey cannot be reached now."""
    try:
        return run()
    except (valkey.ConnectionError, valkey.TimeoutError) as error:
        # The function answers 500 and Pub/Sub redelivers: nothing is done twice or lost.
        raise Unavailable(f"the deduplication store is unavailable: {error}") from error


def new_client(url: str, iam_auth: bool = False) -> valkey.Valkey:
    """A client of the Valkey at `url` (valkey:// or redis://, rediss:// for TLS). With
    `iam_auth`, Memorystore's IAM authentication: user `default`, the function's access token as
    its password, fetched for each new connection."""
    options: dict[str, Any] = {
        "socket_timeout": TIMEOUT_SECONDS,
        "socket_connect_timeout": TIMEOUT_SECONDS,
        "health_check_interval": 30,
    }
    if iam_auth:
        options["credential_provider"] = _AccessToken()
    return valkey.Valkey.from_url(url, **options)


class _AccessToken(CredentialProvider):
    def __init__(self) -> None:
        import google.auth
        from google.auth.transport.urllib3 import Request

        from shared.adapters.rest import CLOUD_PLATFORM_SCOPE, new_pool

        self._credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
        self._request = Request(new_pool())

    def get_credentials(self) -> tuple[str, str]:
        if not self._credentials.valid:
            self._credentials.refresh(self._request)
        return "default", str(self._credentials.token)


def _name(workspace_id: str, key: str) -> bytes:
    """18 bytes whatever the workspace: its id and the event's key hashed together (128 bits:
    no two of a window's claims collide in practice), where spelling both out took 60."""
    return b"c:" + hashlib.blake2b(f"{workspace_id}:{key}".encode(), digest_size=16).digest()


def _held(fields: Sequence[Any]) -> Claim:
    owner, duplicates, at = (_text(value) for value in fields[:3])
    outcome = b"".join(_bytes(piece) for piece in fields[3:])
    return Claim(
        owner=owner or "",
        duplicates=int(duplicates or 0),
        last_duplicate_at=at or None,
        outcome=outcome.decode() if outcome else None,
    )


def _pieces(outcome: bytes) -> list[bytes]:
    """`outcome` in pieces that each fit a listpack value (a piece may end inside a character:
    they are joined as bytes before they are read as text)."""
    size = OUTCOME_PIECE_BYTES
    return [outcome[n : n + size] for n in range(0, len(outcome), size)]


def _bytes(value: Any) -> bytes:
    if value is None:
        return b""
    return value if isinstance(value, bytes) else str(value).encode()


def _text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else value
