"""String formats contracts check (`format`): the validator gives these to jsonschema-rs in place
of its own. Other format names are annotations, as JSON Schema has it."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from datetime import date, datetime

# Matched whole (`fullmatch`: `$` would let a trailing newline through), ASCII digits only.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:\S+")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_DATE_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)
_TIME = re.compile(r"\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII)


def _is_date_time(text: str) -> bool:
    if not _DATE_TIME.fullmatch(text):
        return False
    try:
        datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _is_date(text: str) -> bool:
    try:
        return len(text) == 10 and text.isascii() and date.fromisoformat(text) is not None
    except ValueError:
        return False


def _is_ip(
    kind: type[ipaddress.IPv4Address] | type[ipaddress.IPv6Address],
) -> Callable[[str], bool]:
    def check(text: str) -> bool:
        try:
            kind(text)
        except ValueError:
            return False
        return True

    return check


# Format name -> its test; other format names are annotations (JSON Schema's default).
FORMATS: dict[str, Callable[[str], bool]] = {
    # An address is at most 254 characters (RFC 5321); the bound also keeps matching linear.
    "email": lambda text: len(text) <= 254 and bool(_EMAIL.fullmatch(text)),
    "uri": lambda text: bool(_URI.fullmatch(text)),
    "uuid": lambda text: bool(_UUID.fullmatch(text)),
    "hostname": lambda text: len(text) <= 253 and bool(_HOSTNAME.fullmatch(text)),
    "date-time": _is_date_time,
    "date": _is_date,
    "time": lambda text: bool(_TIME.fullmatch(text)),
    "ipv4": _is_ip(ipaddress.IPv4Address),
    "ipv6": _is_ip(ipaddress.IPv6Address),
}
