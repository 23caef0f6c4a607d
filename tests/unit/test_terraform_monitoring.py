"""Offline checks of terraform/modules/monitoring: every metric the dashboard and the alerts name
is one Google Cloud publishes or a log-based metric counting a line the code really writes.

The lines are made by running deliver and process on the in-memory fakes; the module's locals
(which hold the dashboard) have no resource, so `terraform console` evaluates them offline.
Each checker takes a terraform directory, so the negative tests run it on a mutated copy.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.cost import model
from shared import structured_log
from shared.api.routes import ROUTES
from shared.domain.errors import Unavailable
from shared.domain.pipeline import FINAL_STATUSES
from shared.domain.routing import deliver_subscription_id
from shared.domain.sources import process_subscription_id
from shared.services.deliver import DELIVERY_OUTCOME, RetryDelivery
from shared.services.process import EVENTS_INSERT_FAILED
from shared.services.topology import DEAD_LETTERS_SUBSCRIPTION
from tests.unit.pipeline_fixtures import (
    add_destination,
    delivery_message,
    http_error,
    make_events,
    make_pipeline,
    ok,
    source_message,
    track,
)
from tests.unit.test_terraform import ROOT, TERRAFORM, _parse, deployed_functions, module_blocks

MONITORING = Path("modules/monitoring")
# Metrics Google Cloud publishes by itself (cloud.google.com/monitoring/api/metrics_gcp): the
# only types the module may name besides its own log-based metrics.
BUILT_IN_METRICS = {
    "run.googleapis.com/request_count",
    "run.googleapis.com/request_latencies",
    "run.googleapis.com/container/instance_count",
    "pubsub.googleapis.com/subscription/num_undelivered_messages",
    "pubsub.googleapis.com/subscription/oldest_unacked_message_age",
    "pubsub.googleapis.com/topic/send_message_operation_count",
    "bigquery.googleapis.com/storage/insertall_inserted_rows",
    "monitoring.googleapis.com/uptime_check/check_passed",
    "memorystore.googleapis.com/instance/memory/maximum_utilization",
}
# A metric type in a filter, as written in HCL (quotes escaped).
METRIC_TYPE = re.compile(r'metric\.type=\\"([^"\\]+)\\"')
LOG_METRIC_REFERENCE = re.compile(r"\$\{local\.log_metric_types\.(\w+)\}")
LOCAL_REFERENCE = re.compile(r"\$\{local\.([\w.]+)\}")
# The log filters' terms: jsonPayload.<field>="value" or jsonPayload.<field>=("a" OR "b").
FILTER_TERM = re.compile(r'jsonPayload\.(\w+)=(?:"([^"]*)"|\(((?:"[^"]*"(?: OR )?)+)\))')


# --- reading the module ---------------------------------------------------------------------


def monitoring_blocks(terraform: Path = TERRAFORM) -> dict[str, dict[str, Any]]:
    return module_blocks(terraform / MONITORING)


def resolve(text: str, locals_: dict[str, Any]) -> str:
    """An HCL string with its `${local.x.y}` references replaced and its quotes unescaped."""
    text = text.replace('\\"', '"')

    def value(match: re.Match[str]) -> str:
        found: Any = locals_
        for key in match.group(1).split("."):
            found = found[key]
        return resolve(str(found), locals_)

    return LOCAL_REFERENCE.sub(value, text)


def log_metrics(terraform: Path = TERRAFORM) -> dict[str, dict[str, Any]]:
    """The module's log-based metrics, their filters resolved."""
    locals_ = monitoring_blocks(terraform)["locals"]
    return {
        key: {**metric, "filter": resolve(metric["filter"], locals_)}
        for key, metric in locals_["log_metrics"].items()
    }


def filter_terms(log_filter: str) -> dict[str, set[str]]:
    """A log filter of jsonPayload terms joined by AND: each field with the values it accepts."""
    terms = [term.strip() for term in log_filter.split(" AND ")]
    accepted: dict[str, set[str]] = {}
    for term in terms:
        match = FILTER_TERM.fullmatch(term)
        assert match, f"{term!r}: not a jsonPayload term this test can read"
        field, single, several = match.groups()
        accepted[field] = {single} if several is None else set(re.findall(r'"([^"]*)"', several))
    return accepted


