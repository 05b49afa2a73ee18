"""Queries over an entity's table: filters, sorts, pages, search and counts, in SQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from formwork.runtime.definitions import FieldDef
from formwork.runtime.errors import BadQuery, FieldError
from formwork.runtime.fields import get_field_type
from formwork.runtime.params import whole_number
from formwork.runtime.registry import EntityMeta, Registry
from formwork.runtime.security import Principal, redact, row_condition
from formwork.runtime.writing import dump_record, from_row

OPERATORS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "contains", "startswith", "isnull")
RESERVED = frozenset({"sort", "page", "per_page", "q", "count"})
MAX_PER_PAGE = 200
COUNT_CAP = 10_000
MAX_SQL_INT = 2**63 - 1
SYSTEM_SORTABLE = frozenset({"id", "created_at", "updated_at", "version"})


@dataclass(frozen=True)
class Page:
    """One page of records and how many match (capped: `total_capped` says so)."""

    items: list[dict[str, Any]]
    total: int
    total_capped: bool
    page: int
    per_page: int


class Query:
    """Translate query-string parameters into SQL against one entity's table."""

    def __init__(
        self, registry: Registry, meta: EntityMeta, principal: Principal | None = None
    ) -> None:
        self.registry = registry
        self.meta = meta
        self.principal = principal
        self.table = meta.table
        self.joins: dict[str, tuple[sa.FromClause, EntityMeta]] = {}
        self.join_on: dict[str, Any] = {}
        self.errors: list[FieldError] = []

    # -- resolving names --------------------------------------------------------------------
    def column(self, path: str, param: str) -> tuple[Any, FieldDef | None]:
        """Return the column for `field` or `reference.field` (joining one level).

        A hop is the principal's own read of the target: a path they may not see (a hidden
        field, an entity they may not read) is refused as unknown, and the join reaches
        only target rows they may read (any other row reads as NULL)."""
        head, _, tail = path.partition(".")
        if not tail:
            return self._own_column(self.meta, self.table, head, param)
        target_key = reference_target(self.meta, head)
        shut = self.principal is not None and not visible_path(self.principal, self.meta, path)
        if target_key is None or shut:
            self.errors.append(FieldError(param, "unknown_filter_field", {"name": path}))
            return None, None
        alias, target = self._join(head, target_key)
        return self._own_column(target, alias, tail, param)

    def _own_column(
        self, meta: EntityMeta, table: Any, name: str, param: str
    ) -> tuple[Any, FieldDef | None]:
        if name in SYSTEM_SORTABLE or name in ("created_by", "updated_by"):
            return table.c[name], None
        field_def = meta.entity.get_field(name)
        if field_def is None or not field_def.kind.stored or self._hidden(meta, name):
            # A hidden field cannot be filtered, sorted or grouped on either: a filter
            # like bank_card__startswith would reveal it one digit at a time.
            self.errors.append(FieldError(param, "unknown_filter_field", {"name": name}))
            return None, None
        return table.c[name], field_def

    def _hidden(self, meta: EntityMeta, name: str) -> bool:
        return self.principal is not None and name in self.principal.hidden_fields(meta.entity.key)

    def restrict(self, action: str = "read", session: Session | None = None) -> list[Any]:
        """Return the principal's row rule for `action` as a condition list (maybe empty)."""
        if self.principal is None:
            return []
        condition = row_condition(self.registry, self.principal, self.meta, action, session)
        return [] if condition is None else [condition]

    def _join(self, head: str, target_key: str) -> tuple[sa.FromClause, EntityMeta]:
        if head not in self.joins:
            target = self.registry.meta(target_key)
            alias = target.table.alias(f"j_{head}")
            on = alias.c.id == self.table.c[head]
            readable = self._readable(target, alias)
            self.joins[head] = (alias, target)
            self.join_on[head] = on if readable is None else sa.and_(on, readable)
        return self.joins[head]

    def _readable(self, target: EntityMeta, alias: Any) -> Any:
        # The target's row rules, written on the join's alias: a row of the target the
        # principal may not read joins as NULLs, so it neither matches nor sorts nor groups.
        if self.principal is None:
            return None
        return row_condition(self.registry, self.principal, target, "read", table=alias)

    def from_clause(self) -> sa.FromClause:
        """Return the table joined to every referenced table a filter or sort used."""
        clause: sa.FromClause = self.table
        for head, (alias, _target) in self.joins.items():
            clause = clause.outerjoin(alias, self.join_on[head])
        return clause

    # -- filters ----------------------------------------------------------------------------
    def conditions(self, params: Mapping[str, Sequence[str]]) -> list[Any]:
        """Return SQL conditions for every `field__op=value` parameter."""
        out = []
        for param, values in params.items():
            if param in RESERVED:
                continue
            path, _, op = param.rpartition("__") if "__" in param else (param, "", "eq")
            for text in values:
                condition = self._condition(param, path, op, text)
                if condition is not None:
                    out.append(condition)
        return out

    def _condition(self, param: str, path: str, op: str, text: str) -> Any:
        if op not in OPERATORS:
            self.errors.append(
                FieldError(param, "unknown_operator", {"op": op, "ops": ", ".join(OPERATORS)})
            )
            return None
        column, field_def = self.column(path, param)
        if column is None:
            return None
        field_def = field_def or system_field(path.rpartition(".")[2])
        if field_def is not None and op not in field_def.kind.ops(field_def):
            self.errors.append(FieldError(param, "operator_not_allowed", {"op": op, "name": path}))
            return None
        try:
            return _build(field_def, column, op, text)
        except (ValueError, ArithmeticError) as exc:
            self.errors.append(FieldError(param, "invalid", {"detail": str(exc)}))
            return None

    def search(self, text: str) -> Any:
        """Return an OR of case-insensitive `contains` over the entity's search fields."""
        fields = [f for f in self.meta.entity.search_fields if not self._hidden(self.meta, f)]
        if not fields or not text:
            return None
        pattern = f"%{_escape_like(text)}%"
        return sa.or_(*(self.table.c[name].ilike(pattern, escape="\\") for name in fields))

    def order_by(self, sort: str | None) -> list[Any]:
        """Return ORDER BY terms for `sort=-field,other` (id breaks ties)."""
        terms = []
        for item in filter(None, (sort or "").split(",")):
            name = item.lstrip("-+")
            column, field_def = self.column(name, "sort")
            if column is None:
                continue
            if field_def is not None and not field_def.kind.sortable:
                self.errors.append(FieldError("sort", "unknown_sort_field", {"name": name}))
                continue
            terms.append(column.desc() if item.startswith("-") else column.asc())
        # Ties break on id in the direction of the first term, so an index on (field, id)
        # can serve the whole ORDER BY; the default order is newest first.
        newest_first = not terms or (sort or "").split(",")[0].startswith("-")
        terms.append(self.table.c.id.desc() if newest_first else self.table.c.id.asc())
        return terms

    def raise_errors(self) -> None:
        """Raise BadQuery listing every problem found so far."""
        if self.errors:
            raise BadQuery(self.errors)


