"""The configuration documents client SDKs load at start-up, pointed at this deployment.

Segment's settings (`/v1/projects/{writeKey}/settings`) are read by analytics.js 2.0,
analytics-kotlin and analytics-swift: `integrations["Segment.io"]` says where events go. Streams
runs no device-mode destinations, so that is the only integration, and everything that would
make an SDK load code from Segment (remote plugins, middleware, edge functions, video plugins)
is empty. RudderStack's JavaScript SDK v3 reads its source configuration from `{configUrl}/
sourceConfig/`; again no device-mode destinations, and its own error and metrics reporting off.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.domain.sources import WriteKey

if TYPE_CHECKING:
    # Only read here: the settings endpoint (ingest) need not load the contract validator.
    from shared.domain.contracts import EventContract

SEGMENT_INTEGRATION = "Segment.io"
# Where the SDKs post: analytics.js appends `/t`, `/i`... and the mobile SDKs `/b` to apiHost.
API_PATH = "/v1"


@dataclass(frozen=True)
class SourceProfile:
    """What the documents say about one source: its key record, name and blocking contracts."""

    key: WriteKey
    name: str
    contracts: tuple[EventContract, ...]


def blocking_contracts(contracts: Iterable[EventContract]) -> list[dict[str, str]]:
    """The active contracts that quarantine an event breaking them (`block` for its schema or
    for undeclared fields), by the events they judge: type and name ("*" for every name)."""
    found = [
        c
        for c in contracts
        if c.status == "active" and "block" in (c.enforcement_mode, c.undeclared_fields)
    ]
    found.sort(key=lambda c: (c.event_type, c.event_name, c.created_at, c.id))
    return [
        {
            "eventType": c.event_type,
            "eventName": c.event_name,
            "enforcementMode": c.enforcement_mode,
            "undeclaredFields": c.undeclared_fields,
        }
        for c in found
    ]


def segment_settings(
    write_key: str, profile: SourceProfile, host: str, scheme: str
) -> dict[str, Any]:
    """The settings document of Segment's SDKs, sending to `scheme://host/v1`.

    `apiHost` is `host/v1` without a scheme: analytics.js builds `{protocol}://{apiHost}/{t|i|..}`
    and the mobile SDKs `https://{apiHost}/b`. The object-valued keys the mobile SDKs decode as
    objects (`plan`, `edgeFunction`, `middlewareSettings`, `metrics`) are objects, never null.
    """
    api_host = host + API_PATH
    return {
        "integrations": {
            SEGMENT_INTEGRATION: {"apiKey": write_key, "apiHost": api_host, "protocol": scheme}
        },
        "plan": {},
        "edgeFunction": {},
        "analyticsNextEnabled": True,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        # analytics.js samples its own client metrics into `{host}/m`: Streams stores none
        # (`/v1/m` answers and drops them), so none are sampled; the host keeps any that an SDK
        # sends regardless on this deployment, never on Segment's.
        "metrics": {"sampleRate": 0, "host": api_host},
        "legacyVideoPluginsEnabled": False,
        "remotePlugins": [],
        # Streams' own key, which no SDK reads: what this deployment does with the events.
        "streams": {
            "sourceId": profile.key.source_id,
            "blockingContracts": blocking_contracts(profile.contracts),
        },
    }


def rudderstack_source_config(write_key: str, profile: SourceProfile) -> dict[str, Any]:
    """The source configuration RudderStack's JavaScript SDK v3 validates (`source.id`, an
    object `source.config`, a `source.destinations` list) and acts on."""
    return {
        "source": {
            "id": profile.key.source_id,
            "name": profile.name,
            "writeKey": write_key,
            "workspaceId": profile.key.workspace_id,
            "enabled": profile.key.status == "active",
            # The SDK would report its errors and metrics to RudderStack's own services.
            "config": {
                "statsCollection": {"errors": {"enabled": False}, "metrics": {"enabled": False}}
            },
            # Device-mode destinations load vendor code into the page: Streams delivers from
            # the server (cloud mode) only.
            "destinations": [],
        }
    }
