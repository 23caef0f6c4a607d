"""Google Cloud list prices the cost model uses, as data: one `Price` per charge, with its unit
and free tier. docs/COST.md's "Prices assumed" table is rendered from this list.

Prices are USD for `us-central1` (Tier 1) as the author knew them in mid-2025: this machine cannot
reach the pricing pages, so check them (or the pricing calculator) before budgeting. Monthly free
tiers are per billing account.
"""

from __future__ import annotations

from dataclasses import dataclass

AS_OF = "mid-2025"
SOURCE = (
    "Google Cloud list prices for `us-central1` (Tier 1), USD, as the author knew them in "
    "mid-2025 (this machine cannot reach the pricing pages: check them, or the pricing "
    "calculator, before budgeting). Monthly free tiers are per billing account."
)

# Units the prices are quoted in: Pub/Sub, egress and storage bill binary units, BigQuery's
# streaming inserts decimal megabytes (its price list says "200 MB").
KB = 1000
MB = 1000**2
GB = 1000**3  # Memorystore's node capacities are quoted in decimal gigabytes
GIB = 1024**3
TIB = 1024**4
HOURS_PER_MONTH = 730  # Google's monthly figure for hourly resources.


@dataclass(frozen=True)
class Price:
    """One charge: `usd` per `per` base units, `free` of them free each month (each day when
    `free_per_day`)."""

    service: str
    usd: float
    unit: str  # what `per` counts, as the doc's table prints it after "per"
    per: float = 1.0  # in the model's base units: bytes, seconds, requests, operations
    free: float = 0.0  # in the same base units
    free_label: str = "none"  # the free tier as the doc's table prints it
    free_per_day: bool = False
    note: str = ""

    def per_unit(self) -> float:
        return self.usd / self.per


# Cloud Functions gen2 run on Cloud Run with request-based billing.
FUNCTIONS = "Cloud Functions gen2 (Cloud Run, request-based billing)"
FUNCTION_VCPU_SECOND = Price(
    FUNCTIONS, 0.000024, "vCPU-second", free=180_000, free_label="180,000 vCPU-s"
)
FUNCTION_GIB_SECOND = Price(
    FUNCTIONS, 0.0000025, "GiB-second", free=360_000, free_label="360,000 GiB-s"
)
FUNCTION_REQUESTS = Price(
    FUNCTIONS, 0.40, "million requests", per=1_000_000, free=2_000_000, free_label="2M requests"
)
# A minimum instance serving nothing is billed at the idle rate, per vCPU-second and GiB-second.
IDLE_VCPU_SECOND = Price(FUNCTIONS, 0.0000025, "vCPU-second of an idle minimum instance")
IDLE_GIB_SECOND = Price(FUNCTIONS, 0.0000025, "GiB-second of an idle minimum instance")

PUBSUB = "Pub/Sub"
PUBSUB_THROUGHPUT = Price(
    PUBSUB,
    40.0,
    "TiB of throughput, publish and delivery each counted; at least 1 KB per push",
    per=TIB,
    free=10 * GIB,
    free_label="10 GiB",
)

FIRESTORE = "Firestore (native, regional)"
FIRESTORE_READS = Price(
    FIRESTORE, 0.03, "100,000 reads", 100_000, 50_000, "50,000 a day", free_per_day=True
)
FIRESTORE_WRITES = Price(
    FIRESTORE, 0.09, "100,000 writes", 100_000, 20_000, "20,000 a day", free_per_day=True
)
FIRESTORE_DELETES = Price(
    FIRESTORE,
    0.01,
    "100,000 deletes (TTL deletes included)",
    100_000,
    20_000,
    "20,000 a day",
    free_per_day=True,
)
FIRESTORE_STORAGE = Price(FIRESTORE, 0.15, "GiB-month", per=GIB, free=GIB, free_label="1 GiB")

# Memorystore for Valkey (`dedup_store.kind = "valkey"`): per node-hour, whatever the traffic.
# Google's price list was not at hand: these are the assumptions docs/DEPLOY.md states
# ("Deduplication store"), for `us-central1`; check them before budgeting.
MEMORYSTORE = "Memorystore for Valkey (assumed: see DEPLOY.md)"
VALKEY_STANDARD_SMALL_HOUR = Price(MEMORYSTORE, 0.12, "node-hour of `standard-small` (5.2 GB)")
VALKEY_HIGHMEM_MEDIUM_HOUR = Price(MEMORYSTORE, 0.25, "node-hour of `highmem-medium` (10.4 GB)")
# Not even an assumed list price: highmem-medium's scaled by total node memory (58 GB / 13 GB).
VALKEY_HIGHMEM_XLARGE_HOUR = Price(
    MEMORYSTORE, 1.12, "node-hour of `highmem-xlarge` (46.4 GB; highmem-medium's per GB)"
)

