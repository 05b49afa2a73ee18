"""The list filter bar: one control per filter field, by the field's widget kind, and the
quick search over the layout's search fields."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _

from formwork.context import get_session, registry
from formwork.runtime.fields.choice import option_label
from formwork.runtime.models import User
from formwork.runtime.params import parse_id
from formwork.runtime.registry import EntityMeta
from formwork.runtime.titles import record_titles
from formwork.web.context import principal
from formwork.web.i18n import current_locale
from formwork.web.layouts import ListLayout
from formwork.web.widgets import Lookups, filter_for

RANGE_KINDS = frozenset({"number_range", "date_range"})


@dataclass
class FilterControl:
    """One control of the filter bar."""

    kind: str
    name: str
    label: str
    values: dict[str, str] = field(default_factory=dict)  # parameter name -> current value
    options: list[tuple[str, str]] = field(default_factory=list)
    title: str = ""  # the chosen reference's title
    target: str = ""  # the referenced entity key


class FilterBar:
    """The filter bar of a list view, with the current values filled in."""

    def __init__(
        self,
        meta: EntityMeta,
        layout: ListLayout,
        params: Mapping[str, Sequence[str]],
        lookups: Lookups,
    ) -> None:
        self.controls = [self._control(meta, fd, params, lookups) for fd in layout.filter_fields]
        self.active = sum(1 for c in self.controls for v in c.values.values() if v)

    def _control(
        self, meta: EntityMeta, fd: Any, params: Mapping[str, Sequence[str]], lookups: Lookups
    ) -> FilterControl:
        kind = filter_for(fd) or "text"
        locale = current_locale()
        control = FilterControl(kind, fd.name, fd.label(locale))
        names = {
            "number_range": ("gte", "lte"),
            "date_range": ("gte", "lte"),
            "text": ("contains",),
        }.get(kind, ("eq",))
        for op in names:
            param = f"{fd.name}__{op}"
            control.values[param] = (params.get(param) or [""])[0]
        if kind == "select":
            control.options = [
                (str(o["value"]), option_label(fd, o["value"], locale)) for o in fd.opt("options")
            ]
        elif kind == "boolean":
            control.options = [("true", _("Yes")), ("false", _("No"))]
        elif kind == "user":
            control.options = active_users()
        elif kind == "reference":
            control.target = fd.kind.target(fd, meta.entity)
            chosen = parse_id(control.values[f"{fd.name}__eq"])
            if chosen is not None:
                found = record_titles(
                    get_session(), registry(), control.target, [chosen], principal(), locale
                )
                control.title = found.get(chosen, f"#{chosen}")
        return control


def active_users() -> list[tuple[str, str]]:
    """Return (id, name) of active users for user pickers (at most 500)."""
    rows = get_session().execute(
        sa.select(User.id, User.display_name, User.username)
        .where(User.is_active.is_(True))
        .order_by(User.username)
        .limit(500)
    )
    return [(str(r[0]), r[1] or r[2]) for r in rows]


def quick_search(meta: EntityMeta, names: Sequence[str], text: str) -> Any:
    """Return an OR of case-insensitive `contains` over the search fields, or None."""
    text = text.strip()
    if not text or not names:
        return None
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    columns = [meta.table.c[n] for n in names if n in meta.table.c]
    if not columns:
        return None
    return sa.or_(*(sa.cast(c, sa.String).ilike(pattern, escape="\\") for c in columns))


def filter_params(params: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Return the parameters with the search text removed (the caller adds its own search)."""
    return {k: list(v) for k, v in params.items() if k not in ("q", "f", "lookup_q")}
