"""The `gcs` destination: config rules, file naming and determinism (the connector), and the
writer's manifest updates and error classes against an in-memory bucket that, unlike the
emulator, honours generation preconditions (tests/integration/test_gcs_files.py has the rest)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from google.api_core import exceptions as gexc

from shared.adapters.gcs_files import GcsFileWriter
from shared.destinations import public_config, secret_fields, validate_config
from shared.destinations.base import (
    DeletionSubject,
    OutboundFile,
    batched,
    build_requests,
)
from shared.destinations.deletion import deletion_request
from shared.destinations.gcs import MAX_EVENTS_PER_FILE, GcsConnector
from shared.domain.errors import InvalidRequest, Unavailable

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "destinations" / "gcs"
TRACK = json.loads((GOLDEN / "track.json").read_text())["event"]
NOW = datetime(2024, 1, 15, 15, 0, 6, tzinfo=UTC)
CONFIG = {"bucket": "acme-analytics-events"}
CONNECTOR = GcsConnector()


def event(n: int, **changes: Any) -> dict[str, Any]:
    return {**TRACK, "messageId": f"msg-{n:04d}", **changes}


def files(events: list[dict[str, Any]], config: dict[str, Any] = CONFIG) -> list[OutboundFile]:
    cfg = validate_config("gcs", config)
    parts = [CONNECTOR.parts(e, cfg, now=NOW) for e in events]  # type: ignore[arg-type]
    built = [batch.request for batch in batched(CONNECTOR, cfg, parts, now=NOW)]
    return cast(list[OutboundFile], built)


def lines(file: OutboundFile) -> list[dict[str, Any]]:
    return [json.loads(line) for line in gzip.decompress(file.data).splitlines()]


# ---- config


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"bucket": "ab"}, "bucket"),
        ({"bucket": "Acme-Events"}, "bucket"),
        ({"bucket": "-acme"}, "bucket"),
        ({"bucket": "acme_"}, "bucket"),
        ({"bucket": "acme events"}, "bucket"),
        ({"bucket": "a" * 64}, "bucket"),
        ({"bucket": "a." + "b" * 64}, "bucket"),
        ({"bucket": "a..b"}, "bucket"),
        ({"bucket": "192.168.1.10"}, "bucket"),
        ({"bucket": "goog-events"}, "bucket"),
        ({"bucket": "my-google-events"}, "bucket"),
        ({"prefix": "/abs"}, "prefix"),
        ({"prefix": "a//b"}, "prefix"),
        ({"prefix": "a/../b"}, "prefix"),
        ({"prefix": "./x"}, "prefix"),
        ({"prefix": "with space/"}, "prefix"),
        ({"prefix": "x?y"}, "prefix"),
        ({"prefix": "x" * 513}, "prefix"),
        ({"region": "eu"}, "region"),
    ],
)
def test_invalid_config_names_its_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_config("gcs", {**CONFIG, **changes})
    assert caught.value.field == f"config.{field}"


def test_bucket_is_required() -> None:
    with pytest.raises(InvalidRequest, match="is required") as caught:
        validate_config("gcs", {"prefix": "x/"})
    assert caught.value.field == "config.bucket"


@pytest.mark.parametrize(
    ("bucket", "prefix", "stored_prefix"),
    [
        ("acme-events", "", ""),
        ("acme_events.example.com", "streams", "streams/"),
        ("a1b", "raw/events=v1/", "raw/events=v1/"),
    ],
)
def test_valid_config_and_prefix_gets_its_slash(
    bucket: str, prefix: str, stored_prefix: str
) -> None:
    config = validate_config("gcs", {"bucket": bucket, "prefix": prefix})
    assert public_config("gcs", config) == {"bucket": bucket, "prefix": stored_prefix}


def test_no_secrets() -> None:
    assert secret_fields("gcs") == frozenset()


# ---- naming and determinism


def test_files_are_per_source_and_receivedat_hour_utc() -> None:
    built = files(
        [
            event(1),
            event(2, sourceId="src-other"),
            event(3, receivedAt="2024-01-15T16:00:00.000Z"),
            event(4),
        ]
    )
    assert [(f.name.rsplit("/", 1)[0], len(lines(f))) for f in built] == [
        ("source_id=src-golden/dt=2024-01-15/hour=15", 2),
        ("source_id=src-other/dt=2024-01-15/hour=15", 1),
        ("source_id=src-golden/dt=2024-01-15/hour=16", 1),
    ]
    assert all(f.manifest == f.name.rsplit("/", 1)[0] + "/manifest.json" for f in built)


def test_same_batch_in_any_order_makes_the_same_file() -> None:
    [a] = files([event(1), event(2, receivedAt="2024-01-15T15:59:00.000Z"), event(3)])
    [b] = files([event(3), event(2, receivedAt="2024-01-15T15:59:00.000Z"), event(1)])
    assert a == b  # name, bytes (gzip mtime 0), summary
    assert [line["messageId"] for line in lines(a)] == ["msg-0001", "msg-0003", "msg-0002"]
    assert a.summary == {
        "events": 3,
        "bytes": len(a.data),
        "first_received_at": "2024-01-15T15:00:05.250Z",
        "last_received_at": "2024-01-15T15:59:00.000Z",
    }


def test_another_batch_gets_another_name() -> None:
    [a] = files([event(1), event(2)])
    [b] = files([event(1), event(3)])
    assert a.name != b.name and a.manifest == b.manifest


def test_a_batch_is_cut_at_the_event_limit() -> None:
    built = files([event(n) for n in range(MAX_EVENTS_PER_FILE + 1)])
    assert [f.summary["events"] for f in built] == [MAX_EVENTS_PER_FILE, 1]


def test_a_missing_receivedat_uses_the_delivery_time_and_no_source_its_own_folder() -> None:
    raw = {k: v for k, v in event(1).items() if k not in ("receivedAt", "sourceId")}
    cfg = validate_config("gcs", CONFIG)
    [file] = build_requests(CONNECTOR, raw, cfg, now=datetime(2024, 2, 1, 9, 30, tzinfo=UTC))  # type: ignore[arg-type]
    assert isinstance(file, OutboundFile)
    assert file.name.startswith("source_id=_no_source/dt=2024-02-01/hour=09/")


@pytest.mark.parametrize("source", ["../x", "a/b", ".", "..", "x" * 200, "é"])
def test_unsafe_source_ids_never_leave_their_folder(source: str) -> None:
    [file] = files([event(1, sourceId=source)], {**CONFIG, "prefix": "p/"})
    folder = file.name.split("/")[1]
    assert folder.startswith("source_id=_source-") and len(file.name.split("/")) == 5


def test_deletion_is_not_possible_and_says_what_to_do() -> None:
    reason = deletion_request(
        "gcs", {**CONFIG, "prefix": "raw/"}, DeletionSubject("user_id", "user-42", "dpo")
    )
    assert isinstance(reason, str)
    assert "_FILE_NAME" in reason and "immutable" in reason


# ---- the writer, on an in-memory bucket that honours generations


@dataclass
class Stored:
    data: bytes
    generation: int
    content_type: str | None
    content_encoding: str | None


@dataclass
class FakeStorage:
    """The slice of Cloud Storage the writer uses: objects with generations, preconditions."""

    buckets: set[str] = field(default_factory=lambda: {"acme-analytics-events"})
    objects: dict[tuple[str, str], Stored] = field(default_factory=dict)
    generation: int = 0
    # Called before each upload (bucket, name): tests make another writer act there, or fail.
    before_upload: Callable[[str, str], None] = lambda bucket, name: None
    uploads: list[tuple[str, int | None]] = field(default_factory=list)

    def bucket(self, name: str) -> FakeBucket:
        return FakeBucket(self, name)


@dataclass
class FakeBucket:
    storage: FakeStorage
    name: str

    def blob(self, name: str) -> FakeBlob:
        return FakeBlob(self, name)

    def get_blob(self, name: str, **_: Any) -> FakeBlob | None:
        self._exists()
        stored = self.storage.objects.get((self.name, name))
        if stored is None:
            return None
        blob = FakeBlob(self, name)
        blob.generation = stored.generation
        return blob

    def _exists(self) -> None:
        if self.name not in self.storage.buckets:
            raise gexc.NotFound("The specified bucket does not exist.")


@dataclass
class FakeBlob:
    bucket: FakeBucket
    name: str
    generation: int | None = None
    content_encoding: str | None = None
    cache_control: str | None = None

    def _check(self, if_generation_match: int | None) -> None:
        stored = self.bucket.storage.objects.get((self.bucket.name, self.name))
        current = stored.generation if stored else 0
        if if_generation_match is not None and if_generation_match != current:
            raise gexc.PreconditionFailed("At least one of the pre-conditions did not hold.")

    def upload_from_string(
        self,
        data: bytes,
        content_type: str | None = None,
        if_generation_match: int | None = None,
        **_: Any,
    ) -> None:
        storage = self.bucket.storage
        storage.before_upload(self.bucket.name, self.name)
        self.bucket._exists()
        storage.uploads.append((self.name, if_generation_match))
        self._check(if_generation_match)
        storage.generation += 1
        storage.objects[(self.bucket.name, self.name)] = Stored(
            data, storage.generation, content_type, self.content_encoding
        )

    def download_as_bytes(self, if_generation_match: int | None = None, **_: Any) -> bytes:
        self._check(if_generation_match)
        return self.bucket.storage.objects[(self.bucket.name, self.name)].data


def writer_on(fake: FakeStorage, attempts: int = 8) -> GcsFileWriter:
    return GcsFileWriter(
        client_factory=lambda: cast(Any, fake), manifest_attempts=attempts, sleep=lambda s: None
    )


def manifest_of(fake: FakeStorage, file: OutboundFile) -> dict[str, Any]:
    stored = fake.objects[(file.bucket, file.manifest)]
    manifest: dict[str, Any] = json.loads(stored.data)
    return manifest


def test_object_is_created_only_if_absent_and_a_redelivery_goes_on() -> None:
    fake = FakeStorage()
    [file] = files([event(1)])
    writer = writer_on(fake)
    assert writer.write(file) == f"gs://acme-analytics-events/{file.name}"
    stored = fake.objects[(file.bucket, file.name)]
    assert (stored.content_type, stored.content_encoding) == ("application/gzip", None)
    assert writer.write(file) == f"gs://acme-analytics-events/{file.name}"
    # The data object is only ever written with ifGenerationMatch=0; the second time got 412.
    assert [g for name, g in fake.uploads if name == file.name] == [0, 0]
    assert fake.objects[(file.bucket, file.name)].generation == stored.generation
    manifest = manifest_of(fake, file)
    assert manifest["files"] == [{"name": file.name, **file.summary}]
    # The redelivery found its entry there and wrote no new manifest.
    assert [g for name, g in fake.uploads if name == file.manifest] == [0]


def test_two_writers_racing_on_one_manifest_are_both_recorded() -> None:
    fake = FakeStorage()
    [file_a] = files([event(1)])
    [file_b] = files([event(2)])
    writer_a, writer_b = writer_on(fake), writer_on(fake)
    raced: list[str] = []

    def b_writes_first(bucket: str, name: str) -> None:
        # Writer a has read the manifest and is about to write it: b records its file now.
        if name == file_a.manifest and not raced:
            raced.append(name)
            writer_b.write(file_b)

    fake.before_upload = b_writes_first
    writer_a.write(file_a)
    names = [entry["name"] for entry in manifest_of(fake, file_a)["files"]]
    assert sorted(names) == sorted([file_a.name, file_b.name])
    assert manifest_of(fake, file_a)["events"] == 2
    # b created the manifest (if absent: 0); a's write, also on 0, was refused (412); a read it
    # again and wrote on b's generation (3: after the two data objects).
    assert [g for name, g in fake.uploads if name == file_a.manifest] == [0, 0, 3]


def test_a_manifest_that_keeps_changing_is_retried_later() -> None:
    fake = FakeStorage()
    [file] = files([event(1)])
    others = iter(range(100, 200))

    def someone_else_writes(bucket: str, name: str) -> None:
        if name == file.manifest:
            fake.generation += 1
            fake.objects[(bucket, name)] = Stored(
                json.dumps({"files": [{"name": f"other-{next(others)}"}]}).encode(),
                fake.generation,
                "application/json",
                None,
            )

    fake.before_upload = someone_else_writes
    with pytest.raises(Unavailable, match="kept changing under 3 updates"):
        writer_on(fake, attempts=3).write(file)


def fails_with(error: Exception) -> FakeStorage:
    fake = FakeStorage()

    def fail(bucket: str, name: str) -> None:
        raise error

    fake.before_upload = fail
    return fake


@pytest.mark.parametrize(
    ("error", "raised", "message"),
    [
        (gexc.Forbidden("denied"), InvalidRequest, "grant its deliver service account"),
        (gexc.Unauthorized("no"), InvalidRequest, "roles/storage.objectUser"),
        (gexc.BadRequest("Invalid object name"), InvalidRequest, "Invalid object name"),
        (gexc.TooManyRequests("rate"), Unavailable, "retry later"),
        (gexc.ServiceUnavailable("down"), Unavailable, "retry later"),
        (gexc.InternalServerError("oops"), Unavailable, "retry later"),
        (gexc.BadGateway("bad gateway"), Unavailable, "retry later"),
        (gexc.from_http_status(408, "timeout"), Unavailable, "timed out"),
        (ConnectionError("reset"), Unavailable, "retry later"),
    ],
)
def test_errors_are_classed(error: Exception, raised: type[Exception], message: str) -> None:
    [file] = files([event(1)])
    with pytest.raises(raised, match=message) as caught:
        writer_on(fails_with(error)).write(file)
    # Unavailable is retried by Pub/Sub; InvalidRequest is dead-lettered.
    assert type(caught.value) is raised


def test_a_missing_bucket_is_refused_for_good() -> None:
    [file] = files([event(1)], {"bucket": "not-created"})
    with pytest.raises(InvalidRequest, match="not-created does not exist"):
        writer_on(FakeStorage()).write(file)


def test_a_foreign_manifest_is_not_overwritten() -> None:
    fake = FakeStorage()
    [file] = files([event(1)])
    fake.objects[(file.bucket, file.manifest)] = Stored(b'{"files": 3}', 7, None, None)
    with pytest.raises(InvalidRequest, match="not a Streams manifest"):
        writer_on(fake).write(file)
    assert fake.objects[(file.bucket, file.manifest)].data == b'{"files": 3}'
