"""Run a report: each dataset in SQL with the viewer's row rules, merged on the key, the
expression columns computed with the safe evaluator, highlighted, totalled and sorted.

Fields hidden from the viewer are never queried: a group, measure or row field built on
one is dropped, and so is every expression column that reads a dropped name."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import marshmallow as ma
from sqlalchemy.orm import Session

from formwork.runtime.aggregate import aggregate
from formwork.runtime.definitions import FieldDef
from formwork.runtime.errors import PermissionDenied
from formwork.runtime.expressions import ExpressionError, evaluate, expression_names
from formwork.runtime.query import MAX_PER_PAGE, list_records, visible_path
from formwork.runtime.registry import EntityMeta, Registry
from formwork.runtime.reports.definition import (
    Dataset,
    Group,
    ReportDef,
    fill_filters,
    resolve_params,
)
from formwork.runtime.reports.labels import Labeller
from formwork.runtime.security import Principal

Row = dict[str, Any]


@dataclass
class ResultColumn:
    """A column of the result: its label in the viewer's locale, format, and the text
    shown for raw values (record titles, user names, option labels) when it has one."""

    name: str
    label: str
    format: str | None = None
    numeric: bool = False
    display: dict[Any, str] = field(default_factory=dict)

    def shown(self, value: Any) -> Any:
        """Return what the table shows for a raw value."""
        return self.display.get(value, value)


@dataclass
class ReportResult:
    """What a report computed: visible columns, rows (raw values), totals and row styles."""

    report: ReportDef
    columns: list[ResultColumn]
    rows: list[Row]
    totals: dict[str, Any]
    all_totals: dict[str, Any]
    styles: list[str | None]
    params: dict[str, Any]
    today: dt.date

    def column(self, name: str) -> ResultColumn | None:
        """Return a visible column by name."""
        return next((c for c in self.columns if c.name == name), None)


@dataclass
class _Context:
    session: Session
    registry: Registry
    principal: Principal
    today: dt.date
    values: Mapping[str, Any]
    dropped: set[str] = field(default_factory=set)
    fields: dict[str, tuple[FieldDef | None, str]] = field(default_factory=dict)


def can_read(principal: Principal, report: ReportDef) -> bool:
    """Return True when the principal may read every entity the report's datasets use."""
    return all(principal.can(key, "read") for key in report.entities())


def run_report(
    session: Session,
    registry: Registry,
    principal: Principal,
    report: ReportDef,
    params: Mapping[str, Any],
    today: dt.date,
) -> ReportResult:
    """Run a report for a principal; raise PermissionDenied when a dataset's entity may not be
    read, BadQuery naming the parameter when a parameter value is not understood."""
    for key in report.entities():
        principal.require(key, "read")
    values = resolve_params(report.params, params, today)
    ctx = _Context(session, registry, principal, today, values)
    frames = {d.name: _run_dataset(ctx, d) for d in report.datasets}
    rows = _merge(report, frames, ctx.dropped)
    moment = _moment(today)
    dropped = _expressions(report, rows, ctx.dropped, moment)
    visible = [c for c in report.columns if c.name not in dropped]
    styles = [_style(report, row, dropped, moment) for row in rows]
    rows, styles = _sorted(report.sort, rows, styles)
    _running(report, rows)
    candidates = {*report.produced(), *(c.name for c in report.columns)} - dropped
    numeric = {n for n in candidates if _is_numeric(ctx, report, n, rows)}
    all_totals = _totals(report, rows, numeric, dropped, moment)
    labeller = Labeller(session, registry, principal)
    columns = [labeller.column(report, c, ctx.fields.get(c.name), rows) for c in visible]
    for column in columns:
        column.numeric = column.name in numeric
    totals = {n: all_totals.get(n) for n in report.totals if n in {c.name for c in columns}}
    return ReportResult(report, columns, rows, totals, all_totals, styles, dict(values), today)


# -- datasets ---------------------------------------------------------------------------------


def _field_of(meta: EntityMeta, registry: Registry, path: str) -> tuple[FieldDef | None, str, str]:
    """Return (field, entity key holding it, its name) for `field` or `ref.field`."""
    head, _, tail = path.partition(".")
    fd = meta.entity.get_field(head)
    if not tail or fd is None:
        return fd, meta.entity.key, head
    target = fd.kind.join_target(fd, meta.entity)
    if target is None:
        return None, meta.entity.key, head
    return registry.meta(target).entity.get_field(tail), target, tail


