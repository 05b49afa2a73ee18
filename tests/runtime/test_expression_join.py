"""The join() function: list values as one text (e.g. a task's predecessor ids for a Gantt)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from formwork.runtime.expressions import ExpressionError, evaluate


@pytest.mark.parametrize(
    ("expression", "names", "expected"),
    [
        (
            "join([l.predecessor for l in links], ',')",
            {"links": [{"predecessor": 3}, {"predecessor": 11}]},
            "3,11",
        ),
        ("join(links, ',')", {"links": []}, ""),
        ("join(values)", {"values": None}, ""),
        (
            "join(values, ' / ')",
            {"values": ["a", None, Decimal("1.50"), date(2026, 1, 2)]},
            "a / 1.50 / 2026-01-02",
        ),
    ],
)
def test_join_turns_a_list_into_text(expression: str, names: dict, expected: str) -> None:
    assert evaluate(expression, names) == expected


def test_join_refuses_a_separator_that_is_not_text_and_values_that_are_lists() -> None:
    with pytest.raises(ExpressionError, match="join"):
        evaluate("join(['a'], 1)", {})
    with pytest.raises(ExpressionError, match="join"):
        evaluate("join([[1]], ',')", {})
