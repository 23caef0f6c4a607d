"""Google's REST APIs over urllib3, for a function whose cold start cannot pay for the gRPC
client libraries (ingest: shared/adapters/firestore_rest.py and pubsub_rest.py).

Importing google-cloud-firestore and google-cloud-pubsub (grpc, protobuf, api_core, ~620
modules) took ~0.34 s of ingest's ~0.84 s cold first answer (docs/BENCHMARKS.md); urllib3 takes
a few hundredths, and google-auth's credentials load only in production. Against an emulator
(its host in FIRESTORE_EMULATOR_HOST or PUBSUB_EMULATOR_HOST, as Google's clients read it) the
calls are plain HTTP as the emulator's owner (`Bearer owner`: past any security rules).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
import urllib3
from urllib3 import exceptions as u3

from shared.domain.errors import Unavailable

# The errors below the HTTP answer that are worth another attempt, and become `Unavailable`.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    u3.TimeoutError,  # connect or read timeouts; a refused connection (NewConnectionError) too
    u3.ProtocolError,  # the connection reset or closed mid-answer
    ConnectionError,  # sockets refused or reset below urllib3; production's token fetch failed
    TimeoutError,  # a caller's own deadline (group commit) passed
)
# HTTP statuses of transient refusals, as Google's REST APIs answer with them.
TRANSIENT_STATUSES: dict[int, str] = {
    429: "quota or flow control (RESOURCE_EXHAUSTED): back off",
    499: "the call was cancelled (CANCELLED)",
    500: "INTERNAL or UNKNOWN: Google asks clients to retry 500s",
    502: "a front end lost its backend",
    503: "the service or the emulator is down or restarting (UNAVAILABLE)",
    504: "the call outlived its deadline (DEADLINE_EXCEEDED); the next one may not",
}
# 409 is both ALREADY_EXISTS (permanent) and ABORTED (transaction contention: transient).
TRANSIENT_CODES = frozenset({"ABORTED"})
# A request must answer 503 quickly rather than hang while a dependency is down.
CALL_TIMEOUT_SECONDS = 10.0
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
# The emulators' administrator: the Firestore emulator applies no security rules to it.
EMULATOR_HEADERS = {"Authorization": "Bearer owner"}
# Connections kept per host: a functions-framework worker serves 4 x CPUs threads at once.
POOL_CONNECTIONS = 16


class Http(Protocol):
    """What urllib3's `PoolManager` and google-auth's `AuthorizedHttp` both offer."""

    def request(self, method: str, url: str, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class RetryPolicy:
    """Which refusals a call retries, with jittered exponential backoff, within its deadline."""

    # Status codes (`UNAVAILABLE`...) retried; a connection failure is retried when any is.
    codes: frozenset[str]
    deadline_seconds: float = CALL_TIMEOUT_SECONDS
    attempt_seconds: float = CALL_TIMEOUT_SECONDS
    initial_seconds: float = 0.1
    maximum_seconds: float = 1.0


class RestError(Exception):
    """A refusal that retrying would not change (or a transient one a caller asked to see)."""

    def __init__(self, http_status: int, code: str, message: str):
        super().__init__(f"{http_status} {code}: {message}")
        self.http_status = http_status
        self.code = code  # the status code name: NOT_FOUND, ALREADY_EXISTS, INVALID_ARGUMENT...
        self.message = message

    @property
    def transient(self) -> bool:
        return self.http_status in TRANSIENT_STATUSES or self.code in TRANSIENT_CODES

    @classmethod
    def of(cls, status: int, body: bytes) -> RestError:
        """The error a Google API answered: `{"error": {"code", "message", "status"}}`."""
        try:
            error = orjson.loads(body)["error"]
            return cls(status, str(error.get("status") or status), str(error.get("message", "")))
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            return cls(status, str(status), body[:200].decode("utf-8", "replace"))


class RestApi:
    """One Google REST API: its root URL, an HTTP pool (authorised in production), its name."""

    def __init__(self, name: str, root: str, http: Http, headers: Mapping[str, str]):
        self.name = name
        self._root = root
        self._http = http
        self._headers = {**headers, "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: Any, policy: RetryPolicy) -> Any:
        """The answer's JSON; `RestError` for a permanent refusal, `Unavailable` for a
        transient one or a connection failure once `policy` gives up."""
        url = self._root + path
        data = None if body is None else orjson.dumps(body)
        deadline = time.monotonic() + policy.deadline_seconds
        delay = policy.initial_seconds
        while True:
            timeout = max(0.01, min(policy.attempt_seconds, deadline - time.monotonic()))
            failure: Exception
            try:
                response = self._http.request(
                    method,
                    url,
                    body=data,
                    headers=self._headers,
                    timeout=timeout,
                    retries=False,
                    redirect=False,
                )
            except TRANSIENT_ERRORS as exc:
                failure, reason, retried = exc, type(exc).__name__, bool(policy.codes)
            else:
                if response.status < 300:
                    return orjson.loads(response.data) if response.data else {}
                error = RestError.of(response.status, response.data)
                if not error.transient:
                    raise error
                failure, reason = error, f"{error.http_status} {error.code}"
                retried = error.code in policy.codes
            if not retried or time.monotonic() + delay >= deadline:
                raise Unavailable(
                    f"{self.name} is unavailable, retry later ({reason})"
                ) from failure
            time.sleep(delay * random.uniform(0.5, 1.0))  # jitter: instances retry apart
            delay = min(delay * 2, policy.maximum_seconds)


def google_api(
    name: str, emulator_variable: str, production_root: str, credentials: Callable[[], Http]
) -> RestApi:
    """The API on its emulator when `emulator_variable` names one, else on Google with
    `credentials` (built only then: the emulator needs none)."""
    host = os.environ.get(emulator_variable)
    if host:
        return RestApi(name, f"http://{host}/v1/", new_pool(), EMULATOR_HEADERS)
    return RestApi(name, production_root, credentials(), {})


def new_pool() -> urllib3.PoolManager:
    return urllib3.PoolManager(maxsize=POOL_CONNECTIONS)


class AuthorisedHttp:
    """Requests with the environment's default credentials (the function's service account),
    their token refreshed when due; a failed token fetch is a `ConnectionError` (transient)."""

    def __init__(self) -> None:
        # Imported here: only production loads google-auth (the emulators need no token).
        import google.auth
        from google.auth import exceptions
        from google.auth.transport.urllib3 import AuthorizedHttp

        credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
        self._http = AuthorizedHttp(credentials, http=new_pool())
        self._token_errors = (exceptions.TransportError,)

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        try:
            return self._http.request(method, url, **kwargs)
        except self._token_errors as exc:
            raise ConnectionError(f"no access token: {exc}") from exc
