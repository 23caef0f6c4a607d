"""The deduplication window in Valkey (Memorystore for Valkey in production, valkey-server under
`make dev` and the tests): one small hash per claimed event, expired by Valkey itself.

Claims cost no Firestore operation at all; a claim takes about 120 bytes of the instance's
memory for the window (docs/DEPLOY.md sizes the instance by it). A message's claims are one
server-side script call (one round trip, atomic per key and for the message): the instance runs
with cluster mode disabled (terraform/dedup.tf), so one script may touch every key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import valkey
from valkey.credentials import CredentialProvider

from shared.domain.errors import Unavailable
from shared.domain.pipeline import DEDUP_HOURS
from shared.ports import Claim

# KEYS: the claims; ARGV: owner, seconds to hold them. Field o: owner, d: duplicates, t: when the
# last duplicate came. Per key, {1} when this call claimed it, else {0, o, d, t}.
CLAIM = """
local answers = {}
for i, key in ipairs(KEYS) do
  if redis.call('HSETNX', key, 'o', ARGV[1]) == 1 then
    redis.call('EXPIRE', key, ARGV[2])
    answers[i] = {1}
  else
    local held = redis.call('HMGET', key, 'o', 'd', 't')
    answers[i] = {0, held[1], held[2] or '0', held[3] or ''}
  end
end
return answers
"""
# KEYS: the claims; ARGV: when, then each key's count. Only a claim still held counts: HINCRBY on
# an expired key would create one without a TTL.
COUNT = """
for i, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then
    redis.call('HINCRBY', key, 'd', ARGV[i + 1])
    redis.call('HSET', key, 't', ARGV[1])
  end
end
return 0
"""
TIMEOUT_SECONDS = 5.0


class ValkeyClaims:
    """`Claims` as Valkey hashes named by the workspace and the event's key (`_name`)."""

    def __init__(self, client: valkey.Valkey):
        self._client = client
        self._claim = client.register_script(CLAIM)
        self._count = client.register_script(COUNT)
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
        return claims

    def get(self, workspace_id: str, keys: Sequence[str]) -> dict[str, Claim | None]:
        unique = list(dict.fromkeys(keys))
        answers = self._pipelined(
            lambda pipe: [pipe.hmget(_name(workspace_id, k), "o", "d", "t") for k in unique]
        )
        return {
            key: None if held[0] is None else _held(held)
            for key, held in zip(unique, answers, strict=True)
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

    def _pipelined(self, queue: Callable[[Any], object]) -> list[Any]:
        def run() -> list[Any]:
            pipe = self._client.pipeline(transaction=False)
            queue(pipe)
            return list(pipe.execute())

        return self._call(run)

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
    owner, duplicates, at = (_text(value) for value in fields)
    return Claim(owner=owner or "", duplicates=int(duplicates or 0), last_duplicate_at=at or None)


def _text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else value
