"""docs/DESTINATIONS.md describes every destination type as its module declares it."""

from __future__ import annotations

import re
from pathlib import Path

from shared.destinations import CONNECTORS
from shared.destinations.deletion import UserDeletion

DOC = (Path(__file__).resolve().parents[2] / "docs" / "DESTINATIONS.md").read_text()
ROW = re.compile(r"^\| \[`(?P<type>[a-z0-9]+)`\]\(#(?P=type)\) \| .+$", re.M)


def row_of(type_: str) -> list[str]:
    """The cells of the type's row in the types table."""
    [line] = [m.group(0) for m in ROW.finditer(DOC) if m.group("type") == type_]
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_the_types_table_lists_every_type_as_its_module_declares_it() -> None:
    assert [m.group("type") for m in ROW.finditer(DOC)] == list(CONNECTORS)
    for type_, connector in CONNECTORS.items():
        about = connector.about
        _, _, calls, batch, rate, deletion = row_of(type_)
        assert calls == ", ".join(about.event_types), type_
        parts = f"{about.batching.max_parts:,}"
        assert batch.split(" / ")[0] == parts, type_
        if about.batching.max_bytes is not None:
            assert batch.endswith(f" / {about.batching.max_bytes:,} B"), type_
        limit = about.rate_limit
        assert rate == ("—" if limit is None else f"{limit.requests:,} / {limit.per_seconds:g} s")
        assert deletion == ("API" if isinstance(connector, UserDeletion) else "manual"), type_


def test_every_type_has_its_section_where_its_docs_link_points() -> None:
    for type_, connector in CONNECTORS.items():
        assert f'<a id="{type_}"></a>' in DOC, type_
        assert f"(`{type_}`)" in DOC, type_
        docs = connector.about.docs_url
        assert docs.startswith("https://") or docs == f"docs/DESTINATIONS.md#{type_}", type_
