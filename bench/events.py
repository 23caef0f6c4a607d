"""The events the benchmarks send or feed to the engines: shaped like what segment-analytics-python
sends, and normalised by ingest's own code where a bench needs them as process and deliver see
them.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from typing import Any

from bench.reporting import iso
from shared.domain.event import CanonicalEvent
from shared.domain.events import IngestContext, normalise_request

# The workspace and source the in-process benches' events belong to (no store holds them).
WORKSPACE_ID = "ws-bench"
SOURCE_ID = "src-bench"


def track_event(index: int, moment: datetime) -> dict[str, Any]:
    """A track call shaped like what segment-analytics-python sends."""
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": f"user-{index % 997}",
        "anonymousId": None,
        "messageId": str(uuid.uuid4()),
        "timestamp": iso(moment - timedelta(milliseconds=index)),
        "properties": {
            "order_id": f"ORD-{100000 + index}",
            "total": 99.99,
            "currency": "USD",
            "products": [{"sku": "SKU-42", "name": "Widget", "quantity": 2, "price": 24.99}],
        },
        "context": {
            "library": {"name": "analytics-python", "version": "2.4.0"},
            "ip": "203.0.113.7",
        },
        "integrations": {},
    }


def purchase_call(index: int, rng: random.Random) -> dict[str, Any]:
    """A purchase_completed track call, as an SDK sends it."""
    return {
        "type": "track",
        "event": "purchase_completed",
        "userId": f"user-{index % 997}",
        "messageId": f"bench-{index:08d}",
        "timestamp": "2024-03-01T12:00:00.000Z",
        "properties": {
            "order_id": f"ORD-{index:08d}",
            "total": round(rng.uniform(5, 300), 2),
            "currency": rng.choice(("USD", "EUR", "GBP")),
        },
        "context": {
            "library": {"name": "analytics-python", "version": "2.4.0"},
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64)",
        },
    }


def canonical_events(items: list[dict[str, Any]], received_at: datetime) -> list[CanonicalEvent]:
    """The calls as ingest normalises them (what process and deliver see)."""
    ctx = IngestContext(WORKSPACE_ID, SOURCE_ID, received_at, "203.0.113.7")
    events: list[CanonicalEvent] = []
    for start in range(0, len(items), 1000):
        batch = normalise_request({"batch": items[start : start + 1000]}, None, ctx)
        if batch.rejections:
            raise RuntimeError(f"ingest refused a bench event: {batch.rejections[0]}")
        events.extend(batch.events)
    return events
