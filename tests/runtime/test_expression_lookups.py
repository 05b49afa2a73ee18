"""sum_of / count_of: entity rules and computed fields that add up or count other records,
answered by the save in its transaction (no row rules), refused anywhere else."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from formwork.runtime.clock import session_clock
from formwork.runtime.expressions import ExpressionError, check, evaluate
from formwork.runtime.records import RecordService
from formwork.runtime.registry import load_registry
from formwork.runtime.save_context import SaveContext
from formwork.runtime.security import system_principal

# Outcomes depend on the clock's date: `make test` runs these again a year ahead.
pytestmark = pytest.mark.dates


@pytest.fixture
def lookups(sample, session):
    records = RecordService(session, load_registry(session), system_principal())
    for code, value, status, day in (
        ("A1", "100.10", "active", "2026-01-05"), ("A2", "200.20", "active", "2026-02-01"),
        ("C1", "999.00", "closed", "2026-03-01"), ("N1", None, "active", None),
    ):  # fmt: skip
        records.create(
            "sample.project",
            {"code": code, "name": code, "contract_value": value, "status": status,
             "start_date": day},
        )  # fmt: skip
    registry = load_registry(session)
    moment = session_clock(session).now()
    ctx = SaveContext(session, registry, registry.entity("sample.project"), moment)
    return ctx.lookups()


def test_sum_and_count_with_filters(lookups):
    sum_of, count_of = lookups["sum_of"], lookups["count_of"]
    assert sum_of("sample.project", "contract_value", {"status": "active"}) == Decimal("300.30")
    assert sum_of("sample.project", "contract_value") == Decimal("1299.30")
    assert sum_of("sample.project", "contract_value", {"status": "planned"}) == Decimal(0)
    assert count_of("sample.project", {"status__in": ["active", "closed"]}) == 4
    assert count_of("sample.project", {"start_date__gte": dt.date(2026, 2, 1)}) == 2
    assert count_of("sample.project", {"contract_value": None}) == 1  # equal to null: isnull
    assert count_of("sample.project", {"contract_value__ne": None}) == 3


def test_bad_lookups_say_what_is_wrong(lookups):
    with pytest.raises(ValueError, match="unknown entity 'sample.nope'"):
        lookups["count_of"]("sample.nope")
    with pytest.raises(ValueError, match="unknown_filter_field"):
        lookups["count_of"]("sample.project", {"colour": "red"})
    with pytest.raises(ValueError, match="cannot sum"):
        lookups["sum_of"]("sample.project", "name")
    with pytest.raises(TypeError, match="filters must be a record"):
        lookups["count_of"]("sample.project", ["status"])


def test_outside_a_save_they_refuse_to_run():
    check("sum_of('sample.project', 'contract_value', {'status': 'active'}) > 0")
    with pytest.raises(ExpressionError, match="sum_of reads the database"):
        evaluate("sum_of('sample.project', 'contract_value')")
    with pytest.raises(ValueError, match="not library functions"):
        evaluate("1", lookups={"system": lambda: 1})


def test_a_rule_can_use_them(lookups):
    names = {"project": 1}
    limit = "count_of('sample.project', {'status': 'active'}) < 3"
    assert evaluate(limit, names, lookups=lookups) is False
