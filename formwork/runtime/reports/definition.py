"""Report and dashboard definitions as the engine reads them: the pack file (old
single-entity form or datasets form) normalised into small frozen objects, parameters
resolved, and the date tokens (`@today-30`, `@month+1`) turned into dates."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from formwork.runtime.errors import BadQuery, FieldError

PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)\}")
DATE_TOKEN = re.compile(r"^@(today|month)([+-][0-9]{1,5})?$")
MAIN = "main"
PARAM_TYPES = ("text", "date", "number", "integer", "entity")
MAX_PARAM_LENGTH = 200  # a parameter value (the query string allows 8 KB)


@dataclass(frozen=True)
class Group:
    """One group of an aggregate dataset: a field path, maybe a period and age buckets."""

    source: str  # what aggregate() groups by: "field", "ref.field" or "field:month"
    name: str  # the output column name ("as", else the source text)
    age_buckets: tuple[int, ...] = ()
    label: Mapping[str, str] | None = None

    @property
    def path(self) -> str:
        """Return the field path without the period."""
        return self.source.split(":", 1)[0]

    @property
    def query_source(self) -> str:
        """Return what SQL groups by (age buckets group by day, then bucket in Python)."""
        return f"{self.path}:day" if self.age_buckets else self.source

    def bucket_labels(self) -> list[str]:
        """Return the bucket labels in order: 0-30, 31-90, 91-180, >180."""
        labels, low = [], 0
        for high in self.age_buckets:
            labels.append(f"{low}-{high}")
            low = high + 1
        return [*labels, f">{self.age_buckets[-1]}"] if self.age_buckets else []


@dataclass(frozen=True)
class Measure:
    """One aggregate of a dataset."""

    function: str
    field: str | None
    name: str
    label: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Dataset:
    """One query over one entity: an aggregate, or a row list when `rows` is set."""

    name: str
    entity: str
    groups: tuple[Group, ...] = ()
    measures: tuple[Measure, ...] = ()
    filters: Mapping[str, str] = field(default_factory=dict)
    rows: bool = False
    fields: tuple[str, ...] = ()
    sort: str = ""
    limit: int = 500

    def outputs(self) -> list[str]:
        """Return the names of the values each row of this dataset holds."""
        if self.rows:
            return ["id", *self.fields]
        return [g.name for g in self.groups] + [m.name for m in self.measures]


@dataclass(frozen=True)
class Column:
    """One column of the report's table."""

    name: str
    label: Mapping[str, str] | None = None
    expression: str | None = None
    format: str | None = None
    running: str | None = None  # a running total of that column, in row order


@dataclass(frozen=True)
class Param:
    """One parameter of the filter bar."""

    name: str
    type: str = "text"
    entity: str | None = None
    required: bool = False
    default: Any = None
    label: Mapping[str, str] | None = None


@dataclass(frozen=True)
class ReportDef:
    """A report of a pack, normalised."""

    pack: str
    name: str
    title: Mapping[str, str]
    params: tuple[Param, ...]
    datasets: tuple[Dataset, ...]
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    highlight: tuple[tuple[str, str], ...] = ()
    totals: tuple[str, ...] = ()
    sort: str = ""
    chart: Mapping[str, Any] = field(default_factory=dict)
    description: Mapping[str, str] | None = None

    def entities(self) -> list[str]:
        """Return the entity keys the datasets read."""
        return sorted({d.entity for d in self.datasets})

    def produced(self) -> list[str]:
        """Return every name a merged row can hold before the expression columns."""
        names: list[str] = []
        for dataset in self.datasets:
            names += [n for n in dataset.outputs() if n not in names]
        return names


def text(value: Any, locale: str, fallback: str = "") -> str:
    """Return a {zh-CN, en} label in `locale` (or the fallback)."""
    if isinstance(value, Mapping):
        return str(value.get(locale) or value.get("zh-CN") or fallback)
    return fallback


def qualify(pack: str, name: str) -> str:
    """Return `pack.name` for a bare entity name."""
    return name if "." in name else f"{pack}.{name}"


def _group(item: Any) -> Group:
    if isinstance(item, str):
        return Group(item, item)
    source = str(item["field"])
    buckets = tuple(sorted(int(b) for b in item.get("age_buckets", ())))
    return Group(source, str(item.get("as") or source), buckets, item.get("label"))


def _measure(item: Mapping[str, Any]) -> Measure:
    function, path = str(item["function"]), item.get("field")
    default = f"{function}_{path}" if path else function
    return Measure(function, path, str(item.get("as") or default), item.get("label"))


def _dataset(pack: str, item: Mapping[str, Any], default_name: str = MAIN) -> Dataset:
    rows = bool(item.get("rows"))
    measures = [_measure(m) for m in item.get("measures", ())]
    if not rows and not measures:
        measures = [Measure("count", None, "count")]
    return Dataset(
        name=str(item.get("name") or default_name),
        entity=qualify(pack, str(item["entity"])),
        groups=tuple(_group(g) for g in item.get("group", ())),
        measures=tuple(measures),
        filters=dict(item.get("filters") or {}),
        rows=rows,
        fields=tuple(item.get("fields", ())),
        sort=str(item.get("sort") or ""),
        limit=int(item.get("limit") or 500),
    )


def _param(item: Mapping[str, Any]) -> Param:
    kind = "entity" if item.get("entity") else str(item.get("type") or "text")
    return Param(
        str(item["name"]),
        kind,
        item.get("entity"),
        bool(item.get("required")),
        item.get("default"),
        item.get("label"),
    )