def selects(log_filter: str, line: dict[str, Any]) -> bool:
    return all(str(line.get(field)) in values for field, values in filter_terms(log_filter).items())


def evaluate_locals(
    terraform: Path, tmp_path: Path, functions: dict[str, tuple[str, int]]
) -> dict[str, Any]:
    """The module's locals.tf, evaluated by `terraform console` for these functions."""
    binary = shutil.which("terraform")
    if binary is None:
        pytest.skip("terraform is not installed")
    work = tmp_path / "monitoring_locals"
    work.mkdir()
    for name in ("variables.tf", "locals.tf"):
        shutil.copy(terraform / MONITORING / name, work / name)
    entries = ", ".join(
        f'{name} = {{ service = "{service}", max_instances = {most} }}'
        for name, (service, most) in functions.items()
    )
    result = subprocess.run(
        [
            binary,
            "console",
            "-no-color",
            "-var=project_id=streams-test",
            "-var=name_prefix=streams",
            "-var=dead_letters_topic=streams-dead-letters",
            f"-var=functions={{ {entries} }}",
        ],
        cwd=work,
        input="base64encode(jsonencode({ dashboard = local.dashboard }))",
        check=True,
        capture_output=True,
        text=True,
        env={"CHECKPOINT_DISABLE": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        timeout=60,
    )
    evaluated: dict[str, Any] = json.loads(base64.b64decode(json.loads(result.stdout.strip())))
    return evaluated


def deployed_services() -> dict[str, tuple[str, int]]:
    """Every function's Cloud Run service (prefix streams) and default max_instances."""
    return {
        name: (f"streams-{name.replace('_', '-')}", int(function["size"]["max_instances"]))
        for name, function in deployed_functions().items()
    }


# --- the lines the code writes --------------------------------------------------------------


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(record.getMessage()))


@pytest.fixture
def written() -> Iterator[list[dict[str, Any]]]:
    """Every structured line written during the test, as Cloud Logging's jsonPayload."""
    handler = _Lines()
    logger = logging.getLogger(structured_log.LOGGER_NAME)
    logger.addHandler(handler)
    yield handler.lines
    logger.removeHandler(handler)


