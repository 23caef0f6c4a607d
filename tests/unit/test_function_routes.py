"""Each HTTP function gets exactly its share of the route table while importing only the API
modules that declare it (a cold start pays for every module imported)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.api.function_routes import ROUTE_MODULES, routes_of
from shared.api.routes import INTERNAL_FUNCTIONS, INTERNAL_ROUTES, ROUTES, http_functions

ROOT = Path(__file__).resolve().parents[2]


def test_every_http_function_has_its_modules() -> None:
    assert sorted(ROUTE_MODULES) == sorted([*http_functions(), *INTERNAL_FUNCTIONS])


def test_internal_routes_stay_out_of_the_public_table() -> None:
    assert {route.function for route in INTERNAL_ROUTES} == set(INTERNAL_FUNCTIONS)
    assert not set(INTERNAL_FUNCTIONS) & set(http_functions())


@pytest.mark.parametrize("function", sorted(ROUTE_MODULES))
def test_a_function_gets_its_share_of_the_table(function: str) -> None:
    table = INTERNAL_ROUTES if function in INTERNAL_FUNCTIONS else ROUTES
    share = tuple(route for route in table if route.function == function)
    assert [(r.method, r.path, r.operation_id) for r in routes_of(function)] == [
        (r.method, r.path, r.operation_id) for r in share
    ]


def imported_by(function: str) -> set[str]:
    """The modules loaded when functions-framework creates the function's app."""
    script = (
        "import json, sys, functions_framework\n"
        f"functions_framework.create_app(target={function!r}, "
        f"source='functions/{function}/main.py')\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    env = {**os.environ, "STREAMS_PROJECT_ID": "imports-test"}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout))


def test_ingest_loads_neither_other_functions_apis_nor_services_nor_validators() -> None:
    loaded = imported_by("ingest")
    other_apis = {
        f"shared.api.{name}"
        for function, names in ROUTE_MODULES.items()
        if function != "ingest"
        for name in names
    }
    assert not loaded & other_apis
    # Services are built (and imported) by the first request that needs one; the dispatcher's
    # audit trail is the one it always holds.
    services = {m for m in loaded if m.startswith("shared.services.")}
    assert services == {"shared.services.audit"}
    # The contract validator, the JavaScript sandbox and their libraries are other functions'.
    heavy = ("shared.domain.contracts", "shared.transform", "jsonschema", "jsonschema_rs")
    assert not {m for m in loaded if m.startswith(heavy)}


def test_process_and_deliver_load_no_api() -> None:
    for function in ("process", "deliver"):
        assert not {m for m in imported_by(function) if m.startswith("shared.api")}
