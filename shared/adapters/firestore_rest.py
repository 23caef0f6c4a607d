"""Firestore over its REST API, for ingest: the `DocumentStore` (write keys read, `last_used_at`
and signature failures written) and the `CounterStore` (rate limits), without the gRPC client.

Documents go through `shared.domain.stored_documents` both ways, exactly as in
shared/adapters/firestore.py, and are the same documents: either adapter reads what the other
wrote (tests/integration/test_rest_adapters.py). Values are Firestore's JSON `Value`s.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from shared.adapters import operation_counts
from shared.adapters.rest import Http, RestApi, RestError, RetryPolicy, google_api
from shared.config import Settings
from shared.domain.ids import is_document_path
from shared.domain.stored_documents import (
    check_document_path,
    decode_document,
    encode_document,
    encode_fields,
)
from shared.ports import COMMIT_TIME, AlreadyExists, Document, Increment, Write

PRODUCTION_ROOT = "https://firestore.googleapis.com/v1/"
DATABASE = "(default)"
# As the gRPC adapter's RETRY (shared/adapters/errors.py): reads and commits are retried while
# the service is down, timing out or contended, within the call's deadline.
RETRY = RetryPolicy(codes=frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "INTERNAL", "ABORTED"}))
# A counter's write is waited for by the request that makes it: a short deadline, and no retry
# (an increment applied twice counts twice; the caller counts locally when one fails).
COUNTER_TIMEOUT_SECONDS = 2.0
COUNTER_WRITE = RetryPolicy(
    codes=frozenset(),
    deadline_seconds=COUNTER_TIMEOUT_SECONDS,
    attempt_seconds=COUNTER_TIMEOUT_SECONDS,
)
# Field names Firestore's field paths take unquoted; any other is quoted with backticks.
SIMPLE_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")


def new_api(settings: Settings, credentials: Callable[[], Http]) -> RestApi:
    """Firestore's REST API; on the emulator when FIRESTORE_EMULATOR_HOST is set."""
    operation_counts.export_to(settings.operation_counts_dir)
    return google_api("Firestore", "FIRESTORE_EMULATOR_HOST", PRODUCTION_ROOT, credentials)


class _Documents:
    """Document names and URLs of one project's database."""

    def __init__(self, api: RestApi, project_id: str):
        self._api = api
        self._database = f"projects/{project_id}/databases/{DATABASE}/documents"

    def name(self, path: str) -> str:
        return f"{self._database}/{path}"

    def commit(self, writes: list[dict[str, Any]], policy: RetryPolicy) -> Any:
        return self._api.call("POST", f"{self._database}:commit", {"writes": writes}, policy)


class FirestoreRestStore:
    """`DocumentStore` on Firestore's REST API: documents by slash-separated path."""

    def __init__(self, api: RestApi, project_id: str, retry: RetryPolicy = RETRY):
        self._api = api
        self._retry = retry
        self._documents = _Documents(api, project_id)

    def get(self, path: str) -> Document | None:
        if not is_document_path(path):
            return None
        segments = "/".join(quote(segment, safe="") for segment in path.split("/"))
        try:
            found = self._api.call("GET", self._documents.name(segments), None, self._retry)
        except RestError as exc:
            if exc.code != "NOT_FOUND":
                raise
            found = None
        operation_counts.firestore_lookup(1)
        if found is None:
            return None
        return decode_document(from_fields(found.get("fields", {})))

    def commit(self, writes: Iterable[Write]) -> None:
        sent = []
        deletes = 0
        for write in writes:
            check_document_path(write.path)
            sent.append(self._write(write))
            deletes += write.op == "delete"
        try:
            self._documents.commit(sent, self._retry)
        except RestError as exc:
            if exc.code == "ALREADY_EXISTS":
                raise AlreadyExists(exc.message) from exc
            raise
        # Counted once committed: a refused commit writes nothing.
        operation_counts.firestore_commit(len(sent) - deletes, deletes)

    def _write(self, write: Write) -> dict[str, Any]:
        """One write as the REST API takes it; the same write the gRPC client sends."""
        name = self._documents.name(write.path)
        if write.op == "delete":
            return {"delete": name}
        if write.op not in ("create", "set", "update"):
            raise ValueError(f"unknown write op {write.op!r}")
        # An update's fields are only part of the document: only a whole one (create, set) is
        # measured against the 1 MiB, as in shared/adapters/firestore.py.
        if write.op == "update":
            data = encode_fields(write.data)
        else:
            data = encode_document(write.path, write.data)
        fields, transforms = _split_transforms(data)
        sent: dict[str, Any] = {"update": {"name": name, "fields": fields}}
        if write.op == "create":
            sent["currentDocument"] = {"exists": False}
        elif write.op == "update":
            sent["updateMask"] = {"fieldPaths": [field_path(field) for field in fields]}
            sent["currentDocument"] = {"exists": True}
        if transforms:
            sent["updateTransforms"] = transforms
        return sent


