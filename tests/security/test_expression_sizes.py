"""Expression functions size their result before building it. `join` of 100,000 values of
100,000 characters once built 10 GB over 48 s before its length check ran; each function
that builds text or a list now adds up sizes first and stops at the limit.

Memory is measured with tracemalloc: a refusal must not allocate what it refuses."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

from formwork.runtime.expression_functions import MAX_LENGTH, decimal_text_length
from formwork.runtime.expressions import ExpressionError, evaluate, run_script

LONG = "x" * MAX_LENGTH
CEILING = 20 * 1024 * 1024  # far below what any of these would build


@pytest.fixture
def peak() -> Iterator[Any]:
    """Return a function giving the peak of memory allocated since the test began."""
    tracemalloc.start()
    yield lambda: tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()


@pytest.mark.parametrize(
    ("expression", "names"),
    [
        ("join(values, ',')", {"values": [LONG] * 2_000}),
        ("join(['x' * 100000] * 100000, ',')", {}),
        ("join([1e99999] * 100, '')", {}),
        ("join(values, sep)", {"values": ["a"] * 50_000, "sep": "--"}),
        ("concat(a, a, a)", {"a": LONG}),
        ("concat(1e999999)", {}),
        ("str(1e999999)", {}),
        ("int(1e999999)", {}),
        ("upper(a + 'b')", {"a": LONG}),
        ("'ab' * 100000", {}),
        ("[1, 2] * 60000", {}),
        ("a + a", {"a": LONG}),
    ],
)
def test_a_result_over_the_limit_is_refused_before_it_is_built(expression, names, peak):
    before = peak()
    with pytest.raises(ExpressionError, match="too long|longer than|digits"):
        evaluate(expression, names)
    assert peak() - before < CEILING


def test_joins_and_concats_within_the_limit_still_work():
    assert len(evaluate("join(values, ',')", {"values": ["ab"] * 33_333})) == 33_333 * 3 - 1
    assert evaluate("concat('a', 1.50, null, 2)") == "a1.502"
    assert evaluate("str(1e3)") == "1000"
    assert evaluate("int(12.9)") == 12


def test_a_script_cannot_grow_text_past_the_limit_line_by_line():
    script = "\n".join(["a = 'x' * 60000", "b = concat(a, a)"])
    with pytest.raises(ExpressionError, match="line 2"):
        run_script(script, {})


def test_decimal_text_length_bounds_the_written_number():
    from decimal import Decimal

    for text in ("0", "-1.25", "1E+5", "1E-7", "123456789.000001"):
        value = Decimal(text)
        assert len(format(value, "f")) <= decimal_text_length(value)
