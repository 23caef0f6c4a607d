"""Geo enrichment (pure): a MaxMind GeoIP2/GeoLite2 City record as Segment's `context.location`,
and which addresses are worth looking up. docs/PRIVACY.md ("Geo enrichment") describes it.

Segment's spec (https://segment.com/docs/connections/spec/common/#context) names `city`,
`country`, `region`, `latitude` and `longitude`, with English names in its example ("United
States", "California", "San Francisco"): the names are given in English, as destinations that
read `context.location.country` (Mixpanel, Amplitude) expect, and the ISO code stands in for a
country the database names in no English.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from typing import Any, TypedDict

from shared.domain.event import CanonicalEvent
from shared.domain.privacy import ip_address

NAME_LANGUAGE = "en"
# MMDB stores coordinates as doubles; an int is accepted from hand-written test databases.
NUMBER = (float, int)


class Location(TypedDict, total=False):
    """Segment's `context.location`, as far as a City database knows it."""

    city: str
    country: str
    region: str
    latitude: float
    longitude: float


def lookup_address(value: Any) -> str | None:
    """The address to look up for `context.ip`, or None when there is nothing to find: not an IP
    address, or one no database places (private, loopback, link-local, reserved, documentation
    ranges). An IPv4-mapped IPv6 address is the IPv4 address it holds."""
    address = ip_address(value) if isinstance(value, str) else None
    if address is None:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address) if address.is_global else None


def location_from_record(record: Mapping[str, Any] | None) -> Location | None:
    """`context.location` from a City record as maxminddb returns it; None when the record
    places the address nowhere (no city, region, country or coordinates)."""
    if not isinstance(record, Mapping):
        return None
    location: Location = {}
    city = _name(record.get("city"))
    if city:
        location["city"] = city
    subdivisions = record.get("subdivisions")
    if isinstance(subdivisions, list) and subdivisions:
        # The first is the largest (a US state, an English county's country): Segment's region.
        region = _name(subdivisions[0])
        if region:
            location["region"] = region
    country = record.get("country")
    country_name = _name(country) or _iso_code(country)
    if country_name:
        location["country"] = country_name
    coordinates = record.get("location")
    if isinstance(coordinates, Mapping):
        latitude, longitude = coordinates.get("latitude"), coordinates.get("longitude")
        if isinstance(latitude, NUMBER) and isinstance(longitude, NUMBER):
            location["latitude"] = float(latitude)
            location["longitude"] = float(longitude)
    return location or None


def has_location(event: CanonicalEvent) -> bool:
    """Whether the event already carries a location (the SDK's): enrichment never replaces it.
    An empty object or null counts as none."""
    context = event.get("context")
    return isinstance(context, dict) and context.get("location") not in (None, {})


def with_location(
    event: CanonicalEvent, locate: Callable[[str], Location | None]
) -> CanonicalEvent:
    """The event with `context.location` from `locate(context.ip)`, unless it has one already or
    its address is one no database places. A new event: the input is not changed."""
    context = event.get("context")
    if not isinstance(context, dict) or has_location(event):
        return event
    address = lookup_address(context.get("ip"))
    if address is None:
        return event
    location = locate(address)
    if location is None:
        return event
    return {**event, "context": {**context, "location": dict(location)}}


def _name(entry: Any) -> str | None:
    if not isinstance(entry, Mapping):
        return None
    names = entry.get("names")
    if not isinstance(names, Mapping):
        return None
    name = names.get(NAME_LANGUAGE)
    return name if isinstance(name, str) and name else None


def _iso_code(entry: Any) -> str | None:
    if not isinstance(entry, Mapping):
        return None
    code = entry.get("iso_code")
    return code if isinstance(code, str) and code else None