def pipeline_lines(written: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The lines of a delivery that succeeds, one that is retried, and a failed BigQuery insert."""
    pipeline = make_pipeline([ok(), http_error(503)])
    add_destination(pipeline.store, "dest-1")
    pipeline.deliverer.deliver(delivery_message("msg-1"))
    with pytest.raises(RetryDelivery):
        pipeline.deliverer.deliver(delivery_message("msg-2"))
    pipeline.events.fail = Unavailable("BigQuery refused 1 rows")
    with pytest.raises(Unavailable):
        pipeline.processor.process(source_message(make_events(track(messageId="msg-3"))))
    return written


def log_metric_problems(terraform: Path, lines: list[dict[str, Any]]) -> list[str]:
    """Log-based metrics whose filter selects none of the lines, or whose labels read a field
    the selected lines lack."""
    problems = []
    resource = monitoring_blocks(terraform)["resource"]["google_logging_metric.counters"]
    if resource["for_each"] != "${local.log_metrics}":
        problems.append("google_logging_metric.counters does not define local.log_metrics")
    if "EXTRACT(jsonPayload.${key})" not in resource["label_extractors"]:
        problems.append("labels are not extracted from the jsonPayload fields of their name")
    for key, metric in log_metrics(terraform).items():
        selected = [line for line in lines if selects(metric["filter"], line)]
        if not selected:
            problems.append(f"{key}: {metric['filter']} selects no line the code writes")
        for label in metric["labels"]:
            if any(label not in line for line in selected):
                problems.append(f"{key}: label {label} is not a field of the lines it counts")
    return problems


# --- checkers -------------------------------------------------------------------------------


def unknown_metric_types(terraform: Path = TERRAFORM) -> list[str]:
    """Metric types the module's charts and alerts name that are neither built in nor its own
    log-based metrics."""
    defined = set(monitoring_blocks(terraform)["locals"]["log_metrics"])
    problems = []
    for path in sorted((terraform / MONITORING).glob("*.tf")):
        for metric_type in METRIC_TYPE.findall(path.read_text()):
            own = LOG_METRIC_REFERENCE.fullmatch(metric_type)
            if own and own.group(1) not in defined:
                problems.append(f"{path.name}: log-based metric {own.group(1)} is not defined")
            elif not own and metric_type not in BUILT_IN_METRICS:
                problems.append(f"{path.name}: {metric_type} is not a known built-in metric")
    return problems


def instance_chart_problems(
    dashboard: dict[str, Any], functions: dict[str, tuple[str, int]]
) -> list[str]:
    """Functions without an instances chart of their service under a line at their max."""
    charts = [tile["widget"] for tile in dashboard["mosaicLayout"]["tiles"]]
    problems = []
    for name, (service, most) in functions.items():
        shown = [
            chart
            for chart in charts
            if any(
                "run.googleapis.com/container/instance_count" in filter_
                and f'resource.labels.service_name="{service}"' in filter_
                for filter_ in (
                    data["timeSeriesQuery"]["timeSeriesFilter"]["filter"]
                    for data in chart["xyChart"]["dataSets"]
                )
            )
        ]
        if not shown:
            problems.append(f"{name}: no instances chart of {service}")
        elif [t["value"] for t in shown[0]["xyChart"].get("thresholds", [])] != [most]:
            problems.append(f"{name}: its instances chart has no line at max_instances {most}")
    return problems


def alerts_without_channels(terraform: Path = TERRAFORM) -> list[str]:
    """Alert policies that do not notify the channels variable."""
    blocks = monitoring_blocks(terraform)
    problems = []
    channels = blocks["locals"]["notification_channels"]
    if "var.notification_channels" not in channels:
        problems.append("local.notification_channels is not made of var.notification_channels")
    for address, body in blocks["resource"].items():
        notified = body.get("notification_channels")
        policy = address.startswith("google_monitoring_alert_policy.")
        if policy and notified != "${local.notification_channels}":
            problems.append(f"{address} does not notify local.notification_channels")
    return problems


# --- tests: the lines the metrics count -----------------------------------------------------


def test_log_based_metrics_count_lines_the_code_writes(written: list[dict[str, Any]]) -> None:
    lines = pipeline_lines(written)
    assert [line["message"] for line in lines] == [
        DELIVERY_OUTCOME,
        DELIVERY_OUTCOME,
        EVENTS_INSERT_FAILED,
    ]
    delivered, retried, failed = lines
    assert {k: delivered[k] for k in ("destination_type", "status", "severity")} == {
        "destination_type": "webhook",
        "status": "delivered",
        "severity": "INFO",
    }
    assert (retried["status"], retried["severity"]) == ("retrying", "WARNING")
    assert (failed["error"], failed["rows"], failed["severity"]) == ("Unavailable", 1, "ERROR")
    assert log_metric_problems(TERRAFORM, lines) == []
    metrics = log_metrics()
    assert filter_terms(metrics["delivery_outcomes"]["filter"]) == {"message": {DELIVERY_OUTCOME}}
    assert filter_terms(metrics["events_insert_failures"]["filter"]) == {
        "message": {EVENTS_INSERT_FAILED}
    }


def test_only_settled_deliveries_lines_are_kept_out_of_storage(
    written: list[dict[str, Any]],
) -> None:
    blocks = monitoring_blocks()
    exclusion = blocks["resource"]["google_logging_project_exclusion.delivered_outcomes"]
    excluded = resolve(exclusion["filter"], blocks["locals"])
    assert filter_terms(excluded) == {"message": {DELIVERY_OUTCOME}, "status": set(FINAL_STATUSES)}
    delivered, retried, failed = pipeline_lines(written)
    assert selects(excluded, delivered)
    assert not selects(excluded, retried) and not selects(excluded, failed)


def test_a_line_is_one_json_object_on_stdout_under_the_functions_logging(tmp_path: Path) -> None:
    # The runtime's root logger: WARNING, with a handler of its own (functions-framework's, when
    # LOG_EXECUTION_ID is set) or none at all. Either way, one line, on stdout only.
    for root_handlers in ("[]", "[logging.StreamHandler(sys.stderr)]"):
        script = (
            "import logging, sys\n"
            f"logging.basicConfig(level=logging.WARNING, handlers={root_handlers}, force=True)\n"
            "from shared import structured_log\n"
            "structured_log.emit('delivery outcome', status='delivered', attempt=1)\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", script],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        assert result.stderr == ""
        [line] = result.stdout.splitlines()
        assert json.loads(line) == {
            "message": "delivery outcome",
            "severity": "INFO",
            "status": "delivered",
            "attempt": 1,
        }


# --- tests: the dashboard and the alerts ----------------------------------------------------


def test_every_metric_named_is_built_in_or_a_log_based_metric_of_the_module() -> None:
    assert unknown_metric_types() == []
    locals_ = monitoring_blocks()["locals"]
    assert locals_["log_metric_types"] == (
        "${{for key, metric in local.log_metrics : key => "
        '"logging.googleapis.com/user/${metric.name}"}}'
    )
    counters = monitoring_blocks()["resource"]["google_logging_metric.counters"]
    assert counters["name"] == "${each.value.name}"
    assert counters["filter"] == "${each.value.filter}"


def test_every_function_has_an_instances_chart_under_its_max(tmp_path: Path) -> None:
    functions = deployed_services()
    dashboard = evaluate_locals(TERRAFORM, tmp_path, functions)["dashboard"]
    assert instance_chart_problems(dashboard, functions) == []
    # The root module hands over every function, with the service name a gen2 function's
    # Cloud Run service has (its own) and its max_instances after overrides.
    call = module_blocks(TERRAFORM)["module"]["monitoring"]
    assert (
        "merge(module.http_functions, module.pubsub_functions, module.internal_functions)"
        in call["functions"]
    )
    assert "service = function.name" in call["functions"]
    assert "max_instances = local.sizes[name].max_instances" in call["functions"]
    function_module = module_blocks(TERRAFORM / "modules" / "function")
    assert function_module["locals"]["function_name"] == (
        '${var.name_prefix}-${replace(var.name, "_", "-")}'
    )


def test_the_dashboard_shows_what_issue_17_asks(tmp_path: Path) -> None:
    dashboard = evaluate_locals(TERRAFORM, tmp_path, deployed_services())["dashboard"]
    filters = [
        data["timeSeriesQuery"]["timeSeriesFilter"]
        for tile in dashboard["mosaicLayout"]["tiles"]
        for data in tile["widget"]["xyChart"]["dataSets"]
    ]
    text = [f["filter"] for f in filters]
    ingest = 'resource.labels.service_name="streams-ingest"'
    assert any("request_count" in f and ingest in f and '"5xx"' in f for f in text)
    reducers = {f["aggregation"].get("crossSeriesReducer") for f in filters}
    assert {"REDUCE_PERCENTILE_50", "REDUCE_PERCENTILE_99"} <= reducers
    assert any("insertall_inserted_rows" in f for f in text)
    for per_subscription in ("num_undelivered_messages", "oldest_unacked_message_age"):
        [chart] = [f for f in filters if per_subscription in f["filter"]]
        assert chart["aggregation"]["groupByFields"] == ["resource.label.subscription_id"]
    assert any('topic_id="streams-dead-letters"' in f for f in text)
    outcomes = [f for f in filters if "streams-delivery-outcomes" in f["filter"]]
    assert {'"delivered"' in f["filter"] for f in outcomes} == {True, False}
    assert all(
        "metric.label.destination_type" in f["aggregation"]["groupByFields"] for f in outcomes
    )
    assert any("streams-events-insert-failures" in f for f in text)


def test_every_alert_notifies_the_channels_variable() -> None:
    assert alerts_without_channels() == []
    call = module_blocks(TERRAFORM)["module"]["monitoring"]
    assert call["notification_channels"] == "${var.alert_notification_channels}"
    assert module_blocks(TERRAFORM)["variable"]["alert_notification_channels"]["default"] == []


def test_alerts_watch_ingest_5xx_backlog_age_dead_letters_and_bigquery_inserts() -> None:
    blocks = monitoring_blocks()
    policies = {
        address.split(".", 1)[1]: body["conditions"][0]
        for address, body in blocks["resource"].items()
        if address.startswith("google_monitoring_alert_policy.")
    }
    locals_ = blocks["locals"]

    ingest = policies["ingest_5xx"]["condition_threshold"][0]
    assert 'response_code_class="5xx"' in resolve(ingest["filter"], locals_)
    assert resolve(ingest["denominator_filter"], locals_) == resolve(
        "${local.ingest_requests}", locals_
    )
    ingest_service = 'service_name="${var.functions["ingest"].service}"'
    assert ingest_service in resolve(ingest["filter"], locals_)

    backlog = policies["backlog_age"]["condition_threshold"][0]
    assert "oldest_unacked_message_age" in resolve(backlog["filter"], locals_)
    assert backlog["threshold_value"] == "${var.backlog_age_alert_seconds}"
    call = module_blocks(TERRAFORM)["module"]["monitoring"]
    assert call["backlog_age_alert_seconds"] == "${var.backlog_age_alert_seconds}"

    dead_letters = policies["dead_letters"]["condition_threshold"][0]
    assert 'topic_id="${var.dead_letters_topic}"' in resolve(dead_letters["filter"], locals_)
    assert call["dead_letters_topic"] == "${local.dead_letters_topic}"

    inserts = policies["events_insert_failures"]["condition_matched_log"][0]
    assert resolve(inserts["filter"], locals_) == log_metrics()["events_insert_failures"]["filter"]

    # The Valkey window's memory, only where the window is in Valkey (bench/cost sizes it so).
    memory = policies["dedup_memory"]["condition_threshold"][0]
    assert "memorystore.googleapis.com/instance/memory/maximum_utilization" in memory["filter"]
    assert memory["threshold_value"] == 0.8 == model.VALKEY_MAX_FILL
    assert blocks["resource"]["google_monitoring_alert_policy.dedup_memory"]["count"] == (
        "${var.dedup_memory_alert ? 1 : 0}"
    )
    assert call["dedup_memory_alert"] == "${local.valkey}"


def test_backlog_charts_and_alert_cover_every_subscription_the_code_creates() -> None:
    prefix = monitoring_blocks()["locals"]["subscription_prefix"]
    for subscription in (
        process_subscription_id("src-1"),
        deliver_subscription_id("dest-1"),
        DEAD_LETTERS_SUBSCRIPTION,
    ):
        assert subscription.startswith(prefix), subscription


def test_the_uptime_check_calls_healthz_on_the_first_domain() -> None:
    check = monitoring_blocks()["resource"]["google_monitoring_uptime_check_config.healthz"]
    http = check["http_check"][0]
    assert (http["path"], http["port"], http["use_ssl"]) == ("/healthz", 443, True)
    assert check["monitored_resource"][0]["labels"]["host"] == "${var.uptime_host}"
    # The first domain behind the load balancer, ingest's own host with edge "direct"; whether
    # the check exists is a flag known when planning (the run.app host is not, at first).
    monitoring = module_blocks(TERRAFORM)["module"]["monitoring"]
    assert monitoring["uptime_host"] == (
        '${local.direct ? trimprefix(module.http_functions["ingest"].uri, "https://") : '
        "try(var.domains[0], null)}"
    )
    assert monitoring["uptime_check"] is True
    assert check["count"] == "${local.uptime_check ? 1 : 0}"
    # The route it calls exists, on ingest, and asks for no credentials (the check has none).
    [route] = [r for r in ROUTES if (r.method, r.path) == ("GET", http["path"])]
    assert (route.function, route.auth) == ("ingest", "none")


def test_the_budget_exists_only_with_a_billing_account() -> None:
    blocks = monitoring_blocks()
    budget = blocks["resource"]["google_billing_budget.project"]
    assert budget["count"] == "${var.budget != null ? 1 : 0}"
    assert budget["amount"][0]["specified_amount"][0]["units"] == "${tostring(var.budget.amount)}"
    root = module_blocks(TERRAFORM)
    assert root["variable"]["billing_account"]["default"] is None
    assert root["module"]["monitoring"]["budget"].startswith(
        "${var.billing_account == null ? null : "
    )
    assert "var.monthly_budget" in root["module"]["monitoring"]["budget"]


def test_the_monitoring_and_budgets_apis_are_enabled() -> None:
    apis = module_blocks(TERRAFORM)["locals"]["apis"]
    assert '"monitoring.googleapis.com"' in apis.replace('\\"', '"')
    assert '"billingbudgets.googleapis.com"' in apis.replace('\\"', '"')


# --- negative tests: the checkers catch what is wrong ---------------------------------------


@pytest.fixture
def terraform_copy(tmp_path: Path) -> Iterator[Path]:
    copy = tmp_path / "terraform"
    shutil.copytree(TERRAFORM, copy, ignore=shutil.ignore_patterns(".build", ".terraform"))
    yield copy
    _parse.cache_clear()


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) >= 1, old
    path.write_text(text.replace(old, new, 1))
    _parse.cache_clear()


def test_a_misspelt_metric_type_is_detected(terraform_copy: Path) -> None:
    locals_tf = terraform_copy / MONITORING / "locals.tf"
    _edit(locals_tf, "run.googleapis.com/request_latencies", "run.googleapis.com/request_latency")
    assert unknown_metric_types(terraform_copy) == [
        "locals.tf: run.googleapis.com/request_latency is not a known built-in metric"
    ]


def test_a_chart_of_an_undefined_log_metric_is_detected(terraform_copy: Path) -> None:
    locals_tf = terraform_copy / MONITORING / "locals.tf"
    _edit(locals_tf, "local.log_metric_types.delivery_outcomes}", "local.log_metric_types.sent}")
    assert unknown_metric_types(terraform_copy) == [
        "locals.tf: log-based metric sent is not defined"
    ]


def test_a_filter_selecting_no_line_is_detected(
    terraform_copy: Path, written: list[dict[str, Any]]
) -> None:
    lines = pipeline_lines(written)
    locals_tf = terraform_copy / MONITORING / "locals.tf"
    _edit(locals_tf, 'message=\\"events insert failed\\"', 'message=\\"bigquery insert failed\\"')
    assert log_metric_problems(terraform_copy, lines) == [
        'events_insert_failures: jsonPayload.message="bigquery insert failed" selects no line '
        "the code writes"
    ]


def test_a_label_the_lines_lack_is_detected(
    terraform_copy: Path, written: list[dict[str, Any]]
) -> None:
    lines = pipeline_lines(written)
    locals_tf = terraform_copy / MONITORING / "locals.tf"
    _edit(locals_tf, "        destination_type = ", "        destination_kind = ")
    assert log_metric_problems(terraform_copy, lines) == [
        "delivery_outcomes: label destination_kind is not a field of the lines it counts"
    ]


def test_a_function_missing_from_the_instances_charts_is_detected(
    terraform_copy: Path, tmp_path: Path
) -> None:
    locals_tf = terraform_copy / MONITORING / "locals.tf"
    _edit(locals_tf, "for name in sort(keys(var.functions))", 'for name in ["ingest"]')
    functions = deployed_services()
    dashboard = evaluate_locals(terraform_copy, tmp_path, functions)["dashboard"]
    problems = instance_chart_problems(dashboard, functions)
    assert len(problems) == len(functions) - 1
    assert "process: no instances chart of streams-process" in problems


def test_an_alert_without_the_channels_is_detected(terraform_copy: Path) -> None:
    main_tf = terraform_copy / MONITORING / "main.tf"
    text = main_tf.read_text()
    start = text.index('resource "google_monitoring_alert_policy" "dead_letters"')
    line = "  notification_channels = local.notification_channels\n"
    at = text.index(line, start)
    main_tf.write_text(text[:at] + "  notification_channels = []\n" + text[at + len(line) :])
    _parse.cache_clear()
    assert alerts_without_channels(terraform_copy) == [
        "google_monitoring_alert_policy.dead_letters does not notify local.notification_channels"
    ]
