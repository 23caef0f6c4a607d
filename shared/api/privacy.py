"""Privacy settings API: the workspace's PII rules and consent requirement (served by the
governance function)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from shared.api.models import Input, Timestamp
from shared.domain.privacy import MAX_PII_RULES, PiiAction, PiiRule
from shared.http.request import ApiRequest
from shared.http.routing import Route

FUNCTION = "governance"
BASE = "/api/v1/workspaces/{workspace_id}/privacy"


class PiiRuleInput(Input):
    path: str = Field(
        min_length=1,
        max_length=1000,
        description="a field path under properties, traits, context, integrations or extras, "
        "e.g. context.traits.email; arrays on the way are crossed",
    )
    action: PiiAction = Field(description="hash (keyed HMAC-SHA256) or drop")


CONSENT_REQUIRED_DESCRIPTION = (
    "Whether an event without context.consent.categoryPreferences is held back from every "
    "destination that names consent categories (docs/PRIVACY.md); default false: such events "
    "go to them, as in Segment"
)


class PrivacySettingsUpdate(Input):
    """The whole settings: they replace the current ones (an omitted one takes its default)."""

    pii_rules: list[PiiRuleInput] = Field(max_length=MAX_PII_RULES)
    consent_required: bool = Field(False, strict=True, description=CONSENT_REQUIRED_DESCRIPTION)


class PrivacySettingsObject(BaseModel):
    """PII rules, applied by process before contracts, storage and routing; the hashing secret
    is generated server-side, per workspace, and never returned."""

    pii_rules: list[PiiRuleInput]
    hashing: Literal["hmac-sha256"]
    consent_required: bool = Field(description=CONSENT_REQUIRED_DESCRIPTION)
    created_at: Timestamp | None
    updated_at: Timestamp | None


def get_privacy(request: ApiRequest) -> dict[str, object]:
    return request.services.privacy_settings.get(request.workspace_id)


def update_privacy(request: ApiRequest) -> dict[str, object]:
    body: PrivacySettingsUpdate = request.body
    assert request.token is not None
    rules = [PiiRule(rule.path, rule.action) for rule in body.pii_rules]
    return request.services.privacy_settings.put(
        request.workspace_id, rules, request.token.id, consent_required=body.consent_required
    )


ROUTES = (
    Route(
        "GET",
        BASE,
        FUNCTION,
        "getPrivacySettings",
        "Get the workspace's PII rules and consent requirement (the hashing secret is never "
        "returned)",
        get_privacy,
        response=PrivacySettingsObject,
        tag="Privacy",
    ),
    Route(
        "PUT",
        BASE,
        FUNCTION,
        "updatePrivacySettings",
        "Replace the workspace's PII rules and consent requirement: process applies them within "
        "10 s (the rules before contracts, storage and routing; consent when routing)",
        update_privacy,
        body=PrivacySettingsUpdate,
        response=PrivacySettingsObject,
        tag="Privacy",
    ),
)
