"""Cookieless ids: stable within a UTC day, different across days, sources, addresses and
browsers, never showing the key; and ingest replacing a cookieless source's anonymousId."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest

from shared.config import LOCAL_COOKIELESS_KEY, Settings
from shared.domain.cookieless import (
    CookielessIds,
    cookieless_id,
    daily_salt,
    with_cookieless_id,
)
from shared.domain.errors import Unavailable
from shared.domain.event import CanonicalEvent
from shared.domain.sources import EventSource
from shared.services.ingest import Ingest
from tests.fakes import FakeServices
from tests.unit.conftest import published

KEY = b"k" * 32
DAY = date(2026, 12, 3)
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
ID_SHAPE = re.compile(r"^ck_[0-9a-f]{32}$")


def test_an_id_is_stable_within_a_day() -> None:
    first = cookieless_id(daily_salt(KEY, DAY), "src_a", "81.2.69.160", CHROME)
    again = cookieless_id(daily_salt(KEY, DAY), "src_a", "81.2.69.160", CHROME)
    assert first == again
    assert ID_SHAPE.fullmatch(first)


def test_an_id_differs_across_days_sources_addresses_browsers_and_keys() -> None:
    base = ("src_a", "81.2.69.160", CHROME)
    ids = {
        cookieless_id(daily_salt(KEY, DAY), *base),
        cookieless_id(daily_salt(KEY, date(2026, 12, 4)), *base),
        cookieless_id(daily_salt(KEY, DAY), "src_b", "81.2.69.160", CHROME),
        cookieless_id(daily_salt(KEY, DAY), "src_a", "81.2.69.161", CHROME),
        cookieless_id(daily_salt(KEY, DAY), "src_a", "81.2.69.160", FIREFOX),
        cookieless_id(daily_salt(b"j" * 32, DAY), *base),
    }
    assert len(ids) == 6


def test_the_three_inputs_are_kept_apart() -> None:
    salt = daily_salt(KEY, DAY)
    assert cookieless_id(salt, "src_a", "1.2.3.4", "x") != cookieless_id(
        salt, "src_a1", ".2.3.4", "x"
    )
    assert cookieless_id(salt, "s", "ab", "c") != cookieless_id(salt, "s", "a", "bc")


def test_neither_the_key_nor_the_salt_shows_in_the_id_or_the_repr() -> None:
    salt = daily_salt(KEY, DAY)
    assert salt != KEY and len(salt) == 32
    generator = CookielessIds(KEY)
    made = generator.anonymous_id(DAY, "src_a", "81.2.69.160", CHROME)
    assert made == cookieless_id(salt, "src_a", "81.2.69.160", CHROME)
    for secret in (KEY.decode(), KEY.hex(), salt.hex()):
        assert secret not in made and secret not in repr(generator)
    assert repr(generator) == "CookielessIds(key=<secret>)"


def test_the_salt_follows_the_day_asked_for() -> None:
    generator = CookielessIds(KEY.decode())
    ids = [
        generator.anonymous_id(day, "s", "81.2.69.160", CHROME)
        for day in (DAY, DAY, DAY.replace(day=4), DAY)
    ]
    assert ids[0] == ids[1] == ids[3] != ids[2]


def test_the_event_keeps_its_user_id_and_loses_the_sdks_anonymous_id() -> None:
    event: CanonicalEvent = {
        "type": "track",
        "anonymousId": "ajs-cookie-id",
        "userId": "user-7",
        "context": {"ip": "81.2.69.160", "userAgent": CHROME},
    }
    seen: list[tuple[str, str]] = []

    def anonymous_id(ip: str, user_agent: str) -> str:
        seen.append((ip, user_agent))
        return "ck_x"

    changed = with_cookieless_id(event, anonymous_id)
    assert changed["anonymousId"] == "ck_x" and changed["userId"] == "user-7"
    assert event["anonymousId"] == "ajs-cookie-id"  # the input is not changed
    assert seen == [("81.2.69.160", CHROME)]


def test_an_event_without_address_or_user_agent_is_replaced_all_the_same() -> None:
    for context in ({}, {"ip": None, "userAgent": 7}):
        event: CanonicalEvent = {"type": "page", "anonymousId": "from-cookie", "context": context}
        changed = with_cookieless_id(event, lambda ip, ua: f"ck_{ip!r}{ua!r}")
        assert changed["anonymousId"] == "ck_''''"
    assert with_cookieless_id({"type": "page"}, lambda ip, ua: "ck_y")["anonymousId"] == "ck_y"


# --- through ingest (in-memory fakes) --------------------------------------------------------


def cookieless_source(services: FakeServices, ip_policy: str = "keep") -> EventSource:
    workspace = services.workspaces.create("Acme")
    return services.sources.create(
        workspace.id,
        "Web",
        "t",
        ip_policy=ip_policy,  # type: ignore[arg-type]
        cookieless=True,
    )


def track(anonymous_id: str, user_agent: str = CHROME) -> dict[str, object]:
    return {
        "event": "Viewed",
        "anonymousId": anonymous_id,
        "context": {"userAgent": user_agent},
    }


def ingest_on(services: FakeServices, day: int, key: str | None = LOCAL_COOKIELESS_KEY) -> Ingest:
    return Ingest(
        services.sources,
        services.publisher,
        services.store,
        key_cache_seconds=5,
        clock=lambda: datetime(2026, 12, day, 23, 59, tzinfo=UTC),
        cookieless=CookielessIds(key) if key else None,
    )


@pytest.mark.parametrize("ip_policy", ["keep", "truncate", "remove"])
def test_ingest_replaces_the_anonymous_id_from_the_full_address(
    services: FakeServices, ip_policy: str
) -> None:
    source = cookieless_source(services, ip_policy)
    ingest = ingest_on(services, 3)
    key = ingest.authorize(source.key)
    ingest.accept(key, track("cookie-1"), "track", "81.2.69.160")
    ingest.accept(key, track("cookie-2"), "track", "81.2.69.160")  # same browser, new cookie
    ingest.accept(key, track("cookie-1"), "track", "81.2.69.161")  # same /24, other address
    identify = {"userId": "u1", "anonymousId": "cookie-1", "context": {"userAgent": CHROME}}
    ingest.accept(key, identify, "identify", "81.2.69.160")
    events = published(services, source)
    ids = [event["anonymousId"] for event in events]
    assert all(ID_SHAPE.fullmatch(value) for value in ids)
    assert ids[0] == ids[1] == ids[3] != ids[2]
    assert events[3]["userId"] == "u1"
    expected = CookielessIds(LOCAL_COOKIELESS_KEY).anonymous_id(
        date(2026, 12, 3), source.id, "81.2.69.160", CHROME
    )
    assert ids[0] == expected


def test_ingest_ids_change_with_the_utc_day(services: FakeServices) -> None:
    source = cookieless_source(services)
    for day in (3, 3, 4):
        ingest = ingest_on(services, day)
        ingest.accept(ingest.authorize(source.key), track("c"), "track", "81.2.69.160")
    ids = [event["anonymousId"] for event in published(services, source)]
    assert ids[0] == ids[1] != ids[2]


def test_a_source_not_cookieless_keeps_the_sdks_id(
    services: FakeServices, source: EventSource
) -> None:
    ingest = ingest_on(services, 3)
    ingest.accept(ingest.authorize(source.key), track("cookie-1"), "track", "81.2.69.160")
    assert [event["anonymousId"] for event in published(services, source)] == ["cookie-1"]


def test_without_a_key_a_cookieless_source_is_refused_and_nothing_published(
    services: FakeServices,
) -> None:
    source = cookieless_source(services)
    ingest = ingest_on(services, 3, key=None)
    with pytest.raises(Unavailable, match="STREAMS_COOKIELESS_KEY"):
        ingest.accept(ingest.authorize(source.key), track("cookie-1"), "track", "81.2.69.160")
    assert published(services, source) == []


# --- the setting -----------------------------------------------------------------------------


def test_the_key_setting_is_validated_like_the_signing_key() -> None:
    project = {"STREAMS_PROJECT_ID": "p"}
    assert Settings.from_env(project).cookieless_key is None
    local = Settings.from_env({**project, "PUBSUB_EMULATOR_HOST": "localhost:8085"})
    assert local.cookieless_key == LOCAL_COOKIELESS_KEY
    assert (
        Settings.from_env({**project, "STREAMS_COOKIELESS_KEY": "c" * 40}).cookieless_key
        == "c" * 40
    )
    for weak in ("short", LOCAL_COOKIELESS_KEY):
        with pytest.raises(ValueError, match="STREAMS_COOKIELESS_KEY must be a secret"):
            Settings.from_env({**project, "STREAMS_COOKIELESS_KEY": weak})