def parse_report(pack: str, document: Mapping[str, Any]) -> ReportDef:
    """Return the normalised report; the old single-entity form becomes one dataset."""
    if "datasets" in document:
        datasets = tuple(_dataset(pack, d) for d in document["datasets"])
    else:
        datasets = (_dataset(pack, document),)
    aggregates = [d for d in datasets if not d.rows]
    first_groups = [g.name for g in aggregates[0].groups] if aggregates else []
    key = tuple(document.get("key") or first_groups)
    columns = tuple(
        Column(
            str(c["name"]), c.get("label"), c.get("expression"), c.get("format"), c.get("running")
        )
        for c in document.get("columns", ())
    ) or _default_columns(datasets, key)
    return ReportDef(
        pack=pack,
        name=str(document["name"]),
        title=document.get("title") or {},
        params=tuple(_param(p) for p in document.get("params", ())),
        datasets=datasets,
        key=tuple(key),
        columns=columns,
        highlight=tuple((str(h["when"]), str(h["style"])) for h in document.get("highlight", ())),
        totals=tuple(document.get("totals", ())),
        sort=str(document.get("sort") or ""),
        chart=dict(document.get("chart") or {}),
        description=document.get("description"),
    )


def _default_columns(datasets: Sequence[Dataset], key: Sequence[str]) -> tuple[Column, ...]:
    names = list(key)
    for dataset in datasets:
        names += [n for n in dataset.outputs() if n not in names and n != "id"]
    return tuple(Column(n) for n in names)


# -- parameters and tokens -------------------------------------------------------------------


def resolve_token(value: str, today: dt.date) -> dt.date | None:
    """Return the date a token like `@today-30` or `@month+1` names (None: not a token)."""
    found = DATE_TOKEN.match(value.strip())
    if found is None:
        return None
    offset = int(found.group(2) or 0)
    if found.group(1) == "today":
        return today + dt.timedelta(days=offset)
    months = today.year * 12 + today.month - 1 + offset
    return dt.date(months // 12, months % 12 + 1, 1)


def resolve_params(
    params: Sequence[Param], given: Mapping[str, Any], today: dt.date
) -> dict[str, Any]:
    """Return each parameter's checked value (None when empty); raise BadQuery naming every
    parameter whose value is missing or not understood."""
    values: dict[str, Any] = {}
    errors: list[FieldError] = []
    for param in params:
        raw = given.get(param.name)
        if isinstance(raw, list | tuple):
            raw = raw[0] if raw else None
        if raw in (None, "") and param.default is not None:
            raw = str(param.default)
        if raw in (None, ""):
            values[param.name] = None
            if param.required:
                errors.append(FieldError(param.name, "required"))
            continue
        try:
            values[param.name] = _convert(param, str(raw).strip(), today)
        except ValueError as exc:
            errors.append(FieldError(param.name, "invalid", {"detail": f"{param.name}: {exc}"}))
    if errors:
        raise BadQuery(errors)
    return values


def _convert(param: Param, raw: str, today: dt.date) -> Any:
    if len(raw) > MAX_PARAM_LENGTH:
        raise ValueError(f"longer than {MAX_PARAM_LENGTH} characters")
    if param.type == "date":
        token = resolve_token(raw, today)
        if token is not None:
            return token
        try:
            return dt.date.fromisoformat(raw)
        except ValueError:
            raise ValueError(f"'{raw}' is not a date (YYYY-MM-DD)") from None
    if param.type in ("entity", "integer"):
        if not re.fullmatch(r"-?[0-9]{1,18}", raw) or (param.type == "entity" and int(raw) < 1):
            raise ValueError(f"'{raw}' is not a record id" if param.entity else "not an integer")
        return int(raw)
    if param.type == "number":
        try:
            return Decimal(raw)
        except InvalidOperation:
            raise ValueError(f"'{raw}' is not a number") from None
    return raw


def fill_filters(
    filters: Mapping[str, str], values: Mapping[str, Any], today: dt.date
) -> dict[str, list[str]]:
    """Return the filters as query parameters: `{param}` replaced by its value (a filter
    whose parameter is empty is dropped) and date tokens turned into dates."""
    out: dict[str, list[str]] = {}
    for name, template in filters.items():
        wanted = PLACEHOLDER.findall(template)
        if any(values.get(p) in (None, "") for p in wanted):
            continue
        filled = PLACEHOLDER.sub(lambda m: _as_text(values[m.group(1)]), template)
        token = resolve_token(filled, today)
        out[name] = [token.isoformat() if token is not None else filled]
    return out


def _as_text(value: Any) -> str:
    return value.isoformat() if isinstance(value, dt.date) else str(value)


# -- dashboards -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Widget:
    """One tile of a dashboard."""

    report: str
    view: str = "chart"
    column: str | None = None
    width: int = 6
    title: Mapping[str, str] | None = None


@dataclass(frozen=True)
class DashboardDef:
    """A dashboard of a pack."""

    pack: str
    name: str
    title: Mapping[str, str]
    params: tuple[Param, ...]
    widgets: tuple[Widget, ...]


def parse_dashboard(pack: str, document: Mapping[str, Any]) -> DashboardDef:
    """Return the normalised dashboard."""
    widgets = tuple(
        Widget(
            str(w["report"]),
            str(w.get("view") or "chart"),
            w.get("column"),
            int(w.get("width") or 6),
            w.get("title"),
        )
        for w in document.get("widgets", ())
    )
    params = tuple(_param(p) for p in document.get("params", ()))
    return DashboardDef(pack, str(document["name"]), document.get("title") or {}, params, widgets)
