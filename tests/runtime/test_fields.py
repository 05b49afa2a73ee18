"""Field types compare their storage correctly (what the autodetector relies on)."""

from __future__ import annotations

import copy

from formwork.runtime.definitions import FieldDef
from formwork.runtime.fields import get_field_type


def field(kind, **options):
    return FieldDef("f", get_field_type(kind), {"x-formwork": {"type": kind, **options}})


def test_unchanged_computed_money_is_same():
    old = field("computed", result="money", expression="a * b")
    assert old.kind.compare_storage(old, copy.deepcopy(old)) == "same"


def test_decimal_to_money_narrows_the_scale():
    assert field("decimal").kind.compare_storage(field("decimal"), field("money")) == "narrow"
    wider = field("decimal", precision=18, scale=6)
    assert field("decimal").kind.compare_storage(field("decimal"), wider) == "narrow"
    small = field("money", precision=16, scale=2)
    assert small.kind.compare_storage(small, field("decimal")) == "widen"


def test_reference_written_with_or_without_pack_is_the_same_target():
    short, full = field("reference", entity="project"), field("reference", entity="sample.project")
    assert short.kind.compare_storage(short, full) == "same"
    other = field("reference", entity="contract")
    assert short.kind.compare_storage(short, other) == "narrow"


def test_string_widening_and_narrowing():
    short = FieldDef("f", get_field_type("string"), {"maxLength": 20, "x-formwork": {}})
    long = FieldDef("f", get_field_type("string"), {"maxLength": 200, "x-formwork": {}})
    assert short.kind.compare_storage(short, long) == "widen"
    assert long.kind.compare_storage(long, short) == "narrow"
    assert short.kind.compare_storage(short, field("text")) == "widen"
