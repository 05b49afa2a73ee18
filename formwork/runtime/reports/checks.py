"""Check a pack's reports and dashboards against its entities: every problem with a stable
id and a JSON pointer (unknown entities and fields, names no dataset produces, expressions
the safe evaluator refuses, unknown `{param}` placeholders, widgets naming unknown reports)."""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from formwork.runtime.definitions import EntityDef
from formwork.runtime.expressions import ExpressionError, check, expression_names
from formwork.runtime.query import OPERATORS
from formwork.runtime.reports.definition import (
    PLACEHOLDER,
    Dataset,
    ReportDef,
    parse_report,
    resolve_token,
)

Found = tuple[str, str, str, str]  # (where, code, message, hint)


def _trusted(lookup: Any, name: str) -> bool:
    # A lookup may say which names it cannot see into (a dependency that is not installed
    # while a pack is checked on its own): those are taken on trust, not reported.
    trusted = getattr(lookup, "trusted", None)
    return bool(trusted(name)) if trusted is not None else False


_TODAY = dt.date(2000, 1, 1)  # tokens are checked for their form, not their value
Lookup = Callable[[str], EntityDef | None]
SYSTEM = ("id", "created_at", "updated_at", "created_by", "updated_by", "version")
UNKNOWN, NOT_PRODUCED, BAD_EXPRESSION, BAD_PARAM = (
    "pack.E031",
    "pack.E032",
    "pack.E033",
    "pack.E034",
)


def check_report(pack: str, document: Mapping[str, Any], lookup: Lookup) -> Iterator[Found]:
    """Yield the cross-reference problems of one report file."""
    try:
        report = parse_report(pack, document)
    except (KeyError, TypeError, ValueError, AttributeError):
        return  # the meta-schema check reports the malformed document
    single = "datasets" not in document
    for i, dataset in enumerate(report.datasets):
        where = "" if single else f"/datasets/{i}"
        yield from _dataset(dataset, where, lookup)
    yield from _params(document, report, lookup)
    yield from _names(report)
    yield from _chart(report)


def _dataset(dataset: Dataset, where: str, lookup: Lookup) -> Iterator[Found]:
    entity = lookup(dataset.entity)
    if entity is None and _trusted(lookup, dataset.entity):
        return
    if entity is None:
        yield f"{where}/entity", UNKNOWN, f"unknown entity '{dataset.entity}'", _did_you_mean()
        return
    for j, group in enumerate(dataset.groups):
        yield from _path(entity, group.path, f"{where}/group/{j}", lookup)
    for j, measure in enumerate(dataset.measures):
        if measure.field:
            problem = _path_problem(entity, measure.field, lookup, measure.function)
            if problem:
                yield f"{where}/measures/{j}/field", UNKNOWN, *problem
    for name in dataset.filters:
        path, _, op = name.rpartition("__") if "__" in name else (name, "", "eq")
        if op not in OPERATORS:
            yield f"{where}/filters/{name}", UNKNOWN, f"unknown operator '{op}'", f"use {OPERATORS}"
        else:
            yield from _path(entity, path, f"{where}/filters/{name}", lookup)
    for j, path in enumerate(dataset.fields):
        yield from _path(entity, path, f"{where}/fields/{j}", lookup)
    for part in filter(None, dataset.sort.split(",")):
        yield from _path(entity, part.lstrip("-"), f"{where}/sort", lookup)


def _path(entity: EntityDef, path: str, where: str, lookup: Lookup) -> Iterator[Found]:
    problem = _path_problem(entity, path, lookup)
    if problem:
        yield where, UNKNOWN, *problem


def _path_problem(
    entity: EntityDef, path: str, lookup: Lookup, function: str = ""
) -> tuple[str, str] | None:
    head, _, tail = path.partition(".")
    if head in SYSTEM and not tail:
        return None
    fd = entity.get_field(head)
    if fd is None:
        return f"unknown field '{head}' of {entity.key}", _close(head, entity)
    if tail:
        target_key = fd.kind.join_target(fd, entity)
        target = lookup(target_key) if target_key else None
        if target is None and target_key and _trusted(lookup, target_key):
            return None
        if target is None:
            return f"'{head}' of {entity.key} is not a reference to follow", ""
        if tail not in SYSTEM and target.get_field(tail) is None:
            return f"unknown field '{tail}' of {target.key}", _close(tail, target)
        fd = target.get_field(tail) or fd
    if function in ("sum", "avg") and not fd.kind.can_aggregate(fd):
        return f"cannot {function} '{path}' (not a number)", "use count, min or max"
    return None


def _params(document: Mapping[str, Any], report: ReportDef, lookup: Lookup) -> Iterator[Found]:
    names = {p.name for p in report.params}
    for i, param in enumerate(report.params):
        entity_key = _qualified(report.pack, param.entity) if param.entity else ""
        if entity_key and lookup(entity_key) is None and not _trusted(lookup, entity_key):
            yield f"/params/{i}/entity", UNKNOWN, f"unknown entity '{param.entity}'", ""
        default = param.default
        token = isinstance(default, str) and default.startswith("@")
        if param.type == "date" and token and resolve_token(str(default), _TODAY) is None:
            hint = "use @today, @today-N, @today+N, @month-N or @month+N"
            yield f"/params/{i}/default", BAD_PARAM, f"'{default}' is not a date token", hint
    single = "datasets" not in document
    for i, dataset in enumerate(report.datasets):
        where = "/filters" if single else f"/datasets/{i}/filters"
        for name, template in dataset.filters.items():
            for used in PLACEHOLDER.findall(template):
                if used not in names:
                    hint = _suggest(used, names) or "declare it under params"
                    yield f"{where}/{name}", BAD_PARAM, f"unknown parameter '{{{used}}}'", hint
            bare = PLACEHOLDER.sub("", template)
            if bare.startswith("@") and resolve_token(template, _TODAY) is None:
                yield f"{where}/{name}", BAD_PARAM, f"'{template}' is not a date token", ""


