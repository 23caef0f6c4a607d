"""Cloud Storage: canonical events as gzip-compressed NDJSON files in a customer's bucket, in
hourly folders per source, with a manifest listing each folder's files.

Layout (every event type: track, identify, page, screen, group, alias; the event as it is):
    gs://<bucket>/<prefix>source_id=<sourceId>/dt=<YYYY-MM-DD>/hour=<HH>/<batch>.ndjson.gz
    gs://<bucket>/<prefix>source_id=<sourceId>/dt=<YYYY-MM-DD>/hour=<HH>/manifest.json
The folder is the UTC hour of the event's `receivedAt` (Streams' own clock: a sender's wrong
clock cannot scatter files), so `dt=`/`hour=` are Hive partitions a BigQuery external table or
Spark reads as columns. One file per delivered batch: one canonical event per line, ordered by
`receivedAt` then `messageId`, gzip with mtime 0. `<batch>` is a hash of the batch's messageIds,
so a redelivery of the same batch writes the same name and the same bytes (idempotent), and the
writer (`FileWriter`) adds each file to the folder's manifest once.

Mapping: none; the file holds the canonical event (Segment's spec, docs/EVENTS.md) unchanged.
Deletion: none through this destination; files are immutable batches of many users' events
(see `GcsConnector.delete_user`).
"""

from __future__ import annotations

import gzip
import hashlib
import ipaddress
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, field_validator

from shared.destinations.base import (
    About,
    Batching,
    DestinationConfig,
    OutboundFile,
    Part,
    expect_config,
    json_bytes,
    text,
)
from shared.domain.event import CanonicalEvent

# A gzip file, not gzip-encoded NDJSON: with `Content-Encoding: gzip` Cloud Storage serves the
# object decompressed, which Spark's and Beam's connectors refuse by default.
CONTENT_TYPE = "application/gzip"
MANIFEST = "manifest.json"
# A file per batch of at most 5,000 events or 10 MB of JSON (about 1-2 MB gzip-compressed): big
# enough that an hour's folder holds few files for BigQuery or Spark to list, small enough for
# one upload request (the client sends up to 8 MB in one multipart request) and deliver's memory.
MAX_EVENTS_PER_FILE = 5000
MAX_JSON_BYTES_PER_FILE = 10_000_000
# Cloud Storage bucket naming rules (https://cloud.google.com/storage/docs/buckets#naming):
# lowercase letters, digits, -, _ and .; starts and ends with a letter or digit; 3-63
# characters, or up to 222 with dots, each dot-separated part at most 63.
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
# A prefix is folders: letters, digits and - _ . = / only (no spaces, no characters a URL or a
# shell would need escaping for), no empty, "." or ".." folder.
PREFIX = re.compile(r"^[A-Za-z0-9._=-]+(?:/[A-Za-z0-9._=-]+)*/?$")
MAX_PREFIX_CHARS = 512
# A sourceId used as a folder as it is; any other (a transformation may rewrite it) is hashed.
SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")
NO_SOURCE = "_no_source"
NAME_HASH_CHARS = 32  # 128 bits of SHA-256: no two batches share a name


class GcsConfig(DestinationConfig):
    """The customer's bucket and an optional folder prefix inside it."""

    bucket: Annotated[str, Field(min_length=3, max_length=222)]
    # Folders before the source's folder, e.g. "streams/events/" (a trailing "/" is added).
    prefix: Annotated[str, Field(max_length=MAX_PREFIX_CHARS)] = ""

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, value: str) -> str:
        if not BUCKET_NAME.match(value):
            raise ValueError(
                "must be a Cloud Storage bucket name: 3-63 lowercase letters, digits, '-', '_' "
                "or '.', starting and ending with a letter or digit"
            )
        if any(len(part) > 63 or not part for part in value.split(".")):
            raise ValueError("must have dot-separated parts of 1-63 characters")
        if "." not in value and len(value) > 63:
            raise ValueError("must be at most 63 characters without dots")
        if value.startswith("goog") or "google" in value or "g00gle" in value:
            raise ValueError("must not start with 'goog' or contain 'google'")
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            return value
        raise ValueError("must not be an IP address")

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not value:
            return value
        if not PREFIX.match(value):
            raise ValueError(
                "must be folders of letters, digits, '-', '_', '.' or '=' separated by '/', "
                "without a leading '/' or an empty folder"
            )
        if any(part in (".", "..") for part in value.split("/")):
            raise ValueError("must not contain '.' or '..' folders")
        return value if value.endswith("/") else value + "/"


