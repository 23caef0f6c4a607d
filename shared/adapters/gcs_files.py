"""Cloud Storage adapter: writes `gcs` destination files to customers' buckets (`FileWriter`).

A write is two steps, each safe to repeat (Pub/Sub redelivers a batch whose delivery failed):
1. the data object, created only if absent (`ifGenerationMatch=0`): a redelivery finds it there
   (412) and goes on, since the same name always holds the same batch;
2. the folder's manifest, read-modify-written with `ifGenerationMatch=<generation read>` so two
   writers recording files in one folder never lose each other's entry: the one whose write
   lands second gets 412, reads again and retries (a bounded number of times). An entry with
   the file's name is replaced, never added twice.

Local use: with STORAGE_EMULATOR_HOST set, the client itself sends every call there with
anonymous credentials (google-cloud-storage >= 2.x), so nothing here tells the two apart.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import requests
from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exceptions

# google-cloud-storage ships no type hints: its names are Any to mypy.
from google.cloud.storage import Bucket, Client
from google.cloud.storage.retry import DEFAULT_RETRY

from shared.adapters.errors import CALL_TIMEOUT_SECONDS
from shared.domain.errors import InvalidRequest, Unavailable
from shared.ports import OutboundFile

MANIFEST_VERSION = 1
# Manifest updates that may lose a race (412) or meet Cloud Storage's one-write-a-second limit
# on one object (429) before the write is given up for Pub/Sub to redeliver.
MANIFEST_ATTEMPTS = 8
BACKOFF_SECONDS = 0.05
MAX_BACKOFF_SECONDS = 1.0
# The client retries transient errors itself (its DEFAULT_RETRY, and only calls that are
# idempotent, as ours are with a generation precondition), within a push handler's patience.
RETRY = DEFAULT_RETRY.with_timeout(CALL_TIMEOUT_SECONDS)

# Errors worth retrying later: 408, 429, 5xx, and the connection failing below the client.
TRANSIENT: tuple[type[BaseException], ...] = (
    gexc.TooManyRequests,
    gexc.ServerError,
    gexc.DeadlineExceeded,  # 504, and a call that outlived its deadline
    gexc.RetryError,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    auth_exceptions.TransportError,
    ConnectionError,
    TimeoutError,
)


def new_client(project: str | None) -> Client:
    """A client for the deliver function's own project (its service account's credentials)."""
    return Client(project=project)


class ManifestError(InvalidRequest):
    """The folder's manifest.json is not one Streams wrote: it is not overwritten."""


