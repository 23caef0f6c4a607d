"""The benchmark's baselines: HTTP functions that parse the JSON body and answer 200.

`noop` is served by the same server kind as ingest (functions-framework's ASGI server, as
functions/ingest/main.py), so the ratio ingest / no-op isolates what ingest itself costs;
`noop_wsgi` by the server ingest had before (Flask on gunicorn's threads), for reference.
"""

import json

import functions_framework
import functions_framework.aio
from flask import Request, Response
from starlette.requests import Request as AsgiRequest
from starlette.responses import Response as AsgiResponse


def _answer(body: bytes) -> bytes:
    parsed = json.loads(body)
    items = parsed.get("batch") if isinstance(parsed, dict) else None
    accepted = len(items) if isinstance(items, list) else 1
    return json.dumps({"success": True, "accepted": accepted}, separators=(",", ":")).encode()


@functions_framework.aio.http
async def noop(request: AsgiRequest) -> AsgiResponse:
    return AsgiResponse(_answer(await request.body()), media_type="application/json")


@functions_framework.http
def noop_wsgi(request: Request) -> Response:
    return Response(_answer(request.get_data()), mimetype="application/json")
