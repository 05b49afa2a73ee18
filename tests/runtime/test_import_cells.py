"""Spreadsheet cells to the JSON values fields take (formwork/runtime/imports/cells.py)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from formwork.runtime.imports.cells import CellContext, from_cell, importable


def _fd(registry, key, name):
    return registry.meta(key).entity.field_map[name]


def test_spreadsheet_cells_to_json_values(registry):
    ctx = CellContext(ZoneInfo("Asia/Shanghai"), {"project": {"P-1": 1}})
    cases = [
        ("sample.day_sheet", "headcount", 12.0, 12),
        ("sample.day_sheet", "headcount", "1,200", 1200),
        ("sample.day_sheet", "headcount", "²", "²"),  # passed on as text, refused by the save
        ("sample.day_sheet", "rate", 0.1, "0.1"),
        ("sample.day_sheet", "work_date", dt.datetime(2026, 1, 2, 0, 0), "2026-01-02"),
        ("sample.day_sheet", "work_date", "2026/01/02", "2026-01-02"),
        (
            "sample.day_sheet",
            "submitted_at",
            dt.datetime(2026, 1, 2, 8, 30),
            "2026-01-02T08:30:00+08:00",
        ),
        ("sample.project", "status", "在建", "active"),
        ("sample.project", "status", "Closed", "closed"),
        ("sample.project", "tags", "住宅，道路", ["housing", "road"]),
        ("sample.project", "active", "是", True),
        ("sample.project", "active", "no", False),
        ("sample.day_sheet", "project", "P-1", 1),
        ("sample.day_sheet", "project", "P-9", "P-9"),
        ("sample.day_sheet", "project", "²", "²"),  # int('²') raised here once: a 500
        ("sample.day_sheet", "project", 7.0, 7),
    ]
    for key, name, cell, expected in cases:
        fd = _fd(registry, key, name)
        assert from_cell(fd, cell, ctx) == expected, (name, cell)


def test_what_the_platform_writes_is_not_imported(registry):
    sheet = registry.meta("sample.day_sheet").entity.field_map
    assert not importable(sheet["number"]) and not importable(sheet["total"])
    assert not importable(sheet["lines"]) and not importable(sheet["photo"])
    assert importable(sheet["location"]) and importable(sheet["project"])
