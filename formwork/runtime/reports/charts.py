"""The data a report's chart needs, as JSON (no Flask, no HTML): categories and series for
ECharts, one number, or the tasks of a Gantt chart for frappe-gantt."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from formwork.runtime.reports.engine import ReportResult, ResultColumn
from formwork.runtime.reports.labels import as_json

STATUSES = ("on_time", "warning", "late")


def chart_data(result: ReportResult) -> dict[str, Any] | None:
    """Return the chart of a report as JSON, or None for a table-only report."""
    chart = result.report.chart
    kind = chart.get("type") or ("bar" if result.rows else "table")
    if kind == "table":
        return None
    if kind == "gantt":
        return {"type": "gantt", "tasks": gantt_tasks(result)}
    if kind == "number":
        name = chart.get("x") or _first_numeric(result)
        return {"type": "number", **number(result, name)} if name else None
    return _series_chart(result, kind)


def number(result: ReportResult, name: str) -> dict[str, Any]:
    """Return one figure of a report (the total of a numeric column) with its label."""
    column = result.column(name)
    value = result.all_totals.get(name)
    if value is None and len(result.rows) == 1:
        value = result.rows[0].get(name)
    return {
        "label": column.label if column else name,
        "value": as_json(value),
        "format": column.format if column else None,
    }


def _first_numeric(result: ReportResult) -> str | None:
    return next((c.name for c in result.columns if c.numeric), None)


def _series_chart(result: ReportResult, kind: str) -> dict[str, Any] | None:
    chart = result.report.chart
    x_name = chart.get("x") or (result.report.key[0] if result.report.key else None)
    x_column = result.column(x_name) if x_name else None
    wanted = chart.get("series") or _default_series(result)
    series_columns = [c for c in result.columns if c.name in wanted]
    if not series_columns:
        return None
    split = _split_column(result, x_name)
    if split is not None and x_column is not None:
        return _split_chart(result, kind, x_column, split, series_columns[0])
    categories = [_label(x_column, row.get(x_name)) for row in result.rows] if x_name else []
    return {
        "type": kind,
        "x_label": x_column.label if x_column else "",
        "categories": categories,
        "series": [
            {
                "name": c.label,
                "format": c.format,
                "data": [_number(r.get(c.name)) for r in result.rows],
            }
            for c in series_columns
        ],
        "stacked": bool(chart.get("stacked")),
        "horizontal": bool(chart.get("horizontal")),
    }


def _split_column(result: ReportResult, x_name: str | None) -> ResultColumn | None:
    """Return the column whose values become one series each: the chart's `split`, or, when
    the x values repeat and the key has one other group (crew x month), that group."""
    chart = result.report.chart
    if chart.get("split"):
        return result.column(str(chart["split"]))
    values = [row.get(x_name) for row in result.rows] if x_name else []
    others = [k for k in result.report.key if k != x_name]
    if len(values) == len(set(values)) or len(others) != 1:
        return None
    return result.column(others[0])


def _split_chart(
    result: ReportResult, kind: str, x: ResultColumn, split: ResultColumn, value: ResultColumn
) -> dict[str, Any]:
    """Return one series per value of `split` over the distinct x values (a pivot)."""
    xs: list[Any] = []
    groups: dict[Any, dict[Any, Any]] = {}
    for row in result.rows:
        if row.get(x.name) not in xs:
            xs.append(row.get(x.name))
        groups.setdefault(row.get(split.name), {})[row.get(x.name)] = row.get(value.name)
    buckets = [
        g.bucket_labels() for d in result.report.datasets for g in d.groups if g.name == x.name
    ]
    if buckets and buckets[0]:
        xs.sort(key=lambda v: buckets[0].index(v) if v in buckets[0] else len(buckets[0]))
    elif all(isinstance(v, str) for v in xs):
        xs.sort()  # periods (2026-05) read in time order
    return {
        "type": kind,
        "x_label": x.label,
        "categories": [_label(x, v) for v in xs],
        "series": [
            {
                "name": _label(split, key),
                "format": value.format,
                "data": [_number(by_x.get(v)) for v in xs],
            }
            for key, by_x in groups.items()
        ],  # fmt: skip
        "stacked": bool(result.report.chart.get("stacked")),
        "horizontal": bool(result.report.chart.get("horizontal")),
    }


def _default_series(result: ReportResult) -> list[str]:
    # Counts drawn next to amounts would flatten against one axis: leave them out unless
    # they are all there is.
    counts = {m.name for d in result.report.datasets for m in d.measures if m.function == "count"}
    numeric = [c.name for c in result.columns if c.numeric]
    return [n for n in numeric if n not in counts] or numeric


def _label(column: ResultColumn | None, value: Any) -> str:
    if value is None:
        return "—"
    shown = column.shown(value) if column else value
    return str(as_json(shown))


def _number(value: Any) -> str | None:
    # Exact decimals travel as text; the chart converts them for drawing only.
    if isinstance(value, bool) or value is None:
        return None
    return str(value) if isinstance(value, int | Decimal) else None


def gantt_tasks(result: ReportResult) -> list[dict[str, Any]]:
    """Return the planned bars (with progress, status class, milestones, dependencies) and,
    under each task that has actual dates, a bar of what happened."""
    chart = result.report.chart
    tasks: list[dict[str, Any]] = []
    for row in result.rows:
        start, end = _date(row.get(chart.get("start", ""))), _date(row.get(chart.get("end", "")))
        if start is None:
            continue
        end = end or start
        ident = str(row.get(chart.get("id", "id")) or row.get("id"))
        status = str(row.get(chart.get("status", "")) or "")
        milestone = bool(row.get(chart.get("milestone", ""))) if chart.get("milestone") else False
        # frappe-gantt takes one class token per bar: milestone, else the status colour.
        css = f"fw-gantt-{status}" if status in STATUSES else "fw-gantt-planned"
        tasks.append(
            {
                "id": ident,
                "name": str(row.get(chart.get("name", "")) or ident),
                "start": start.isoformat(),
                "end": (start if milestone else max(end, start)).isoformat(),
                "progress": _progress(row.get(chart.get("progress", ""))),
                "dependencies": _dependencies(row.get(chart.get("dependencies", ""))),
                "custom_class": "fw-gantt-milestone" if milestone else css,
                "status": status,
                "milestone": milestone,
            }
        )
        actual = _actual(row, chart, ident, tasks[-1]["name"], result.today)
        if actual is not None:
            tasks.append(actual)
    return tasks


def _actual(
    row: dict[str, Any], chart: Any, ident: str, name: str, today: dt.date
) -> dict[str, Any] | None:
    start = _date(row.get(chart.get("actual_start", "")))
    if start is None:
        return None
    end = _date(row.get(chart.get("actual_end", ""))) or max(start, today)
    return {
        "id": f"{ident}__actual",
        "name": name,
        "start": start.isoformat(),
        "end": max(end, start).isoformat(),
        "progress": 100 if row.get(chart.get("actual_end", "")) else 0,
        "dependencies": "",
        "custom_class": "fw-gantt-actual",
        "actual": True,
    }


def _date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and value:
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def _progress(value: Any) -> int:
    try:
        return max(0, min(100, int(value or 0)))
    except (TypeError, ValueError, ArithmeticError):
        return 0


def _dependencies(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return ",".join(p.strip() for p in str(value or "").split(",") if p.strip())