def _hidden(ctx: _Context, meta: EntityMeta, path: str) -> bool:
    # One rule with the query layer: a hidden field, or a hop into an entity or field
    # the viewer may not read, is dropped from the report (a filter on one refuses it).
    return not visible_path(ctx.principal, meta, path.split(":", 1)[0])


def _run_dataset(ctx: _Context, dataset: Dataset) -> list[Row]:
    meta = ctx.registry.meta(dataset.entity)
    for name in dataset.filters:
        if _hidden(ctx, meta, name.rsplit("__", 1)[0]):
            # Filtering on a field one may not see would reveal it; refuse the report.
            raise PermissionDenied(f"report filter '{name}' uses a field hidden from you")
    filters = fill_filters(dataset.filters, ctx.values, ctx.today)
    if dataset.rows:
        return _row_list(ctx, meta, dataset, filters)
    return _aggregate(ctx, meta, dataset, filters)


def _row_list(
    ctx: _Context, meta: EntityMeta, dataset: Dataset, filters: dict[str, list[str]]
) -> list[Row]:
    fields = [f for f in dataset.fields if not _hidden(ctx, meta, f)]
    ctx.dropped.update(set(dataset.fields) - set(fields))
    for name in fields:
        ctx.fields.setdefault(name, _field_of(meta, ctx.registry, name)[:2])
    out: list[Row] = []
    page = 1
    while len(out) < dataset.limit:
        params = {**filters, "sort": [dataset.sort], "page": [str(page)], "count": ["0"]}
        params["per_page"] = [str(MAX_PER_PAGE)]
        found = list_records(ctx.session, ctx.registry, meta, params, principal=ctx.principal)
        out += [_load_record(meta, item, fields) for item in found.items]
        if len(found.items) < MAX_PER_PAGE:
            break
        page += 1
    return out[: dataset.limit]


def _load_record(meta: EntityMeta, item: Mapping[str, Any], fields: list[str]) -> Row:
    row: Row = {"id": item["id"]}
    for name in fields:
        row[name] = _load(meta.entity.get_field(name), item.get(name))
    return row


def _aggregate(
    ctx: _Context, meta: EntityMeta, dataset: Dataset, filters: dict[str, list[str]]
) -> list[Row]:
    groups = [g for g in dataset.groups if not _hidden(ctx, meta, g.source)]
    measures = [m for m in dataset.measures if not (m.field and _hidden(ctx, meta, m.field))]
    ctx.dropped.update({g.name for g in dataset.groups} - {g.name for g in groups})
    ctx.dropped.update({m.name for m in dataset.measures} - {m.name for m in measures})
    params: dict[str, list[str]] = dict(filters)
    if groups:
        params["group"] = [",".join(g.query_source for g in groups)]
    for m in measures:
        if m.field and m.function != "count":
            # avg is sum / count in Python, so age buckets can re-combine it exactly.
            function = "sum" if m.function == "avg" else m.function
            params.setdefault(function, []).append(m.field)
    found = aggregate(ctx.session, ctx.registry, meta, params, principal=ctx.principal)
    for g in groups:
        if ":" not in g.source and not g.age_buckets:
            ctx.fields.setdefault(g.name, _field_of(meta, ctx.registry, g.source)[:2])
    for m in measures:
        if m.field and m.function in ("sum", "avg", "min", "max"):
            ctx.fields.setdefault(m.name, _field_of(meta, ctx.registry, m.field)[:2])
    rows = [_group_row(ctx, meta, groups, measures, item) for item in found]
    return _combine(groups, measures, rows) if any(g.age_buckets for g in groups) else rows


def _group_row(
    ctx: _Context, meta: EntityMeta, groups: list[Group], measures: list[Any], item: Row
) -> Row:
    row: Row = {}
    for g in groups:
        raw = item.get(g.query_source)
        if g.age_buckets:
            row[g.name] = _bucket(g, raw, ctx.today)
        elif ":" in g.source:
            row[g.name] = raw
        else:
            row[g.name] = _load(_field_of(meta, ctx.registry, g.source)[0], raw)
    count = int(item.get("count") or 0)
    row["__count"] = count
    for m in measures:
        if m.function == "count":
            row[m.name] = count
            continue
        function = "sum" if m.function == "avg" else m.function
        value = _load(
            _field_of(meta, ctx.registry, m.field or "")[0], item.get(f"{function}_{m.field}")
        )
        row[f"__sum_{m.name}"] = value
        row[m.name] = _average(value, count) if m.function == "avg" else value
    return row