BIGQUERY = "BigQuery"
BIGQUERY_STREAMING = Price(
    BIGQUERY, 0.01, "200 MB of streaming inserts (rows count at least 1 KB)", per=200 * MB
)
BIGQUERY_STORAGE = Price(
    BIGQUERY,
    0.02,
    "GiB-month of active storage (long-term, after 90 days unmodified, $0.01)",
    per=GIB,
    free=10 * GIB,
    free_label="10 GiB",
)
BIGQUERY_QUERIES = Price(
    BIGQUERY, 6.25, "TiB scanned by queries", per=TIB, free=TIB, free_label="1 TiB"
)

LOAD_BALANCER = "Application Load Balancer (global external)"
# One flat hourly rate covers the first 5 forwarding rules; Streams has 2 (HTTPS, HTTP redirect).
LB_FORWARDING_RULES_HOUR = Price(
    LOAD_BALANCER, 0.025, "hour for the first 5 forwarding rules (Streams has 2)"
)
LB_DATA_PROCESSED = Price(LOAD_BALANCER, 0.008, "GiB processed, in and out", per=GIB)

CLOUD_ARMOR = "Cloud Armor (Standard)"
ARMOR_POLICY_MONTH = Price(CLOUD_ARMOR, 5.0, "policy a month")
ARMOR_RULE_MONTH = Price(CLOUD_ARMOR, 1.0, "rule a month")
ARMOR_REQUESTS = Price(CLOUD_ARMOR, 0.75, "million requests evaluated", per=1_000_000)

# The front end ingest had before issue 17's load balancer: the edge table compares against it.
API_GATEWAY = "API Gateway (ingest's front end before issue 17)"
API_GATEWAY_CALLS = Price(
    API_GATEWAY,
    3.0,
    "million calls up to 1 billion a month",
    per=1_000_000,
    free=2_000_000,
    free_label="2M calls",
)
API_GATEWAY_CALLS_BEYOND = Price(API_GATEWAY, 1.50, "million calls beyond 1 billion", 1_000_000)
API_GATEWAY_TIER_CALLS = 1_000_000_000

EGRESS = "Internet egress (premium tier, North America)"
EGRESS_BYTES = Price(EGRESS, 0.12, "GiB", per=GIB, free=GIB, free_label="1 GiB (Cloud Run)")

LOGGING = "Cloud Logging"
LOGGING_INGESTED = Price(LOGGING, 0.50, "GiB ingested", per=GIB, free=50 * GIB, free_label="50 GiB")

# The self-hosted RudderStack comparison (rudderstack.py): virtual machines and Postgres.
COMPUTE = "Compute Engine (on demand)"
E2_STANDARD_2_HOUR = Price(COMPUTE, 0.067006, "hour of an e2-standard-2 (2 vCPU, 8 GiB)")
BALANCED_DISK = Price(COMPUTE, 0.10, "GiB-month of balanced persistent disk", per=GIB)
CLOUD_SQL = "Cloud SQL for PostgreSQL (Enterprise, one zone)"
CLOUD_SQL_VCPU_HOUR = Price(CLOUD_SQL, 0.0413, "vCPU-hour")
CLOUD_SQL_GIB_HOUR = Price(CLOUD_SQL, 0.0070, "GiB-hour of memory")
CLOUD_SQL_SSD = Price(CLOUD_SQL, 0.17, "GiB-month of SSD storage", per=GIB)

ALL: tuple[Price, ...] = (
    FUNCTION_VCPU_SECOND,
    FUNCTION_GIB_SECOND,
    FUNCTION_REQUESTS,
    IDLE_VCPU_SECOND,
    IDLE_GIB_SECOND,
    PUBSUB_THROUGHPUT,
    FIRESTORE_READS,
    FIRESTORE_WRITES,
    FIRESTORE_DELETES,
    FIRESTORE_STORAGE,
    VALKEY_STANDARD_SMALL_HOUR,
    VALKEY_HIGHMEM_MEDIUM_HOUR,
    VALKEY_HIGHMEM_XLARGE_HOUR,
    BIGQUERY_STREAMING,
    BIGQUERY_STORAGE,
    BIGQUERY_QUERIES,
    LB_FORWARDING_RULES_HOUR,
    LB_DATA_PROCESSED,
    ARMOR_POLICY_MONTH,
    ARMOR_RULE_MONTH,
    ARMOR_REQUESTS,
    API_GATEWAY_CALLS,
    API_GATEWAY_CALLS_BEYOND,
    EGRESS_BYTES,
    LOGGING_INGESTED,
    E2_STANDARD_2_HOUR,
    BALANCED_DISK,
    CLOUD_SQL_VCPU_HOUR,
    CLOUD_SQL_GIB_HOUR,
    CLOUD_SQL_SSD,
)
