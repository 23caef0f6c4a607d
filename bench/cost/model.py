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
from bench.cost.prices import KB, Price
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
# Every event gets one entry in the event log (the deduplication record); it expires by TTL
# after 48 hours, and each expiry is a billed delete the adapter never sees.
EVENT_LOG_ENTRIES_PER_EVENT = 1.0
EVENT_LOG_TTL_HOURS = 48
EVENT_LOG_ENTRY_BYTES = 1 * KB
# One delivery record per delivery, kept (no TTL): a month of them is stored at month's end.
DELIVERY_RECORD_BYTES = 1.5 * KB
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


def firestore_deletes(mix: Mix) -> float:
    """Deletes per event: those counted at the adapter plus the event log's TTL expiries."""
    return mix.firestore_deletes + EVENT_LOG_ENTRIES_PER_EVENT


def firestore_operations_cost(mix: Mix, events: float) -> float:
    return (
        daily_free_charge(prices.FIRESTORE_READS, events * mix.firestore_reads)
        + daily_free_charge(prices.FIRESTORE_WRITES, events * mix.firestore_writes)
        + daily_free_charge(prices.FIRESTORE_DELETES, events * firestore_deletes(mix))
    )


def firestore_stored_bytes(mix: Mix, events: float) -> float:
    """At month's end: the event log's last 48 hours, and the month's delivery records."""
    event_log_share = EVENT_LOG_TTL_HOURS / (DAYS_PER_MONTH * 24)
    event_log = events * event_log_share * EVENT_LOG_ENTRIES_PER_EVENT * EVENT_LOG_ENTRY_BYTES
    return event_log + events * mix.deliveries * DELIVERY_RECORD_BYTES


def firestore_storage_cost(mix: Mix, events: float) -> float:
    return charge(prices.FIRESTORE_STORAGE, firestore_stored_bytes(mix, events))


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
LOAD_BALANCER_LINE = "Load balancer: forwarding rules, data processed"
ARMOR_LINE = f"Cloud Armor on ingest: policy, {ARMOR_RULES} rules, requests"


def monthly_bill(mix: Mix, events: float, sizes: Mapping[str, FunctionSize]) -> Bill:
    return Bill(
        events,
        {
            FUNCTIONS_LINE: functions_cost(mix, events, sizes),
            IDLE_LINE: idle_instances_cost(mix, events, sizes),
            "Pub/Sub": pubsub_cost(mix, events),
            FIRESTORE_OPERATIONS_LINE: firestore_operations_cost(mix, events),
            "Firestore storage": firestore_storage_cost(mix, events),
            "BigQuery streaming inserts": bigquery_streaming_cost(mix, events),
            "BigQuery storage (one month of events)": bigquery_storage_cost(mix, events),
            LOAD_BALANCER_LINE: load_balancer_cost(mix, events),
            ARMOR_LINE: cloud_armor_cost(mix, events),
            "Egress to destinations": egress_cost(mix, events),
            "Cloud Logging (ingest's request logs)": logging_cost(mix, events),
        },
    )


def idle_floor(mix: Mix, sizes: Mapping[str, FunctionSize]) -> float:
    """What the deployment costs a month with no traffic at all."""
    return monthly_bill(mix, 0.0, sizes).total


# --- the targets of issue 19 item 5 (reported, never steered towards) -----------------------

TARGET_EVENTS_LARGE = 1_000_000_000
TARGET_PER_MILLION_LARGE = 1.20  # dollars per million events, batched, at 1B a month
TARGET_EVENTS_SMALL = 1_000_000
TARGET_TOTAL_SMALL = 5.0  # dollars a month for the whole deployment at 1M, idle floor included


@dataclass(frozen=True)
class Target:
    name: str
    limit: float
    value: float

    @property
    def met(self) -> bool:
        return self.value <= self.limit


def targets(mix: Mix, sizes: Mapping[str, FunctionSize]) -> list[Target]:
    large = monthly_bill(mix, TARGET_EVENTS_LARGE, sizes)
    small = monthly_bill(mix, TARGET_EVENTS_SMALL, sizes)
    return [
        Target(
            "dollars per million events at 1B a month", TARGET_PER_MILLION_LARGE, large.per_million
        ),
        Target("dollars a month in total at 1M a month", TARGET_TOTAL_SMALL, small.total),
    ]


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