SYSTEM_KINDS = {
    "id": "integer", "version": "integer", "created_by": "integer", "updated_by": "integer",
    "created_at": "datetime", "updated_at": "datetime",
}  # fmt: skip


def system_field(name: str) -> FieldDef | None:
    """Return a field of the kind a system column holds, so a filter on it parses its value
    like any field's (a word compared with a timestamp is a 400, not a database error)."""
    kind = SYSTEM_KINDS.get(name)
    if kind is None:
        return None
    return FieldDef(name, get_field_type(kind), {"x-formwork": {"type": kind}}, False)


def reference_target(meta: EntityMeta, name: str) -> str | None:
    """Return the entity a path may hop into through field `name` of `meta` (or None)."""
    field_def = meta.entity.get_field(name)
    return field_def.kind.join_target(field_def, meta.entity) if field_def else None


def visible_path(principal: Principal, meta: EntityMeta, path: str) -> bool:
    """Return True when `field` or `reference.field` of `meta` is one the principal may see:
    the field is not hidden from them and, through a hop, they may read the target entity
    and its field (the rule Query.column applies, for callers that drop instead of refuse)."""
    head, _, tail = path.partition(".")
    if head in principal.hidden_fields(meta.entity.key):
        return False
    if not tail:
        return True
    target_key = reference_target(meta, head)
    return target_key is not None and principal.may_read_field(target_key, tail)


def _build(field_def: FieldDef | None, column: Any, op: str, text: str) -> Any:
    if op == "isnull":
        flag = _parse_bool(text)
        return column.is_(None) if flag else column.is_not(None)
    if op == "in":  # before the type's own filters: each value is parsed on its own
        return column.in_([_parse_one(field_def, part, column) for part in text.split(",")])
    if field_def is not None:
        special = field_def.kind.filter_column(
            field_def, column, op, _parse_one(field_def, text, column)
        )
        if special is not None:
            return special
    if op in ("contains", "startswith"):
        pattern = _escape_like(text)
        pattern = f"%{pattern}%" if op == "contains" else f"{pattern}%"
        return column.like(pattern, escape="\\")
    value = _parse_one(field_def, text, column)
    return {
        "eq": column.__eq__,
        "ne": column.__ne__,
        "lt": column.__lt__,
        "lte": column.__le__,
        "gt": column.__gt__,
        "gte": column.__ge__,
    }[op](value)


