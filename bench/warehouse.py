"""The query cost of the warehouse's two designs (issue 18): Segment's tables as views over
`events` (A, what Streams does) or as tables the pipeline maintains (B).

On the BigQuery emulator (its own, on free ports): the `events` table, two workspaces of synthetic
but SDK-shaped events over 3 days (tracks of 10 names with 5-15 properties, pages with campaign
and user agent, identifies with traits, 1% of messageIds stored twice), normalised by ingest's
code and inserted by the event store. The real sync (`Warehouse` with `BigQueryWarehouse`) writes
the views; three analyst queries run on them and must return what the generated events say
(each messageId once, no row of the other workspace).

The emulator reports no bytes billed, so they are computed from the stored rows, read back, with
BigQuery's logical sizes (`logical_bytes`): under A, the columns each view reads of the
workspace's rows of that type (and name) in every partition (the view's dedup over all time
cannot be pruned by a time filter; clustering prunes the other workspaces and types); under B,
the typed columns the same query reads of the tables' rows in the partitions its time filter
selects, plus B's upkeep: an hourly MERGE per table. Figures are given for the bench's own data
and scaled to a stated workload (`--events-per-hour`, `--history-days`). Writes
bench/results/warehouse-<UTC>.json and warehouse-latest.json. Analysis: docs/WAREHOUSE.md.

Beside this run script: `warehouse_events.py` (the synthetic workspace), `warehouse_queries.py`
(the queries, what each reads, their expected answers), `warehouse_costs.py` (sizes and the cost
model; tests/unit/test_warehouse_bench.py checks its arithmetic).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from bench.measuring import machine_info
from bench.reporting import Column, iso, print_table, report_head, write_report
from bench.running import catch_interrupts, free_port
from bench.warehouse_costs import (
    BIGQUERY_QUERIES,
    EVENT_TYPES,
    LAST_DAY_PARTITION_DAYS,
    MEAN_HOURS_SCANNED,
    MIN_BILLED_PER_TABLE,
    TableStats,
    Workload,
    bench_bytes,
    break_even,
    query_costs,
    stored_copy,
    table_stats,
    upkeep_per_day,
)
from bench.warehouse_events import DAYS, workspace_rows
from bench.warehouse_queries import (
    QUERIES,
    AnalystQuery,
    answered,
    expected,
    first_copies,
    same_answer,
)
from emulators.processes import ManagedProcess
from emulators.stack import REPO_ROOT, EmulatorPorts, emulator_specs, ensure_bq_venv
from shared.adapters.bigquery import BigQueryEventStore, ensure_tables
from shared.adapters.bigquery_warehouse import BigQueryWarehouse
from shared.domain.storage import EVENTS_TABLE
from shared.services.warehouse import Warehouse
from tests.fakes import InMemoryConfigStore

PROJECT = "streamsbenchwarehouse"
DATASET = "streams_bench"
WORKSPACE = "ws-bench-analytics"
OTHER_WORKSPACE = "ws-bench-other-tenant"
# A variant of B that drops copies only against its table's last days (the views: all time).
DEDUP_WINDOW_DAYS = 2


@contextmanager
def bigquery_emulator(state_dir: Path) -> Iterator[bigquery.Client]:
    """The BigQuery emulator on free ports, ours alone, stopped however the run ends."""
    ports = EmulatorPorts(bigquery=free_port(), bigquery_grpc=free_port())
    spec = emulator_specs(ports, PROJECT)["bigquery"]
    ensure_bq_venv()
    process = ManagedProcess(
        name="bigquery",
        command=spec.command,
        log_path=state_dir / "bigquery.log",
        env=spec.env,
        cwd=REPO_ROOT,
        health_check=spec.health_check,
    )
    process.start()
    try:
        process.wait_healthy(90)
        yield bigquery.Client(
            project=PROJECT,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=f"http://127.0.0.1:{ports.bigquery}"),
        )
    finally:
        process.stop()


def timed_rows(client: bigquery.Client, sql: str, params: list[Any]) -> tuple[float, list[Any]]:
    began = time.perf_counter()
    job = client.query(sql, job_config=bigquery.QueryJobConfig(query_parameters=params))
    result = [dict(row) for row in job.result()]
    return (time.perf_counter() - began) * 1000, result


def stored_rows(client: bigquery.Client, workspace_id: str) -> list[dict[str, Any]]:
    """The workspace's rows as stored (read back: what the bytes are counted from)."""
    columns = [c for c in EVENT_TYPES if c not in ("integrations", "extras", "consent_denied")]
    sql = (
        f"SELECT {', '.join(columns)} FROM `{PROJECT}.{DATASET}.{EVENTS_TABLE}`"
        " WHERE workspace_id = @workspace_id"
    )
    param = bigquery.ScalarQueryParameter("workspace_id", "STRING", workspace_id)
    return timed_rows(client, sql, [param])[1]


