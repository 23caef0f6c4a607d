"""The wiring function's routes: Pub/Sub wiring done for the functions that create sources and
destinations (shared/domain/wiring.py says what it may do and why).

They are not in the public route table, so not behind the load balancer, and Cloud Run lets only
the function's invokers (event_keys, destinations, streams) call it, each with an ID token
(shared/adapters/wiring_client.py). Everything asked is checked against the deployment's own
settings before Pub/Sub is touched.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from shared.api.models import Input
from shared.bootstrap import deliver_push_policy, process_push_policy
from shared.domain import wiring
from shared.domain.errors import Forbidden
from shared.http.request import ApiRequest
from shared.http.routing import Route
from shared.ports import PushPolicy

FUNCTION = "wiring"
BASE = "/internal/wiring"


class TopicBody(Input):
    topic_id: str = Field(max_length=255)


class TopicName(Input):
    topic: str = Field(max_length=512, description="projects/<project>/topics/<id>")


class PushPolicyBody(Input):
    endpoint: str
    min_backoff_seconds: float
    max_backoff_seconds: float
    ack_deadline_seconds: int
    dead_letter_topic: str | None
    max_delivery_attempts: int | None
    service_account: str | None


class SubscriptionBody(Input):
    topic: str = Field(max_length=512)
    subscription_id: str = Field(max_length=255)
    policy: PushPolicyBody


class SubscriptionName(Input):
    subscription_id: str = Field(max_length=255)


class Listing(Input):
    prefix: str = Field(max_length=255)


class TopicPath(BaseModel):
    topic: str


class SubscriptionPath(BaseModel):
    subscription: str


class TopicIds(BaseModel):
    topic_ids: list[str]


class SubscriptionStateModel(BaseModel):
    topic: str
    push_endpoint: str | None


class Subscriptions(BaseModel):
    subscriptions: dict[str, SubscriptionStateModel]


def ensure_topic(request: ApiRequest) -> TopicPath:
    body: TopicBody = request.body
    wiring.topic_kind(body.topic_id)
    return TopicPath(topic=request.services.pubsub_topics.ensure_topic(body.topic_id))


def ensure_push_subscription(request: ApiRequest) -> SubscriptionPath:
    body: SubscriptionBody = request.body
    services = request.services
    kind = wiring.check_subscription(services.settings.project_id, body.topic, body.subscription_id)
    expected = _deployment_policy(request, kind)
    asked = PushPolicy(**body.policy.model_dump())
    if asked != expected:
        raise Forbidden(
            "the push policy differs from this deployment's for "
            f"{kind.name} subscriptions (endpoint, backoff, dead-lettering, identity)",
            field="policy",
        )
    path = services.pubsub_topics.ensure_push_subscription(body.topic, body.subscription_id, asked)
    return SubscriptionPath(subscription=path)


def _deployment_policy(request: ApiRequest, kind: wiring.RunTimeKind) -> PushPolicy:
    settings, topics = request.services.settings, request.services.pubsub_topics
    policy = (
        process_push_policy(settings, topics)
        if kind is wiring.SOURCE
        else deliver_push_policy(settings, topics)
    )
    if policy is None:
        raise Forbidden(f"this deployment has no push endpoint for {kind.name} subscriptions")
    return policy


def delete_topic(request: ApiRequest) -> None:
    body: TopicName = request.body
    services = request.services
    wiring.topic_kind(wiring.topic_id_of(services.settings.project_id, body.topic))
    services.pubsub_topics.delete_topic(body.topic)


def retire_subscription(request: ApiRequest) -> None:
    body: SubscriptionName = request.body
    wiring.subscription_kind(body.subscription_id)
    request.services.pubsub_topics.retire_subscription(body.subscription_id)


def topic_ids(request: ApiRequest) -> TopicIds:
    query: Listing = request.query
    wiring.check_listing(query.prefix)
    return TopicIds(topic_ids=sorted(request.services.pubsub_topics.topic_ids(query.prefix)))


def subscription_states(request: ApiRequest) -> Subscriptions:
    query: Listing = request.query
    wiring.check_listing(query.prefix)
    states = request.services.pubsub_topics.subscription_states(query.prefix)
    found: dict[str, Any] = {
        name: SubscriptionStateModel(topic=state.topic, push_endpoint=state.push_endpoint)
        for name, state in states.items()
    }
    return Subscriptions(subscriptions=found)


TAG = "Internal wiring"
ROUTES = (
    Route(
        "POST",
        f"{BASE}/topics",
        FUNCTION,
        "ensureRunTimeTopic",
        "Create a source or deliveries topic (idempotent) and grant its publishers",
        ensure_topic,
        auth="none",
        body=TopicBody,
        response=TopicPath,
        tag=TAG,
    ),
    Route(
        "POST",
        f"{BASE}/subscriptions",
        FUNCTION,
        "ensureRunTimeSubscription",
        "Create or re-point a process or deliver push subscription, with the deployment's policy",
        ensure_push_subscription,
        auth="none",
        body=SubscriptionBody,
        response=SubscriptionPath,
        tag=TAG,
    ),
    Route(
        "POST",
        f"{BASE}/topics/delete",
        FUNCTION,
        "deleteRunTimeTopic",
        "Delete a source or deliveries topic (idempotent)",
        delete_topic,
        auth="none",
        body=TopicName,
        status=204,
        tag=TAG,
    ),
    Route(
        "POST",
        f"{BASE}/subscriptions/retire",
        FUNCTION,
        "retireRunTimeSubscription",
        "Let a process or deliver subscription expire a day after its last push",
        retire_subscription,
        auth="none",
        body=SubscriptionName,
        status=204,
        tag=TAG,
    ),
    Route(
        "GET",
        f"{BASE}/topics",
        FUNCTION,
        "listRunTimeTopics",
        "Ids of Streams' topics starting with a prefix",
        topic_ids,
        auth="none",
        query=Listing,
        response=TopicIds,
        tag=TAG,
    ),
    Route(
        "GET",
        f"{BASE}/subscriptions",
        FUNCTION,
        "listRunTimeSubscriptions",
        "Streams' subscriptions starting with a prefix, with their topic and endpoint",
        subscription_states,
        auth="none",
        query=Listing,
        response=Subscriptions,
        tag=TAG,
    ),
)
