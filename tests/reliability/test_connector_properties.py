"""Every destination type maps any event ingest accepts, whatever its properties, traits and
context hold, to requests, or refuses it with a reason (EventRejected): never another exception,
which would dead-letter the delivery as unprocessable for a connector's fault."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from shared.destinations import CONNECTORS, validate_config
from shared.destinations.base import EventRejected, OutboundRequest, build_requests
from shared.domain.events import normalise_request
from tests.reliability.test_properties import (
    CTX,
    EXAMPLES,
    PROPERTY,
    ids,
    json_values,
    storable_values,
)

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 3, 1, 12, 0, 1, tzinfo=UTC)
# Per type: a quarter of the suite's examples (fifteen types; 600 each ran clean, ~100 s).
PER_TYPE = settings(PROPERTY, max_examples=max(20, EXAMPLES // 4))


def valid_config(type_: str) -> Any:
    """The config of the type's first golden case."""
    [first, *_] = sorted((ROOT / "tests" / "golden" / "destinations" / type_).glob("*.json"))
    return validate_config(type_, json.loads(first.read_text())["config"])


def known(keys: list[str], values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects holding keys connectors read, each with any value."""
    return st.fixed_dictionaries({}, optional=dict.fromkeys(keys, values))


# The fields connectors read, each with any JSON value (a transformation may write anything).
properties = known(
    [
        "revenue", "total", "value", "currency", "products", "order_id", "url", "path", "title",
        "referrer", "search", "name", "price", "quantity", "product_id", "sku", "category",
    ],
    storable_values,
)  # fmt: skip
traits = known(
    [
        "email", "phone", "firstName", "lastName", "name", "address", "birthday", "createdAt",
        "gender", "avatar", "company", "title", "plan", "employees", "website", "industry",
    ],
    storable_values,
)  # fmt: skip
context = known(
    [
        "page", "traits", "ip", "userAgent", "library", "device", "os", "location", "campaign",
        "app", "locale", "network", "screen", "timezone", "fbc", "fbp",
    ],
    storable_values,
)  # fmt: skip
items = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["track", "identify", "page", "screen", "group", "alias"]),
        "userId": st.text(min_size=1, max_size=12) | st.just("a@example.com"),
        "anonymousId": st.text(min_size=1, max_size=12),
    },
    optional={
        "event": st.text(min_size=1, max_size=60),
        "name": st.text(max_size=12) | json_values,
        "groupId": st.text(min_size=1, max_size=10),
        "previousId": st.text(min_size=1, max_size=10),
        "messageId": st.text(min_size=1, max_size=40),
        "properties": properties,
        "traits": traits,
        "context": context,
    },
)


@pytest.mark.parametrize("type_", sorted(CONNECTORS))
def test_a_connector_maps_or_refuses_any_accepted_event(type_: str) -> None:
    config = valid_config(type_)

    @PER_TYPE
    @given(item=items)
    def maps_or_refuses(item: dict[str, Any]) -> None:
        if item["type"] == "track":
            item.setdefault("event", "Order Completed")
        accepted = normalise_request({"batch": [item]}, None, CTX, ids())
        assume(accepted.events)
        [event] = accepted.events
        try:
            built = build_requests(CONNECTORS[type_], event, config, now=NOW)
        except EventRejected:
            return
        for request in built:
            if isinstance(request, OutboundRequest):
                json.loads(request.body or b"null")  # every body is JSON

    maps_or_refuses()
