"""`commit_in_chunks`: long write lists go to the store in order, at most 400 writes a commit."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from shared.ports import WRITES_PER_COMMIT, AlreadyExists, Write, commit_in_chunks
from tests.fakes import InMemoryConfigStore


class RecordingStore(InMemoryConfigStore):
    """Keeps each commit's writes, in the order they were committed."""

    def __init__(self) -> None:
        super().__init__()
        self.commits: list[list[Write]] = []

    def commit(self, writes: Iterable[Write]) -> None:
        batch = list(writes)
        self.commits.append(batch)
        super().commit(batch)


def test_chunks_stay_under_firestores_limit() -> None:
    assert WRITES_PER_COMMIT == 400 < 500


@pytest.mark.parametrize(
    ("count", "sizes"),
    [(0, []), (1, [1]), (400, [400]), (401, [400, 1]), (801, [400, 400, 1])],
)
def test_commits_every_write_in_order(count: int, sizes: list[int]) -> None:
    store = RecordingStore()
    writes = [Write("set", f"docs/{i:04d}", {"n": i}) for i in range(count)]
    commit_in_chunks(store, writes)
    assert [len(batch) for batch in store.commits] == sizes
    assert [w for batch in store.commits for w in batch] == writes
    assert store.documents == {f"docs/{i:04d}": {"n": i} for i in range(count)}


def test_a_failing_chunk_keeps_the_chunks_before_it() -> None:
    store = RecordingStore()
    store.documents["docs/0500"] = {"n": -1}
    writes = [Write("create", f"docs/{i:04d}", {"n": i}) for i in range(801)]
    with pytest.raises(AlreadyExists, match="docs/0500"):
        commit_in_chunks(store, writes)
    # The first chunk is committed, the second refused whole, the third never sent.
    assert [len(batch) for batch in store.commits] == [400, 400]
    assert "docs/0399" in store.documents and "docs/0400" not in store.documents
