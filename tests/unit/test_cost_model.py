"""The cost model (bench/cost, docs/COST.md): the committed doc is what the model computes from
the committed inputs, and the model's pieces on small inputs whose cost is checkable by hand."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bench.cost import doc, model, prices, rudderstack
from bench.cost.__main__ import main
from bench.cost.inputs import INPUTS_PATH, PerFunction, inputs_from_json, load_inputs
from bench.cost.sizes import FunctionSize, function_sizes, memory_gib
from shared.domain.event import CanonicalEvent
from shared.domain.pipeline import DeliveryMessage, event_key
from shared.domain.routing import Destination
from shared.services.claims import _claim
from shared.services.deliver import Attempt, batch_record, delivery_entry
from shared.services.process import _entry

MONTH = model.SECONDS_PER_MONTH
SIZES = {
    "ingest": FunctionSize(vcpu=1.0, memory_gib=1.0, concurrency=80, min_instances=1),
    "process": FunctionSize(vcpu=1.0, memory_gib=1.0, concurrency=16, min_instances=0),
    "deliver": FunctionSize(vcpu=1.0, memory_gib=2.0, concurrency=32, min_instances=0),
}


def batched() -> model.Mix:
    return load_inputs().mixes["batched"]


def with_claims_in(mix: model.Mix, store: str) -> model.Mix:
    return replace(mix, dedup_store=store)


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
    # 0.1 read and 0.1 write per event (one each per message of 10), no deletes but the TTL's;
    # Firestore claims made dearer, so that every column keeps Valkey's.
    raw["mixes"]["batched"]["firestore"] = {"reads": 0.1, "writes": 0.1, "deletes": 0.0}
    raw["mixes"]["batched_firestore_claims"]["firestore"]["writes"] = 9.0
    changed = tmp_path / "inputs.json"
    changed.write_text(json.dumps(raw))
    out = tmp_path / "COST.md"
    out.write_text(doc.COST_DOC.read_text())
    assert main(["--inputs", str(changed), "--doc", str(out)]) == 0
    firestore_row = next(
        line for line in out.read_text().splitlines() if line.startswith("| Firestore operations")
    )
    # At 1B: 100M reads $30, 100M writes $90, 100M TTL deletes (one per document written) $10,
    # less 30 days of free tiers ($0.45 + $0.54 + $0.06).
    assert firestore_row.endswith("| $129 |")
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
    # Every document written expires once: as many TTL deletes as writes counted.
    mix = replace(
        with_claims_in(batched(), "valkey"),
        firestore_writes=0.1,
        firestore_deletes=0.5,
        requests=PerFunction(ingest=0.1, process=0.1, deliver=0.1),
    )
    assert model.ttl_deletes(mix) == pytest.approx(0.1)
    assert model.firestore_deletes(mix) == pytest.approx(0.6)
    claims = replace(mix, firestore_writes=1.2)  # a claim per event, a deliver record each
    assert model.ttl_deletes(claims) == pytest.approx(1.2)
    assert model.firestore_operations_per_event(claims) == pytest.approx(
        claims.firestore_reads + 1.2 + 0.5 + 1.2
    )


def test_firestore_storage_holds_48_hours_of_logs_claims_and_records() -> None:
    mix = replace(
        with_claims_in(batched(), "firestore"),
        requests=PerFunction(ingest=0.1, process=0.1, deliver=0.1),
        deliveries=1.0,
    )
    events = 720_000_000  # 1M an hour in a 720-hour month: 48 hours hold 48M events
    event_log = 48e6 * (0.1 * 300 + 600)
    batches = 48e6 * (0.1 * 500 + 900)  # every delivery accepted at once: kept 48 hours
    claims = 48e6 * 200
    expected = (event_log + batches + claims) * 2  # doubled: names, field overhead, indexes
    assert model.firestore_stored_bytes(mix, events) == pytest.approx(expected)
    # With Valkey, no claim and no record of deliveries accepted at once: marks there.
    valkey = with_claims_in(mix, "valkey")
    assert model.firestore_stored_bytes(valkey, events) == pytest.approx(event_log * 2)


def test_the_record_sizes_assumed_cover_the_codes_documents() -> None:
    now = datetime(2026, 12, 3, tzinfo=UTC)

    def size(document: dict[str, Any]) -> int:
        return len(json.dumps(document, default=str, separators=(",", ":")))

    def event(n: int) -> CanonicalEvent:
        return {"messageId": f"ajs-{n:032x}", "type": "track", "receivedAt": now.isoformat()}

    def entry(n: int) -> dict[str, Any]:
        delivery = {"delivery_id": "d" * 77, "rule_id": "r" * 36, "destination_id": "x" * 36}
        at = now.isoformat()
        return _entry(
            event(n), blocked=False, violations=[], stored_at=at, routed_at=at,
            deliveries=[delivery], skipped=[],
        )  # fmt: skip

    common = {
        "workspace_id": "w" * 36,
        "source_id": "s" * 36,
        "pubsub_message_id": "1" * 17,
        "claimed_at": now.isoformat(),
        "expires_at": now,
    }
    one, ten = (
        {**common, "events": {event_key(f"{n}"): entry(n) for n in range(k)}} for k in (1, 10)
    )
    per_entry = (size(ten) - size(one)) / 9
    assert per_entry <= model.EVENT_LOG_ENTRY_BYTES
    assert size(one) - per_entry <= model.EVENT_LOG_RECORD_BYTES

    webhook = Destination(
        id="x" * 36,
        workspace_id="w" * 36,
        name="receiver",
        type="webhook",
        config={},
        created_at=now.isoformat(),
        updated_at=now.isoformat(),
    )
    messages = [
        DeliveryMessage("d" * 77, "w" * 36, f"ajs-{n:032x}", "r" * 36, "x" * 36, None, event(n))
        for n in range(10)
    ]
    entries = {
        f"{m.delivery_id}{n}": delivery_entry(
            None, m, webhook, 1, Attempt("delivered", "HTTP 200", 200), now
        )
        for n, m in enumerate(messages)
    }
    first = dict(list(entries.items())[:1])
    one, ten = (batch_record("b" * 64, messages[0], None, e, now) for e in (first, entries))
    per_delivery = (size(ten) - size(one)) / 9
    assert per_delivery <= model.DELIVERY_ENTRY_BYTES
    assert size(one) - per_delivery <= model.DELIVERY_BATCH_RECORD_BYTES
    # A claim and its document name (workspaces/{ws}/event_claims/{key}).
    name = len(f"workspaces/{'w' * 36}/event_claims/{event_key('x')}")
    assert size(_claim("1" * 17, now)) + name <= model.CLAIM_BYTES


def test_valkey_is_sized_at_most_80_percent_full_on_the_smallest_node_type() -> None:
    # 48/730 of a month's events at the mix's bytes an event: 136 (say a claim, and a mark per
    # ten events).
    mix = replace(batched(), valkey_bytes=136.0)
    assert model.valkey_window_bytes(mix, 730_000_000) == pytest.approx(48e6 * 136)
    # standard-small, the smallest with an SLA, holds 4.16 GB at 80%: 465M events a month.
    assert model.valkey_capacity_events(mix, model.VALKEY_NODES[0]) == pytest.approx(
        4.16e9 / 136 * 730 / 48
    )
    assert model.valkey_node(mix, 1_000_000).name == "standard-small"
    assert model.valkey_node(mix, 400_000_000).name == "standard-small"  # 3.58 GB of 4.16
    assert model.valkey_node(mix, 500_000_000).name == "highmem-medium"  # 4.47 GB
    # 1B: 8.94 GB, past highmem-medium's 8.32: highmem-xlarge, 19% full.
    assert model.valkey_node(mix, 1_000_000_000).name == "highmem-xlarge"
    assert model.valkey_fill(mix, 1_000_000_000) == pytest.approx(8.9425e9 / 46.4e9, rel=1e-3)
    # Past the largest type's 80%: that type, fuller than the rule (the doc says how full).
    assert model.valkey_node(mix, 10_000_000_000).name == "highmem-xlarge"
    # One node, no replica, 730 hours: $0.12 an hour is $87.60 a month.
    valkey = with_claims_in(batched(), "valkey")
    assert model.dedup_store_cost(valkey, 100_000_000) == pytest.approx(87.6)
    assert model.dedup_store_cost(with_claims_in(valkey, "firestore"), 100_000_000) == 0.0


def test_each_volume_takes_the_cheaper_dedup_store() -> None:
    valkey = with_claims_in(batched(), "valkey")
    # Firestore claims: one write per event more, and its TTL delete (added by the model).
    firestore = replace(
        with_claims_in(valkey, "firestore"), firestore_writes=valkey.firestore_writes + 1.0
    )
    traffic = model.Traffic(valkey=valkey, firestore=firestore)
    # 1M: the claims' 1M writes and deletes are inside 30 days of free tiers (600,000 each)
    # but for $0.36 + $0.04, plus storage under the free GiB; a nano node costs $21.90.
    assert model.chosen_store(traffic, 1_000_000, SIZES) == "Firestore claims"
    small = model.cheapest_bill(traffic, 1_000_000, SIZES)
    assert small.lines[model.DEDUP_LINE] == 0.0
    # 1B: $900 of writes and $100 of deletes against a highmem-medium node's $182.50.
    assert model.chosen_store(traffic, 1_000_000_000, SIZES).startswith("Valkey")
    large = model.cheapest_bill(traffic, 1_000_000_000, SIZES)
    assert large.lines[model.DEDUP_LINE] == pytest.approx(0.25 * 730)
    assert 1_000_000 < model.break_even(traffic, SIZES) < 1_000_000_000


def test_each_traffic_is_measured_with_either_store() -> None:
    inputs = load_inputs()
    traffics = model.traffics(inputs.mixes)
    assert traffics["single"].firestore == inputs.mixes["single_firestore_claims"]
    assert traffics["batched"].firestore == inputs.mixes["batched_firestore_claims"]
    assert {t.valkey.dedup_store for t in traffics.values()} == {"valkey"}
    assert {t.firestore.dedup_store for t in traffics.values()} == {"firestore"}


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
    mix = with_claims_in(batched(), "firestore")
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
    traffic = model.traffics(load_inputs().mixes)["batched"]
    found = {(t.name.split(",")[0], t.edge): t for t in model.targets(traffic, SIZES)}
    # Every target behind each edge, the edge named in the row.
    assert set(found) == {
        (name, edge)
        for name in (
            "dollars per million events at 1B a month",
            "dollars a month in total at 1M a month",
        )
        for edge in model.EDGES
    }
    for (name, edge), target in found.items():
        assert f'edge "{edge}"' in target.name
        events = model.TARGET_EVENTS_SMALL if "1M" in name else model.TARGET_EVENTS_LARGE
        bill = model.cheapest_bill(traffic, events, SIZES, edge)
        assert target.value == pytest.approx(bill.total if "1M" in name else bill.per_million)
    small = found[("dollars a month in total at 1M a month", "load_balancer")]
    direct = found[("dollars a month in total at 1M a month", "direct")]
    # At 1M the difference is the load balancer's and Cloud Armor's fixed charges (their
    # per-request parts are cents).
    fixed = 730 * 0.025 + 5 + 6 * 1
    assert small.value - direct.value == pytest.approx(fixed, abs=0.1)


def test_the_direct_edge_bills_no_load_balancer_and_no_cloud_armor() -> None:
    mix = with_claims_in(batched(), "firestore")
    events = 1_000_000_000
    direct = model.monthly_bill(mix, events, SIZES, model.DIRECT_EDGE)
    behind = model.monthly_bill(mix, events, SIZES, model.LOAD_BALANCER_EDGE)
    assert direct.lines[model.LOAD_BALANCER_LINE] == direct.lines[model.ARMOR_LINE] == 0.0
    assert behind.lines[model.LOAD_BALANCER_LINE] == model.load_balancer_cost(mix, events)
    assert behind.lines[model.ARMOR_LINE] == model.cloud_armor_cost(mix, events)
    # Every other line is the same: the edge changes nothing behind it.
    others = set(direct.lines) - {model.LOAD_BALANCER_LINE, model.ARMOR_LINE}
    assert {line: direct.lines[line] for line in others} == {
        line: behind.lines[line] for line in others
    }
    # Idle, only the warm ingest instance is left.
    assert model.idle_floor(mix, SIZES, model.DIRECT_EDGE) == pytest.approx(12.96)
    with pytest.raises(ValueError, match="edge must be one of load_balancer, direct"):
        model.monthly_bill(mix, events, SIZES, "cdn")


def test_the_result_table_assumes_direct_only_for_a_small_deployment() -> None:
    assert model.assumed_edge(model.TARGET_EVENTS_SMALL) == model.DIRECT_EDGE
    assert model.assumed_edge(100_000_000) == model.LOAD_BALANCER_EDGE
    traffic = model.traffics(load_inputs().mixes)["batched"]
    small = model.cheapest_bill(traffic, 1_000_000, SIZES)
    assert small.lines[model.LOAD_BALANCER_LINE] == 0.0
    assert model.cheapest_bill(traffic, 100_000_000, SIZES).lines[model.LOAD_BALANCER_LINE] > 0
    result = doc.COST_DOC.read_text().split("## Result", 1)[1].split("### Targets", 1)[0]
    assert "| edge (`edge.kind`) | `direct` | `load_balancer` | `load_balancer` |" in result


def test_rudderstack_nodes_are_sized_for_the_peak() -> None:
    assert rudderstack.nodes_needed(0) == 1
    # 10B a month is 3,858 events/s, 7,716 at twice the mean: 5 nodes of 1,700.
    assert rudderstack.nodes_needed(10_000_000_000) == 5
    # Postgres: 4 vCPU and 16 GiB for 730 hours, and 1 TiB of SSD.
    assert rudderstack.postgres_cost() == pytest.approx((4 * 0.0413 + 16 * 0.007) * 730 + 174.08)
