"""Labels of a report's columns in the viewer's locale, and the text shown for raw values:
record titles for references (one query per column), user names, option labels."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from formwork.runtime.definitions import FieldDef
from formwork.runtime.fields.choice import SelectType, option_label
from formwork.runtime.fields.relation import ReferenceType, UserType
from formwork.runtime.registry import Registry
from formwork.runtime.reports.definition import Column, ReportDef, text
from formwork.runtime.security import Principal
from formwork.runtime.titles import record_titles, user_names

if TYPE_CHECKING:
    from formwork.runtime.reports.engine import ResultColumn

MEASURE_NAMES = {
    "zh-CN": {"sum": "合计", "avg": "平均", "min": "最小", "max": "最大", "count": "数量"},
    "en": {"sum": "Total", "avg": "Average", "min": "Min", "max": "Max", "count": "Count"},
}


class Labeller:
    """Build result columns for one locale."""

    def __init__(self, session: Session, registry: Registry, principal: Principal) -> None:
        self.session = session
        self.registry = registry
        self.principal = principal
        self.locale = principal.locale

    def column(
        self,
        report: ReportDef,
        column: Column,
        source: tuple[FieldDef | None, str] | None,
        rows: list[dict[str, Any]],
    ) -> ResultColumn:
        """Return the result column: label, format and the shown text of its values."""
        from formwork.runtime.reports.engine import ResultColumn

        fd, owner = source or (None, "")
        label = text(column.label, self.locale) or self._default_label(report, column.name, fd)
        values = {r.get(column.name) for r in rows if r.get(column.name) is not None}
        display = self._display(owner, fd, values)
        fmt = column.format or _default_format(fd)
        return ResultColumn(column.name, label, fmt, display=display)

    def _default_label(self, report: ReportDef, name: str, fd: FieldDef | None) -> str:
        for dataset in report.datasets:
            for group in dataset.groups:
                if group.name == name:
                    return text(group.label, self.locale) or self._field_label(dataset, group.path)
            for measure in dataset.measures:
                if measure.name == name:
                    own = text(measure.label, self.locale)
                    word = MEASURE_NAMES.get(self.locale, MEASURE_NAMES["en"])[measure.function]
                    if own or not measure.field:
                        return own or word
                    return f"{self._field_label(dataset, measure.field)} {word}"
        return fd.label(self.locale) if fd is not None else name

    def _field_label(self, dataset: Any, path: str) -> str:
        meta = self.registry.meta(dataset.entity)
        head, _, tail = path.partition(".")
        fd = meta.entity.get_field(head)
        if fd is None:
            return path
        if tail and (target := fd.kind.join_target(fd, meta.entity)) is not None:
            inner = self.registry.meta(target).entity.get_field(tail)
            return f"{fd.label(self.locale)} · {inner.label(self.locale) if inner else tail}"
        return fd.label(self.locale)

    def _display(self, owner: str, fd: FieldDef | None, values: Iterable[Any]) -> dict[Any, str]:
        if fd is None:
            return {}
        wanted = [v for v in values if v is not None]
        if isinstance(fd.kind, UserType):
            return dict(user_names(self.session, (v for v in wanted if isinstance(v, int))))
        if isinstance(fd.kind, ReferenceType):
            target = fd.kind.target(fd, self.registry.entity(owner))
            ids = [v for v in wanted if isinstance(v, int)]
            # Titles as the viewer reads them: a record outside their rows is "(no access)".
            return record_titles(
                self.session, self.registry, target, ids, self.principal, self.locale
            )
        if isinstance(fd.kind, SelectType):
            return {v: option_label(fd, v, self.locale) for v in wanted if isinstance(v, str)}
        return {}


def _default_format(fd: FieldDef | None) -> str | None:
    if fd is None:
        return None
    return {
        "money": "money",
        "percent": "percent",
        "date": "date",
        "datetime": "date",
        "integer": "number",
        "decimal": "number",
    }.get(fd.kind.name)


def as_json(value: Any) -> Any:
    """Return a value as JSON: exact decimals as strings, dates as ISO text."""
    from decimal import Decimal

    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def titles_of(columns: Iterable[ResultColumn]) -> Mapping[str, Mapping[str, str]]:
    """Return {column: {raw value: shown text}} for the columns that show titles."""
    return {c.name: {str(k): v for k, v in c.display.items()} for c in columns if c.display}
