"""The benchmark's baseline: an HTTP function that parses the JSON body and answers 200.

Served by the same functions-framework server, with the same settings, as the ingest function,
so the ratio ingest / no-op isolates what ingest itself costs.
"""

import json

import functions_framework
from flask import Request, Response


@functions_framework.http
def noop(request: Request) -> Response:
    body = json.loads(request.get_data())
    items = body.get("batch") if isinstance(body, dict) else None
    accepted = len(items) if isinstance(items, list) else 1
    answer = {"success": True, "accepted": accepted}
    return Response(json.dumps(answer, separators=(",", ":")), mimetype="application/json")
