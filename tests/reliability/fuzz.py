"""API fuzzing: schemathesis generates requests for every operation of the served OpenAPI
document, each sent with a valid credential and with hostile ones: none, malformed, another
workspace's. Every answer must be a documented status with a conforming body; hostile
credentials must get 401, another workspace's token 404 on workspace paths, and no answer may
carry another workspace's data.

Three kinds of cases per operation: `positive` and `negative` (schemathesis' own) and `hostile`
(positive cases with a part replaced by what real backends refuse: reserved and path-like ids,
odd keys, unpaired surrogates, huge numbers; see hostile.py). Then every path is sent each
method its routes do not declare (TRACE, PROPFIND, CONNECT, random tokens...): the answer must
be a JSON refusal.

Two targets: `in-process` (the default: `GatewayApp`, the real function entry points over the
in-memory fakes, fresh tenants for each operation) and `stack` (fuzz_stack.py: emulators, every
function a process and the local gateway, on free ports of its own, started and stopped by the
run; requests go over HTTP).

    python -m tests.reliability.fuzz --examples 100 --output bench/results/reliability-latest.json
    python -m tests.reliability.fuzz --target stack --examples 5 \\
        --output bench/results/reliability-stack-latest.json

run the long fuzz (`make reliability`); `test_fuzz_api.py` runs a short in-process one in
`make test`, `test_fuzz_stack.py` a short stack one (marked `reliability`). Every finding
carries a curl command that replays its request and the command that regenerates its case.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shlex
import sys
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urljoin, urlsplit

import hypothesis
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from shared.api.routes import ROUTES
from shared.bootstrap import set_services
from shared.http.routing import Route, find_route
from tests.reliability.harness import (
    GatewayApp,
    Tenant,
    curl_command,
    fake_services,
    route_for,
    schema_operations,
    seed_tenant,
)
from tests.reliability.hostile import METHODS, can_be_hostile, hostile_cases, token_methods

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
    "answered",
    "refusal_is_json",
    "undeclared_method_refused",
    "function_logged_no_traceback",
]
MODES = ("positive", "negative", "hostile")
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
# What a method no route of a path declares may get: refused for want of credentials, an
# unknown resource, or the method itself.
REFUSED_METHOD_STATUSES = {401, 404, 405}
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Finding:
    """One check that failed: on which operation, with which credential, and how to replay it:
    `reproduce` sends the same request again, `rerun` generates the same case again."""

    operation: str
    mode: str
    check: str
    token: str
    status: int
    detail: str
    reproduce: str
    rerun: str


@dataclass
class FuzzReport:
    target: str
    seed: int
    examples_per_operation: int
    modes: list[str]
    operations: int = 0
    cases: int = 0
    requests: int = 0
    duration_seconds: float = 0.0
    requests_by_credential: Counter[str] = field(default_factory=Counter)
    requests_by_mode: Counter[str] = field(default_factory=Counter)
    server_errors_by_mode: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    cases_by_operation: Counter[str] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    not_generated: dict[str, str] = field(default_factory=dict)
    method_paths: int = 0
    methods: list[str] = field(default_factory=list)
    target_details: dict[str, Any] = field(default_factory=dict)

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status.startswith("5"))

    def count(self, mode: str, credential: str, status: int) -> None:
        self.requests += 1
        self.requests_by_mode[mode] += 1
        self.requests_by_credential[credential] += 1
        self.statuses[str(status)] += 1
        if status >= 500:
            self.server_errors_by_mode[mode] += 1

    def distinct(self) -> dict[tuple[str, str, str, str, int], Finding]:
        """One finding per operation, mode, check, credential and status (the first seen)."""
        seen: dict[tuple[str, str, str, str, int], Finding] = {}
        for f in self.findings:
            seen.setdefault((f.operation, f.mode, f.check, f.token, f.status), f)
        return seen

    def summary(self) -> dict[str, Any]:
        distinct = self.distinct()
        modes = [*self.modes, "methods"]  # what sends requests; "logs" findings send none
        return {
            "kind": "api-fuzz",
            "target": self.target,
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
            "requests_by_mode": {m: self.requests_by_mode[m] for m in modes},
            "requests_by_credential": dict(sorted(self.requests_by_credential.items())),
            "statuses": dict(sorted(self.statuses.items())),
            "server_errors": self.server_errors,
            "server_errors_by_mode": {m: self.server_errors_by_mode[m] for m in modes},
            "check_failures": len(self.findings),
            "check_failures_by_mode": {
                m: sum(f.mode == m for f in self.findings) for m in [*modes, "logs"]
            },
            "distinct_failures": [asdict(f) for f in distinct.values()],
            "method_sweep": {"paths": self.method_paths, "methods": self.methods},
            "not_generated": self.not_generated,
            "cases_by_operation": dict(sorted(self.cases_by_operation.items())),
            "duration_seconds": round(self.duration_seconds, 1),
            **({"target_details": self.target_details} if self.target_details else {}),
        }


class Target(Protocol):
    """Where the cases go: what the fuzzer needs of the in-process bed or of a real stack."""

    name: str

    def open(self) -> None: ...
    def close(self) -> None: ...
    def operations(self) -> list[Any]: ...
    def prepare(self, operations: list[Any]) -> None: ...
    def tenants(self, operation: Any) -> AbstractContextManager[tuple[Tenant, Tenant]]: ...
    def call(self, case: Any, headers: dict[str, str]) -> Any: ...
    def send(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, str, str]: ...
    def curl(self, method: str, path: str, headers: dict[str, str]) -> str: ...
    def explain(self, path: str) -> str: ...
    def function_tracebacks(self) -> dict[str, dict[str, Any]]: ...
    def details(self) -> dict[str, Any]: ...


def load_operations() -> list[Any]:
    """Every operation of the document the API serves at /openapi.json (through the gateway)."""
    return schema_operations(schemathesis.openapi.from_wsgi("/openapi.json", GatewayApp()))


class _Tracebacks(logging.Handler):
    """Keeps the last logged exception, to explain a 5xx in its finding."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.last: str = ""

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.last = self.format(record)[-1500:]