def run(args: argparse.Namespace) -> dict[str, Any]:
    started_at = datetime.now(UTC)
    now = started_at.replace(microsecond=0)
    since = now - timedelta(days=1)
    generated = workspace_rows(WORKSPACE, args.events, now, args.seed)
    other = workspace_rows(OTHER_WORKSPACE, args.events, now, args.seed + 1)
    checks: dict[str, Any] = {}
    timings: dict[str, Any] = {}
    with TemporaryDirectory() as state, bigquery_emulator(Path(state)) as client:
        ensure_tables(client, DATASET)
        store = BigQueryEventStore(client, DATASET)
        both = generated + other
        for start in range(0, len(both), 2000):
            chunk = both[start : start + 2000]
            store.insert(chunk, [row["message_id"] for row in chunk])
        adapter = BigQueryWarehouse(client, DATASET)
        warehouse = Warehouse(
            InMemoryConfigStore(),
            adapter,
            f"{DATASET}_ws_",
            clock=lambda: now + timedelta(minutes=1),
        )
        synced = warehouse.sync(WORKSPACE)
        views = f"{PROJECT}.{synced['dataset']}"
        tables = f"{PROJECT}.{DATASET}_tables"
        client.create_dataset(tables)
        rows = stored_rows(client, WORKSPACE)
        checks["stored_rows"] = {
            "expected": len(generated),
            "got": len(rows),
            "ok": len(rows) == len(generated),
        }
        param = [bigquery.ScalarQueryParameter("since", "TIMESTAMP", since)]
        for query in QUERIES:
            # B on the emulator: the view's rows copied into a table (no upkeep simulated).
            client.query(
                f"CREATE TABLE `{tables}.{query.table}` AS SELECT * FROM `{views}.{query.table}`"
            ).result()
            want = expected(query, generated, since)
            for design, dataset in (("views", views), ("tables", tables)):
                sql = query.sql.format(table=f"`{dataset}.{query.table}`")
                runs = [timed_rows(client, sql, param) for _ in range(args.runs)]
                got = answered(query, runs[-1][1])
                timings[f"{query.name}/{design}"] = [round(ms, 1) for ms, _ in runs]
                checks[f"{query.name}/{design}"] = {
                    "ok": same_answer(query, want, got),
                    "groups": len(got),
                    "rows_counted": _counted(query, got),
                }
        layout_views = adapter.views(WORKSPACE, warehouse.layout(WORKSPACE), None)
        stats = [
            table_stats(t["name"], t["kind"], t["event_text"], layout_views[t["name"]], rows)
            for t in synced["tables"]
        ]
    return report(args, started_at, rows, since, stats, checks, timings, synced)


def _counted(query: AnalystQuery, got: Any) -> int:
    if query.name == "b_order_totals":
        return sum(v[0] for v in got.values())
    return sum(got.values())


