from __future__ import annotations

import pytest

from shared.bootstrap import Services
from shared.config import LOCAL_MESSAGE_SIGNING_KEY, Settings

BASE = {"STREAMS_PROJECT_ID": "p", "STREAMS_MESSAGE_SIGNING_KEY": "k" * 40}


def test_defaults() -> None:
    settings = Settings.from_env(BASE)
    assert (settings.project_id, settings.allow_private_destinations) == ("p", False)
    assert settings.delivery_max_attempts == 8 and settings.write_key_cache_seconds == 5.0


def test_values_are_read() -> None:
    settings = Settings.from_env(
        {
            **BASE,
            "STREAMS_ALLOW_PRIVATE_DESTINATIONS": "true",
            "STREAMS_DELIVERY_MAX_ATTEMPTS": "3",
            "STREAMS_DELIVERY_MIN_BACKOFF": "0.2",
        }
    )
    assert settings.allow_private_destinations is True
    assert (settings.delivery_max_attempts, settings.delivery_min_backoff_seconds) == (3, 0.2)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("STREAMS_ALLOW_PRIVATE_DESTINATIONS", "maybe", "boolean"),
        ("STREAMS_DELIVERY_MAX_ATTEMPTS", "x", "an integer"),
        ("STREAMS_DELIVERY_MAX_ATTEMPTS", "0", "between 1 and 100"),
        ("STREAMS_WRITE_KEY_CACHE_SECONDS", "11", "between 0 and 10"),
        ("STREAMS_DELIVERY_MAX_BACKOFF", "soon", "a number"),
        ("STREAMS_TRANSFORM_MEMORY_MB", "4", "between 8 and 1024"),
    ],
)
def test_bad_values_fail_fast_naming_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as error:
        Settings.from_env({**BASE, name: value})
    assert name in str(error.value)


def test_a_project_is_required() -> None:
    with pytest.raises(ValueError, match="STREAMS_PROJECT_ID"):
        Settings.from_env({})


def test_production_needs_a_signing_key_of_its_own() -> None:
    project = {"STREAMS_PROJECT_ID": "p"}
    # The CLI publishes nothing and needs none; a function fails on its first publish or push.
    unsigned = Services(Settings.from_env(project))
    with pytest.raises(ValueError, match="STREAMS_MESSAGE_SIGNING_KEY must be set"):
        unsigned.signer  # noqa: B018
    for weak in ("short", LOCAL_MESSAGE_SIGNING_KEY):
        with pytest.raises(ValueError, match="at least 32 characters"):
            Settings.from_env({**project, "STREAMS_MESSAGE_SIGNING_KEY": weak})
    assert Settings.from_env(BASE).message_signing_key == "k" * 40


def test_the_emulator_signs_with_the_local_key() -> None:
    settings = Settings.from_env({"STREAMS_PROJECT_ID": "p", "PUBSUB_EMULATOR_HOST": "h:1"})
    assert settings.message_signing_key == LOCAL_MESSAGE_SIGNING_KEY
