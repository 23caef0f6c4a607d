"""API fuzzing: schemathesis generates requests for every operation of the served OpenAPI
document and sends them through `GatewayApp` (the real function entry points over in-memory
fakes), each with a valid credential and with hostile ones: none, malformed, another
workspace's. Every answer must be a documented status with a conforming body; hostile
credentials must get 401, another workspace's token 404 on workspace paths, and no answer may
carry another workspace's data.

    python -m tests.reliability.fuzz --examples 100 --output bench/results/reliability-latest.json

runs the long fuzz (`make reliability`); `test_fuzz_api.py` runs a short one in `make test`.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import hypothesis
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from shared.api.routes import ROUTES
from shared.bootstrap import set_services
from shared.http.routing import find_route
from tests.reliability.harness import GatewayApp, Tenant, fake_services, route_for, seed_tenant

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
CHECK_NAMES = [check.__name__ for check in CHECKS] + [
    "hostile_credentials_refused",
    "foreign_workspace_not_found",
    "no_foreign_data",
]
# Credentials that must be refused (401), rotated through by the case's hash.
MALFORMED_BEARER = (
    "Bearer",
    "Bearer stk_not-a-real-token",
    "Bearer " + "A" * 4096,
    "Basic c3RrX2Zvbzo=",
    "Token stk_abc",
    "bearer\tstk_tab",
    "Bearer stk_\u00e9\u00e8",
)
MALFORMED_WRITE_KEY = ("wk_not-a-real-key", "", "wk_" + "x" * 4096, "\u00e9t\u00e9")
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Finding:
    """One check that failed: on which operation, with which credential, and how to replay it."""

    operation: str
    check: str
    token: str
    status: int
    detail: str
    reproduce: str


@dataclass
class FuzzReport:
    seed: int
    examples_per_operation: int
    modes: list[str]
    operations: int = 0
    cases: int = 0
    requests: int = 0
    duration_seconds: float = 0.0
    requests_by_credential: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    cases_by_operation: Counter[str] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    not_generated: dict[str, str] = field(default_factory=dict)

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status.startswith("5"))

    def distinct(self) -> dict[tuple[str, str, str, int], Finding]:
        """One finding per operation, check, credential and status (the first seen)."""
        seen: dict[tuple[str, str, str, int], Finding] = {}
        for finding in self.findings:
            seen.setdefault(
                (finding.operation, finding.check, finding.token, finding.status), finding
            )
        return seen

    def summary(self) -> dict[str, Any]:
        distinct = self.distinct()
        return {
            "kind": "api-fuzz",
            "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tool": f"schemathesis {schemathesis.__version__}, hypothesis {hypothesis.__version__}",
            "python": platform.python_version(),
            "seed": self.seed,
            "examples_per_operation_and_mode": self.examples_per_operation,
            "modes": self.modes,
            "credentials": ["valid", "missing", "malformed", "foreign"],
            "checks": CHECK_NAMES,
            "operations": self.operations,
            "generated_cases": self.cases,
            "requests": self.requests,
            "requests_by_credential": dict(sorted(self.requests_by_credential.items())),
            "statuses": dict(sorted(self.statuses.items())),
            "server_errors": self.server_errors,
            "check_failures": len(self.findings),
            "distinct_failures": [asdict(f) for f in distinct.values()],
            "not_generated": self.not_generated,
            "cases_by_operation": dict(sorted(self.cases_by_operation.items())),
            "duration_seconds": round(self.duration_seconds, 1),
        }


def load_operations() -> list[Any]:
    """Every operation of the document the API serves at /openapi.json (through the gateway)."""
    schema = schemathesis.openapi.from_wsgi("/openapi.json", GatewayApp())
    operations = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        operations.append(result.ok())
    return operations


class _Tracebacks(logging.Handler):
    """Keeps the last logged exception, to explain a 5xx in its finding."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.last: str = ""

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.last = self.format(record)[-1500:]


@contextmanager
def _capture_tracebacks() -> Iterator[_Tracebacks]:
    handler = _Tracebacks()
    logger = logging.getLogger()
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


