"""One cold start, in a fresh interpreter (run by bench/coldstart.py): create a function's app
as functions-framework does, then answer one request (ingest: a track call; process and deliver:
a pushed message); print the times as JSON.

With `--preload`, first import the modules a function imported before issue 19 made imports
lazy (bench/baselines/coldstart_v1.json), and answer with Google's official clients, as that code
did: its cold start, measured in the same run.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import argparse  # noqa: E402 -- the clock starts before any import
import importlib  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
BASELINE = REPO_ROOT / "bench" / "baselines" / "coldstart_v1.json"
TRACK = {"event": "Cold Start", "userId": "bench-user", "properties": {"probe": True}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("function")
    parser.add_argument("--preload", action="store_true")
    parser.add_argument("--write-key", help="ingest: answer one track call with this key")
    parser.add_argument(
        "--push", type=Path, help="process, deliver: answer this push body (a JSON file)"
    )
    args = parser.parse_args()
    modules_before = len(sys.modules)
    if args.preload:
        for name in json.loads(BASELINE.read_text())["modules"][args.function]:
            importlib.import_module(name)
        # That code answered with Google's official clients, as every function but ingest still
        # does: ingest's REST clients (shared/bootstrap.py) must not speed its baseline up too.
        from shared.bootstrap import Services, set_services
        from shared.config import get_settings

        set_services(Services(get_settings()))
    import functions_framework

    app = functions_framework.create_app(
        target=args.function, source=str(REPO_ROOT / "functions" / args.function / "main.py")
    )
    ready = time.perf_counter()
    result = {
        "ready_s": ready - STARTED,
        "modules_at_ready": len(sys.modules) - modules_before,
    }
    if args.write_key and not hasattr(app, "test_client"):
        # Ingest is served asynchronously (an ASGI app): one request through it, as uvicorn
        # hands it over.
        status, body = asgi_post(app, "/v1/track", TRACK, {"x-write-key": args.write_key})
        if status != 200:
            raise SystemExit(f"{args.function} answered {status}: {body!r}")
    elif args.write_key or args.push:
        client = app.test_client()
        if args.write_key:
            answer = client.post("/v1/track", json=TRACK, headers={"X-Write-Key": args.write_key})
        else:
            answer = client.post("/", json=json.loads(args.push.read_text()))
        if answer.status_code != 200:
            raise SystemExit(
                f"{args.function} answered {answer.status_code}: {answer.get_data()!r}"
            )
    if args.write_key or args.push:
        result["first_answer_s"] = time.perf_counter() - STARTED
        result["modules_at_first_answer"] = len(sys.modules) - modules_before
    print(json.dumps(result))


def asgi_post(app: Any, path: str, body: Any, headers: dict[str, str]) -> tuple[int, bytes]:
    """POST `body` as JSON to an ASGI app, in process: its status and body."""
    import asyncio

    data = json.dumps(body).encode()
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(data)).encode()),
            *((name.encode(), value.encode()) for name, value in headers.items()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }
    received = [{"type": "http.request", "body": data, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return received.pop(0) if received else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    answer = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], answer


if __name__ == "__main__":
    main()