def _names(report: ReportDef) -> Iterator[Found]:
    aggregates = [d for d in report.datasets if not d.rows]
    for name in report.key:
        for d in aggregates:
            if name not in d.outputs():
                yield (
                    "/key",
                    NOT_PRODUCED,
                    f"key '{name}' is not a group of dataset '{d.name}'",
                    ("every aggregate dataset must group by each key"),
                )
    known = set(report.produced())
    for i, column in enumerate(report.columns):
        if column.running is not None:
            if column.running not in known:
                yield f"/columns/{i}/running", NOT_PRODUCED, *_not_produced(column.running, known)
        elif column.expression is None:
            if column.name not in known:
                yield f"/columns/{i}/name", NOT_PRODUCED, *_not_produced(column.name, known)
        else:
            yield from _expression(column.expression, f"/columns/{i}/expression", known)
        known.add(column.name)
    for i, (when, _style) in enumerate(report.highlight):
        yield from _expression(when, f"/highlight/{i}/when", known)
    for i, name in enumerate(report.totals):
        if name not in known:
            yield f"/totals/{i}", NOT_PRODUCED, *_not_produced(name, known)
    if report.sort and report.sort.lstrip("-") not in known:
        yield "/sort", NOT_PRODUCED, *_not_produced(report.sort.lstrip("-"), known)


def _expression(text: str, where: str, known: set[str]) -> Iterator[Found]:
    try:
        check(text)
    except ExpressionError as exc:
        yield where, BAD_EXPRESSION, str(exc), ""
        return
    for name in sorted(expression_names(text) - known):
        yield where, BAD_EXPRESSION, f"unknown name '{name}'", _suggest(name, known)


def _chart(report: ReportDef) -> Iterator[Found]:
    chart = report.chart
    known = set(report.produced()) | {c.name for c in report.columns}
    if chart.get("dataset") and chart["dataset"] not in {d.name for d in report.datasets}:
        yield "/chart/dataset", NOT_PRODUCED, f"unknown dataset '{chart['dataset']}'", ""
    keys = ("x", "split", "id", "name", "start", "end", "actual_start", "actual_end", "progress")
    for key in (*keys, "dependencies", "milestone", "status"):
        value = chart.get(key)
        if isinstance(value, str) and value not in known:
            yield f"/chart/{key}", NOT_PRODUCED, *_not_produced(value, known)
    for i, name in enumerate(chart.get("series", ())):
        if name not in known:
            yield f"/chart/series/{i}", NOT_PRODUCED, *_not_produced(name, known)


def check_dashboard(
    pack: str, document: Mapping[str, Any], reports: Mapping[str, Mapping[str, Any]], lookup: Lookup
) -> Iterator[Found]:
    """Yield the problems of one dashboard: unknown reports, columns and parameter entities."""
    for i, param in enumerate(document.get("params", ())):
        entity = param.get("entity") if isinstance(param, Mapping) else None
        key = _qualified(pack, entity) if isinstance(entity, str) else ""
        if key and lookup(key) is None and not _trusted(lookup, key):
            yield f"/params/{i}/entity", "pack.E036", f"unknown entity '{entity}'", ""
    for i, widget in enumerate(document.get("widgets", ())):
        if not isinstance(widget, Mapping):
            continue
        name = widget.get("report")
        found = reports.get(str(name))
        if found is None:
            hint = _suggest(str(name), set(reports)) or "list the report under files.reports"
            yield f"/widgets/{i}/report", "pack.E036", f"unknown report '{name}'", hint
            continue
        column = widget.get("column")
        if column is not None:
            yield from _widget_column(pack, found, str(column), f"/widgets/{i}/column")


def _widget_column(
    pack: str, document: Mapping[str, Any], column: str, where: str
) -> Iterator[Found]:
    try:
        report = parse_report(pack, document)
    except (KeyError, TypeError, ValueError, AttributeError):
        return
    known = set(report.produced()) | {c.name for c in report.columns}
    if column not in known:
        message, hint = _not_produced(column, known)
        yield where, "pack.E036", f"report '{report.name}': {message}", hint


def _not_produced(name: str, known: Iterable[str]) -> tuple[str, str]:
    return f"'{name}' is not produced by any dataset or earlier column", _suggest(name, set(known))


def _suggest(name: str, known: set[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f"did you mean '{close[0]}'?" if close else ""


def _close(name: str, entity: EntityDef) -> str:
    return _suggest(name, set(entity.field_map))


def _did_you_mean() -> str:
    return "name an entity of this pack or a dependency"


def _qualified(pack: str, name: str) -> str:
    return name if "." in name else f"{pack}.{name}"
