"""Segment-compatible ingest: POST /v1/{track,identify,page,screen,group,alias,events,batch}.

Served asynchronously: `functions_framework.aio.http` makes functions-framework serve this
function with its ASGI server (gunicorn with uvicorn workers, one event loop per worker) instead
of Flask on gunicorn's threads. The SDK calls (`ASYNC_HANDLERS`) run on the loop: their write-key
lookup (on a cache miss), the publish and the store's bookkeeping are awaited, and a waiting
request is a future, not a thread. Every other route (the SDKs' settings and scripts, webhooks,
client metrics, health, preflights) runs the same synchronous dispatcher as every other function,
in a thread. Both read the request as the same `flask.Request` (built from the ASGI scope), so
the handlers, CORS, errors and answers are the ones every other function has (docs/INGEST.md,
"Server").
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import sys
import weakref
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import functions_framework
import functions_framework.aio
from flask import Request, Response
from starlette.requests import Request as AsgiRequest
from starlette.responses import Response as AsgiResponse

from shared.adapters import operation_counts
from shared.api.function_routes import routes_of
from shared.api.ingest import ASYNC_HANDLERS
from shared.bootstrap import Services, get_services
from shared.domain.errors import StreamsError
from shared.domain.limits import MAX_REQUEST_BYTES
from shared.http.app import MAX_BODY_BYTES, handle
from shared.http.cors import allow_origin
from shared.http.request import ApiRequest
from shared.http.responses import error_response
from shared.http.routing import Route, find_route

if TYPE_CHECKING:
    from shared.adapters.pubsub_rest import AsyncGroupPublisher
    from shared.services.ingest import Ingest

log = logging.getLogger("streams.http")

# What is read of a body at most: one byte past the largest limit of any route here, so the
# handler that reads it refuses it (413) exactly as from a stream.
MAX_READ_BYTES = max(MAX_REQUEST_BYTES, MAX_BODY_BYTES) + 1


def services() -> Services:
    """The process's services, ingest's own on Firestore's and Pub/Sub's REST APIs: a new
    instance answers without loading Google's gRPC clients (shared/bootstrap.py)."""
    return get_services(rest_clients=True)


ROUTES = routes_of("ingest")
# One asynchronous publisher per ingest service (tests install services of their own).
_publishers: weakref.WeakKeyDictionary[Ingest, AsyncGroupPublisher] = weakref.WeakKeyDictionary()


def _publisher(service: Ingest) -> AsyncGroupPublisher:
    publisher = _publishers.get(service)
    if publisher is None:
        # Imported with the services, on the first request (as shared/bootstrap.py does).
        from shared.adapters.pubsub_rest import AsyncGroupPublisher
        from shared.domain.pipeline import merge_source_messages

        # Requests that reach one source's topic together share one message (and so one push
        # of process, one record, one deliveries message per rule).
        publisher = _publishers[service] = AsyncGroupPublisher(
            service.publisher, merge=merge_source_messages
        )
    return publisher


@functions_framework.aio.http
async def ingest(request: AsgiRequest) -> AsgiResponse:
    operation_counts.asgi_request_served()  # benchmarks only: billed requests
    environ = wsgi_environ(request.scope)
    environ["wsgi.input"] = io.BytesIO(await _body(request, environ.get("CONTENT_LENGTH", "")))
    raw = Request(environ)
    route, params = _route(raw.method, raw.path)
    handler = ASYNC_HANDLERS.get(route.handler) if route is not None else None
    _threads_for(asyncio.get_running_loop())
    if route is None or handler is None:
        # Everything else, misses included (404, 405), by the dispatcher every function has;
        # in a thread, since its handlers may read the store.
        response = await asyncio.to_thread(handle, raw, ROUTES, services)
    else:
        api_request = ApiRequest(raw=raw, route=route, params=params, services_of=services)
        try:
            response = await handler(api_request, _publisher(api_request.services.ingest))
        except StreamsError as error:
            response = error_response(error)
        except Exception:
            log.exception("unhandled error on %s %s", raw.method, raw.path)
            response = error_response(StreamsError("internal error"))
        # As the dispatcher does for every answer of a cross-origin function.
        allow_origin(raw, response)
        # A POST's answer built from bytes (`_answer`, `error_response`): its headers, with
        # Content-Length, are final; nothing of the WSGI server's own handling applies.
        answer = AsgiResponse(response.get_data(), status_code=response.status_code)
        answer.raw_headers = _raw_headers(response.headers.to_wsgi_list())
        return answer
    return asgi_response(response, environ)


# The loops whose default executor (`asyncio.to_thread`: the other routes, write-key misses,
# the store's bookkeeping) is sized for this function.
_sized: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


