"""Geo enrichment: a City record as context.location, which addresses are looked up, and the
MaxMind adapter on databases this test writes itself with mmdb_writer."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from mmdb_writer import MmdbF64, MMDBWriter
from netaddr import IPSet

from shared.adapters.geoip import open_geo_locator
from shared.domain.event import CanonicalEvent
from shared.domain.geo import Location, location_from_record, lookup_address, with_location

# MaxMind's own test networks (GeoIP2-City-Test.mmdb) and a public IPv6 block, as GeoIP2 City
# records: English and other names, subdivisions largest first, coordinates.
LONDON: dict[str, Any] = {
    "city": {"geoname_id": 2643743, "names": {"en": "London", "de": "London", "fr": "Londres"}},
    "country": {
        "iso_code": "GB",
        "names": {"en": "United Kingdom", "de": "Vereinigtes Königreich"},
    },
    "subdivisions": [
        {"iso_code": "ENG", "names": {"en": "England"}},
        {"iso_code": "WND", "names": {"en": "Wandsworth"}},
    ],
    "location": {"latitude": MmdbF64(51.5142), "longitude": MmdbF64(-0.0931)},
}
TOKYO: dict[str, Any] = {
    "city": {"names": {"en": "Tokyo", "ja": "東京"}},
    "country": {"iso_code": "JP", "names": {"en": "Japan", "ja": "日本"}},
    "subdivisions": [{"iso_code": "13", "names": {"en": "Tokyo"}}],
    "location": {"latitude": MmdbF64(35.6895), "longitude": MmdbF64(139.6917)},
}
# A record placing its network in a country only (no city, region or coordinates).
COUNTRY_ONLY: dict[str, Any] = {"country": {"iso_code": "SE", "names": {"en": "Sweden"}}}
NETWORKS = {"81.2.69.0/24": LONDON, "2001:218::/32": TOKYO, "89.160.20.0/24": COUNTRY_ONLY}


def write_city_database(path: Path, networks: dict[str, dict[str, Any]] = NETWORKS) -> Path:
    """An IPv6 City database (IPv4 mapped into it, as MaxMind's are) holding `networks`."""
    writer = MMDBWriter(
        ip_version=6, ipv4_compatible=True, database_type="GeoIP2-City", languages=["en"]
    )
    for network, record in networks.items():
        writer.insert_network(IPSet([network]), record)
    writer.to_db_file(str(path))
    return path


def plain(record: Any) -> Any:
    """The record as maxminddb reads it back: MmdbF64 values as floats."""
    if isinstance(record, MmdbF64):
        return record.value
    if isinstance(record, dict):
        return {key: plain(value) for key, value in record.items()}
    if isinstance(record, list):
        return [plain(value) for value in record]
    return record


# --- the mapping (pure) ----------------------------------------------------------------------


def test_a_city_record_becomes_segments_location_in_english() -> None:
    assert location_from_record(plain(LONDON)) == {
        "city": "London",
        "region": "England",  # the largest subdivision, not Wandsworth
        "country": "United Kingdom",
        "latitude": 51.5142,
        "longitude": -0.0931,
    }


def test_a_country_without_an_english_name_is_given_by_its_iso_code() -> None:
    record = {"country": {"iso_code": "XK", "names": {"sq": "Kosova"}}}
    assert location_from_record(record) == {"country": "XK"}


def test_only_what_the_record_knows_is_filled() -> None:
    assert location_from_record(plain(COUNTRY_ONLY)) == {"country": "Sweden"}
    # Coordinates come in pairs: one alone places nothing.
    assert location_from_record({"location": {"latitude": 1.5}}) is None
    assert location_from_record({"city": {"names": {"de": "Wien"}}}) is None
    assert location_from_record({}) is None
    assert location_from_record(None) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("81.2.69.160", "81.2.69.160"),
        (" 81.2.69.160 ", "81.2.69.160"),
        ("::ffff:81.2.69.160", "81.2.69.160"),  # IPv4-mapped: the IPv4 address
        ("2001:218::1", "2001:218::1"),
        ("10.1.2.3", None),  # private
        ("192.168.0.7", None),
        ("127.0.0.1", None),  # loopback
        ("::1", None),
        ("fe80::1%eth0", None),  # link-local
        ("100.64.0.1", None),  # carrier-grade NAT
        ("203.0.113.7", None),  # documentation
        ("not an address", None),
        (None, None),
        (1234, None),
    ],
)
def test_only_public_addresses_are_looked_up(value: Any, expected: str | None) -> None:
    assert lookup_address(value) == expected


def event_with(context: dict[str, Any]) -> CanonicalEvent:
    return {"type": "track", "event": "Viewed", "anonymousId": "a", "context": context}


def locate_london(ip: str) -> Location | None:
    return {"city": "London", "country": "United Kingdom"} if ip == "81.2.69.160" else None


def test_the_location_is_added_from_context_ip_without_changing_the_input() -> None:
    event = event_with({"ip": "81.2.69.160", "library": {"name": "analytics.js"}})
    enriched = with_location(event, locate_london)
    assert enriched["context"] == {
        "ip": "81.2.69.160",
        "library": {"name": "analytics.js"},
        "location": {"city": "London", "country": "United Kingdom"},
    }
    assert "location" not in event["context"]