def _parse_one(field_def: FieldDef | None, text: str, column: Any = None) -> Any:
    if field_def is None:
        value = _system_value(column, text)
    else:
        value = field_def.kind.parse_filter(field_def, text)
    # A number no column can hold fails in the driver (a 500): refuse it as a bad query.
    small = column is not None and type(column.type) is sa.Integer  # INTEGER, not BIGINT
    limit = 2**31 - 1 if small else MAX_SQL_INT
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > limit:
        raise ValueError(f"'{text[:40]}' is out of range")
    if isinstance(value, Decimal) and (
        not value.is_finite() or value.adjusted() >= 18 - _scale(field_def)
    ):  # SQLite keeps value * 10**scale in a 64-bit integer; 18 digits fit
        raise ValueError(f"'{text[:40]}' is out of range")
    return value


def _system_value(column: Any, text: str) -> Any:
    """Return the value of a filter on a system column: a whole number for the integer
    ones (id, version, created_by, updated_by), the text itself for the moments."""
    if column is None or isinstance(column.type, sa.DateTime):
        return text
    value = whole_number(text)
    if value is None:
        raise ValueError(f"'{text[:40]}' is not a whole number")
    return value


def _scale(field_def: FieldDef | None) -> int:
    scale = getattr(field_def.kind, "scale", None) if field_def is not None else None
    return int(scale(field_def)) if callable(scale) else 0


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes"):
        return True
    if lowered in ("0", "false", "no"):
        return False
    raise ValueError(f"'{text}' is not true or false")


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _page_numbers(params: Mapping[str, Sequence[str]], errors: list[FieldError]) -> tuple[int, int]:
    numbers = []
    for name, default, limit in (("page", 1, 10**9), ("per_page", 50, MAX_PER_PAGE)):
        number = whole_number((params.get(name) or [str(default)])[0], 1, limit)
        if number is None:  # '²'.isdigit() is true, yet int('²') raises: ASCII digits only
            errors.append(FieldError(name, "bad_page", {"name": name, "limit": limit}))
        numbers.append(default if number is None else number)
    return numbers[0], numbers[1]


def list_records(
    session: Session,
    registry: Registry,
    meta: EntityMeta,
    params: Mapping[str, Sequence[str]],
    extra: Sequence[Any] = (),
    *,
    principal: Principal,
    action: str = "read",
) -> Page:
    """Return one page of the records the principal may reach with `action` that match
    the parameters, with a capped count and without the fields hidden from them."""
    query = Query(registry, meta, principal)
    where = query.conditions(params) + list(extra) + query.restrict(action, session)
    searched = query.search((params.get("q") or [""])[0])
    if searched is not None:
        where.append(searched)
    order = query.order_by((params.get("sort") or [""])[0])
    page, per_page = _page_numbers(params, query.errors)
    query.raise_errors()
    source = query.from_clause()
    statement = (
        sa.select(meta.table)
        .select_from(source)
        .where(*where)
        .order_by(*order)
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    rows = session.connection().execute(statement).mappings().all()
    hidden = principal.hidden_fields(meta.entity.key)
    items = [redact(dump_record(meta, from_row(meta, dict(row)), {}), hidden) for row in rows]
    total, capped = _count(session, meta, source, where, page, per_page, len(items), params)
    return Page(items, total, capped, page, per_page)


def _count(
    session: Session,
    meta: EntityMeta,
    source: Any,
    where: list[Any],
    page: int,
    per_page: int,
    found: int,
    params: Mapping[str, Sequence[str]],
) -> tuple[int, bool]:
    if (params.get("count") or ["1"])[0] in ("0", "false"):
        return -1, True
    if page == 1 and found < per_page:
        return found, False
    inner = sa.select(meta.table.c.id).select_from(source).where(*where).limit(COUNT_CAP + 1)
    total = (
        session.connection()
        .execute(sa.select(sa.func.count()).select_from(inner.subquery()))
        .scalar()
    )
    total = int(total or 0)
    return min(total, COUNT_CAP), total > COUNT_CAP
