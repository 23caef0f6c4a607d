"""The `gcs` destination's writer on the Cloud Storage emulator (gcp-storage-emulator, in-process
on a free port): files written by the connector are read back as gzip NDJSON, the manifest lists
each file once under redelivery, and a missing bucket is refused for good.

The emulator does not honour `ifGenerationMatch` (it ignores every precondition: see
`test_the_emulator_ignores_generation_preconditions`), so two writers racing on one manifest
are tested in tests/unit/test_destination_gcs.py against a fake that does; here two writers
take turns on one manifest, which the emulator does support.
"""

from __future__ import annotations

import gzip
import json
import os
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from gcp_storage_emulator.server import create_server
from google.cloud.storage import Client

from shared.adapters.gcs_files import GcsFileWriter
from shared.destinations import validate_config
from shared.destinations.base import OutboundFile, batched
from shared.destinations.gcs import GcsConnector
from shared.domain.errors import InvalidRequest

pytestmark = pytest.mark.integration

BUCKET = "streams-test-exports"
ROOT = Path(__file__).resolve().parents[2]
TRACK = json.loads((ROOT / "tests/golden/destinations/gcs/track.json").read_text())["event"]
NOW = datetime(2024, 1, 15, 15, 0, 6, tzinfo=UTC)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    """An in-memory emulator with one bucket; STORAGE_EMULATOR_HOST points the client at it."""
    port = _free_port()
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket=BUCKET)
    server.start()
    saved = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{port}"
    try:
        yield os.environ["STORAGE_EMULATOR_HOST"]
    finally:
        if saved is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = saved
        server.stop()


@pytest.fixture
def writer(emulator: str) -> GcsFileWriter:
    return GcsFileWriter("streams-test")


def files_for(events: list[dict[str, Any]], prefix: str) -> list[OutboundFile]:
    """The files deliver would write for these events (the connector's own batching)."""
    connector = GcsConnector()
    config = validate_config("gcs", {"bucket": BUCKET, "prefix": prefix})
    parts = [connector.parts(event, config, now=NOW) for event in events]  # type: ignore[arg-type]
    files = [batch.request for batch in batched(connector, config, parts, now=NOW)]
    assert all(isinstance(file, OutboundFile) for file in files)
    return files  # type: ignore[return-value]


def event(n: int, received_at: str = "2024-01-15T15:00:05.250Z") -> dict[str, Any]:
    return {**TRACK, "messageId": f"msg-{n:04d}", "receivedAt": received_at}


def read_lines(writer: GcsFileWriter, name: str) -> list[dict[str, Any]]:
    blob = writer.client.bucket(BUCKET).get_blob(name)
    assert blob is not None, name
    assert blob.content_type == "application/gzip"
    assert blob.content_encoding is None  # a gzip file, served as stored
    # raw_download: the stored bytes, as a reader that does not transcode sees them.
    data = gzip.decompress(blob.download_as_bytes(raw_download=True))
    return [json.loads(line) for line in data.decode().splitlines()]


def read_manifest(writer: GcsFileWriter, name: str) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads(
        writer.client.bucket(BUCKET).blob(name).download_as_bytes()
    )
    return manifest


def test_files_read_back_as_gzip_ndjson_in_hourly_folders(writer: GcsFileWriter) -> None:
    events = [event(1), event(2, "2024-01-15T16:30:00.000Z"), event(3)]
    files = files_for(events, "read-back")
    assert len(files) == 2  # two hours of one source: two folders
    for file in files:
        assert writer.write(file) == f"gs://{BUCKET}/{file.name}"
    first, second = files
    assert first.name.startswith("read-back/source_id=src-golden/dt=2024-01-15/hour=15/")
    assert [line["messageId"] for line in read_lines(writer, first.name)] == [
        "msg-0001",
        "msg-0003",
    ]
    assert read_lines(writer, second.name) == [events[1]]
    manifest = read_manifest(writer, first.manifest)
    assert manifest["files"] == [{"name": first.name, **first.summary}]
    assert manifest["events"] == 2 and manifest["bytes"] == len(first.data)


def test_a_redelivery_is_listed_once(writer: GcsFileWriter) -> None:
    [file] = files_for([event(10), event(11)], "redelivery")
    writer.write(file)
    # Pub/Sub redelivers the batch (deliver failed after the write): same name, same bytes.
    [again] = files_for([event(11), event(10)], "redelivery")
    assert (again.name, again.data) == (file.name, file.data)
    writer.write(again)
    manifest = read_manifest(writer, file.manifest)
    assert [entry["name"] for entry in manifest["files"]] == [file.name]
    assert manifest["events"] == 2


def test_two_writers_taking_turns_on_one_manifest_are_both_recorded(emulator: str) -> None:
    a, b = GcsFileWriter("streams-test"), GcsFileWriter("streams-test")
    [file_a] = files_for([event(20)], "two-writers")
    [file_b] = files_for([event(21)], "two-writers")
    assert file_a.manifest == file_b.manifest and file_a.name != file_b.name
    a.write(file_a)
    b.write(file_b)
    a.write(file_a)  # a's redelivery after b's write keeps b's entry
    manifest = read_manifest(a, file_a.manifest)
    assert sorted(entry["name"] for entry in manifest["files"]) == sorted(
        [file_a.name, file_b.name]
    )
    assert manifest["events"] == 2


def test_a_missing_bucket_is_refused_for_good(writer: GcsFileWriter) -> None:
    [file] = files_for([event(30)], "missing")
    missing = OutboundFile(
        bucket="no-such-bucket-here",
        name=file.name,
        data=file.data,
        content_type=file.content_type,
        manifest=file.manifest,
        summary=file.summary,
        content_encoding=file.content_encoding,
    )
    with pytest.raises(InvalidRequest, match="no-such-bucket-here does not exist"):
        writer.write(missing)


def test_a_manifest_streams_did_not_write_is_not_overwritten(writer: GcsFileWriter) -> None:
    [file] = files_for([event(40)], "foreign")
    writer.client.bucket(BUCKET).blob(file.manifest).upload_from_string(b"not json")
    with pytest.raises(InvalidRequest, match="is not a Streams manifest"):
        writer.write(file)
    assert writer.client.bucket(BUCKET).blob(file.manifest).download_as_bytes() == b"not json"


def test_the_emulator_ignores_generation_preconditions(emulator: str) -> None:
    # Real Cloud Storage answers 412 here (the object exists); the emulator overwrites. If this
    # starts failing, the emulator honours preconditions and the race test can move here.
    blob = Client(project="streams-test").bucket(BUCKET).blob("precondition/probe")
    blob.upload_from_string(b"first")
    blob.upload_from_string(b"second", if_generation_match=0)
    assert blob.download_as_bytes() == b"second"
