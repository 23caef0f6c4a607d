"""Inputs that a real backend refuses and an in-memory fake may not: Firestore's reserved and
path-like document ids, ids beyond its 1,500-byte limit, empty and odd object keys (field paths),
unpaired surrogates, numbers beyond int64 and double, and the HTTP methods no route declares.

The fuzzer's `hostile` mode (fuzz.py) draws a positive schemathesis case of an operation and
replaces one or two of its parts with these: a path parameter, every query parameter (blanked)
or one of them, every string of the body (blanked), one value of the body, or a new key at any
depth of the body. Hypothesis draws every choice, so a run is repeatable from its seed.
"""

from __future__ import annotations

import copy
import random
import string
from collections.abc import Iterator
from typing import Any

from hypothesis import strategies as st
from schemathesis.core import NotSet

# --- ids and path segments --------------------------------------------------------------------

# Firestore reserves ids matching __.*__ and refuses "." and "..", a "/" (a path separator in a
# document path) and ids over 1,500 bytes: each once reached the emulator and answered 500.
RESERVED_IDS = ("__main__", "__name__", "__.__", "____")
PATH_LIKE_IDS = (".", "..", "a/b", "a%2Fb", "%2F", "..%2F..", "a%2F..%2F..%2Fb", "%2E%2E")
LONG_IDS = ("x" * 1600, "\u00e9" * 800)  # 1,600 bytes, ASCII and two-byte UTF-8
# Sent percent-encoded: a raw NUL or surrogate cannot be put in a URL by the HTTP client, and
# the server decodes these to a NUL and to the bytes of an unpaired surrogate.
ENCODED_CONTROL_IDS = ("a%00b", "%ED%A0%80", "%FF")
hostile_ids = st.one_of(
    st.sampled_from(("", *RESERVED_IDS, *PATH_LIKE_IDS, *LONG_IDS, *ENCODED_CONTROL_IDS)),
    st.from_regex(r"\A__[A-Za-z0-9_.]{1,12}__\Z"),
)

# --- strings, numbers and keys ----------------------------------------------------------------

UNPAIRED_SURROGATES = ("\ud800", "a\udc00b", "\udbff", "x\udfff")
NUMERIC_STRINGS = ("1e999", "-1e999", "NaN", "Infinity", "99999999999999999999999", "-0")
# What a query string can carry: no raw NUL or surrogate (the client cannot encode them).
wire_strings = st.sampled_from(
    ("", " ", "__main__", ".", "..", "a/b", "%2F", "x" * 1600, "\u00e9" * 800, *NUMERIC_STRINGS)
)
hostile_strings = st.one_of(wire_strings, st.sampled_from(("\x00", "a\x00b", *UNPAIRED_SURROGATES)))
# Beyond int64 (Firestore's and BigQuery's integers) and at the edges of a double; JSON has no
# literal for infinity or NaN (the client refuses to send them), so their strings stand in.
HUGE_NUMBERS = (
    10**400,
    -(10**400),
    2**63,
    -(2**63) - 1,
    2**64,
    1.7976931348623157e308,
    -1.7976931348623157e308,
    5e-324,
    -0.0,
)
huge_numbers = st.sampled_from(HUGE_NUMBERS)
hostile_values = st.one_of(hostile_strings, huge_numbers)
# Keys: Firestore's field paths split on "." and quote with backticks, reserve __.*__, refuse an
# empty name; "/" and NUL are path and C-string terminators elsewhere.
ODD_KEYS = ("", "__x__", "__name__", "a.b", ".", "..", "a/b", "`", "`a`", "a`b", "a\x00b", "\x00")
odd_keys = st.one_of(
    st.sampled_from(ODD_KEYS + UNPAIRED_SURROGATES + ("k" * 1600,)),
    st.from_regex(r"\A__[A-Za-z0-9_.]{1,12}__\Z"),
)
# Where user JSON is stored as sent (event properties and traits, a destination's headers, a
# contract's schema): an odd key is put there too when the body has no such object yet.
USER_JSON_FIELDS = ("properties", "traits", "context", "config", "headers", "schema_definition")
json_leaves = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=8), hostile_values
)

# --- methods ----------------------------------------------------------------------------------

