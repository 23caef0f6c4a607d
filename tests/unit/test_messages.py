"""The validation messages API users read: plain words, naming the field, never the value.

Golden cases live in tests/golden/messages/<case>.json: an operation of the route table, its
query and body, the pydantic error types the request must raise (`covers`) and the whole error
answer; adding a case means adding a file. Error types no route can raise today (unions, URLs,
floats, ...) are checked on small models below, and every type `MESSAGES` translates must be
covered by one or the other.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal
from unittest import mock

import pytest
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    FutureDatetime,
    HttpUrl,
    ValidationError,
    field_validator,
)
from pydantic_core import ErrorDetails

from shared.api.routes import ROUTES
from shared.domain import validation_messages as messages
from shared.domain.validation_messages import MESSAGES, plain_errors
from tests.fakes import FakeServices
from tests.reliability.harness import GatewayApp

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "messages"
CASES = sorted(GOLDEN.glob("*.json"))
# Any id is fine in a path: a body or query is validated before the resource is looked up.
SOME_ID = "00000000-0000-4000-8000-000000000000"


@contextmanager
def error_types() -> Iterator[set[str]]:
    """The pydantic error types translated while inside."""
    seen: set[str] = set()
    walk = messages._walk

    def recording(model: type[BaseModel], detail: ErrorDetails, name: str | None) -> Any:
        seen.add(detail["type"])
        return walk(model, detail, name)

    with mock.patch.object(messages, "_walk", recording):
        yield seen


def run_case(services: FakeServices, case: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """A golden case's request through the gateway: its error answer and the error types."""
    workspace = services.workspaces.create("Acme")
    token, _ = services.workspaces.create_token(workspace.id, "admin")
    route = next(r for r in ROUTES if r.operation_id == case["operation"])
    path = route.path
    for name in route.params:
        path = path.replace("{" + name + "}", workspace.id if name == "workspace_id" else SOME_ID)
    with error_types() as seen:
        response = (
            GatewayApp()
            .client()
            .open(
                path,
                method=route.method,
                query_string=case.get("query", {}),
                json=case.get("body"),
                headers={"Authorization": f"Bearer {token}"},
            )
        )
    return response.get_json(), seen


