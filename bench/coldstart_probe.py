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
    if args.write_key or args.push:
        client = app.test_client()
        if args.write_key:
            answer = client.post("/v1/track", json=TRACK, headers={"X-Write-Key": args.write_key})
        else:
            answer = client.post("/", json=json.loads(args.push.read_text()))
        if answer.status_code != 200:
            raise SystemExit(
                f"{args.function} answered {answer.status_code}: {answer.get_data()!r}"
            )
        result["first_answer_s"] = time.perf_counter() - STARTED
        result["modules_at_first_answer"] = len(sys.modules) - modules_before
    print(json.dumps(result))


if __name__ == "__main__":
    main()
