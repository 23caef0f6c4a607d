"""The canonical event's type: mypy, with the project's settings and plugin, checks event keys."""

from __future__ import annotations

import re
import tomllib
import typing
from pathlib import Path

from mypy import api

from shared.domain.event import CanonicalEvent, EventKey
from shared.domain.events import CANONICAL_FIELDS

ROOT = Path(__file__).resolve().parents[2]

# Each line ending in `# E: <text>` must get exactly that error; every other line none.
SNIPPET = """\
from shared.domain.event import CanonicalEvent, EventKey

def read(event: CanonicalEvent, key: str, known: EventKey) -> None:
    event["userId"]
    event.get("userId")
    event.get(known)
    reveal_type(event.get("userId"))  # N: Revealed type is "str | None"
    reveal_type(event["clockSkewMs"])  # N: Revealed type is "int | None"
    event["usrId"]  # E: TypedDict "CanonicalEvent" has no key "usrId"
    event.get("usrId")  # E: TypedDict "CanonicalEvent" has no key "usrId"
    event.get("messageID", "")  # E: TypedDict "CanonicalEvent" has no key "messageID"
    event.get(key)  # E: TypedDict key must be a string literal
    event[key]  # E: TypedDict key must be a string literal

def build() -> CanonicalEvent:
    return {"type": "track", "event": "Signed Up", "usrId": "u-1"}  # E: Extra key "usrId"
"""


def mypy_config(directory: Path) -> Path:
    """pyproject.toml's mypy settings as an ini file, minus `packages` (mypy refuses a program
    given on the command line beside them), with the plugin's path made absolute."""
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    settings.pop("packages")
    settings["plugins"] = [str(ROOT / plugin) for plugin in settings["plugins"]]
    settings["mypy_path"] = str(ROOT)
    lines = ["[mypy]"]
    for name, value in settings.items():
        text = ",".join(value) if isinstance(value, list) else str(value)
        lines.append(f"{name} = {text}")
    path = directory / "mypy.ini"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_mypy_reports_a_misspelled_event_key_however_it_is_read(tmp_path: Path) -> None:
    config = mypy_config(tmp_path)
    # No cache: nothing is written to the project's, which others may be using.
    stdout, stderr, _ = api.run(
        ["--config-file", str(config), "--cache-dir", "/dev/null", "-c", SNIPPET]
    )
    assert stderr == ""
    reported = {
        (int(line), kind, text)
        for line, kind, text in re.findall(r"^<string>:(\d+): (error|note): (.*)$", stdout, re.M)
    }
    for number, source in enumerate(SNIPPET.splitlines(), start=1):
        expected = re.search(r"# ([EN]): (.*)$", source)
        found = {(kind, text) for line, kind, text in reported if line == number}
        if expected is None:
            assert found == set(), (number, source, found)
            continue
        kind = "error" if expected[1] == "E" else "note"
        assert any(k == kind and t.startswith(expected[2]) for k, t in found), (number, found)


def test_event_key_names_exactly_the_canonical_fields_in_their_order() -> None:
    assert typing.get_args(EventKey) == CANONICAL_FIELDS
    assert tuple(CanonicalEvent.__annotations__) == CANONICAL_FIELDS
    assert CanonicalEvent.__required_keys__ == frozenset()