# Standard and WebDAV methods; CONNECT travels over HTTP/1.1 like any other request line.
METHODS = (
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "PATCH",
    "DELETE",
    "OPTIONS",
    "TRACE",
    "CONNECT",
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
)


def token_methods(seed: int, count: int = 2) -> list[str]:
    """Random method tokens (RFC 9110 allows any token): the same ones for the same seed."""
    rng = random.Random(seed)
    return [
        "".join(rng.choices(string.ascii_uppercase + string.digits + "-_", k=rng.randint(3, 12)))
        for _ in range(count)
    ]


# --- hostile cases ----------------------------------------------------------------------------


def can_be_hostile(operation: Any) -> bool:
    """Whether the operation takes anything to make hostile: a path parameter, a query, a body."""
    return bool(list(operation.path_parameters) or list(operation.query) or list(operation.body))


@st.composite
def hostile_cases(draw: st.DrawFn, base: st.SearchStrategy[Any]) -> Any:
    """A case of `base` with one or two of its parts made hostile (see the module's doc)."""
    case = draw(base)
    operation = case.operation
    path_parameters = dict(case.path_parameters or {})
    query = dict(case.query or {})
    body = case.body if isinstance(case.body, NotSet) else copy.deepcopy(case.body)
    query_names = [parameter.name for parameter in operation.query]
    has_body = bool(list(operation.body))
    if has_body and isinstance(body, NotSet):
        body = {}
    applicable = [
        mutation
        for mutation, possible in (
            ("path", bool(path_parameters)),
            ("blank_query", bool(query_names)),
            ("query", bool(query_names)),
            ("blank_body", has_body),
            ("body_value", has_body),
            ("body_key", has_body and isinstance(body, (dict, list))),
        )
        if possible
    ]
    if not applicable:
        return case  # nothing to make hostile (no parameter, no body): the plain case
    chosen = draw(st.lists(st.sampled_from(applicable), min_size=1, max_size=2, unique=True))
    if "path" in chosen:
        name = draw(st.sampled_from(sorted(path_parameters)))
        path_parameters[name] = draw(hostile_ids)
    if "blank_query" in chosen:
        # The empty `?sourceId=` that once reached a Firestore query as an empty field value.
        query = dict.fromkeys(query_names, "")
    if "query" in chosen:
        name = draw(st.sampled_from(query_names))
        query[name] = draw(st.one_of(wire_strings, huge_numbers.map(str)))
    if "blank_body" in chosen:
        # `{"sourceId": "", "type": ""}`: every string of the body empty at once.
        body = _blank(body) if isinstance(body, (dict, list)) else ""
    if "body_value" in chosen:
        body = _replace_one(draw, body)
    if "body_key" in chosen and isinstance(body, (dict, list)):
        body = _add_key(draw, body)
    parts: dict[str, Any] = {"path_parameters": path_parameters, "query": query}
    if not isinstance(body, NotSet):
        parts.update(body=body, media_type=case.media_type or "application/json")
    return operation.Case(headers=dict(case.headers or {}), **parts)


def _blank(value: Any) -> Any:
    if isinstance(value, str):
        return ""
    if isinstance(value, dict):
        return {key: _blank(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_blank(item) for item in value]
    return value


def _nodes(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Every place in a JSON value, outermost first, with the keys and indexes leading there."""
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _nodes(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nodes(item, (*path, index))


def _replace_one(draw: st.DrawFn, body: Any) -> Any:
    """The body with one of its values (or the whole body) replaced by a hostile value."""
    path, _ = draw(st.sampled_from(list(_nodes(body))))
    value = draw(hostile_values)
    if not path:
        return value
    parent = body
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return body


def _add_key(draw: st.DrawFn, body: Any) -> Any:
    """The body with an odd key added to one of its objects (a new one in a list), or to a new
    object under a user-JSON field name."""
    containers: list[Any] = [node for _, node in _nodes(body) if isinstance(node, (dict, list))]
    if isinstance(body, dict):
        containers += [field for field in USER_JSON_FIELDS if not isinstance(body.get(field), dict)]
    container = draw(st.sampled_from(containers))
    if isinstance(container, str):
        body[container] = {}
        container = body[container]
    entry = {draw(odd_keys): draw(st.one_of(json_leaves, st.dictionaries(odd_keys, json_leaves)))}
    if isinstance(container, dict):
        container.update(entry)
    else:
        container.append(entry)
    return body
