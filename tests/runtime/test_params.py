"""Whole numbers and query bounds read one way: ASCII digits within 64 bits, and every list a
query takes bounded before SQL is built, each problem naming its parameter."""

from __future__ import annotations

import pytest

from formwork.runtime.errors import BadQuery
from formwork.runtime.params import (
    BOUNDS,
    MAX_SQL_INT,
    check_aggregate,
    check_query,
    check_search,
    parse_id,
    whole_number,
)


@pytest.mark.parametrize(
    "text", ["²", "١٢", "１２", "1.0", "1e3", "", " ", "--1", "0x10", "null", "9" * 20, "1_000"]
)
def test_only_ascii_digits_within_64_bits_are_whole_numbers(text):
    assert whole_number(text) is None


def test_whole_numbers_respect_their_range():
    assert whole_number(" 42 ") == 42
    assert whole_number("-7") == -7
    assert whole_number(str(MAX_SQL_INT)) == MAX_SQL_INT
    assert whole_number(str(MAX_SQL_INT + 1)) is None
    assert whole_number("0", 1) is None
    assert parse_id("0") is None and parse_id("-1") is None and parse_id("5") == 5
    assert parse_id(None) is None


def _pointers(call) -> dict[str, str]:
    with pytest.raises(BadQuery) as caught:
        call()
    return {e.pointer: e.code for e in caught.value.errors}


def test_every_list_of_a_query_is_bounded_and_named():
    params = {
        "sort": [",".join(["code"] * (BOUNDS.sort_terms + 1))],
        "q": ["x" * (BOUNDS.search_length + 1)],
        "code__in": [",".join(["a"] * (BOUNDS.in_values + 1))],
        "name__contains": ["y" * (BOUNDS.value_length + 1)],
    }
    assert _pointers(lambda: check_query(params)) == {
        "sort": "too_many_terms",
        "q": "too_long_parameter",
        "code__in": "too_many_terms",
        "name__contains": "too_long_parameter",
    }


def test_too_many_filters_are_refused_counting_repeats():
    params = {"code__ne": [str(n) for n in range(BOUNDS.filters + 1)]}
    assert _pointers(lambda: check_query(params)) == {"filters": "too_many_terms"}


def test_a_query_within_the_bounds_passes():
    check_query({"sort": ["-a,b,c,d,e"], "q": ["x" * BOUNDS.search_length], "a__in": ["1,2"]})
    check_search("x" * BOUNDS.search_length)
    with pytest.raises(BadQuery):
        check_search("x" * (BOUNDS.search_length + 1))


def test_aggregates_bound_groups_and_measures():
    many = ",".join(f"f{n}" for n in range(BOUNDS.groups + 1))
    measures = {name: ["a,b,c,d"] for name in ("sum", "avg", "min", "max")}
    found = _pointers(lambda: check_aggregate({"group": [many], **measures}))
    assert found == {"group": "too_many_terms", "sum": "too_many_terms"}
    check_aggregate({"group": ["a,b:month"], "sum": ["x"], "limit": ["5"], "a__eq": ["1"]})
