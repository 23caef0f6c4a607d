"""The Firestore adapter's `array-contains` filter, on the emulator: how trace, replay and
deliver find deliver's batch records by messageId or delivery id."""

from __future__ import annotations

import os
import uuid

import pytest

from emulators import EmulatorStack
from shared.adapters.firestore import FirestoreConfigStore, new_client
from shared.config import Settings
from shared.ports import Filter, Write

pytestmark = pytest.mark.integration


def test_array_contains_finds_the_documents_whose_array_holds_the_value(
    emulator_stack: EmulatorStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in emulator_stack.env().items():
        monkeypatch.setenv(key, value)
    assert os.environ.get("FIRESTORE_EMULATOR_HOST")
    store = FirestoreConfigStore(new_client(Settings(project_id=emulator_stack.project_id)))
    collection = f"emulator-test-{uuid.uuid4().hex}"
    store.commit(
        [
            Write("set", f"{collection}/a", {"message_ids": ["m-1", "m-2"], "n": 1}),
            Write("set", f"{collection}/b", {"message_ids": ["m-2", "m-3"], "n": 2}),
            Write("set", f"{collection}/c", {"message_ids": "m-1", "n": 3}),  # not an array
        ]
    )

    def found(value: str) -> list[int]:
        where = [Filter("message_ids", "array-contains", value)]
        return sorted(d["n"] for d in store.query(collection, where))

    assert (found("m-1"), found("m-2"), found("m-4")) == ([1], [1, 2], [])
    # A value too long for Firestore to index matches nothing, and is not sent.
    assert found("m" * 1_500) == []
    store.commit([Write("delete", f"{collection}/{name}") for name in "abc"])
