"""What Streams costs a month on Google Cloud for E events, from measured inputs per event
(inputs.py), list prices (prices.py) and the deployed sizes (sizes.py): every line of
docs/COST.md's Result table, as pure functions.

What the run cannot measure is assumed below, one named constant each, with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from bench.cost import prices
from bench.cost.inputs import FUNCTIONS, Mix
from bench.cost.prices import GB, KB, Price
from bench.cost.sizes import FunctionSize

DAYS_PER_MONTH = 30
SECONDS_PER_MONTH = DAYS_PER_MONTH * 86_400
VOLUMES = (1_000_000, 100_000_000, 1_000_000_000)

# --- assumptions: what the local run cannot measure -----------------------------------------

# Cloud Run's autoscaler keeps instances near 60% CPU utilisation.
TARGET_CPU_UTILISATION = 0.6
# Request-based billing rounds each request's billed time up to 100 ms.
BILLING_STEP_SECONDS = 0.1
# Wall time of one request in production. ingest and process wait on Pub/Sub and Firestore (62
# and 46 ms locally on the emulators); deliver waits on a real receiver over the internet, not
# the local one's 60 ms.
WALL_SECONDS = {"ingest": 0.050, "process": 0.050, "deliver": 0.250}
# Firestore's TTL deletes happen inside Firestore: each is billed, none is seen by the adapter.
# Nearly every document the pipeline writes expires once: process's event_log record per source
# message, deliver's delivery_batches record per deliveries message it records in Firestore (all
# of them with Firestore claims; with Valkey only those not accepted at once, none in these
# runs: the others are marks in Valkey), a Firestore claim per event. So TTL deletes are taken
# as the writes counted at the adapter, one each: the few writes that never expire (a source's
# last_used_at, at most every 30 s) are counted as if they did, a slight overcount.
# How long each kind is kept (shared/domain/pipeline.py: DEDUP_HOURS, SETTLED_RECORD_HOURS):
# every delivery of these runs is accepted at its first attempt, so a record is kept 48 hours,
# not the 30 days of one with a retry or a dead letter.
EVENT_LOG_TTL_HOURS = 48
CLAIM_TTL_HOURS = 48
DELIVERY_BATCH_TTL_HOURS = 48
# Bytes stored, from the code's own documents as JSON (tests/unit/test_cost_model.py builds
# them with process's, deliver's and the claims' functions, with UUIDs and 36-character
# messageIds, and checks these cover them): an event_log record holds its message's fields
# (0.24 KB) and an entry per event (0.52 KB); a delivery_batches record its message's fields
# (0.41 KB) and an entry per delivery with its attempt history (0.81 KB, one attempt); a claim
# with its document name 0.17 KB.
EVENT_LOG_RECORD_BYTES = 0.3 * KB
EVENT_LOG_ENTRY_BYTES = 0.6 * KB
DELIVERY_BATCH_RECORD_BYTES = 0.5 * KB
DELIVERY_ENTRY_BYTES = 0.9 * KB
CLAIM_BYTES = 0.2 * KB
# Firestore bills a document's name, a few bytes per field and its single-field index entries
# besides the values: assumed to double the JSON size (not measured: the emulator reports no
# storage size).
FIRESTORE_STORED_PER_JSON_BYTE = 2.0
# Memorystore for Valkey holds the window when dedup_store is "valkey": 48 hours of what each mix
# leaves there (claims, outcomes kept on claims, deliver's marks: counted at the adapters, their
# bytes measured by bench.valkey_memory, together the mix's `valkey_bytes` an event), in the
# smallest node type whose writable memory (Memorystore's reserve for overhead set aside) it
# fills to at most VALKEY_MAX_FILL, one node: replica_count 0 (a replica doubles the
# node-hours). A destination's recent list of marks is bounded (200 messages) whatever the volume.
VALKEY_WINDOW_HOURS = 48
# Google's advice: scale a Memorystore for Valkey node type up as its memory use nears 80%
# (cloud.google.com/memorystore/docs/valkey/general-best-practices); Terraform's alert fires there
# (modules/monitoring, `dedup_memory`). The window averages 48 hours of traffic, so daily peaks
# do not move it; a sustained rise past that is what the alert is for.
VALKEY_MAX_FILL = 0.8
VALKEY_REPLICAS = 0
# BigQuery's logical storage per row is about the streamed row.
BIGQUERY_STORAGE_BYTES_PER_STREAMED_BYTE = 1.0
# Pub/Sub bills each push at least 1 KB. The inputs give messages and bytes per event, not each
# message's size, so the minimum is applied to the mean message (exact when sizes are alike).
PUBSUB_MIN_PUSH_BYTES = 1 * KB
# BigQuery bills each streamed row at least 1 KB.
BIGQUERY_MIN_ROW_BYTES = 1 * KB
# The load balancer: the event as an SDK sends it, and per request its HTTP headers and answer.
EDGE_BYTES_PER_EVENT = 1 * KB
EDGE_BYTES_PER_REQUEST = 0.5 * KB
# Cloud Armor on ingest: one policy, six rules (Log4j, body limit, three rate limits, default).
ARMOR_POLICIES = 1
ARMOR_RULES = 6
# The edge (terraform var.edge, DEPLOY.md "Choosing the edge"): "load_balancer" (the default)
# bills the load balancer and Cloud Armor above; "direct" has neither, the functions answering
# at their own run.app URLs, and adds no line of its own: requests into Cloud Run are free, and
# ingest's answers leave as internet egress with either edge (not counted with either, below).
LOAD_BALANCER_EDGE = "load_balancer"
DIRECT_EDGE = "direct"
EDGES = (LOAD_BALANCER_EDGE, DIRECT_EDGE)
# The edge the Result table assumes at each volume: up to this many events a month a deployment
# is a small one, which DEPLOY.md points at "direct" (no fixed cost, but no Cloud Armor and no
# domain of its own); above, the default load balancer. The Targets table shows both edges.
DIRECT_EDGE_UP_TO_EVENTS = 1_000_000
# A delivery's body and HTTP headers, sent to a destination on the internet.
EGRESS_BYTES_PER_DELIVERY = 1.5 * KB
# Cloud Run logs each request (about 1.5 KB); the pushed functions' request logs are excluded by
# Terraform (`exclude_push_request_logs`), ingest's are kept.
LOG_BYTES_PER_REQUEST = 1.5 * KB
LOGGED_FUNCTIONS = ("ingest",)


# --- the pieces ---------------------------------------------------------------------------


def charge(price: Price, quantity: float) -> float:
    """Dollars for `quantity` base units a month, the monthly free tier deducted."""
    return max(0.0, quantity - price.free) * price.per_unit()


def daily_free_charge(price: Price, quantity_per_month: float) -> float:
    """Dollars for a month of even traffic against a free tier granted per day."""
    per_day = quantity_per_month / DAYS_PER_MONTH
    return max(0.0, per_day - price.free) * price.per_unit() * DAYS_PER_MONTH


def billed_instances(
    cpu_seconds_per_second: float,
    requests_per_second: float,
    wall_seconds: float,
    concurrency: int,
) -> float:
    """Instances billed on average: enough for the CPU at the autoscaler's target, enough for
    the requests in flight at the concurrency, and at low rates the share of time at least one
    request is in flight (a Poisson arrival rate, each request billed at least one step)."""
    in_flight = requests_per_second * wall_seconds
    billed_in_flight = requests_per_second * max(wall_seconds, BILLING_STEP_SECONDS)
    return max(
        cpu_seconds_per_second / TARGET_CPU_UTILISATION,
        in_flight / concurrency,
        1.0 - math.exp(-billed_in_flight),
    )


def function_instances(
    mix: Mix, events: float, sizes: Mapping[str, FunctionSize]
) -> dict[str, float]:
    """Billed instances of each function on the event path, for `events` a month."""
    events_per_second = events / SECONDS_PER_MONTH
    return {
        name: billed_instances(
            events_per_second * mix.cpu_ms.get(name) / 1000,
            events_per_second * mix.requests.get(name),
            WALL_SECONDS[name],
            sizes[name].concurrency,
        )
        for name in FUNCTIONS
    }


def functions_cost(mix: Mix, events: float, sizes: Mapping[str, FunctionSize]) -> float:
    """CPU, memory and requests of ingest, process and deliver, free tiers deducted."""
    instances = function_instances(mix, events, sizes)
    vcpu_seconds = sum(instances[n] * sizes[n].vcpu * SECONDS_PER_MONTH for n in FUNCTIONS)
    gib_seconds = sum(instances[n] * sizes[n].memory_gib * SECONDS_PER_MONTH for n in FUNCTIONS)
    requests = sum(events * mix.requests.get(n) for n in FUNCTIONS)
    return (
        charge(prices.FUNCTION_VCPU_SECOND, vcpu_seconds)
        + charge(prices.FUNCTION_GIB_SECOND, gib_seconds)
        + charge(prices.FUNCTION_REQUESTS, requests)
    )


def idle_instances_cost(mix: Mix, events: float, sizes: Mapping[str, FunctionSize]) -> float:
    """Minimum instances (ingest's warm one) billed at the idle rate while they serve nothing."""
    busy = function_instances(mix, events, sizes)
    total = 0.0
    for name, size in sizes.items():
        idle = max(0.0, size.min_instances - busy.get(name, 0.0)) * SECONDS_PER_MONTH
        total += idle * size.vcpu * prices.IDLE_VCPU_SECOND.per_unit()
        total += idle * size.memory_gib * prices.IDLE_GIB_SECOND.per_unit()
    return total


def pubsub_cost(mix: Mix, events: float) -> float:
    """Throughput published, plus the same messages pushed (each at least 1 KB)."""
    published = events * mix.pubsub_bytes
    mean_message = mix.pubsub_bytes / mix.pubsub_messages if mix.pubsub_messages else 0.0
    pushed = events * mix.pubsub_messages * max(mean_message, PUBSUB_MIN_PUSH_BYTES)
    return charge(prices.PUBSUB_THROUGHPUT, published + pushed)


def ttl_deletes(mix: Mix) -> float:
    """TTL expiries per event: one per document written (event_log and delivery_batches
    records, Firestore claims), as the adapter counted the writes."""
    return mix.firestore_writes


def firestore_deletes(mix: Mix) -> float:
    """Deletes per event: those counted at the adapter plus the TTL expiries."""
    return mix.firestore_deletes + ttl_deletes(mix)


def firestore_operations_per_event(mix: Mix) -> float:
    """Reads, writes and deletes (TTL deletes included) per event: issue 19's measure."""
    return mix.firestore_reads + mix.firestore_writes + firestore_deletes(mix)


def firestore_operations_cost(mix: Mix, events: float) -> float:
    return (
        daily_free_charge(prices.FIRESTORE_READS, events * mix.firestore_reads)
        + daily_free_charge(prices.FIRESTORE_WRITES, events * mix.firestore_writes)
        + daily_free_charge(prices.FIRESTORE_DELETES, events * firestore_deletes(mix))
    )


def firestore_stored_bytes(mix: Mix, events: float) -> float:
    """At month's end: 48 hours of event_log records and, with Firestore claims, 48 hours of
    claims and of delivery_batches records (with Valkey, deliveries accepted at once are marks
    there, not records, and small plain messages' outcomes are on their claims)."""
    hours = DAYS_PER_MONTH * 24
    # Events whose outcomes went on their claims (Valkey) have no record.
    recorded = max(0.0, 1.0 - mix.valkey_outcomes)
    event_log = (
        (EVENT_LOG_TTL_HOURS / hours)
        * recorded
        * (mix.requests.process * EVENT_LOG_RECORD_BYTES + EVENT_LOG_ENTRY_BYTES)
    )
    firestore = mix.dedup_store == "firestore"
    batches = (DELIVERY_BATCH_TTL_HOURS / hours if firestore else 0.0) * (
        mix.requests.deliver * DELIVERY_BATCH_RECORD_BYTES + mix.deliveries * DELIVERY_ENTRY_BYTES
    )
    claims = (CLAIM_TTL_HOURS / hours) * CLAIM_BYTES if firestore else 0.0
    return events * (event_log + batches + claims) * FIRESTORE_STORED_PER_JSON_BYTE


def firestore_storage_cost(mix: Mix, events: float) -> float:
    return charge(prices.FIRESTORE_STORAGE, firestore_stored_bytes(mix, events))


@dataclass(frozen=True)
class ValkeyNode:
    name: str
    price: Price  # per node-hour
    writable_bytes: float


# The node types with an SLA (shared-core-nano has none: trials only, docs/DEPLOY.md).
VALKEY_NODES = (
    ValkeyNode("standard-small", prices.VALKEY_STANDARD_SMALL_HOUR, 5.2 * GB),
    ValkeyNode("highmem-medium", prices.VALKEY_HIGHMEM_MEDIUM_HOUR, 10.4 * GB),
    ValkeyNode("highmem-xlarge", prices.VALKEY_HIGHMEM_XLARGE_HOUR, 46.4 * GB),
)


def valkey_window_bytes(mix: Mix, events: float) -> float:
    """The window's memory: 48 hours of a month's events (730 hours), at the mix's bytes an
    event."""
    return events * VALKEY_WINDOW_HOURS / prices.HOURS_PER_MONTH * mix.valkey_bytes


def valkey_node(mix: Mix, events: float) -> ValkeyNode:
    """The smallest node type the window fills to at most VALKEY_MAX_FILL; past the largest
    type's, that type (fuller than the rule: the doc says how full)."""
    window = valkey_window_bytes(mix, events)
    for node in VALKEY_NODES:
        if window <= node.writable_bytes * VALKEY_MAX_FILL:
            return node
    return VALKEY_NODES[-1]


def valkey_capacity_events(mix: Mix, node: ValkeyNode) -> float:
    """The most events a month whose window keeps `node` at most VALKEY_MAX_FILL full."""
    return node.writable_bytes * VALKEY_MAX_FILL / valkey_window_bytes(mix, 1.0)


def valkey_fill(mix: Mix, events: float) -> float:
    return valkey_window_bytes(mix, events) / valkey_node(mix, events).writable_bytes


def dedup_store_cost(mix: Mix, events: float) -> float:
    """Memorystore's node-hours when the mix keeps its claims in Valkey (Firestore claims are
    billed as Firestore operations and storage)."""
    if mix.dedup_store != "valkey":
        return 0.0
    node = valkey_node(mix, events)
    return (1 + VALKEY_REPLICAS) * node.price.usd * prices.HOURS_PER_MONTH


def bigquery_streaming_cost(mix: Mix, events: float) -> float:
    rows = events * mix.bigquery_rows
    mean_row = mix.bigquery_bytes / mix.bigquery_rows if mix.bigquery_rows else 0.0
    return charge(prices.BIGQUERY_STREAMING, rows * max(mean_row, BIGQUERY_MIN_ROW_BYTES))


def bigquery_storage_cost(mix: Mix, events: float) -> float:
    """One month of events; each further month adds as much (until partitions expire)."""
    stored = events * mix.bigquery_bytes * BIGQUERY_STORAGE_BYTES_PER_STREAMED_BYTE
    return charge(prices.BIGQUERY_STORAGE, stored)


def load_balancer_cost(mix: Mix, events: float) -> float:
    processed = events * (EDGE_BYTES_PER_EVENT + mix.requests.ingest * EDGE_BYTES_PER_REQUEST)
    return prices.HOURS_PER_MONTH * prices.LB_FORWARDING_RULES_HOUR.usd + charge(
        prices.LB_DATA_PROCESSED, processed
    )


def cloud_armor_cost(mix: Mix, events: float) -> float:
    fixed = (
        ARMOR_POLICIES * prices.ARMOR_POLICY_MONTH.usd + ARMOR_RULES * prices.ARMOR_RULE_MONTH.usd
    )
    return fixed + charge(prices.ARMOR_REQUESTS, events * mix.requests.ingest)


def api_gateway_cost(mix: Mix, events: float) -> float:
    """The front end before issue 17, for comparison: tiered per call."""
    calls = events * mix.requests.ingest
    first_tier = min(calls, prices.API_GATEWAY_TIER_CALLS)
    beyond = max(0.0, calls - prices.API_GATEWAY_TIER_CALLS)
    return charge(prices.API_GATEWAY_CALLS, first_tier) + beyond * (
        prices.API_GATEWAY_CALLS_BEYOND.per_unit()
    )


def egress_cost(mix: Mix, events: float) -> float:
    return charge(prices.EGRESS_BYTES, events * mix.deliveries * EGRESS_BYTES_PER_DELIVERY)


def logged_bytes(mix: Mix, events: float, functions: tuple[str, ...] = LOGGED_FUNCTIONS) -> float:
    return sum(events * mix.requests.get(name) for name in functions) * LOG_BYTES_PER_REQUEST


def logging_cost(mix: Mix, events: float, functions: tuple[str, ...] = LOGGED_FUNCTIONS) -> float:
    return charge(prices.LOGGING_INGESTED, logged_bytes(mix, events, functions))


# --- the bill -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bill:
    """One month at one volume: the Result table's lines (label -> dollars), in its order."""

    events: float
    lines: dict[str, float]

    @property
    def total(self) -> float:
        return sum(self.lines.values())

    @property
    def per_million(self) -> float:
        return self.total / (self.events / 1_000_000)


FUNCTIONS_LINE = "Cloud Functions: CPU, memory, requests"
IDLE_LINE = "Minimum (warm) instances while idle"
FIRESTORE_OPERATIONS_LINE = "Firestore operations"
DEDUP_LINE = "Deduplication store (Memorystore for Valkey)"
LOAD_BALANCER_LINE = "Load balancer: forwarding rules, data processed"
ARMOR_LINE = f"Cloud Armor on ingest: policy, {ARMOR_RULES} rules, requests"


def assumed_edge(events: float) -> str:
    """The edge a deployment of `events` a month would use (DIRECT_EDGE_UP_TO_EVENTS)."""
    return DIRECT_EDGE if events <= DIRECT_EDGE_UP_TO_EVENTS else LOAD_BALANCER_EDGE


def monthly_bill(
    mix: Mix,
    events: float,
    sizes: Mapping[str, FunctionSize],
    edge: str = LOAD_BALANCER_EDGE,
) -> Bill:
    if edge not in EDGES:
        raise ValueError(f"edge must be one of {', '.join(EDGES)}, not {edge!r}")
    behind_load_balancer = edge == LOAD_BALANCER_EDGE
    return Bill(
        events,
        {
            FUNCTIONS_LINE: functions_cost(mix, events, sizes),
            IDLE_LINE: idle_instances_cost(mix, events, sizes),
            "Pub/Sub": pubsub_cost(mix, events),
            FIRESTORE_OPERATIONS_LINE: firestore_operations_cost(mix, events),
            "Firestore storage": firestore_storage_cost(mix, events),
            DEDUP_LINE: dedup_store_cost(mix, events),
            "BigQuery streaming inserts": bigquery_streaming_cost(mix, events),
            "BigQuery storage (one month of events)": bigquery_storage_cost(mix, events),
            LOAD_BALANCER_LINE: load_balancer_cost(mix, events) if behind_load_balancer else 0.0,
            ARMOR_LINE: cloud_armor_cost(mix, events) if behind_load_balancer else 0.0,
            "Egress to destinations": egress_cost(mix, events),
            "Cloud Logging (ingest's request logs)": logging_cost(mix, events),
        },
    )


def idle_floor(
    mix: Mix, sizes: Mapping[str, FunctionSize], edge: str = LOAD_BALANCER_EDGE
) -> float:
    """What the deployment costs a month with no traffic at all."""
    return monthly_bill(mix, 0.0, sizes, edge).total


# --- the deduplication store: whichever is cheaper at the volume ----------------------------


@dataclass(frozen=True)
class Traffic:
    """One kind of traffic measured (or derived) with each deduplication store."""

    valkey: Mix
    firestore: Mix

    def mixes(self) -> tuple[Mix, Mix]:
        return (self.firestore, self.valkey)


def traffics(mixes: Mapping[str, Mix]) -> dict[str, Traffic]:
    """batched and single traffic, each measured with either deduplication store."""
    return {
        "batched": Traffic(valkey=mixes["batched"], firestore=mixes["batched_firestore_claims"]),
        "single": Traffic(valkey=mixes["single"], firestore=mixes["single_firestore_claims"]),
    }


def cheapest_bill(
    traffic: Traffic,
    events: float,
    sizes: Mapping[str, FunctionSize],
    edge: str | None = None,
) -> Bill:
    """The bill with the cheaper deduplication store at this volume (Firestore on a tie: it has
    nothing to size and no idle cost), behind `edge` (default: the one `assumed_edge` gives)."""
    edge = assumed_edge(events) if edge is None else edge
    bills = [monthly_bill(mix, events, sizes, edge) for mix in traffic.mixes()]
    return min(bills, key=lambda bill: bill.total)


def break_even(traffic: Traffic, sizes: Mapping[str, FunctionSize]) -> float:
    """The smallest monthly volume (1% steps from 1M to 10B) where Valkey is the cheaper."""
    events = 1_000_000.0
    while events < 10_000_000_000:
        valkey = monthly_bill(traffic.valkey, events, sizes).total
        if valkey < monthly_bill(traffic.firestore, events, sizes).total:
            return events
        events *= 1.01
    return math.inf


def chosen_store(traffic: Traffic, events: float, sizes: Mapping[str, FunctionSize]) -> str:
    """The store `cheapest_bill` assumes, as the Result table names it."""
    valkey = monthly_bill(traffic.valkey, events, sizes)
    if monthly_bill(traffic.firestore, events, sizes).total <= valkey.total:
        return "Firestore claims"
    return f"Valkey, one `{valkey_node(traffic.valkey, events).name}` node"


# --- the targets of issue 19 item 5 (reported, never steered towards) -----------------------

TARGET_EVENTS_LARGE = 1_000_000_000
TARGET_PER_MILLION_LARGE = 1.20  # dollars per million events, batched, at 1B a month
TARGET_EVENTS_SMALL = 1_000_000
TARGET_TOTAL_SMALL = 5.0  # dollars a month for the whole deployment at 1M, idle floor included
# Issue 19 item 2: Firestore operations per event, all kinds (TTL deletes included), one rule.
TARGET_FIRESTORE_OPERATIONS = 1.2


@dataclass(frozen=True)
class Target:
    name: str
    limit: float
    value: float
    edge: str = LOAD_BALANCER_EDGE

    @property
    def met(self) -> bool:
        return self.value <= self.limit


def targets(traffic: Traffic, sizes: Mapping[str, FunctionSize]) -> list[Target]:
    """Each target behind each edge, the edge named in the target's name too."""
    found = []
    for edge in EDGES:
        large = cheapest_bill(traffic, TARGET_EVENTS_LARGE, sizes, edge)
        found.append(
            Target(
                f'dollars per million events at 1B a month, edge "{edge}"',
                TARGET_PER_MILLION_LARGE,
                large.per_million,
                edge,
            )
        )
    for edge in EDGES:
        small = cheapest_bill(traffic, TARGET_EVENTS_SMALL, sizes, edge)
        found.append(
            Target(
                f'dollars a month in total at 1M a month, edge "{edge}"',
                TARGET_TOTAL_SMALL,
                small.total,
                edge,
            )
        )
    return found


# --- what one more operation per event costs (to weigh a change to the pipeline) ------------


def marginal_costs(events: float) -> dict[str, float]:
    """Dollars a month for one more of each operation per event, above the free tiers' reach
    (free tiers ignored: they are spent long before these volumes)."""
    return {
        "Firestore write": events * prices.FIRESTORE_WRITES.per_unit(),
        "Firestore read": events * prices.FIRESTORE_READS.per_unit(),
        "Firestore delete": events * prices.FIRESTORE_DELETES.per_unit(),
        "function request (push)": events * prices.FUNCTION_REQUESTS.per_unit(),
        "KB through Pub/Sub (published and pushed)": events
        * 2
        * KB
        * prices.PUBSUB_THROUGHPUT.per_unit(),
    }


def per_second_operations_cost(price: Price, per_second: float) -> float:
    """A background operation at a steady rate, a month (e.g. one read every 0.5 s)."""
    return per_second * SECONDS_PER_MONTH * price.per_unit()
