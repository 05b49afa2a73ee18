"""Aggregates in SQL: group by fields and by day/week/month/year of a date; sum, count,
avg, min and max."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from formwork.runtime.errors import BadQuery, FieldError
from formwork.runtime.query import Query
from formwork.runtime.registry import EntityMeta, Registry
from formwork.runtime.security import Principal

PERIODS = ("day", "week", "month", "year")
FUNCTIONS = ("sum", "avg", "min", "max")
AGGREGATE_PARAMS = frozenset({"group", *FUNCTIONS, "limit"})
MAX_GROUPS = 10_000


def period(column: Any, unit: str, dialect: str) -> Any:
    """Return a SQL expression giving the period of a date as text (week = its Monday)."""
    if dialect == "sqlite":
        formats = {"day": "%Y-%m-%d", "month": "%Y-%m", "year": "%Y"}
        if unit == "week":
            return sa.func.date(column, "weekday 0", "-6 days")
        return sa.func.strftime(formats[unit], column)
    formats = {"day": "YYYY-MM-DD", "week": "YYYY-MM-DD", "month": "YYYY-MM", "year": "YYYY"}
    source = sa.func.date_trunc("week", column) if unit == "week" else column
    return sa.func.to_char(source, formats[unit])


def aggregate(
    session: Session,
    registry: Registry,
    meta: EntityMeta,
    params: Mapping[str, Sequence[str]],
    extra: Sequence[Any] = (),
    *,
    principal: Principal,
) -> list[dict[str, Any]]:
    """Return one row per group with `count` and the requested aggregates, computed in SQL
    over the records the principal may read (hidden fields cannot be grouped or measured)."""
    query = Query(registry, meta, principal)
    filters = {k: v for k, v in params.items() if k not in AGGREGATE_PARAMS}
    where = query.conditions(filters) + list(extra) + query.restrict("read", session)
    dialect = session.get_bind().dialect.name
    groups = _groups(query, _split(params, "group"), dialect)
    measures = _measures(query, params)
    query.raise_errors()
    labels = [label for label, _expr in groups]
    columns = [expr.label(f"g{i}") for i, (_l, expr) in enumerate(groups)]
    columns.append(sa.func.count().label("count"))
    columns += [expr.label(f"m{i}") for i, (_name, expr, _field) in enumerate(measures)]
    statement = (
        sa.select(*columns)
        .select_from(query.from_clause())
        .where(*where)
        .group_by(*(expr for _l, expr in groups))
        .order_by(*(expr for _l, expr in groups))
        .limit(MAX_GROUPS)
    )
    out = []
    for row in session.connection().execute(statement):
        item: dict[str, Any] = {label: _json(row[i]) for i, label in enumerate(labels)}
        count = int(row[len(labels)])
        item["count"] = count
        for i, (name, _expr, field_def) in enumerate(measures):
            item[name] = _measure_value(name, row[len(labels) + 1 + i], count, field_def)
        out.append(item)
    return out


def _split(params: Mapping[str, Sequence[str]], name: str) -> list[str]:
    return [part for value in params.get(name, ()) for part in value.split(",") if part]


def _groups(query: Query, names: list[str], dialect: str) -> list[tuple[str, Any]]:
    groups = []
    for name in names:
        path, _, unit = name.partition(":")
        column, field_def = query.column(path, "group")
        if column is None:
            continue
        if field_def is not None and not field_def.kind.groupable:
            query.errors.append(
                FieldError("group", "bad_aggregate", {"detail": f"cannot group by '{path}'"})
            )
            continue
        if unit and unit not in PERIODS:
            query.errors.append(
                FieldError(
                    "group", "bad_aggregate", {"detail": f"unknown period '{unit}'; use {PERIODS}"}
                )
            )
            continue
        groups.append((name, period(column, unit, dialect) if unit else column))
    return groups


def _measures(query: Query, params: Mapping[str, Sequence[str]]) -> list[tuple[str, Any, Any]]:
    measures = []
    for function in FUNCTIONS:
        for path in _split(params, function):
            column, field_def = query.column(path, function)
            if column is None:
                continue
            summable = field_def is not None and field_def.kind.can_aggregate(field_def)
            if function in ("sum", "avg") and not summable:
                query.errors.append(
                    FieldError(function, "bad_aggregate", {"detail": f"cannot {function} '{path}'"})
                )
                continue
            # avg is sum/count in Python so it stays exact on every database.
            sql = (
                sa.func.sum(column)
                if function in ("sum", "avg")
                else getattr(sa.func, function)(column)
            )
            measures.append((f"{function}_{path}", sql, field_def))
    return measures


def _measure_value(name: str, value: Any, count: int, field_def: Any) -> Any:
    if name.startswith("avg_") and value is not None:
        value = Decimal(value) / count if count else None
    if field_def is not None and value is not None and not name.startswith("avg_"):
        value = field_def.kind.from_db(field_def, value)
        return field_def.kind.dump(field_def, value)
    return _json(value)


def _json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def check_params(params: Mapping[str, Sequence[str]]) -> None:
    """Raise BadQuery when no group or measure was asked for."""
    if not params.get("group") and not any(params.get(f) for f in FUNCTIONS):
        raise BadQuery(
            [
                FieldError(
                    "group", "bad_aggregate", {"detail": "give group= and/or sum=/avg=/min=/max="}
                )
            ]
        )