def _threads_for(loop: asyncio.AbstractEventLoop) -> None:
    """As many threads as requests may wait in them at once: `THREADS` (Terraform sets it to the
    function's concurrency), else 32; asyncio's default (CPUs + 4) would queue a few slow
    webhook requests or Firestore reads behind one another."""
    if loop in _sized:
        return
    _sized.add(loop)
    threads = int(os.environ.get("THREADS", "0")) or 32
    loop.set_default_executor(ThreadPoolExecutor(threads, thread_name_prefix="ingest"))


# The SDK paths hold no parameter: each is matched against the table once, not per request.
_LITERAL_ROUTES: dict[tuple[str, str], Route] = {}
MAX_CACHED_ROUTES = 256


def _route(method: str, path: str) -> tuple[Route | None, dict[str, str]]:
    """`find_route`'s route and parameters, remembered for a route without parameters."""
    route = _LITERAL_ROUTES.get((method, path))
    if route is not None:
        return route, {}
    found, params, _ = find_route(ROUTES, method, path)
    if found is not None and not params and len(_LITERAL_ROUTES) < MAX_CACHED_ROUTES:
        _LITERAL_ROUTES[(method, path)] = found
    return found, params


def _raw_headers(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    # Lower-cased, as ASGI has them (uvicorn writes every name lower-cased whatever it gets).
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]


async def _body(request: AsgiRequest, length: str) -> bytes:
    """The body, read up to MAX_READ_BYTES; nothing when its Content-Length (`length`) already
    says more."""
    if length.isdigit() and int(length) >= MAX_READ_BYTES:
        return b""  # refused unread (413) by the handler, from its Content-Length
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_READ_BYTES:
            break
    return b"".join(chunks)


def wsgi_environ(scope: dict[str, Any]) -> dict[str, Any]:
    """The WSGI environ of an ASGI HTTP request (PEP 3333), as gunicorn would build it, but for
    `wsgi.input` (the body, once read)."""
    server = scope.get("server") or ("localhost", 80)
    client = scope.get("client")
    # WSGI carries the decoded path as latin-1 text of its UTF-8 bytes.
    path = scope["path"].encode("utf-8", "surrogateescape").decode("latin-1")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "REMOTE_ADDR": client[0] if client else "",
        "REMOTE_PORT": str(client[1]) if client else "",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        # The body (`wsgi.input`, set once read) is whole, or cut past every limit: read it
        # without a Content-Length too.
        "wsgi.input_terminated": True,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for name, value in scope["headers"]:
        key = name.decode("latin-1").upper().replace("-", "_")
        text = value.decode("latin-1")
        if key == "CONTENT_TYPE" or key == "CONTENT_LENGTH":
            environ[key] = text
            continue
        key = "HTTP_" + key
        # Repeated headers are joined, as gunicorn joins them.
        environ[key] = f"{environ[key]},{text}" if key in environ else text
    return environ


def asgi_response(response: Response, environ: dict[str, Any]) -> AsgiResponse:
    """`response` as the WSGI server would have sent it (HEAD without a body, 304 without
    content, Content-Length computed), for the ASGI server to send."""
    started: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started[:] = [int(status.split(" ", 1)[0]), headers]

    body = _join(response(environ, start_response))
    status, headers = started
    answer = AsgiResponse(body, status_code=status)
    answer.raw_headers = _raw_headers(headers)
    return answer


def _join(chunks: Iterable[bytes]) -> bytes:
    try:
        return b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def _refused_by_the_framework(app_of: Any) -> Any:
    """functions-framework's app builder, with Streams' dispatch for what its router refuses.

    Its Starlette router takes 7 methods and paths without a newline (`%0A`), and answers
    `/robots.txt` and `/favicon.ico` itself: anything else would get Starlette's plain-text 404
    or 405 (with an `Allow` of the framework's methods) before its credentials were checked.
    Dispatched like any other request, it gets what any other gets: Streams' JSON 401, 404 or
    405 with the path's own `Allow`, as `dispatch_refused_requests` (shared/http/framework.py)
    does for the Flask app of every other function. The framework offers no hook for its ASGI
    app, and builds it right after executing this module: this wraps the builder it calls.
    """

    def build(function: Any, *args: Any, **kwargs: Any) -> Any:
        app = app_of(function, *args, **kwargs)
        # Only the function marked so (this module may be executed more than once, by tests).
        if getattr(function, DISPATCHES_REFUSED, False):

            async def dispatch(request: AsgiRequest, error: Exception) -> AsgiResponse:
                return await function(request)  # type: ignore[no-any-return]

            for status in (404, 405):
                app.add_exception_handler(status, dispatch)
        return app

    return build


DISPATCHES_REFUSED = "streams_dispatches_refused_requests"
setattr(ingest, DISPATCHES_REFUSED, True)
if not hasattr(functions_framework.aio._create_asgi_app_with_function, "__wrapped__"):
    _build = _refused_by_the_framework(functions_framework.aio._create_asgi_app_with_function)
    _build.__wrapped__ = functions_framework.aio._create_asgi_app_with_function  # type: ignore[attr-defined]
    functions_framework.aio._create_asgi_app_with_function = _build
