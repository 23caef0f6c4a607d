"""Which cloud errors are worth retrying, and their translation into domain errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from google.api_core import exceptions as gexc
from google.api_core import retry as gretry

from shared.domain.errors import Unavailable

TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    gexc.ServiceUnavailable,  # the emulator or the service is down or restarting
    gexc.DeadlineExceeded,  # the call outlived its deadline; the next one may not
    gexc.TooManyRequests,  # quota or flow control: back off
    gexc.InternalServerError,  # Google asks clients to retry 500s
    gexc.Aborted,  # transaction contention
    gexc.RetryError,  # the client's own retries ran out
    ConnectionError,  # sockets refused or reset below the client
    TimeoutError,  # a future we waited on did not complete in time
)

# Short deadlines: a request must answer 503 quickly rather than hang while a dependency is down.
CALL_TIMEOUT_SECONDS = 10.0
RETRY = gretry.Retry(
    predicate=gretry.if_exception_type(
        gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.InternalServerError, gexc.Aborted
    ),
    initial=0.1,
    maximum=1.0,
    timeout=CALL_TIMEOUT_SECONDS,
)


@contextmanager
def transient_as_unavailable(what: str) -> Iterator[None]:
    """Turn a transient cloud error into `Unavailable` (503 with Retry-After)."""
    try:
        yield
    except TRANSIENT_ERRORS as exc:
        raise Unavailable(f"{what} is unavailable, retry later ({type(exc).__name__})") from exc
