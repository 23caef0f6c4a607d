"""Documents within Firestore's limits: JSON it cannot hold as a map round-trips as JSON text,
impossible paths are never looked up, and the in-memory store refuses what Firestore refuses."""

from __future__ import annotations

from typing import Any

import pytest

from shared.domain import ids
from shared.domain.errors import PayloadTooLarge
from shared.domain.stored_documents import (
    MAX_DOCUMENT_BYTES,
    STORED_JSON,
    DocumentPathInvalid,
    DocumentTooLarge,
    decode_document,
    document_size,
    encode_document,
    firestore_refusal,
    query_condition,
)
from shared.ports import Filter, Write
from tests.fakes import InMemoryConfigStore, StoreRefused

PATH = "workspaces/w/transformations/t"


def nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"k": value}
    return value


# Each is valid JSON a user may save that Firestore refuses as a map (checked on the emulator).
UNFIT = {
    "empty key": {"": [None, True]},
    "reserved key": {"__name__": 1},
    "reserved nested key": {"a": [{"__x__": "y"}]},
    "array in array": [[1, 2], [3]],
    "nested 21 deep": nested(21),
    "key path over 1,500 bytes": {"k" * 800: {"j" * 800: 1}},
    "integer beyond 64 bits": {"n": 2**64},
    "negative integer beyond 64 bits": [-(2**63) - 1],
    "lone surrogate": {"text": "\ud800"},
}


@pytest.mark.parametrize("value", UNFIT.values(), ids=UNFIT.keys())
def test_json_firestore_refuses_round_trips_as_json_text(value: Any) -> None:
    document = {"name": "t", "test_output": value}
    encoded = encode_document(PATH, document)
    assert encoded["name"] == "t"
    assert encoded["test_output"].startswith(STORED_JSON)
    assert firestore_refusal(encoded) is None
    assert decode_document(encoded) == document


@pytest.mark.parametrize("value", UNFIT.values(), ids=UNFIT.keys())
def test_the_store_model_refuses_each_shape_unencoded(value: Any) -> None:
    assert firestore_refusal({"test_output": value}) is not None


def test_json_firestore_holds_is_stored_as_it_is() -> None:
    document = {
        "test_output": {"a.b": [1, {"c": None}], "`q`": nested(19), "__x": -(2**63)},
        "config": {"k" * 1400: 1},
    }
    assert encode_document(PATH, document) == document


def test_documents_stored_before_the_encoding_read_unchanged() -> None:
    old = {"test_input": {"type": "track"}, "status": "active", "version": 3}
    assert decode_document(old) is old


def test_a_field_with_more_values_than_firestore_indexes_is_kept_as_json() -> None:
    many = {f"k{i}": i for i in range(25_000)}
    encoded = encode_document(PATH, {"test_input": many, "name": "t"})
    assert encoded["test_input"].startswith(STORED_JSON)
    assert encoded["name"] == "t"
    assert decode_document(encoded)["test_input"] == many


def test_a_document_over_one_mebibyte_is_413_naming_its_largest_field() -> None:
    document = {"test_input": {"a": "x" * 600_000}, "test_output": "y" * 600_000}
    with pytest.raises(DocumentTooLarge) as refused:
        encode_document(PATH, document)
    assert isinstance(refused.value, PayloadTooLarge) and refused.value.status == 413
    assert refused.value.field == "test_input"
    assert "1 MiB" in refused.value.message


def test_a_field_kept_as_json_text_is_named_as_the_client_sent_it() -> None:
    with pytest.raises(DocumentTooLarge) as refused:
        encode_document(PATH, {"schema_definition_json": "x" * MAX_DOCUMENT_BYTES})
    assert refused.value.field == "schema_definition"