def report(
    args: argparse.Namespace,
    started_at: datetime,
    rows: Sequence[Mapping[str, Any]],
    since: datetime,
    stats: Sequence[TableStats],
    checks: dict[str, Any],
    timings: dict[str, Any],
    synced: Mapping[str, Any],
) -> dict[str, Any]:
    total = len(rows)
    workloads = {
        "bench": Workload(total / (DAYS * 24), DAYS),
        "stated": Workload(args.events_per_hour, args.history_days),
    }
    scenarios = {}
    for label, workload in workloads.items():
        per_query = {q.name: query_costs(q, rows, workload) for q in QUERIES}
        costs = list(per_query.values())
        upkeep = upkeep_per_day(stats, total, workload, MEAN_HOURS_SCANNED)
        windowed = upkeep_per_day(stats, total, workload, MEAN_HOURS_SCANNED, DEDUP_WINDOW_DAYS)
        scenarios[label] = {
            "rows_per_hour": workload.rows_per_hour,
            "history_days": workload.history_days,
            "queries": per_query,
            "upkeep_per_day": upkeep,
            "upkeep_per_day_new_rows_only": upkeep_per_day(stats, total, workload, 1),
            f"upkeep_per_day_dedup_{DEDUP_WINDOW_DAYS}_days": windowed,
            "tables_storage": stored_copy(stats, total, workload),
            "break_even_queries_per_day": break_even(upkeep["usd"], costs),
            "break_even_if_json_paths_only": break_even(
                upkeep["usd"], costs, "views_json_paths_only"
            ),
            f"break_even_dedup_{DEDUP_WINDOW_DAYS}_days": break_even(windowed["usd"], costs),
        }
    unique = first_copies(rows)
    return {
        **report_head("warehouse", started_at, machine_info()),
        "settings": {
            "events_per_workspace": args.events,
            "days": DAYS,
            "seed": args.seed,
            "runs": args.runs,
            "since": iso(since),
            "workspaces": [WORKSPACE, OTHER_WORKSPACE],
            "usd_per_tib": BIGQUERY_QUERIES.usd,
            "min_billed_per_table": MIN_BILLED_PER_TABLE,
            "mean_hours_scanned_by_upkeep": MEAN_HOURS_SCANNED,
            "last_day_partition_days": LAST_DAY_PARTITION_DAYS,
        },
        "data": {
            "stored_rows": total,
            "unique_events": len(unique),
            "copies": total - len(unique),
            "by_type": dict(Counter(r["event_type"] for r in unique)),
            "users": len({r["user_id"] for r in unique if r["event_type"] == "identify"}),
            "tables": [t["name"] for t in synced["tables"]],
        },
        "checks": checks,
        "emulator_ms": timings,
        "bench_bytes": {q.name: bench_bytes(q, rows, since) for q in QUERIES},
        "tables": [vars(s) for s in stats],
        "scenarios": scenarios,
    }


def print_report(result: Mapping[str, Any]) -> None:
    stated = result["scenarios"]["stated"]
    print(
        f"\nBytes each query reads: this bench's workspace ({result['data']['stored_rows']:,} "
        f"rows over {DAYS} days), then {stated['rows_per_hour']:,.0f} events/h with "
        f"{stated['history_days']:g} days of history (USD at ${BIGQUERY_QUERIES.usd}/TiB, "
        "10 MB minimum per table)"
    )
    columns = [
        Column("query", 22, align="<"),
        Column("A views", 12, ",d"),
        Column("A paths", 12, ",d"),
        Column("B tables", 11, ",d"),
        Column("A $", 10, ".4f", gap=2),
        Column("B $", 9, ".4f"),
        Column("A ms", 8, ".0f", gap=2),
        Column("B ms", 7, ".0f"),
        Column("ok", 5),
    ]
    rows = []
    for q in QUERIES:
        exact, scaled = result["bench_bytes"][q.name], stated["queries"][q.name]
        ms = {
            d: statistics.median(result["emulator_ms"][f"{q.name}/{d}"])
            for d in ("views", "tables")
        }
        ok = all(result["checks"][f"{q.name}/{d}"]["ok"] for d in ("views", "tables"))
        rows.append(
            (
                q.name,
                exact["views_bytes"],
                exact["views_json_paths_only_bytes"],
                exact["tables_bytes"],
                scaled["views_usd"],
                scaled["tables_usd"],
                ms["views"],
                ms["tables"],
                "yes" if ok else "NO",
            )
        )
    print_table(columns, rows)
    print("(A ms, B ms: median wall time on the emulator, not BigQuery's)")
    for label, scenario in result["scenarios"].items():
        upkeep = scenario["upkeep_per_day"]
        even = scenario["break_even_queries_per_day"]["even_mix"]
        verdict = f"{even:,.0f} analyst queries/day" if even else "never (10 MB minimum)"
        print(
            f"{label}: B upkeep reads {upkeep['processed_bytes'] / 1e9:,.2f} GB/day, billed "
            f"${upkeep['usd']:,.2f}/day; B cheaper from {verdict}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="events per workspace")
    parser.add_argument(
        "--events-per-hour",
        type=float,
        default=50_000,
        help="the stated workload's stored events per hour",
    )
    parser.add_argument(
        "--history-days",
        type=float,
        default=90,
        help="days of events the stated workload's views read",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs of each query (timing)")
    parser.add_argument("--seed", type=int, default=18)
    args = parser.parse_args(argv)
    catch_interrupts()
    result = run(args)
    write_report("warehouse", result)
    print_report(result)
    failed = [name for name, check in result["checks"].items() if not check["ok"]]
    if failed:
        print(f"FAILED checks: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