class Fuzzer:
    """Runs the generated cases of every operation against a fresh pair of seeded tenants."""

    def __init__(self, examples: int, seed: int, modes: tuple[GenerationMode, ...]) -> None:
        self.report = FuzzReport(seed, examples, [m.value for m in modes])
        self.examples = examples
        self.seed = seed
        self.modes = modes

    def run(
        self, only: Callable[[str], bool] = lambda _: True, progress: bool = False
    ) -> FuzzReport:
        started = time.monotonic()
        for operation in load_operations():
            if only(operation.label):
                self.fuzz_operation(operation)
                if progress:
                    print(
                        f"{operation.label}: {self.report.cases_by_operation[operation.label]} "
                        f"cases, {self.report.requests} requests so far",
                        file=sys.stderr,
                    )
        self.report.duration_seconds = time.monotonic() - started
        return self.report

    def fuzz_operation(self, operation: Any) -> None:
        """Every mode's cases of one operation, against a fresh pair of seeded tenants."""
        self.report.operations += 1
        services = fake_services()
        set_services(services)
        client = GatewayApp().client()
        owner, other = seed_tenant(services, client, "Alpha"), seed_tenant(services, client, "Beta")
        try:
            with _capture_tracebacks() as tracebacks:
                for mode in self.modes:
                    self._fuzz(operation, mode, owner, other, tracebacks)
        finally:
            set_services(None)

    def _fuzz(
        self,
        operation: Any,
        mode: GenerationMode,
        owner: Tenant,
        other: Tenant,
        tracebacks: _Tracebacks,
    ) -> None:
        # The operation's own route: a path may have several methods of different auth (an
        # ingest path's CORS preflight needs no write key).
        route = next(
            (r for r in ROUTES if (r.method, r.path) == (operation.method.upper(), operation.path)),
            route_for(operation.path),
        )
        auth = route.auth if route is not None else "none"
        params = {p.name: owner.param(p.name) for p in operation.path_parameters}
        strategy = operation.as_strategy(mode)
        if params:
            # Mostly the owner's real ids (handlers run deep), sometimes invented ones.
            owned = operation.as_strategy(mode, path_parameters=params)
            strategy = st.one_of(owned, owned, owned, strategy)

        @settings(
            max_examples=self.examples,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @hypothesis.seed(self.seed)
        @given(case=strategy)
        def fuzz(case: Any) -> None:
            self._one_case(case, auth, owner, other, tracebacks)

        try:
            fuzz()
        except hypothesis.errors.Unsatisfiable as error:
            # e.g. no negative case exists for an operation without inputs.
            self.report.not_generated[f"{operation.label} [{mode.value}]"] = str(error)[:160]

    def _one_case(
        self, case: Any, auth: str, owner: Tenant, other: Tenant, tracebacks: _Tracebacks
    ) -> None:
        self.report.cases += 1
        self.report.cases_by_operation[case.operation.label] += 1
        pick = zlib.crc32(repr((case.path_parameters, case.query, case.body)).encode())
        for credential, headers in _credentials(auth, owner, other, pick):
            tracebacks.last = ""
            response = case.call(headers=headers)
            if headers and not set(headers) <= set(response.request.headers):
                # A negative case that removes the credential header: schemathesis drops it.
                credential = "missing"
            self.report.requests += 1
            self.report.requests_by_credential[credential] += 1
            self.report.statuses[str(response.status_code)] += 1
            for check, message in self._verdicts(case, response, headers, credential, owner, other):
                if response.status_code >= 500 and tracebacks.last:
                    message += "\n" + tracebacks.last
                finding = Finding(
                    operation=case.operation.label,
                    check=check,
                    token=credential,
                    status=response.status_code,
                    detail=message[:3000],
                    reproduce=case.as_curl_command(headers=headers)[:3000],
                )
                self.report.findings.append(finding)

    def _verdicts(
        self,
        case: Any,
        response: Any,
        headers: dict[str, str],
        credential: str,
        owner: Tenant,
        other: Tenant,
    ) -> Iterator[tuple[str, str]]:
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as group:
            for failure in group.exceptions:
                yield _check_name(failure), f"{failure.title}: {failure.message}"
        status = response.status_code
        route, _, _ = find_route(ROUTES, case.method.upper(), case.formatted_path)
        if route is None or route.path != case.operation.path:
            return  # the generated path parameters made it another path: nothing more to expect
        if credential in ("missing", "malformed"):
            allowed = {401} if route.auth == "bearer" else {400, 401, 413}
            if status not in allowed:
                yield "hostile_credentials_refused", f"{credential} credentials answered {status}"
        own_workspace = case.path_parameters.get("workspace_id") == owner.workspace_id
        if credential == "foreign" and own_workspace and status != 404:
            yield "foreign_workspace_not_found", f"another workspace's token answered {status}"
        if credential in ("valid", "foreign"):
            # The tenant whose token was sent sees nothing of the other one it did not send.
            caller, stranger = (other, owner) if credential == "foreign" else (owner, other)
            sent = unquote(str(response.request.url)) + _text(response.request.body)
            leaked = [
                what
                for what, value in stranger.markers().items()
                if value in response.text and value not in sent
            ]
            if leaked:
                yield "no_foreign_data", f"the {caller.name} token saw {stranger.name}'s {leaked}"


def _text(body: Any) -> str:
    if isinstance(body, bytes):
        return body.decode("utf-8", errors="replace")
    return "" if body is None else str(body)


def _check_name(failure: Failure) -> str:
    checks = type(failure).checks
    return checks[0] if checks else type(failure).__name__


def _credentials(
    auth: str, owner: Tenant, other: Tenant, pick: int
) -> list[tuple[str, dict[str, str]]]:
    if auth == "bearer":
        return [
            ("valid", owner.auth),
            ("missing", {}),
            ("malformed", {"Authorization": MALFORMED_BEARER[pick % len(MALFORMED_BEARER)]}),
            ("foreign", other.auth),
        ]
    if auth == "write_key":
        return [
            ("valid", {"X-Write-Key": owner.write_key}),
            ("missing", {}),
            ("malformed", {"X-Write-Key": MALFORMED_WRITE_KEY[pick % len(MALFORMED_WRITE_KEY)]}),
        ]
    return [("valid", {})]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=100, help="per operation and mode")
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--output", type=Path, help="write the figures here as JSON")
    parser.add_argument("--operation", help="only operations whose label contains this")
    args = parser.parse_args(argv)
    import os

    os.environ.setdefault("PUBSUB_EMULATOR_HOST", ".")  # no real client may be built
    os.environ.setdefault("FIRESTORE_EMULATOR_HOST", ".")
    # Errors reach the finding that caused them (_Tracebacks), not the console.
    logging.getLogger().setLevel(logging.ERROR)
    fuzzer = Fuzzer(args.examples, args.seed, (GenerationMode.POSITIVE, GenerationMode.NEGATIVE))
    report = fuzzer.run(lambda label: args.operation is None or args.operation in label, True)
    summary = report.summary()
    text = json.dumps(summary, indent=2, ensure_ascii=False)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n")
        stamp = summary["generated_at"].replace("-", "").replace(":", "")
        stamped = args.output.with_name(args.output.name.replace("latest", stamp))
        if stamped != args.output:
            stamped.write_text(text + "\n")
    print(
        f"{summary['operations']} operations, {summary['generated_cases']} generated cases, "
        f"{summary['requests']} requests in {summary['duration_seconds']} s: "
        f"{summary['server_errors']} 5xx, {summary['check_failures']} check failures"
    )
    for finding in summary["distinct_failures"]:
        print(
            f"  {finding['operation']} [{finding['token']}] {finding['check']} "
            f"-> {finding['status']}\n{finding['detail']}\n{finding['reproduce']}"
        )
    # Any check failure fails the run.
    return 1 if summary["check_failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
