"""Test clients of the real function entry points, through functions-framework's own app."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import functions_framework
from flask import Flask
from werkzeug.test import Client
from werkzeug.wrappers import Response

ROOT = Path(__file__).resolve().parent.parent


def function_client(name: str) -> Any:
    """A Flask test client of `functions/<name>/main.py`, as functions-framework serves it."""
    app = functions_framework.create_app(
        target=name, source=str(ROOT / "functions" / name / "main.py")
    )
    if isinstance(app, Flask):
        return app.test_client()
    # An asynchronous function (functions-framework's ASGI app, as ingest's): the same test
    # client, each request run through the real app on an event loop of its own.
    return Client(asgi_as_wsgi(app), Response)


def wsgi_app(app: Any) -> Any:
    """A function's app as WSGI: Flask's as it is, an ASGI app through `asgi_as_wsgi`."""
    return app if isinstance(app, Flask) else asgi_as_wsgi(app)


def asgi_as_wsgi(app: Any) -> Any:
    """A WSGI app that answers each request with the ASGI `app`, run to completion."""

    def wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["wsgi.input"].read()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": environ["SERVER_PROTOCOL"].split("/", 1)[-1],
            "method": environ["REQUEST_METHOD"],
            "scheme": environ["wsgi.url_scheme"],
            "path": environ["PATH_INFO"].encode("latin-1").decode("utf-8", "surrogateescape"),
            "raw_path": environ["PATH_INFO"].encode("latin-1"),
            "query_string": environ.get("QUERY_STRING", "").encode("latin-1"),
            "root_path": "",
            "headers": [
                (key[5:].replace("_", "-").lower().encode("latin-1"), value.encode("latin-1"))
                for key, value in environ.items()
                if key.startswith("HTTP_")
            ]
            + [
                (key.replace("_", "-").lower().encode("latin-1"), environ[key].encode("latin-1"))
                for key in ("CONTENT_TYPE", "CONTENT_LENGTH")
                if environ.get(key)
            ],
            "client": (environ.get("REMOTE_ADDR", "127.0.0.1"), 50000),
            "server": (environ.get("SERVER_NAME", "localhost"), int(environ["SERVER_PORT"])),
        }
        sent: list[dict[str, Any]] = []
        received = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> dict[str, Any]:
            return received.pop(0) if received else {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        asyncio.run(app(scope, receive, send))
        start = next(m for m in sent if m["type"] == "http.response.start")
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start["headers"]]
        start_response(str(start["status"]) + " -", headers)
        return [m.get("body", b"") for m in sent if m["type"] == "http.response.body"]

    return wsgi
