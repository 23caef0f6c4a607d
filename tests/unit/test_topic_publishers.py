"""Per-topic publisher grants: merging members into a topic's IAM policy, and the setting."""

from __future__ import annotations

import pytest
from google.iam.v1 import policy_pb2

from shared.adapters.pubsub import PUBLISHER_ROLE, add_members
from shared.config import Settings

INGEST = "serviceAccount:streams-ingest@p.iam.gserviceaccount.com"
EVENTS = "serviceAccount:streams-events@p.iam.gserviceaccount.com"


def test_members_are_added_to_the_role_binding_once() -> None:
    policy = policy_pb2.Policy()
    assert add_members(policy, PUBLISHER_ROLE, [INGEST, EVENTS]) is True
    assert [(b.role, list(b.members)) for b in policy.bindings] == [
        (PUBLISHER_ROLE, [INGEST, EVENTS])
    ]
    # Again: nothing changes, so nothing is written.
    assert add_members(policy, PUBLISHER_ROLE, [EVENTS, INGEST]) is False
    assert len(policy.bindings) == 1 and len(policy.bindings[0].members) == 2


def test_other_bindings_and_conditional_ones_are_left_alone() -> None:
    policy = policy_pb2.Policy()
    viewer = policy.bindings.add(role="roles/pubsub.viewer", members=["user:a@example.com"])
    conditional = policy.bindings.add(role=PUBLISHER_ROLE, members=["group:g@example.com"])
    conditional.condition.expression = "request.time < timestamp('2030-01-01T00:00:00Z')"
    assert add_members(policy, PUBLISHER_ROLE, [INGEST]) is True
    assert list(viewer.members) == ["user:a@example.com"]
    assert list(conditional.members) == ["group:g@example.com"]
    granted = [
        b for b in policy.bindings if b.role == PUBLISHER_ROLE and not b.condition.expression
    ]
    assert [list(b.members) for b in granted] == [[INGEST]]


def test_publishers_are_read_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "STREAMS_PROJECT_ID": "p",
            "STREAMS_SOURCE_TOPIC_PUBLISHERS": f"{INGEST}, {EVENTS}",
            "STREAMS_DELIVERY_TOPIC_PUBLISHERS": EVENTS,
        }
    )
    assert settings.source_topic_publishers == (INGEST, EVENTS)
    assert settings.delivery_topic_publishers == (EVENTS,)
    assert Settings.from_env({"STREAMS_PROJECT_ID": "p"}).source_topic_publishers == ()


@pytest.mark.parametrize("bad", ["streams-ingest@p.iam.gserviceaccount.com", "serviceAccount:x"])
def test_a_member_of_the_wrong_shape_is_refused_at_start_up(bad: str) -> None:
    with pytest.raises(ValueError, match="STREAMS_SOURCE_TOPIC_PUBLISHERS"):
        Settings.from_env({"STREAMS_PROJECT_ID": "p", "STREAMS_SOURCE_TOPIC_PUBLISHERS": bad})