def _average(total: Any, count: int) -> Any:
    return None if total is None or not count else Decimal(total) / count


def _bucket(group: Group, raw: Any, today: dt.date) -> str | None:
    if raw in (None, ""):
        return None
    age = (today - dt.date.fromisoformat(str(raw)[:10])).days
    labels = group.bucket_labels()
    for limit, label in zip(group.age_buckets, labels, strict=False):
        if age <= limit:
            return label  # a future date (negative age) is not overdue: the first bucket
    return labels[-1]


def _combine(groups: list[Group], measures: list[Any], rows: list[Row]) -> list[Row]:
    """Re-aggregate rows whose group values became equal (days grouped into age buckets)."""
    merged: dict[tuple[Any, ...], Row] = {}
    for row in rows:
        key = tuple(row[g.name] for g in groups)
        into = merged.get(key)
        if into is None:
            merged[key] = dict(row)
            continue
        into["__count"] += row["__count"]
        for m in measures:
            into[m.name] = _fold(m.function, into, row, m.name)
        for m in measures:
            if m.function == "avg":
                into[m.name] = _average(into[f"__sum_{m.name}"], into["__count"])
    order = {g.name: {label: i for i, label in enumerate(g.bucket_labels())} for g in groups}
    return sorted(merged.values(), key=lambda r: _order(r, groups, order))


def _fold(function: str, into: Row, row: Row, name: str) -> Any:
    if function == "count":
        return int(into[name]) + int(row[name])
    if function in ("sum", "avg"):
        key = f"__sum_{name}"
        into[key] = _add(into.get(key), row.get(key))
        return into[key]
    values = [v for v in (into[name], row[name]) if v is not None]
    if not values:
        return None
    return min(values) if function == "min" else max(values)


def _add(left: Any, right: Any) -> Any:
    if left is None:
        return right
    return left if right is None else left + right


def _order(
    row: Row, groups: list[Group], order: Mapping[str, Mapping[str, int]]
) -> tuple[Any, ...]:
    out = []
    for g in groups:
        value = row.get(g.name)
        out.append(_sortable(order[g.name].get(str(value), -1) if g.age_buckets else value))
    return tuple(out)


def _load(fd: FieldDef | None, raw: Any) -> Any:
    """Return a dumped (JSON) value as Python: exact Decimal, date, int."""
    if fd is None or raw is None:
        return raw
    try:
        return fd.kind.marshmallow_field(fd).deserialize(raw)
    except (ma.ValidationError, TypeError, ValueError):
        return raw


# -- merging, expressions, totals ---------------------------------------------------------------


def _merge(report: ReportDef, frames: Mapping[str, list[Row]], dropped: set[str]) -> list[Row]:
    """Return the merged rows: a row dataset's rows with the aggregates joined on the key,
    or the aggregate datasets merged (full outer) on the key."""
    listed = [d for d in report.datasets if d.rows]
    aggregates = [d for d in report.datasets if not d.rows]
    key = report.key
    skip = set(key) | dropped
    if listed:
        base = [dict(r) for r in frames[listed[0].name]]
        lookup = {d.name: {_key(r, key): r for r in frames[d.name]} for d in aggregates}
        for row in base:
            for d in aggregates:
                found = lookup[d.name].get(_key(row, key), {})
                row.update({n: found.get(n) for n in d.outputs() if n not in skip})
        return base
    merged: dict[tuple[Any, ...], Row] = {}
    for d in aggregates:
        for row in frames[d.name]:
            into = merged.setdefault(_key(row, key), {n: row.get(n) for n in key})
            into.update({n: row.get(n) for n in d.outputs() if n not in skip})
    for row in merged.values():
        for name in report.produced():
            if name not in dropped:
                row.setdefault(name, None)
    return list(merged.values())


