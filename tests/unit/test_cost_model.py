"""The cost model (bench/cost, docs/COST.md): the committed doc is what the model computes from
the committed inputs, and the model's pieces on small inputs whose cost is checkable by hand."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from bench.cost import doc, model, prices, rudderstack
from bench.cost.__main__ import main
from bench.cost.inputs import INPUTS_PATH, PerFunction, inputs_from_json, load_inputs
from bench.cost.sizes import FunctionSize, function_sizes, memory_gib

MONTH = model.SECONDS_PER_MONTH
SIZES = {
    "ingest": FunctionSize(vcpu=1.0, memory_gib=1.0, concurrency=80, min_instances=1),
    "process": FunctionSize(vcpu=1.0, memory_gib=1.0, concurrency=16, min_instances=0),
    "deliver": FunctionSize(vcpu=1.0, memory_gib=2.0, concurrency=32, min_instances=0),
}


def batched() -> model.Mix:
    return load_inputs().mixes["batched"]


# --- the committed doc ----------------------------------------------------------------------


def test_committed_doc_is_what_the_committed_inputs_give() -> None:
    assert main(["--check"]) == 0, "docs/COST.md is out of date: run python -m bench.cost"


def test_check_fails_on_an_edited_table_and_a_rewrite_restores_it(tmp_path: Path) -> None:
    edited = tmp_path / "COST.md"
    committed = doc.COST_DOC.read_text()
    edited.write_text(committed.replace("| Pub/Sub |", "| Pub/Sub (edited) |", 1))
    assert main(["--check", "--doc", str(edited)]) == 1
    assert main(["--doc", str(edited)]) == 0
    assert edited.read_text() == committed
    assert main(["--check", "--doc", str(edited)]) == 0


def test_a_changed_input_changes_the_table(tmp_path: Path) -> None:
    raw = json.loads(INPUTS_PATH.read_text())
    # One read and one write per event (measured: more), no deletes but the TTL's.
    raw["mixes"]["batched"]["firestore"] = {"reads": 1.0, "writes": 1.0, "deletes": 0.0}
    changed = tmp_path / "inputs.json"
    changed.write_text(json.dumps(raw))
    out = tmp_path / "COST.md"
    out.write_text(doc.COST_DOC.read_text())
    assert main(["--inputs", str(changed), "--doc", str(out)]) == 0
    firestore_row = next(
        line for line in out.read_text().splitlines() if line.startswith("| Firestore operations")
    )
    # At 1B: 1B reads $300, 1B writes $900, 1B TTL deletes $100, less 30 days of free tiers.
    assert firestore_row.endswith("| $1,299 |")
    assert main(["--check", "--inputs", str(changed), "--doc", str(out)]) == 0
    # The committed doc no longer matches those inputs, nor the rewritten doc the committed ones.
    assert main(["--check", "--inputs", str(changed)]) == 1
    assert main(["--check", "--doc", str(out)]) == 1


def test_the_doc_must_hold_every_generated_block() -> None:
    text = doc.COST_DOC.read_text()
    one_block_less = text.replace(doc.START, "<!-- removed -->", 1)
    with pytest.raises(ValueError, match="generated blocks"):
        doc.render(one_block_less, load_inputs(), SIZES)


# --- inputs and sizes -----------------------------------------------------------------------


def test_inputs_need_every_field_of_the_shape() -> None:
    raw = json.loads(INPUTS_PATH.read_text())
    del raw["mixes"]["single"]["pubsub"]["bytes"]
    with pytest.raises(KeyError, match="bytes"):
        inputs_from_json(raw)


def test_sizes_are_read_from_terraform(tmp_path: Path) -> None:
    main_tf = tmp_path / "main.tf"
    main_tf.write_text(
        'locals {\n  functions = {\n    deliver = {\n      trigger = "pubsub"\n'
        '      size = { memory = "512Mi", cpu = "2", concurrency = 8, timeout_seconds = 60, '
        "min_instances = 3, max_instances = 10 }\n    }\n  }\n}\n"
    )
    assert function_sizes(main_tf) == {"deliver": FunctionSize(2.0, 0.5, 8, 3)}
    assert memory_gib("2Gi") == 2.0
    with pytest.raises(ValueError):
        memory_gib("2G")
    # The real deployment has a size for each function on the event path.
    assert {"ingest", "process", "deliver"} <= set(function_sizes())


# --- the pieces, by hand --------------------------------------------------------------------


def test_billed_instances_take_the_largest_of_cpu_concurrency_and_occupancy() -> None:
    # CPU-bound: 1.2 cores of work at the autoscaler's 60% target.
    assert model.billed_instances(1.2, 1.0, 0.05, 80) == pytest.approx(2.0)
    # Concurrency-bound: 100 requests a second of 0.5 s is 50 in flight, 10 per instance.
    assert model.billed_instances(0.01, 100.0, 0.5, 10) == pytest.approx(5.0)
    # A trickle: 1 request a second, each billed at least 100 ms though it takes 50.
    assert model.billed_instances(0.001, 1.0, 0.05, 80) == pytest.approx(1 - math.exp(-0.1))


def test_firestore_free_tier_is_per_day() -> None:
    free_month = prices.FIRESTORE_WRITES.free * model.DAYS_PER_MONTH  # 600,000 writes
    assert model.daily_free_charge(prices.FIRESTORE_WRITES, free_month) == 0.0
    # 100,000 writes past the month's free ones: $0.09.
    extra = model.daily_free_charge(prices.FIRESTORE_WRITES, free_month + 100_000)
    assert extra == pytest.approx(0.09)


def test_ttl_deletes_are_added_to_the_deletes_counted_at_the_adapter() -> None:
    mix = replace(batched(), firestore_deletes=0.5)
    assert model.firestore_deletes(mix) == 1.5


def test_pubsub_bills_each_push_at_least_one_kilobyte() -> None:
    small = replace(batched(), pubsub_messages=1.0, pubsub_bytes=200.0)
    events = 1_000_000_000
    # 200 bytes published, but 1,000 pushed, per event; 10 GiB free; $40 per TiB.
    expected = (events * 1_200 - 10 * 2**30) * 40 / 2**40
    assert model.pubsub_cost(small, events) == pytest.approx(expected)


def test_bigquery_bills_each_row_at_least_one_kilobyte() -> None:
    small_rows = replace(batched(), bigquery_rows=1.0, bigquery_bytes=300.0)
    # 200M rows billed 1 KB each: 200 GB, a thousand times 200 MB at $0.01.
    assert model.bigquery_streaming_cost(small_rows, 200_000_000) == pytest.approx(10.0)


def test_an_idle_deployment_pays_its_edge_and_its_warm_instance() -> None:
    mix = batched()
    assert model.idle_instances_cost(mix, 0.0, SIZES) == pytest.approx(MONTH * 2 * 0.0000025)
    assert model.load_balancer_cost(mix, 0.0) == pytest.approx(730 * 0.025)
    assert model.cloud_armor_cost(mix, 0.0) == pytest.approx(5 + 6 * 1)
    assert model.functions_cost(mix, 0.0, SIZES) == 0.0
    assert model.idle_floor(mix, SIZES) == pytest.approx(12.96 + 18.25 + 11)


def test_cloud_armor_and_logs_follow_ingest_requests() -> None:
    single = replace(batched(), requests=PerFunction(ingest=1.0, process=1.0, deliver=1.0))
    events = 1_000_000_000
    # One evaluation per request: a billion at $0.75 per million, plus policy and rules.
    assert model.cloud_armor_cost(single, events) == pytest.approx(750 + 11)
    # 1.5 KB per logged request, 50 GiB free, $0.50 per GiB.
    assert model.logging_cost(single, events) == pytest.approx((1.5e12 / 2**30 - 50) * 0.5)


def test_api_gateway_calls_beyond_a_billion_are_cheaper() -> None:
    single = replace(batched(), requests=PerFunction(ingest=1.0, process=1.0, deliver=1.0))
    # 2M free, then $3 per million up to 1B, then $1.50 per million.
    assert model.api_gateway_cost(single, 2_000_000_000) == pytest.approx(2_994 + 1_500)


def test_targets_report_whether_they_are_met() -> None:
    assert model.Target("x", 5.0, 4.99).met
    assert not model.Target("x", 5.0, 5.01).met
    found = model.targets(batched(), SIZES)
    small = model.monthly_bill(batched(), model.TARGET_EVENTS_SMALL, SIZES)
    assert found[1].value == pytest.approx(small.total)


def test_rudderstack_nodes_are_sized_for_the_peak() -> None:
    assert rudderstack.nodes_needed(0) == 1
    # 10B a month is 3,858 events/s, 7,716 at twice the mean: 5 nodes of 1,700.
    assert rudderstack.nodes_needed(10_000_000_000) == 5
    # Postgres: 4 vCPU and 16 GiB for 730 hours, and 1 TiB of SSD.
    assert rudderstack.postgres_cost() == pytest.approx((4 * 0.0413 + 16 * 0.007) * 730 + 174.08)
