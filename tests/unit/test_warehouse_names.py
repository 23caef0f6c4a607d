"""Warehouse names: Segment's snake_case, unique within a table, and which keys get columns."""

from __future__ import annotations

import re

import pytest

from shared.domain.warehouse_names import MAX_NAME_CHARS, addressable, snake_case, unique_names

BIGQUERY_NAME = re.compile(r"[a-z_][a-z0-9_]*")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Order Completed", "order_completed"),
        ("orderId", "order_id"),
        ("Order ID", "order_id"),
        ("order_id", "order_id"),
        ("HTMLTitle", "html_title"),
        ("getHTTPResponseCode", "get_http_response_code"),
        # A trailing acronym is one word: "userID" is user_id, as "Order ID" is order_id.
        ("userID", "user_id"),
        ("URL", "url"),
        ("ID", "id"),
        ("Prix net \u20ac", "prix_net"),
        ("Caf\u00e9 cr\u00e8me", "cafe_creme"),
        ("  order -- total!! ", "order_total"),
        ("order__id", "order_id"),
        ("_private", "private"),
        ("2fa", "_2fa"),
        ("3 Items Added", "_3_items_added"),
        ("checkout.step", "checkout_step"),
    ],
)
def test_snake_case_spells_names_as_segment_does(name: str, expected: str) -> None:
    assert snake_case(name) == expected


@pytest.mark.parametrize("name", ["\u20ac\u20ac", "___", "!!!", "", "\u65e5\u672c"])
def test_a_name_with_no_letters_left_is_an_underscore_and_a_stable_hash(name: str) -> None:
    spelled = snake_case(name)

    assert re.fullmatch(r"_[0-9a-f]{8}", spelled)
    assert snake_case(name) == spelled
    others = {snake_case(other) for other in ("\u20ac\u20ac", "___", "!!!", "", "\u65e5\u672c")}
    assert len(others) == 5  # each name its own hash


def test_a_long_name_is_cut_to_the_cap_without_a_trailing_underscore() -> None:
    assert snake_case("a" * 500) == "a" * MAX_NAME_CHARS
    cut_at_separator = "b" * (MAX_NAME_CHARS - 1) + " tail"
    assert snake_case(cut_at_separator) == "b" * (MAX_NAME_CHARS - 1)


@pytest.mark.parametrize(
    "name", ["Order Completed", "2fa", "\u20ac", "x" * 400, "9" * 400, "Prix net \u20ac", "a-b.c/d"]
)
def test_every_name_is_a_valid_lower_case_bigquery_name(name: str) -> None:
    spelled = snake_case(name)

    assert BIGQUERY_NAME.fullmatch(spelled)
    assert len(spelled) <= MAX_NAME_CHARS


def test_taken_names_win_and_keys_take_the_next_free_suffix_in_the_order_given() -> None:
    names = unique_names(["Order ID", "orderId", "order_id", "id", "ID"], taken=["id"])

    assert names == {
        "Order ID": "order_id",
        "orderId": "order_id_2",
        "order_id": "order_id_3",
        "id": "id_2",
        "ID": "id_3",
    }


def test_order_decides_who_keeps_the_plain_name() -> None:
    assert unique_names(["orderId", "Order ID"], taken=[]) == {
        "orderId": "order_id",
        "Order ID": "order_id_2",
    }
    assert unique_names(["Order ID", "orderId"], taken=[]) == {
        "Order ID": "order_id",
        "orderId": "order_id_2",
    }


def test_a_key_already_spelled_with_a_suffix_pushes_a_later_collision_further() -> None:
    assert unique_names(["a", "a_2", "A"], taken=[]) == {"a": "a", "a_2": "a_2", "A": "a_3"}


def test_taken_names_are_compared_case_insensitively() -> None:
    assert unique_names(["Pages", "pages", "tracks"], taken=["TRACKS", "pages"]) == {
        "Pages": "pages_2",
        "pages": "pages_3",
        "tracks": "tracks_2",
    }


def test_a_suffix_goes_after_the_cut_so_long_names_stay_distinct() -> None:
    long_a, long_b = "x" * 300 + "a", "x" * 300 + "b"

    names = unique_names([long_a, long_b], taken=[])

    assert names[long_a] == "x" * MAX_NAME_CHARS
    assert names[long_b] == "x" * MAX_NAME_CHARS + "_2"


def test_unique_names_are_all_distinct_and_never_taken() -> None:
    keys = [f"{prefix}{sep}id" for prefix in ("user", "User", "USER") for sep in ("", "_", " ")]
    taken = ["user_id", "user_id_2"]

    names = unique_names(keys, taken)

    assert len(set(names.values())) == len(keys)
    assert not set(names.values()) & set(taken)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("order_id", True),
        ("Prix net \u20ac", True),
        ("a.b", True),
        ("a`b", True),
        ("$weird [key]", True),
        ("", False),
        ("it's", False),
        ('say "hi"', False),
        ("back\\slash", False),
        ("new\nline", False),
        ("tab\there", False),
        ("nul\x00", False),
    ],
)
def test_addressable_keys_are_those_a_jsonpath_literal_can_name(key: str, expected: bool) -> None:
    assert addressable(key) is expected
