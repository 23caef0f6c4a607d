"""What the wiring function may do on a caller's behalf (shared/domain/wiring.py)."""

from __future__ import annotations

import pytest

from shared.domain import wiring
from shared.domain.errors import Forbidden
from shared.domain.routing import deliver_subscription_id, delivery_topic_id
from shared.domain.sources import process_subscription_id, source_topic_id

PROJECT = "p-1"


def topic(topic_id: str, project: str = PROJECT) -> str:
    return f"projects/{project}/topics/{topic_id}"


def test_run_time_topics_are_recognised_with_their_ids() -> None:
    assert wiring.topic_kind(source_topic_id("s1")) == (wiring.SOURCE, "s1")
    assert wiring.topic_kind(delivery_topic_id("d-2_x")) == (wiring.DELIVERIES, "d-2_x")
    assert wiring.subscription_kind(process_subscription_id("s1")) == (wiring.SOURCE, "s1")
    assert wiring.subscription_kind(deliver_subscription_id("d1")) == (wiring.DELIVERIES, "d1")


@pytest.mark.parametrize(
    "topic_id",
    ["streams-dead-letters", "streams-source-", "customer-topic", "streams-source-a/b", "x" * 300],
)
def test_any_other_topic_is_refused(topic_id: str) -> None:
    with pytest.raises(Forbidden, match="not a source or deliveries topic") as refused:
        wiring.topic_kind(topic_id)
    assert refused.value.field == "topic_id"


def test_a_subscription_is_wired_only_on_its_own_topic() -> None:
    assert (
        wiring.check_subscription(
            PROJECT, topic(source_topic_id("s1")), process_subscription_id("s1")
        )
        is wiring.SOURCE
    )
    for wrong_topic, subscription in (
        (topic(source_topic_id("s2")), process_subscription_id("s1")),
        (topic(delivery_topic_id("s1")), process_subscription_id("s1")),
        (topic("streams-dead-letters"), deliver_subscription_id("d1")),
    ):
        with pytest.raises(Forbidden, match="may only subscribe to"):
            wiring.check_subscription(PROJECT, wrong_topic, subscription)
    with pytest.raises(Forbidden, match="not a topic of this deployment's project"):
        wiring.check_subscription(
            PROJECT, topic(source_topic_id("s1"), "other"), process_subscription_id("s1")
        )
    with pytest.raises(Forbidden, match="not a process or deliver subscription"):
        wiring.check_subscription(
            PROJECT, topic(source_topic_id("s1")), "streams-dead-letters-record"
        )


def test_only_streams_names_may_be_listed() -> None:
    wiring.check_listing("streams-")
    wiring.check_listing("streams-source-")
    for prefix in ("", "s", "customer-"):
        with pytest.raises(Forbidden):
            wiring.check_listing(prefix)
