"""The `TopicAdmin` port over HTTP: the wiring function does the Pub/Sub work (issue 17 item 5).

In production the functions that create sources and destinations hold no Pub/Sub wiring rights;
they call the private `wiring` function (STREAMS_WIRING_URL) with an ID token of their own
service account, which Cloud Run checks against the function's invokers. That function checks
every request against the deployment's settings (shared/domain/wiring.py) before acting.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import requests

from shared.adapters.errors import CALL_TIMEOUT_SECONDS
from shared.domain.errors import Unavailable
from shared.domain.wiring import topic_name
from shared.ports import PushPolicy, SubscriptionState

BASE = "/internal/wiring"


class WiringRefused(RuntimeError):
    """The wiring function refused a request: a deployment whose functions disagree on their
    settings, or a caller asking for what wiring never needs. A bug or a breach, never retried."""


def new_id_token_session(audience: str) -> requests.Session:
    """A session that sends an ID token for `audience` (the wiring function's URL), minted for
    the function's own service account by the metadata server and refreshed before it expires."""
    import google.auth.transport.requests
    import google.oauth2.id_token

    credentials = google.oauth2.id_token.fetch_id_token_credentials(
        audience, request=google.auth.transport.requests.Request()
    )
    return google.auth.transport.requests.AuthorizedSession(credentials)


class RemoteTopicAdmin:
    """Creates and lists run-time topics and subscriptions through the wiring function."""

    def __init__(self, project_id: str, base_url: str, session: requests.Session):
        self._project_id = project_id
        self._base = base_url.rstrip("/") + BASE
        self._session = session

    def topic_path(self, topic_id: str) -> str:
        return topic_name(self._project_id, topic_id)

    def ensure_topic(self, topic_id: str) -> str:
        return str(self._call("POST", "/topics", {"topic_id": topic_id})["topic"])

    def ensure_push_subscription(self, topic: str, subscription_id: str, policy: PushPolicy) -> str:
        body = {
            "topic": topic,
            "subscription_id": subscription_id,
            "policy": dataclasses.asdict(policy),
        }
        return str(self._call("POST", "/subscriptions", body)["subscription"])

    def delete_topic(self, topic: str) -> None:
        self._call("POST", "/topics/delete", {"topic": topic})

    def retire_subscription(self, subscription_id: str) -> None:
        self._call("POST", "/subscriptions/retire", {"subscription_id": subscription_id})

    def topic_ids(self, prefix: str) -> set[str]:
        return set(self._call("GET", "/topics", params={"prefix": prefix})["topic_ids"])

    def subscription_states(self, prefix: str) -> dict[str, SubscriptionState]:
        found = self._call("GET", "/subscriptions", params={"prefix": prefix})["subscriptions"]
        return {
            name: SubscriptionState(topic=state["topic"], push_endpoint=state["push_endpoint"])
            for name, state in found.items()
        }

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        try:
            response = self._session.request(
                method, self._base + path, json=body, params=params, timeout=CALL_TIMEOUT_SECONDS
            )
        except requests.RequestException as exc:
            raise Unavailable(f"the wiring function is unreachable ({type(exc).__name__})") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise Unavailable(f"the wiring function answered {response.status_code}")
        if response.status_code >= 400:
            raise WiringRefused(
                f"the wiring function refused {method} {path}: {response.status_code}"
                f" {response.text[:500]}"
            )
        return response.json() if response.content else {}
