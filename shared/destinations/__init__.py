"""Destination connectors by type, and the config rules they share: validation, write-only secrets.

Secrets (SecretStr fields) are write-only: `public_config` removes them, `repr`/`str` mask them,
and only `stored_config` reveals them, for storage. An update is a whole config: an omitted
secret keeps the stored value, unless the update also moves the destination (see merge_config).
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError

from shared.destinations.amplitude import AmplitudeConnector
from shared.destinations.base import Connector, DestinationConfig
from shared.destinations.braze import BrazeConnector
from shared.destinations.customerio import CustomerioConnector
from shared.destinations.ga4 import Ga4Connector
from shared.destinations.gcs import GcsConnector
from shared.destinations.hubspot import HubSpotConnector
from shared.destinations.intercom import IntercomConnector
from shared.destinations.klaviyo import KlaviyoConnector
from shared.destinations.meta import MetaConnector
from shared.destinations.mixpanel import MixpanelConnector
from shared.destinations.posthog import PosthogConnector
from shared.destinations.pubsub import PubSubConnector
from shared.destinations.segment import SegmentConnector
from shared.destinations.slack import SlackConnector
from shared.destinations.webhook import WebhookConnector
from shared.domain.errors import InvalidRequest
from shared.domain.validation_messages import plain_errors

CONNECTORS: dict[str, Connector] = {
    connector.type: connector
    for connector in (
        WebhookConnector(),
        PubSubConnector(),
        AmplitudeConnector(),
        MixpanelConnector(),
        MetaConnector(),
        PosthogConnector(),
        Ga4Connector(),
        BrazeConnector(),
        CustomerioConnector(),
        HubSpotConnector(),
        IntercomConnector(),
        GcsConnector(),
        SegmentConnector(),
        KlaviyoConnector(),
        SlackConnector(),
    )
}
DESTINATION_TYPES = tuple(CONNECTORS)


def connector_for(type_: str) -> Connector:
    """The connector of a destination type; InvalidRequest (field "type") when unknown."""
    connector = CONNECTORS.get(type_) if isinstance(type_, str) else None
    if connector is None:
        known = ", ".join(sorted(CONNECTORS))
        raise InvalidRequest(f"type must be one of {known}", field="type")
    return connector


def validate_config(type_: str, raw: Any) -> DestinationConfig:
    """The typed config of a destination; InvalidRequest naming `config.<field>` when invalid."""
    model = connector_for(type_).config_model
    if not isinstance(raw, dict):
        raise InvalidRequest("config must be a JSON object", field="config")
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        raise _invalid(type_, error) from None


def _invalid(type_: str, error: ValidationError) -> InvalidRequest:
    # In plain words (shared/domain/validation_messages.py), which never repeat the value
    # sent: it may be a secret.
    model = connector_for(type_).config_model
    errors = plain_errors(error, model, name=f"{type_} destination config")
    fields = [f"config.{e.field}" if e.field else "config" for e in errors]
    details = "; ".join(f"{field}: {e.text}" for field, e in zip(fields, errors, strict=True))
    return InvalidRequest(f"{fields[0]}: {errors[0].text}", field=fields[0], details=details)


def _has_secret(annotation: Any) -> bool:
    if annotation is SecretStr:
        return True
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        return any(_has_secret(arg) for arg in typing.get_args(annotation))
    return False


def secret_fields(type_: str) -> frozenset[str]:
    """Names of the write-only fields of a destination type's config."""
    model = connector_for(type_).config_model
    return frozenset(
        name for name, info in model.model_fields.items() if _has_secret(info.annotation)
    )


def public_config(type_: str, config: BaseModel | dict[str, Any]) -> dict[str, Any]:
    """The config as the API returns it: secret fields removed."""
    hidden = secret_fields(type_)
    data = config.model_dump(mode="json") if isinstance(config, BaseModel) else dict(config)
    return {name: value for name, value in data.items() if name not in hidden}


def _reveal(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {key: _reveal(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_reveal(item) for item in value]
    return value


def stored_config(config: BaseModel) -> dict[str, Any]:
    """The config for storage, secrets revealed (JSON-serialisable): never for answers or logs."""
    return {name: _reveal(getattr(config, name)) for name in type(config).model_fields}


def merge_config(type_: str, stored: dict[str, Any], update: Any) -> DestinationConfig:
    """The config after an update: `update` replaces the config, and a secret it omits keeps its
    stored value. If the update changes where requests go (url/endpoint), the secrets that are
    sent there must be re-entered, so a stored credential never follows a new address.
    """
    model = connector_for(type_).config_model
    if not isinstance(update, dict):
        raise InvalidRequest("config must be a JSON object", field="config")
    merged = dict(update)
    moved = [name for name in model.ADDRESS_FIELDS if update.get(name) != stored.get(name)]
    for name in sorted(secret_fields(type_)):
        if name in update or stored.get(name) is None:
            continue
        if moved and name in model.SENT_SECRETS and stored.get(name) not in ({}, ""):
            field = f"config.{name}"
            raise InvalidRequest(
                f"{field} must be given again when config.{moved[0]} changes", field=field
            )
        merged[name] = stored[name]
    return validate_config(type_, merged)


__all__ = [
    "CONNECTORS",
    "DESTINATION_TYPES",
    "connector_for",
    "merge_config",
    "public_config",
    "secret_fields",
    "stored_config",
    "validate_config",
]
