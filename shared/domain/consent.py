"""Consent, on Segment's consent object: which destinations an event may be delivered to.

An event states what its person agreed to in `context.consent.categoryPreferences`, a mapping
of consent category ids to booleans (`{"Advertising": false, "Analytics": true}`). A destination
names the categories it needs; the event goes there only if every one of them is granted
(`true`; a category the event does not mention is not granted). An event without the object is
not enforced, as in Segment, unless the workspace requires consent: then it goes only to the
destinations that need no category.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared.domain.event import CanonicalEvent

# The routing outcome of a delivery held back for consent, in the event log and its trace.
CONSENT_DENIED = "consent_denied"


def category_preferences(event: CanonicalEvent) -> dict[str, Any] | None:
    """The event's consent, or None when it carries none (no context.consent.categoryPreferences
    object). An empty object is consent given to nothing."""
    context = event.get("context")
    consent = context.get("consent") if isinstance(context, dict) else None
    preferences = consent.get("categoryPreferences") if isinstance(consent, dict) else None
    return preferences if isinstance(preferences, dict) else None


def consent_refusal(
    event: CanonicalEvent, categories: Sequence[str], consent_required: bool
) -> str | None:
    """Why the event may not be delivered to a destination needing `categories`, in plain
    words; None when it may."""
    if not categories:
        return None
    preferences = category_preferences(event)
    if preferences is None:
        if not consent_required:
            return None
        return (
            "consent denied: the event has no context.consent.categoryPreferences and the "
            f"workspace requires consent for {', '.join(categories)}"
        )
    refused = [category for category in categories if preferences.get(category) is not True]
    if not refused:
        return None
    return f"consent denied: not granted for {', '.join(refused)}"