def load(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


@pytest.mark.parametrize("path", CASES, ids=[path.stem for path in CASES])
def test_golden_message(services: FakeServices, path: Path) -> None:
    case = load(path)
    answer, seen = run_case(services, case)
    assert answer == case["answer"]
    assert seen == set(case["covers"]), "the case no longer raises the error types it covers"
    assert answer["field"] is None or answer["message"].startswith(answer["field"] + ": ")


def test_golden_cases_reach_every_kind_of_resource() -> None:
    operations = {load(path)["operation"] for path in CASES}
    for kind in (
        "EventSource",
        "Destination",
        "EventContract",
        "Transformation",
        "ForwardingRule",
        "PrivacySettings",
        "ApiToken",
    ):
        assert any(kind in operation for operation in operations), kind


# --- error types no route raises today, on small models ---------------------------------------


class Kind(BaseModel):
    kind: Literal["a"]
    size: int


class Other(BaseModel):
    kind: Literal["b"]
    name: str


class Colour(Enum):
    RED = "red"
    GREEN = "green"


class Shapes(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ratio: float = 1.0
    pair: tuple[int, int] = (1, 2)
    tags: set[str] = set()
    above: int = Field(1, gt=0)
    below: int = Field(1, lt=10)
    even: int = Field(2, multiple_of=2)
    short: str = Field("ab", min_length=2)
    site: HttpUrl | None = None
    when: AwareDatetime | None = None
    later: FutureDatetime | None = None
    either: int | list[str] = 0
    shape: Annotated[Kind | Other, Field(discriminator="kind")] | None = None
    shapes: list[Kind | Other] = []
    named: dict[Annotated[str, Field(pattern="^[a-z]+$")], int] = {}
    checked: int = 0
    colour: Colour = Colour.RED

    @field_validator("checked")
    @classmethod
    def _checked(cls, value: int) -> int:
        if value < 0:
            raise ValueError("must not be negative")
        return value


UNIT_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("float_parsing", {"ratio": "half"}, "ratio: must be a number"),
    ("float_type", {"ratio": [1]}, "ratio: must be a number"),
    ("tuple_type", {"pair": 5}, "pair: must be a list (a JSON array)"),
    ("set_type", {"tags": 5}, "tags: must be a list (a JSON array)"),
    ("greater_than", {"above": 0}, "above: must be greater than 0"),
    ("less_than", {"below": 10}, "below: must be less than 10"),
    ("multiple_of", {"even": 3}, "even: must be a multiple of 2"),
    ("string_too_short", {"short": "a"}, "short: must be at least 2 characters"),
    ("enum", {"colour": "blue"}, "colour: must be one of: red, green"),
    ("url_type", {"site": 5}, "site: must be a URL such as https://example.com/path"),
    (
        "url_too_long",
        {"site": "https://example.com/" + "a" * 2100},
        "site: must be at most 2083 characters",
    ),
    ("url_parsing", {"site": "not a url"}, "site: must be a URL such as https://example.com/path"),
    (
        "url_scheme",
        {"site": "ftp://example.com"},
        "site: must be a URL with the scheme http or https",
    ),
    (
        "datetime_parsing",
        {"when": 10**20},  # as a Unix time, far beyond the year 9999
        "when: must be a date-time with a time zone, such as 2024-01-15T15:00:00Z",
    ),
    ("datetime_future", {"later": "2001-01-01T00:00:00Z"}, "later: must be in the future"),
    ("union_tag_invalid", {"shape": {"kind": "c"}}, "shape: must have a kind of: a, b"),
    ("union_tag_not_found", {"shape": {}}, "shape: must have a kind"),
    ("value_error", {"checked": -1}, "checked: must not be negative"),
]


@pytest.mark.parametrize(
    ("kind", "data", "expected"), UNIT_CASES, ids=[kind for kind, _, _ in UNIT_CASES]
)
def test_message_of_each_error_type(kind: str, data: dict[str, Any], expected: str) -> None:
    with error_types() as seen:
        with pytest.raises(ValidationError) as caught:
            Shapes.model_validate(data)
        plain = [str(error) for error in plain_errors(caught.value, Shapes)]
    assert kind in seen
    assert plain == [expected]


def test_every_translated_type_is_covered() -> None:
    covered = {kind for path in CASES for kind in load(path)["covers"]}
    covered |= {kind for kind, _, _ in UNIT_CASES}
    assert set(MESSAGES) | {"extra_forbidden"} <= covered, set(MESSAGES) - covered


def _plain(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        Shapes.model_validate(data)
    return [str(error) for error in plain_errors(caught.value, Shapes)]


def test_a_union_says_what_the_value_could_have_been() -> None:
    assert _plain({"either": {}}) == ["either: must be a whole number or a list (a JSON array)"]


def test_a_union_reports_the_alternative_the_value_got_into() -> None:
    # pydantic reports both alternatives; the list was meant, and its item is at fault.
    assert _plain({"either": ["a", 5]}) == ["either.1: must be a string"]
    # An item that is a Kind but for its size, not an Other with a wrong kind and no name.
    assert _plain({"shapes": [{"kind": "a", "size": "big"}]}) == [
        "shapes.0.size: must be a whole number"
    ]


def test_a_dict_names_its_key() -> None:
    assert _plain({"named": {"Upper": 1, "ok": "x"}}) == [
        "named: the key 'Upper' must match the pattern ^[a-z]+$",
        "named.ok: must be a whole number",
    ]


def test_an_extra_field_names_its_model_and_the_known_fields() -> None:
    assert _plain({"shapes": [{"kind": "a", "size": 1}], "flavour": "lime"}) == [
        "flavour: is not a field of Shapes; known fields: ratio, pair, tags, above, below, even, "
        "short, site, when, later, either, shape, shapes, named, checked, colour"
    ]


def test_the_value_sent_is_never_repeated() -> None:
    secret = "hunter2-but-longer"
    with pytest.raises(ValidationError) as caught:
        Shapes.model_validate({"short": 5, "site": secret, "when": secret + "T"})
    assert secret not in "; ".join(str(e) for e in plain_errors(caught.value, Shapes))