class InProcessTarget:
    """`GatewayApp` over the in-memory fakes: fresh services and tenants for each operation."""

    name = "in-process"
    base_url = "http://localhost"

    def __init__(self) -> None:
        self._tracebacks = _Tracebacks()

    def open(self) -> None:
        logging.getLogger().addHandler(self._tracebacks)

    def close(self) -> None:
        logging.getLogger().removeHandler(self._tracebacks)

    def operations(self) -> list[Any]:
        return load_operations()

    def prepare(self, operations: list[Any]) -> None:
        """Nothing to prepare: seeding in process takes milliseconds."""

    @contextmanager
    def tenants(self, operation: Any) -> Iterator[tuple[Tenant, Tenant]]:
        services = fake_services()
        set_services(services)
        client = GatewayApp().client()
        try:
            yield seed_tenant(services, client, "Alpha"), seed_tenant(services, client, "Beta")
        finally:
            set_services(None)

    def call(self, case: Any, headers: dict[str, str]) -> Any:
        self._tracebacks.last = ""
        return case.call(headers=headers)

    def send(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, str, str]:
        self._tracebacks.last = ""
        response = GatewayApp().client().open(path, method=method, headers=headers)
        return response.status_code, response.content_type or "", response.get_data(as_text=True)

    def curl(self, method: str, path: str, headers: dict[str, str]) -> str:
        return curl_command(self.base_url, method, path, headers)

    def explain(self, path: str) -> str:
        return self._tracebacks.last

    def function_tracebacks(self) -> dict[str, dict[str, Any]]:
        """None to collect: in process, an exception reaches the answer (and `explain`), and no
        pipeline function runs during the fuzz (the fake publisher only records)."""
        return {}

    def details(self) -> dict[str, Any]:
        return {}


