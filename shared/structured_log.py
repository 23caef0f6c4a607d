"""Log lines Cloud Logging reads field by field: the lines the log-based metrics of
terraform/modules/monitoring count.

Cloud Run turns a line of one JSON object on stdout into an entry whose `jsonPayload` holds the
object's fields (a metric's filter and label extractors read them) and whose severity is the
object's `severity`. The functions' runtime leaves Python's root logger at WARNING without a
handler, which drops INFO records, so these lines have a logger of their own that writes every
record as it is, and does not pass it on to the root's handlers (a second copy, as text).
"""

from __future__ import annotations

import json
import logging
import sys

LOGGER_NAME = "streams.structured"

_logger = logging.getLogger(LOGGER_NAME)
_logger.setLevel(logging.INFO)
_logger.propagate = False
if not _logger.handlers:
    _logger.addHandler(logging.StreamHandler(sys.stdout))


def emit(message: str, level: int = logging.INFO, **fields: str | int) -> None:
    """Write one entry: `message` (what a metric's filter selects) with `fields` beside it."""
    entry = {"message": message, "severity": logging.getLevelName(level), **fields}
    _logger.log(level, json.dumps(entry, separators=(",", ":"), ensure_ascii=False))