def test_a_location_the_sdk_sent_is_never_overwritten() -> None:
    sent = {"city": "Paris", "latitude": 48.85}
    event = event_with({"ip": "81.2.69.160", "location": sent})
    assert with_location(event, locate_london) is event
    # An empty object or null is no location: filled.
    empties: tuple[dict[str, Any] | None, ...] = ({}, None)
    for empty in empties:
        filled = with_location(event_with({"ip": "81.2.69.160", "location": empty}), locate_london)
        assert filled["context"]["location"] == {"city": "London", "country": "United Kingdom"}


def test_nothing_is_added_without_a_public_address_or_a_result() -> None:
    looked_up: list[str] = []

    def locate(ip: str) -> Location | None:
        looked_up.append(ip)
        return locate_london(ip)

    for context in ({}, {"ip": "192.168.1.4"}, {"ip": "::1"}, {"ip": "81.2.70.1"}):
        event = event_with(context)
        assert with_location(event, locate) is event
    assert looked_up == ["81.2.70.1"]  # the private and loopback ones are never looked up


# --- the MaxMind adapter ---------------------------------------------------------------------


def test_the_adapter_reads_a_written_database(tmp_path: Path) -> None:
    locator = open_geo_locator(str(write_city_database(tmp_path / "city.mmdb")))
    assert locator is not None
    assert locator.locate("81.2.69.160") == location_from_record(plain(LONDON))
    assert locator.locate("2001:218:ab::9") == {
        "city": "Tokyo",
        "region": "Tokyo",
        "country": "Japan",
        "latitude": 35.6895,
        "longitude": 139.6917,
    }
    assert locator.locate("89.160.20.112") == {"country": "Sweden"}
    assert locator.locate("81.2.70.1") is None  # not in the database


def test_no_path_is_no_geo(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="streams.geo"):
        assert open_geo_locator(None) is None
        assert open_geo_locator("") is None
    assert caplog.records == []


def test_a_missing_or_corrupt_database_is_logged_once_and_means_no_geo(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    corrupt = tmp_path / "corrupt.mmdb"
    corrupt.write_bytes(b"\x00" * 4096)
    with caplog.at_level(logging.ERROR, logger="streams.geo"):
        assert open_geo_locator(str(tmp_path / "missing.mmdb")) is None
        assert open_geo_locator(str(corrupt)) is None
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2
    assert "missing.mmdb cannot be opened" in messages[0]
    assert "corrupt.mmdb cannot be opened" in messages[1]


def test_a_relative_path_is_resolved_against_the_source_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shared.adapters.geoip as geoip

    write_city_database(tmp_path / "city.mmdb")
    monkeypatch.setattr(geoip, "SOURCE_ROOT", tmp_path)
    monkeypatch.chdir("/")  # not the working directory: the deployed function's may differ
    locator = open_geo_locator("city.mmdb")
    assert locator is not None and locator.locate("81.2.69.160") is not None


# --- deployment: the database travels in ingest's zip ----------------------------------------


def test_make_package_puts_geo_databases_into_ingests_zip_only(tmp_path: Path) -> None:
    from tests.unit.test_build import build

    for path in (
        "functions/ingest/main.py",
        "functions/event_keys/main.py",
        "shared/config.py",
        "collect/dist/manifest.json",
        "geo/README.txt",
    ):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("")
    write_city_database(tmp_path / "geo" / "GeoLite2-City.mmdb")

    assert build.zip_contents("ingest", tmp_path)["geo/GeoLite2-City.mmdb"] == (
        "geo/GeoLite2-City.mmdb"
    )
    assert "geo/README.txt" not in build.zip_contents("ingest", tmp_path)
    assert not any(path.startswith("geo/") for path in build.zip_contents("event_keys", tmp_path))


# --- in ingest (in-memory fakes) -------------------------------------------------------------


def test_ingest_looks_each_address_up_once_per_request(tmp_path: Path) -> None:
    from shared.services.ingest import Ingest
    from tests.fakes import FakeServices
    from tests.unit.conftest import published

    services = FakeServices()
    located = open_geo_locator(str(write_city_database(tmp_path / "city.mmdb")))
    assert located is not None
    lookups: list[str] = []

    class Counting:
        def locate(self, ip: str) -> Location | None:
            lookups.append(ip)
            return located.locate(ip)  # type: ignore[union-attr]

    workspace = services.workspaces.create("Acme")
    source = services.sources.create(workspace.id, "Web", "t", ip_policy="remove")
    ingest = Ingest(
        services.sources, services.publisher, services.store, key_cache_seconds=5, geo=Counting()
    )
    batch = {
        "batch": [
            {"type": "track", "event": "a", "anonymousId": "x"},
            {"type": "track", "event": "b", "anonymousId": "x"},
            {"type": "track", "event": "c", "anonymousId": "x", "context": {"ip": "2001:218::5"}},
        ]
    }
    ingest.accept(ingest.authorize(source.key), batch, None, "81.2.69.160")
    assert lookups == ["81.2.69.160", "2001:218::5"]
    events = published(services, source)
    assert [event["context"]["location"]["city"] for event in events] == [
        "London",
        "London",
        "Tokyo",
    ]
    assert all("ip" not in event["context"] for event in events)
