"""The GeoLocator port on a MaxMind-format City database (GeoIP2/GeoLite2 City, or any MMDB of
the same record shape), read with `maxminddb`: opened once per instance, memory-mapped, so each
lookup is a read from memory (no I/O per event)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import maxminddb
from maxminddb.errors import InvalidDatabaseError

from shared.domain.geo import Location, location_from_record
from shared.ports import GeoLocator

log = logging.getLogger("streams.geo")

# A relative STREAMS_GEO_DATABASE names a file of the deployed source tree (the ingest zip
# carries it at its repository path, docs/PRIVACY.md): resolved against the directory holding
# shared/, which is the repository root locally and the function's root once deployed.
SOURCE_ROOT = Path(__file__).resolve().parent.parent.parent


class MaxMindGeoLocator:
    """Places addresses with an open MMDB reader (thread-safe for lookups)."""

    def __init__(self, reader: maxminddb.Reader, path: str):
        self._reader = reader
        self._path = path
        self._lookup_failed = False
        self._lock = threading.Lock()

    def locate(self, ip: str) -> Location | None:
        try:
            record = self._reader.get(ip)
        except (InvalidDatabaseError, ValueError) as error:
            # A database corrupt past its header fails only some lookups: events still go
            # through without a location, and the log says so once per instance, not per event.
            with self._lock:
                first, self._lookup_failed = not self._lookup_failed, True
            if first:
                log.error(
                    "geo database %s: lookup failed (%s); events go unlocated", self._path, error
                )
            return None
        return location_from_record(record) if isinstance(record, dict) else None


def open_geo_locator(path: str | None) -> GeoLocator | None:
    """The locator on the database at `path`, or None (no geo) when `path` is unset, or when
    the file is missing or not an MMDB database: then one ERROR log line says why. Collection
    goes on without locations rather than failing every request over an optional enrichment;
    Terraform refuses to plan a deployment whose database is not in ingest's zip."""
    if not path:
        return None
    resolved = Path(path) if Path(path).is_absolute() else SOURCE_ROOT / path
    try:
        reader = maxminddb.open_database(str(resolved), maxminddb.MODE_AUTO)
    except (OSError, InvalidDatabaseError, ValueError) as error:
        log.error(
            "STREAMS_GEO_DATABASE %s cannot be opened (%s): events are ingested without "
            "context.location",
            resolved,
            error,
        )
        return None
    database_type = reader.metadata().database_type
    log.info("geo database %s (%s) opened", resolved, database_type)
    return MaxMindGeoLocator(reader, str(resolved))
