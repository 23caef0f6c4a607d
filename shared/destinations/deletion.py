"""User deletion at destinations: an optional connector hook, `delete_user`, builds the request to
a destination's own deletion API (Amplitude's User Privacy API, Mixpanel's GDPR API). A connector
without the hook, or one whose config lacks the credential the API needs, answers why, and the
regulation lists the destination as needing manual action."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from pydantic import BaseModel

from shared.destinations import connector_for, validate_config
from shared.destinations.base import DeletionSubject, OutboundRequest


@runtime_checkable
class UserDeletion(Protocol):
    """A connector whose destination offers a deletion API."""

    def delete_user(self, subject: DeletionSubject, config: BaseModel) -> OutboundRequest | str:
        """The deletion request, or why none can be made (the reason for manual action)."""
        ...


def deletion_request(
    destination_type: str, config: dict[str, object], subject: DeletionSubject
) -> OutboundRequest | str:
    """The deletion request for a stored destination config, or why there is none."""
    connector = connector_for(destination_type)
    if not isinstance(connector, UserDeletion):
        generic = f"{destination_type} destinations have no deletion API: delete the user there"
        return connector.about.manual_deletion or generic
    return connector.delete_user(subject, validate_config(destination_type, config))