class GcsFileWriter:
    """`FileWriter` on google-cloud-storage; the client is made on first use."""

    def __init__(
        self,
        project: str | None = None,
        *,
        client_factory: Callable[[], Client] | None = None,
        manifest_attempts: int = MANIFEST_ATTEMPTS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._factory = client_factory or (lambda: new_client(project))
        self._client: Client | None = None
        self._attempts = manifest_attempts
        self._sleep = sleep

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = self._factory()
        return self._client

    def write(self, file: OutboundFile) -> str:
        where = f"gs://{file.bucket}/{file.name}"
        with _plain_errors(file.bucket):
            bucket = self.client.bucket(file.bucket)
            self._write_object(bucket, file)
            self._record(bucket, file)
        return where

    def _write_object(self, bucket: Bucket, file: OutboundFile) -> None:
        blob = bucket.blob(file.name)
        blob.content_encoding = file.content_encoding
        # 412: already written by an earlier delivery of this batch (same name, same events).
        with suppress(gexc.PreconditionFailed):
            blob.upload_from_string(
                file.data,
                content_type=file.content_type,
                if_generation_match=0,
                retry=RETRY,
                timeout=CALL_TIMEOUT_SECONDS,
            )

    def _record(self, bucket: Bucket, file: OutboundFile) -> None:
        entry = {"name": file.name, **file.summary}
        for attempt in range(self._attempts):
            try:
                self._record_once(bucket, file, entry)
                return
            except (gexc.PreconditionFailed, gexc.TooManyRequests):
                # Another writer updated it since we read it (412), or it was updated within
                # the last second (429): read it again after a jittered wait.
                delay = min(MAX_BACKOFF_SECONDS, BACKOFF_SECONDS * 2**attempt)
                self._sleep(delay * (0.5 + random.random()))  # jitter only
        raise Unavailable(
            f"gs://{file.bucket}/{file.manifest} kept changing under {self._attempts} updates; "
            "retry later"
        )

    def _record_once(self, bucket: Bucket, file: OutboundFile, entry: dict[str, Any]) -> None:
        """One read-modify-write of the manifest; raises PreconditionFailed when it changed
        between the read and the write."""
        blob = bucket.get_blob(file.manifest, retry=RETRY, timeout=CALL_TIMEOUT_SECONDS)
        if blob is None:
            generation, manifest = 0, {"version": MANIFEST_VERSION, "files": []}
        else:
            generation = blob.generation or 0
            try:
                raw = blob.download_as_bytes(
                    if_generation_match=generation, retry=RETRY, timeout=CALL_TIMEOUT_SECONDS
                )
            except gexc.NotFound:
                # Deleted since it was read: a race like any other, not a missing bucket.
                raise gexc.PreconditionFailed(f"{file.manifest} was deleted meanwhile") from None
            manifest = _parse_manifest(raw, f"gs://{file.bucket}/{file.manifest}")
        updated = with_entry(manifest, entry)
        if updated == manifest:
            return  # already recorded: a redelivery
        target = bucket.blob(file.manifest)
        # Readers must see each new version at once, not a cached one.
        target.cache_control = "no-store"
        target.upload_from_string(
            json.dumps(updated, indent=1, ensure_ascii=False).encode("utf-8"),
            content_type="application/json",
            if_generation_match=generation,
            retry=RETRY,
            timeout=CALL_TIMEOUT_SECONDS,
        )


def with_entry(manifest: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    """The manifest with `entry` recorded once (replacing one of the same name), files ordered
    by first receivedAt then name, and the folder's totals."""
    files = [f for f in manifest.get("files", []) if f.get("name") != entry["name"]]
    files.append(entry)
    files.sort(key=lambda f: (str(f.get("first_received_at", "")), str(f.get("name", ""))))
    return {
        "version": MANIFEST_VERSION,
        "files": files,
        "events": sum(int(f.get("events", 0)) for f in files),
        "bytes": sum(int(f.get("bytes", 0)) for f in files),
    }


def _parse_manifest(raw: bytes, where: str) -> dict[str, Any]:
    try:
        manifest = json.loads(raw)
    except ValueError:
        manifest = None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        raise ManifestError(
            f"{where} is not a Streams manifest (a JSON object with a files list): move or "
            "delete it so Streams can record this folder's files"
        )
    if not all(isinstance(f, dict) for f in manifest["files"]):
        raise ManifestError(f"{where} has files that are not JSON objects: move or delete it")
    return manifest


@contextmanager
def _plain_errors(bucket: str) -> Iterator[None]:
    """Cloud Storage errors as the domain's: refusals for good as InvalidRequest (the delivery
    is dead-lettered with the message), transient ones as Unavailable (redelivered)."""
    try:
        yield
    except gexc.NotFound as error:
        raise InvalidRequest(
            f"Cloud Storage bucket {bucket} does not exist (or is not visible to Streams): "
            f"create it or correct config.bucket ({error.code})"
        ) from error
    except (gexc.Forbidden, gexc.Unauthorized) as error:
        raise InvalidRequest(
            f"Streams may not write to gs://{bucket}: grant its deliver service account "
            f"roles/storage.objectUser on the bucket ({error.code})"
        ) from error
    except TRANSIENT as error:
        raise Unavailable(
            f"Cloud Storage is unavailable for gs://{bucket}, retry later ({type(error).__name__})"
        ) from error
    except gexc.GoogleAPICallError as error:
        # 408 has no class of its own in api_core (nor do some 5xx); read the code.
        if error.code == 408 or (error.code or 0) >= 500:
            raise Unavailable(
                f"Cloud Storage timed out or failed for gs://{bucket}, retry later ({error.code})"
            ) from error
        # Any other 4xx (400 bad request, 411, 413): the same write would be refused again.
        raise InvalidRequest(
            f"Cloud Storage refused a write to gs://{bucket}: {error.message}"
        ) from error
