"""What callers send in query strings and forms, read one way everywhere: whole numbers
(ASCII digits only, within what a 64-bit column holds) and the bounds on every list a query
takes (sort terms, filters, `in` values, groups, measures, the search text).

Both classes of mistake were 500s or worse: `'²'.isdigit()` is true yet `int('²')` raises;
an id past 2**63 - 1 fails in the database driver; 63 sort terms through a joined column
crashed SQLite 3.40 in the worker process. The bounds are checked before any SQL is built
and every problem names its parameter.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from formwork.runtime.errors import BadQuery, FieldError

MAX_SQL_INT = 2**63 - 1
_WHOLE = re.compile(r"-?[0-9]{1,19}")

RESERVED = frozenset({"sort", "page", "per_page", "q", "count"})
AGGREGATE_LISTS = ("group", "sum", "avg", "min", "max")


@dataclass(frozen=True)
class QueryBounds:
    """How long each list a caller sends in one query may be."""

    sort_terms: int = 5
    filters: int = 30
    in_values: int = 200
    groups: int = 5
    measures: int = 12
    search_length: int = 200
    value_length: int = 1_000


BOUNDS = QueryBounds()


def whole_number(text: str | None, low: int = -MAX_SQL_INT, high: int = MAX_SQL_INT) -> int | None:
    """Return the integer written in ASCII digits (an optional '-') when it lies within
    [low, high]; None for anything else (other scripts' digits, '²', 20 digits, '1.0')."""
    if text is None:
        return None
    text = text.strip()
    if not _WHOLE.fullmatch(text):
        return None
    value = int(text)
    return value if low <= value <= high else None


def parse_id(text: str | None) -> int | None:
    """Return a record id (1 to 2**63 - 1) written in ASCII digits, else None."""
    return whole_number(text, 1, MAX_SQL_INT)


def check_query(
    params: Mapping[str, Sequence[str]],
    *,
    reserved: Collection[str] = RESERVED,
    bounds: QueryBounds = BOUNDS,
) -> None:
    """Raise BadQuery naming every parameter whose list (or text) is longer than allowed."""
    errors = _list_errors(params, bounds) + _filter_errors(params, reserved, bounds)
    if errors:
        raise BadQuery(errors)


def check_aggregate(params: Mapping[str, Sequence[str]], bounds: QueryBounds = BOUNDS) -> None:
    """Raise BadQuery when an aggregate asks for too many groups, measures or filters."""
    errors = []
    groups = _terms(params, "group")
    if groups > bounds.groups:
        errors.append(_too_many("group", bounds.groups, groups))
    measures = sum(_terms(params, name) for name in AGGREGATE_LISTS[1:])
    if measures > bounds.measures:
        errors.append(_too_many("sum", bounds.measures, measures))
    if errors:
        raise BadQuery(errors)
    check_query(params, reserved={*RESERVED, *AGGREGATE_LISTS, "limit"}, bounds=bounds)


def check_search(text: str, bounds: QueryBounds = BOUNDS) -> None:
    """Raise BadQuery when a quick-search text is longer than allowed."""
    if len(text) > bounds.search_length:
        raise BadQuery([_too_long("q", bounds.search_length)])


def _list_errors(params: Mapping[str, Sequence[str]], bounds: QueryBounds) -> list[FieldError]:
    errors = []
    sort = _first(params, "sort")
    terms = len([t for t in sort.split(",") if t])
    if terms > bounds.sort_terms:
        errors.append(_too_many("sort", bounds.sort_terms, terms))
    if len(_first(params, "q")) > bounds.search_length:
        errors.append(_too_long("q", bounds.search_length))
    return errors


def _filter_errors(
    params: Mapping[str, Sequence[str]], reserved: Collection[str], bounds: QueryBounds
) -> list[FieldError]:
    errors = []
    filters = [(name, values) for name, values in params.items() if name not in reserved]
    count = sum(len(values) for _name, values in filters)
    if count > bounds.filters:
        errors.append(_too_many("filters", bounds.filters, count))
    for name, values in filters:
        if any(len(value) > bounds.value_length for value in values):
            errors.append(_too_long(name, bounds.value_length))
        elif name.endswith("__in"):
            longest = max((value.count(",") + 1 for value in values), default=0)
            if longest > bounds.in_values:
                errors.append(_too_many(name, bounds.in_values, longest))
    return errors


def _first(params: Mapping[str, Sequence[str]], name: str) -> str:
    values = params.get(name) or [""]
    return values[0] or ""


def _terms(params: Mapping[str, Sequence[str]], name: str) -> int:
    return sum(len([t for t in value.split(",") if t]) for value in params.get(name, ()))


def _too_many(name: str, limit: int, given: int) -> FieldError:
    return FieldError(name, "too_many_terms", {"name": name, "limit": limit, "given": given})


def _too_long(name: str, limit: int) -> FieldError:
    return FieldError(name, "too_long_parameter", {"name": name, "limit": limit})