def _split_transforms(data: Document) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Plain values as Firestore `Value`s, and the values the store fills in itself
    (`COMMIT_TIME`, `Increment`) as field transforms, in field path order."""
    fields: dict[str, Any] = {}
    transforms: list[dict[str, Any]] = []
    for field in sorted(data):
        value = data[field]
        if value is COMMIT_TIME:
            transforms.append({"fieldPath": field_path(field), "setToServerValue": "REQUEST_TIME"})
        elif isinstance(value, Increment):
            increment = {"integerValue": str(value.amount)}
            transforms.append({"fieldPath": field_path(field), "increment": increment})
        else:
            fields[field] = to_value(value)
    return fields, transforms


class FirestoreRestCounterStore:
    """`CounterStore` on Firestore's REST API: an increment transform per field in one commit,
    whose answer carries each field's value after the increment."""

    def __init__(self, api: RestApi, project_id: str, policy: RetryPolicy = COUNTER_WRITE):
        self._policy = policy
        self._documents = _Documents(api, project_id)

    def increment(
        self, path: str, amounts: Mapping[str, int], expires_at: datetime
    ) -> dict[str, int]:
        check_document_path(path)
        fields = sorted(amounts)
        # A merge: `expires_at` replaced, the counters added to, the document created if missing.
        write = {
            "update": {
                "name": self._documents.name(path),
                "fields": {"expires_at": to_value(expires_at)},
            },
            "updateMask": {"fieldPaths": ["expires_at"]},
            "updateTransforms": [
                {"fieldPath": field_path(name), "increment": {"integerValue": str(amounts[name])}}
                for name in fields
            ],
        }
        answer = self._documents.commit([write], self._policy)
        operation_counts.firestore_commit(1, 0)
        results = answer["writeResults"][0]["transformResults"]
        totals = zip(fields, results, strict=True)
        return {name: int(from_value(value)) for name, value in totals}


# --- Firestore's JSON values ------------------------------------------------------------------


def field_path(name: str) -> str:
    """A top-level field's path: its name, backtick-quoted unless a simple name."""
    if SIMPLE_FIELD_NAME.fullmatch(name):
        return name
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def to_value(value: Any) -> dict[str, Any]:
    """A Python value as a Firestore `Value` (naive times are UTC, as the gRPC client takes
    them); `TypeError` for a value Firestore has no type for."""
    if value is None:
        return {"nullValue": None}
    if value is True or value is False:
        return {"booleanValue": value}
    if isinstance(value, int):
        return {"integerValue": str(value)}
    if isinstance(value, float):
        # JSON has no NaN or infinities: the API takes them as these strings.
        if math.isfinite(value):
            return {"doubleValue": value}
        return {
            "doubleValue": "NaN" if math.isnan(value) else f"{'-' if value < 0 else ''}Infinity"
        }
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, bytes):
        return {"bytesValue": base64.b64encode(value).decode("ascii")}
    if isinstance(value, datetime):
        moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return {"timestampValue": moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    if isinstance(value, dict):
        return {"mapValue": {"fields": {key: to_value(item) for key, item in value.items()}}}
    if isinstance(value, list | tuple):
        return {"arrayValue": {"values": [to_value(item) for item in value]}}
    raise TypeError(f"Firestore cannot store a {type(value).__name__}")


def from_fields(fields: Mapping[str, Any]) -> Document:
    return {name: from_value(value) for name, value in fields.items()}


def from_value(value: Mapping[str, Any]) -> Any:
    """A Firestore `Value` as the gRPC client reads it (times as aware UTC datetimes)."""
    [(kind, content)] = value.items()
    if kind == "stringValue":
        return content
    if kind == "integerValue":
        return int(content)
    if kind == "booleanValue":
        return bool(content)
    if kind == "nullValue":
        return None
    if kind == "timestampValue":
        return parse_timestamp(content)
    if kind == "mapValue":
        return from_fields(content.get("fields", {}))
    if kind == "arrayValue":
        return [from_value(item) for item in content.get("values", [])]
    if kind == "doubleValue":
        return float(content)  # a number, or "NaN", "Infinity", "-Infinity"
    if kind == "bytesValue":
        return base64.b64decode(content)
    # References and geo points: Streams stores neither.
    raise ValueError(f"a Firestore {kind} is not a value Streams stores")


def parse_timestamp(text: str) -> datetime:
    """RFC 3339 in UTC (`...T16:11:39.591889123Z`): to the microsecond, as Python holds it."""
    whole, _, fraction = text.rstrip("Z").partition(".")
    moment = datetime.fromisoformat(whole).replace(tzinfo=UTC)
    return moment.replace(microsecond=int(fraction[:6].ljust(6, "0")) if fraction else 0)