class Fuzzer:
    """Runs the generated cases of every operation, then the method sweep, against a target."""

    def __init__(
        self,
        examples: int,
        seed: int,
        modes: tuple[str, ...] = MODES,
        target: Target | None = None,
    ) -> None:
        self.target: Target = target if target is not None else InProcessTarget()
        self.report = FuzzReport(self.target.name, seed, examples, list(modes))
        self.examples = examples
        self.seed = seed
        self.modes = modes

    def run(
        self, only: Callable[[str], bool] = lambda _: True, progress: bool = False
    ) -> FuzzReport:
        """Every selected operation, then every selected path's undeclared methods (a path is
        selected as `* PATH`). The target is opened and closed around the run."""
        started = time.monotonic()
        self.target.open()
        try:
            operations = [op for op in self.target.operations() if only(op.label)]
            self.target.prepare(operations)
            for operation in operations:
                self.fuzz_operation(operation)
                if progress:
                    print(
                        f"{operation.label}: {self.report.cases_by_operation[operation.label]} "
                        f"cases, {self.report.requests} requests so far",
                        file=sys.stderr,
                    )
            paths = [path for path in _paths() if only(f"* {path}")]
            if paths:
                self.sweep_methods(paths)
            self._collect_function_tracebacks()
            self.report.target_details = self.target.details()
        finally:
            self.target.close()
        self.report.duration_seconds = time.monotonic() - started
        return self.report

    def fuzz_operation(self, operation: Any) -> None:
        """Every mode's cases of one operation, against the target's pair of seeded tenants."""
        self.report.operations += 1
        with self.target.tenants(operation) as (owner, other):
            for mode in self.modes:
                self._fuzz(operation, mode, owner, other)

    def _fuzz(self, operation: Any, mode: str, owner: Tenant, other: Tenant) -> None:
        # The operation's own route: a path may have several methods of different auth (an
        # ingest path's CORS preflight needs no write key).
        route = next(
            (r for r in ROUTES if (r.method, r.path) == (operation.method.upper(), operation.path)),
            route_for(operation.path),
        )
        auth = route.auth if route is not None else "none"
        if mode == "hostile" and not can_be_hostile(operation):
            self.report.not_generated[f"{operation.label} [{mode}]"] = (
                "no path parameter, query or body to make hostile"
            )
            return
        generation = GenerationMode.NEGATIVE if mode == "negative" else GenerationMode.POSITIVE
        params = {p.name: owner.param(p.name) for p in operation.path_parameters}
        strategy = operation.as_strategy(generation)
        if params:
            # Mostly the owner's real ids (handlers run deep), sometimes invented ones.
            owned = operation.as_strategy(generation, path_parameters=params)
            strategy = st.one_of(owned, owned, owned, strategy)
        if mode == "hostile":
            strategy = hostile_cases(strategy)

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
            self._one_case(case, mode, auth, owner, other)

        try:
            fuzz()
        except hypothesis.errors.Unsatisfiable as error:
            # e.g. no negative case exists for an operation without inputs.
            self.report.not_generated[f"{operation.label} [{mode}]"] = str(error)[:160]

    def _one_case(self, case: Any, mode: str, auth: str, owner: Tenant, other: Tenant) -> None:
        self.report.cases += 1
        self.report.cases_by_operation[case.operation.label] += 1
        pick = zlib.crc32(repr((case.path_parameters, case.query, case.body)).encode())
        for credential, headers in _credentials(auth, owner, other, pick):
            try:
                response = self.target.call(case, headers)
            except requests.RequestException as error:
                # Over HTTP: no answer within the target's timeout, or the connection dropped.
                self.report.count(mode, credential, 0)
                self._found(
                    case.operation.label,
                    mode,
                    "answered",
                    credential,
                    0,
                    f"no answer: {error!r}",
                    case.as_curl_command(headers=headers),
                )
                continue
            if headers and not set(headers) <= set(response.request.headers):
                # A negative case that removes the credential header: schemathesis drops it.
                credential = "missing"
            self.report.count(mode, credential, response.status_code)
            for check, message in self._verdicts(case, response, headers, credential, owner, other):
                if response.status_code >= 500:
                    message += "\n" + self.target.explain(case.formatted_path)
                self._found(
                    case.operation.label,
                    mode,
                    check,
                    credential,
                    response.status_code,
                    message,
                    case.as_curl_command(headers=headers),
                )

    def _found(
        self,
        operation: str,
        mode: str,
        check: str,
        credential: str,
        status: int,
        detail: str,
        reproduce: str,
    ) -> None:
        rerun = shlex.join(
            [
                "python",
                "-m",
                "tests.reliability.fuzz",
                "--target",
                self.target.name,
                "--seed",
                str(self.seed),
                "--examples",
                str(self.examples),
                "--operation",
                operation,
            ]
        )
        self.report.findings.append(
            Finding(
                operation=operation,
                mode=mode,
                check=check,
                token=credential,
                status=status,
                detail=detail.strip()[:3000],
                reproduce=reproduce[:3000],
                rerun=rerun,
            )
        )

    def _verdicts(
        self,
        case: Any,
        response: Any,
        headers: dict[str, str],
        credential: str,
        owner: Tenant,
        other: Tenant,
    ) -> Iterator[tuple[str, str]]:
        status = response.status_code
        route = _served_route(case.method.upper(), str(response.request.url))
        # Path parameters such as "", ".." or "a%2Fb" make it another path (or none): then the
        # operation's own contract does not apply, only that the answer is a JSON refusal or
        # another operation's success, never a 5xx.
        elsewhere = route is None or route.path != case.operation.path
        try:
            checks = [not_a_server_error] if elsewhere else CHECKS
            case.validate_response(response, checks=checks, headers=headers)
        except FailureGroup as group:
            for failure in group.exceptions:
                yield _check_name(failure), f"{failure.title}: {failure.message}"
        except Failure as failure:
            yield _check_name(failure), f"{failure.title}: {failure.message}"
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
        if route is None or elsewhere:
            content_type = _header(response, "Content-Type")
            if status >= 400 and not _json_error(content_type, response.text):
                yield (
                    "refusal_is_json",
                    f"answered {status} {content_type!r}: {response.text[:200]}",
                )
            return
        if credential in ("missing", "malformed"):
            allowed = {401} if route.auth == "bearer" else {400, 401, 413}
            if status not in allowed:
                yield "hostile_credentials_refused", f"{credential} credentials answered {status}"
        own_workspace = case.path_parameters.get("workspace_id") == owner.workspace_id
        if credential == "foreign" and own_workspace and status != 404:
            yield "foreign_workspace_not_found", f"another workspace's token answered {status}"

    def _collect_function_tracebacks(self) -> None:
        """A function that logged a traceback failed on something the fuzz sent, maybe not in
        its answer: the pipeline's functions (process, deliver, dead_letters) answer Pub/Sub,
        which retries them, so an event or a configuration that breaks one shows only there."""
        for function, logged in self.target.function_tracebacks().items():
            self._found(
                f"(function {function})",
                "logs",
                "function_logged_no_traceback",
                "-",
                0,
                f"{logged['count']} tracebacks in its log; the first:\n{logged['first']}",
                "(no single request: rerun the target, or keep its logs with --stack-root)",
            )

    # --- methods no route declares ------------------------------------------------------------

    def sweep_methods(self, paths: list[str]) -> None:
        """Every method each path's routes do not declare (the standard ones, WebDAV's, CONNECT
        and random tokens), with the owner's credential and with none, on the owner's real ids:
        the answer must be a JSON refusal (401, 404 or 405), never 5xx, never the server's HTML.
        HEAD is held to what GET answers where GET is declared (its body is empty by rule)."""
        methods = [*METHODS, *token_methods(self.seed)]
        self.report.methods = methods
        with self.target.tenants(None) as (owner, other):
            for path in paths:
                self.report.method_paths += 1
                routes = [route for route in ROUTES if route.path == path]
                declared = {route.method for route in routes}
                auth = _strictest_auth(routes)
                concrete = owner.path(routes[0])
                for method in methods:
                    if method in declared:
                        continue  # the operation's own cases cover it
                    for credential, headers in _credentials(auth, owner, other, 0)[:2]:
                        self._one_method(path, concrete, method, declared, credential, headers)

    def _one_method(
        self,
        path: str,
        concrete: str,
        method: str,
        declared: set[str],
        credential: str,
        headers: dict[str, str],
    ) -> None:
        try:
            status, content_type, text = self.target.send(method, concrete, headers)
        except requests.RequestException as error:
            self.report.count("methods", credential, 0)
            self._found(
                f"* {path}",
                "methods",
                "answered",
                credential,
                0,
                f"no answer: {error!r}",
                self.target.curl(method, concrete, headers),
            )
            return
        self.report.count("methods", credential, status)
        problems = []
        if status >= 500:
            problems.append(("not_a_server_error", f"{method} answered {status}"))
        if method == "HEAD" and "GET" in declared:
            pass  # answered as GET is: the operation's own checks cover the status
        elif status not in REFUSED_METHOD_STATUSES:
            problems.append(
                ("undeclared_method_refused", f"{method} answered {status}, not 401, 404 or 405")
            )
        if method != "HEAD" and not _json_error(content_type, text):
            problems.append(
                (
                    "undeclared_method_refused",
                    f"{method} answered {content_type or 'no Content-Type'}, not a JSON error: "
                    f"{text[:200]!r}",
                )
            )
        for check, message in problems:
            if status >= 500:
                message += "\n" + self.target.explain(concrete)
            self._found(
                f"* {path}",
                "methods",
                check,
                credential,
                status,
                message,
                self.target.curl(method, concrete, headers),
            )