def test_document_size_follows_firestores_rules() -> None:
    # Name: "a" (2) + "b" (2) + 16; fields: "s" 2 + "xy" 3, "n" 2 + 8, "m" 2 + "k" 2 + null 1,
    # "l" 2 + true 1 + 1.5 8; and 32.
    document = {"s": "xy", "n": 7, "m": {"k": None}, "l": [True, 1.5]}
    assert document_size("a/b", document) == 20 + 5 + 10 + 5 + 11 + 32


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("0b7f5c1e-3a7b-4c59-9c1e-2d6c1b8f4f10", True),
        ("___", True),  # too short to be of the reserved form
        ("k" * 1500, True),
        ("é" * 750, True),
        ("", False),
        (".", False),
        ("..", False),
        ("a/b", False),
        ("__main__", False),
        ("____", False),
        ("k" * 1501, False),
        ("é" * 751, False),
        ("\ud800", False),
    ],
)
def test_document_ids_follow_firestores_rules(text: str, valid: bool) -> None:
    assert ids.is_document_id(text) is valid


def test_a_long_query_value_matches_as_firestore_would_compare_it() -> None:
    long = "k" * 2000
    prefix = "k" * 1499
    assert query_condition("==", long) is None
    assert query_condition("in", [long]) is None
    assert query_condition("in", [long, "a"]) == ("in", ["a"])
    assert query_condition("<", long) == ("<=", prefix)
    assert query_condition(">=", long) == (">", prefix)
    assert query_condition("==", "short") == ("==", "short")
    # The rewritten bound keeps every shorter stored value on the same side.
    for stored in ("k" * 10, "k" * 1499, "j", "l"):
        assert (stored <= long) is (stored <= prefix)
        assert (stored >= long) is (stored > prefix)


# --- the in-memory store: the adapter's behaviour over a model of Firestore --------------------


def test_the_store_keeps_what_firestore_refuses_and_gives_it_back() -> None:
    store = InMemoryConfigStore()
    document = {"test_output": {"": [None, True]}, "test_input": [[1]]}
    store.commit([Write("set", PATH, document)])
    assert store.documents[PATH]["test_output"].startswith(STORED_JSON)
    assert store.get(PATH) == document
    assert store.list_documents("workspaces/w/transformations") == [document]
    assert store.get_many([PATH]) == {PATH: document}


@pytest.mark.parametrize(
    "path",
    [
        "workspaces/w/event_sources/__main__",
        "workspaces/w/event_sources/",
        "workspaces/w/event_sources/.",
        "workspaces/w/event_sources/..",
        "workspaces/w/event_sources/a/b",
        "workspaces//event_sources/a",
        "workspaces/w/event_sources/" + "k" * 1501,
    ],
)
def test_a_path_no_document_can_have_is_not_found_and_cannot_be_written(path: str) -> None:
    store = InMemoryConfigStore()
    assert store.get(path) is None
    assert store.get_many([path]) == {path: None}
    with pytest.raises(DocumentPathInvalid):
        store.commit([Write("set", path, {"a": 1})])
    assert store.documents == {}


def test_a_collection_no_document_can_be_in_lists_nothing() -> None:
    store = InMemoryConfigStore()
    store.commit([Write("set", "c/__x", {"a": 1})])
    assert store.list_documents("c/__x__/d") == []
    assert store.query("c/../d", [Filter("a", "==", 1)]) == []


def test_an_update_that_grows_a_document_past_one_mebibyte_is_refused_as_firestore_does() -> None:
    store = InMemoryConfigStore()
    store.commit([Write("set", PATH, {"a": "x" * 600_000})])
    with pytest.raises(StoreRefused):
        store.commit([Write("update", PATH, {"b": "y" * 600_000})])
    assert store.get(PATH) == {"a": "x" * 600_000}


def test_a_field_name_firestore_refuses_is_refused_as_firestore_does() -> None:
    # Field names of Streams' own documents are chosen in code: one Firestore refuses is a bug
    # the store must show, not hide.
    store = InMemoryConfigStore()
    with pytest.raises(StoreRefused):
        store.commit([Write("set", "c/d", {"__reserved__": 1})])
    assert store.documents == {}


def test_a_query_on_a_value_too_long_to_index_matches_nothing() -> None:
    store = InMemoryConfigStore()
    store.commit([Write("set", "c/d", {"id": "x"})])
    assert store.query("c", [Filter("id", "==", "x" * 5000)]) == []
    assert store.query("c", [Filter("id", "<=", "x" * 5000)]) == [{"id": "x"}]