def _key(row: Mapping[str, Any], key: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(row.get(n) for n in key)


def _names(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k.isidentifier() and not k.startswith("_")}


def _moment(today: dt.date) -> dt.datetime:
    """Return the moment a report's expressions see as now(): midday of the report's day, so
    today() is the day the report was run for (date tokens and age buckets agree)."""
    return dt.datetime.combine(today, dt.time(12), tzinfo=dt.UTC)


def _expressions(
    report: ReportDef, rows: list[Row], dropped: set[str], moment: dt.datetime
) -> set[str]:
    """Compute the expression columns in order; return every dropped name."""
    dropped = set(dropped)
    for column in report.columns:
        if column.expression is None:
            continue
        if expression_names(column.expression) & dropped:
            dropped.add(column.name)  # built from a hidden field: never computed
            continue
        for row in rows:
            row[column.name] = _evaluate(column.expression, row, moment)
    return dropped


def _evaluate(expression: str, row: Mapping[str, Any], moment: dt.datetime) -> Any:
    names = _names(row)
    for name in expression_names(expression):
        names.setdefault(name, None)
    try:
        return evaluate(expression, names, now=moment)
    except ExpressionError:
        # Data-dependent failures (division by zero, a missing value in arithmetic) leave the
        # cell empty; the expression's syntax was checked when the pack was installed.
        return None


def _style(
    report: ReportDef, row: Mapping[str, Any], dropped: set[str], moment: dt.datetime
) -> str | None:
    for when, style in report.highlight:
        if expression_names(when) & dropped:
            continue
        if _evaluate(when, row, moment) is True:
            return style
    return None


def _sortable(value: Any) -> tuple[int, Any]:
    if value is None:
        return (1, "")
    if isinstance(value, bool | int | Decimal | float):
        return (0, Decimal(value))
    return (0, str(value)) if not isinstance(value, dt.date) else (0, value.isoformat())


def _sorted(
    sort: str, rows: list[Row], styles: list[str | None]
) -> tuple[list[Row], list[str | None]]:
    if not sort:
        return rows, styles
    name, descending = sort.lstrip("-"), sort.startswith("-")
    present = [i for i, r in enumerate(rows) if r.get(name) is not None]
    missing = [i for i, r in enumerate(rows) if r.get(name) is None]  # empty values last
    present.sort(key=lambda i: _sortable(rows[i].get(name)), reverse=descending)
    order = present + missing
    return [rows[i] for i in order], [styles[i] for i in order]


def _is_numeric(ctx: _Context, report: ReportDef, name: str, rows: list[Row]) -> bool:
    """Return True for a column of amounts or counts (not ids, keys or flags)."""
    if name in report.key or name == "id":
        return False
    fd = ctx.fields.get(name, (None, ""))[0]
    if fd is not None and not fd.kind.can_aggregate(fd):
        return False  # references and users hold ids; choices and dates are not amounts
    values = [r.get(name) for r in rows if r.get(name) is not None]
    return bool(values) and all(
        isinstance(v, int | Decimal) and not isinstance(v, bool) for v in values
    )


def _totals(
    report: ReportDef, rows: list[Row], numeric: set[str], dropped: set[str], moment: dt.datetime
) -> dict[str, Any]:
    """Return the sum of every numeric column; an expression column is evaluated over the
    sums instead (a percentage of totals, not a sum of percentages)."""
    expressions = {c.name: c.expression for c in report.columns if c.expression}
    sums: Row = {}
    running = {c.name for c in report.columns if c.running}
    for name in numeric:
        if name in expressions or name in running:
            continue
        values: list[Any] = [r[name] for r in rows if isinstance(r.get(name), int | Decimal)]
        if values and not any(isinstance(v, bool) for v in values):
            sums[name] = (
                sum(values, Decimal(0))
                if any(isinstance(v, Decimal) for v in values)
                else sum(values)
            )
    for column in report.columns:
        if column.expression and column.name not in dropped:
            value = _evaluate(column.expression, sums, moment)
            sums[column.name] = value if isinstance(value, int | Decimal | None) else None
        elif column.running is not None and rows:  # the total of a balance is where it ends
            last = rows[0] if (report.sort or "").startswith("-") else rows[-1]
            sums[column.name] = last.get(column.name)
    return sums


def _running(report: ReportDef, rows: list[Row]) -> None:
    """Fill the running-total columns (a daily balance), accumulating in the ascending
    direction of the report's sort: a newest-first list still sums from its oldest row."""
    ordered = list(reversed(rows)) if (report.sort or "").startswith("-") else rows
    for column in report.columns:
        if column.running is None:
            continue
        total: Any = None
        for row in ordered:
            value = row.get(column.running)
            if isinstance(value, int | Decimal) and not isinstance(value, bool):
                total = value if total is None else total + value
            row[column.name] = total
