"""What the same volumes would cost on a self-hosted RudderStack (rudder-server with its
transformer) on Compute Engine virtual machines, sized by RudderStack's published figures, at the
list prices of prices.py: the comparison table beside docs/COST.md's Result (issue 19 item 5).

RudderStack's "Infrastructure provisioning" page (rudderstack.com/docs/user-guides/
administrators-guide/infra-provisioning) reports load tests of the data plane on AWS: an m5.large
(2 cores, 8 GB) sustained 1.7K/s (gateway.write_key_requests, 1.6K/s through the transformer and
the batch router), an m5.xlarge 1.9K/s, an m4.2xlarge 2.5-3K/s; every test used a db.m4.xlarge RDS
Postgres (4 vCPU, 16 GB), and the page recommends at least 1 TB of database storage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.cost import model, prices
from bench.cost.inputs import Mix
from bench.cost.prices import GIB

# Events a second one 2-vCPU node carries (the m5.large figure). The page counts gateway
# requests; it is read here as events, whatever the batching: favourable to RudderStack when
# SDKs batch.
EVENTS_PER_SECOND_PER_NODE = 1_700
# A virtual machine does not scale per request, so nodes are sized for the busiest hour, taken
# as twice the month's mean rate. Streams' functions are billed at the mean.
PEAK_TO_MEAN = 2.0
# One node at least, and no standby: less available than Streams' functions (an assumption
# favourable to RudderStack).
MIN_NODES = 1
# e2-standard-2: 2 vCPU and 8 GiB, the m5.large's shape.
NODE = prices.E2_STANDARD_2_HOUR
NODE_BOOT_DISK_GIB = 20
# Postgres as in RudderStack's tests (db.m4.xlarge): Cloud SQL with 4 vCPU and 16 GiB, one zone
# (no high availability), and the 1 TB of storage the page recommends.
POSTGRES_VCPU = 4
POSTGRES_MEMORY_GIB = 16
POSTGRES_STORAGE_GIB = 1024


@dataclass(frozen=True)
class RudderStackBill:
    events: float
    nodes: int
    lines: dict[str, float]

    @property
    def total(self) -> float:
        return sum(self.lines.values())

    @property
    def per_million(self) -> float:
        return self.total / (self.events / 1_000_000)


def nodes_needed(events: float) -> int:
    peak_per_second = events / model.SECONDS_PER_MONTH * PEAK_TO_MEAN
    return max(MIN_NODES, math.ceil(peak_per_second / EVENTS_PER_SECOND_PER_NODE))


def postgres_cost() -> float:
    hourly = (
        POSTGRES_VCPU * prices.CLOUD_SQL_VCPU_HOUR.usd
        + POSTGRES_MEMORY_GIB * prices.CLOUD_SQL_GIB_HOUR.usd
    )
    storage = POSTGRES_STORAGE_GIB * GIB * prices.CLOUD_SQL_SSD.per_unit()
    return hourly * prices.HOURS_PER_MONTH + storage


def monthly_bill(mix: Mix, events: float) -> RudderStackBill:
    nodes = nodes_needed(events)
    node_month = NODE.usd * prices.HOURS_PER_MONTH
    boot_disk = NODE_BOOT_DISK_GIB * GIB * prices.BALANCED_DISK.per_unit()
    return RudderStackBill(
        events,
        nodes,
        {
            f"nodes: e2-standard-2 with a {NODE_BOOT_DISK_GIB} GiB disk": nodes
            * (node_month + boot_disk),
            f"Postgres: Cloud SQL, {POSTGRES_VCPU} vCPU, {POSTGRES_MEMORY_GIB} GiB, "
            f"{POSTGRES_STORAGE_GIB} GiB SSD": postgres_cost(),
            # The same deliveries leave for the same destinations as Streams'.
            "Egress to destinations": model.egress_cost(mix, events),
        },
    )