def _served_route(method: str, url: str) -> Route | None:
    """The route that serves `url`: dot segments resolved, as the HTTP client sends the path,
    then percent-decoded, as the server routes it (a "%2F" separates segments there)."""
    path = urlsplit(urljoin(url, urlsplit(url).path)).path
    route, _, _ = find_route(ROUTES, method, unquote(path))
    return route


def _header(response: Any, name: str) -> str:
    """A header's first value (schemathesis keeps a list of values per header, by any case)."""
    for key, values in response.headers.items():
        if key.lower() == name.lower():
            return str(values[0] if isinstance(values, list) and values else values)
    return ""


def _paths() -> list[str]:
    """Every path of the route table, once, in its order."""
    return list(dict.fromkeys(route.path for route in ROUTES))


def _strictest_auth(routes: list[Route]) -> str:
    """The credential a path's routes ask for (a preflight route asks for none)."""
    auths = {route.auth for route in routes}
    return next((auth for auth in ("bearer", "write_key") if auth in auths), "none")


def _json_error(content_type: str, text: str) -> bool:
    if not content_type.startswith("application/json"):
        return False
    try:
        body = json.loads(text)
    except ValueError:
        return False
    return isinstance(body, dict) and "error" in body


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


def _target(name: str, stack_root: Path | None) -> Target:
    if name == "stack":
        from tests.reliability.fuzz_stack import StackTarget

        return StackTarget(stack_root)
    # In process no real client may be built: an unroutable emulator host fails one at once.
    os.environ.setdefault("PUBSUB_EMULATOR_HOST", ".")
    os.environ.setdefault("FIRESTORE_EMULATOR_HOST", ".")
    return InProcessTarget()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--target", choices=("in-process", "stack"), default="in-process")
    parser.add_argument("--examples", type=int, default=100, help="per operation and mode")
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--output", type=Path, help="write the figures here as JSON")
    parser.add_argument(
        "--operation", help="only operations whose label contains this (paths: `* PATH`)"
    )
    parser.add_argument(
        "--stack-root", type=Path, help="stack mode: keep its logs here (default: a temp dir)"
    )
    args = parser.parse_args(argv)
    # Errors reach the finding that caused them (`explain`), not the console.
    logging.getLogger().setLevel(logging.ERROR)
    fuzzer = Fuzzer(args.examples, args.seed, MODES, _target(args.target, args.stack_root))
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
        f"[{summary['target']}] {summary['operations']} operations, "
        f"{summary['generated_cases']} generated cases, {summary['requests']} requests in "
        f"{summary['duration_seconds']} s: {summary['server_errors']} 5xx, "
        f"{summary['check_failures']} check failures"
    )
    for finding in summary["distinct_failures"]:
        print(
            f"  {finding['operation']} [{finding['mode']}, {finding['token']}] "
            f"{finding['check']} -> {finding['status']}\n{finding['detail']}\n"
            f"{finding['reproduce']}\n{finding['rerun']}"
        )
    # Any check failure fails the run.
    return 1 if summary["check_failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