def received_at(event: CanonicalEvent, now: datetime) -> datetime:
    """The event's `receivedAt` in UTC; `now` when unusable (only a transformation can drop it,
    and then the file lands in the delivery's hour)."""
    raw = text(event.get("receivedAt"))
    if raw is not None:
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            parsed = None
        if parsed is not None:
            return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return now.astimezone(UTC)


def source_folder(event: CanonicalEvent) -> str:
    """The source's folder name: the sourceId when path-safe, else a stable hash of it, so no
    event can name a folder outside its own (a transformation may rewrite sourceId)."""
    source = text(event.get("sourceId"))
    if source is None:
        return NO_SOURCE
    if SAFE_SEGMENT.match(source):
        return source
    return "_source-" + hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]


def iso_ms(moment: datetime) -> str:
    """RFC 3339 UTC with milliseconds, as ingest writes times."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def _message_id(event: Any) -> str:
    message_id = text(event.get("messageId")) if isinstance(event, dict) else None
    # Every event has one (ingest and transformations both require it); a hash of the event
    # keeps the name deterministic all the same.
    return message_id or hashlib.sha256(json_bytes(event)).hexdigest()


class GcsConnector:
    """Hourly NDJSON.gz files per source in the customer's bucket, with per-folder manifests."""

    type = "gcs"
    config_model = GcsConfig
    about = About(
        description=(
            "Every event as gzip NDJSON files in a Cloud Storage bucket of yours, in hourly "
            "folders per source (dt=/hour=) with a manifest: query them with a BigQuery "
            "external table or Spark"
        ),
        docs_url="docs/DESTINATIONS.md#gcs",
        event_types=("track", "identify", "page", "screen", "group", "alias"),
        batching=Batching(max_parts=MAX_EVENTS_PER_FILE, max_bytes=MAX_JSON_BYTES_PER_FILE),
        # Files are not rewritten here: one user's events are spread over every hourly file
        # since the start, each shared with other users; rewriting them from a push handler
        # would race the files still being written and change names the manifests list.
        manual_deletion=(
            "Cloud Storage files are immutable batches of many users' events: find this "
            "user's files (a BigQuery external table's _FILE_NAME, where userId or anonymousId "
            "matches) and rewrite or delete them yourself, or let a bucket lifecycle rule delete "
            "files after your retention period"
        ),
        # No rate limit: a bucket takes about 1,000 object writes a second to start with and
        # scales up, far more than one file per batch needs; the one per-object limit (one
        # write a second to the same name, which the manifest meets) is the writer's to absorb
        # (it retries a 429 on the manifest, and deliver retries the batch after that).
        rate_limit=None,
    )

    def parts(self, event: CanonicalEvent, config: BaseModel, *, now: datetime) -> list[Part]:
        expect_config(config, GcsConfig)
        hour = received_at(event, now)
        key = f"{source_folder(event)}/{hour:%Y-%m-%d}/{hour:%H}"
        return [Part(key, event)]

    def request(
        self, key: str, payloads: Sequence[Any], config: BaseModel, *, now: datetime
    ) -> OutboundFile:
        cfg = expect_config(config, GcsConfig)
        source, day, hour = key.split("/")
        # Ordered by time, then id: the same batch always makes the same bytes, whatever order
        # a redelivery brings its events in.
        timed = sorted(
            ((received_at(event, now), _message_id(event), event) for event in payloads),
            key=lambda item: (item[0], item[1]),
        )
        data = b"".join(json_bytes(event) + b"\n" for _, _, event in timed)
        # mtime=0: gzip otherwise stamps the current time into the header.
        compressed = gzip.compress(data, compresslevel=6, mtime=0)
        ids = "\n".join(sorted(message_id for _, message_id, _ in timed))
        digest = hashlib.sha256(ids.encode("utf-8")).hexdigest()[:NAME_HASH_CHARS]
        folder = f"{cfg.prefix}source_id={source}/dt={day}/hour={hour}/"
        return OutboundFile(
            bucket=cfg.bucket,
            name=f"{folder}{digest}.ndjson.gz",
            data=compressed,
            content_type=CONTENT_TYPE,
            manifest=f"{folder}{MANIFEST}",
            summary={
                "events": len(timed),
                "bytes": len(compressed),
                "first_received_at": iso_ms(timed[0][0]),
                "last_received_at": iso_ms(timed[-1][0]),
            },
        )
