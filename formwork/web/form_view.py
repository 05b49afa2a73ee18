"""What a form template draws for each field: the widget macro and everything it needs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import url_for

from formwork.runtime.definitions import FieldDef
from formwork.runtime.messages import pick_label
from formwork.runtime.params import parse_id
from formwork.runtime.registry import EntityMeta
from formwork.web.filters import active_users
from formwork.web.forms import FormState, lookup_include
from formwork.web.i18n import current_locale
from formwork.web.layouts import FormField, read_only_copy
from formwork.web.widgets import Lookups, ReadOnlyWidget, SelectWidget, widget


@dataclass
class FieldView:
    """One input (or read-only value) ready for its macro."""

    macro: str
    fd: FieldDef
    name: str
    id: str
    value: Any
    attrs: dict[str, Any]
    errors: list[str]
    o: dict[str, Any]
    span: int = 1


def field_view(
    meta: EntityMeta,
    fd: FieldDef,
    raw: Any,
    *,
    name: str,
    errors: list[str],
    lookups: Lookups,
    computed: Any = None,
    placed: FormField | None = None,
    grid: str | None = None,
) -> FieldView:
    """Return the view of one field of `meta` (a line-item cell when `grid` is given)."""
    locale = current_locale()
    found = widget(fd)
    options: dict[str, Any] = {
        "label": fd.label(locale),
        "compact": grid is not None,
        "help": pick_label((placed.help if placed else None) or fd.opt("help"), locale) or None,
        "style": placed.widget if placed else "default",
    }
    macro = found.macro
    if placed is not None and placed.widget == "textarea" and macro == "text":
        macro = "textarea"
    if fd.read_only and not isinstance(found, ReadOnlyWidget) and not fd.kind.holds_rows:
        # Read-only for this user's role: shown as its value, never posted.
        macro = "read_only"
        options["display"] = found.display(fd, computed, lookups)
        options["raw"] = computed
        options["numeric"] = found.filter == "number_range"
    elif isinstance(found, SelectWidget):
        options["options"] = found.options(fd, locale)
    elif macro == "user":
        options["options"] = active_users()
    elif macro == "reference":
        chosen = parse_id(str(raw))
        options["title"] = lookups.titles.get(fd.name, {}).get(chosen or -1, "")
        # Line items are looked up through their parent: `_row_view` sets the URL.
        options["lookup_url"] = url_for(
            "web.lookup", pack=meta.entity.pack, entity=meta.entity.name, field=fd.name
        )
        options["lookup_include"] = lookup_include(fd)
    elif macro == "attachment":
        current = raw if isinstance(raw, list) else ([raw] if raw else [])
        options["current"] = current
        options["display"] = found.display(fd, raw or None, lookups)
    elif isinstance(found, ReadOnlyWidget):
        options["display"] = found.display(fd, computed, lookups)
        options["raw"] = computed
        options["numeric"] = found.inner(fd).filter == "number_range"
    element_id = name.replace(".", "-")
    span = placed.span if placed else 1
    return FieldView(macro, fd, name, element_id, raw, found.attrs(fd), errors, options, span)


def section_views(
    meta: EntityMeta, fields: tuple[FormField, ...], state: FormState, lookups: Lookups
) -> list[FieldView | GridView]:
    """Return the views of one section's fields (grids for line items)."""
    out: list[FieldView | GridView] = []
    for placed in fields:
        fd = placed.field
        if fd.kind.holds_rows:
            out.append(grid_view(meta, fd, state, lookups))
            continue
        out.append(
            field_view(
                meta,
                fd,
                state.raw.get(fd.name, ""),
                name=fd.name,
                errors=state.errors.get(fd.name, []),
                lookups=lookups,
                computed=state.computed.get(fd.name),
                placed=placed,
            )
        )
    return out


@dataclass
class GridView:
    """A line-item grid: its columns, rows of cell views, and a blank row template."""

    macro: str
    fd: FieldDef
    name: str
    label: str
    columns: list[FieldDef]
    rows: list[dict[str, Any]]
    blank: dict[str, Any]
    errors: list[str]
    totals: list[str]
    span: int = 4


def grid_view(meta: EntityMeta, fd: FieldDef, state: FormState, lookups: Lookups) -> GridView:
    """Return the grid of a children field with its rows as typed or stored."""
    child = dict(meta.children)[fd.name]
    hidden, locked = _line_rules(meta, fd.name)
    columns = [
        read_only_copy(f) if f.name in locked else f
        for f in child.entity.fields
        if not f.hidden and f.name not in hidden
    ]
    rows = []
    for position, row in enumerate(state.rows.get(fd.name, [])):
        rows.append(_row_view(meta, fd.name, child, columns, row, position, state, lookups))
    blank = _row_view(
        meta, fd.name, child, columns, {"_key": "__KEY__", "id": ""}, -1, state, lookups
    )
    totals = [c.name for c in columns if widget(c).filter == "number_range" or _sums(c)]
    return GridView(
        "children",
        fd,
        fd.name,
        fd.label(current_locale()),
        columns,
        rows,
        blank,
        state.errors.get(fd.name, []),
        totals,
    )


def _sums(fd: FieldDef) -> bool:
    found = widget(fd)
    return isinstance(found, ReadOnlyWidget) and found.inner(fd).filter == "number_range"


def _line_rules(meta: EntityMeta, grid: str) -> tuple[set[str], set[str]]:
    """Return the line fields of `grid` the signed-in user may not see / may not set."""
    from formwork.web.context import principal

    who, key, prefix = principal(), meta.entity.key, f"{grid}."
    hidden = {n.removeprefix(prefix) for n in who.hidden_fields(key) if n.startswith(prefix)}
    locked = {
        n.removeprefix(prefix)
        for action in ("create", "update")
        for n in who.read_only_fields(key, action)
        if n.startswith(prefix)
    }
    return hidden, locked


def _row_view(
    meta: EntityMeta,
    grid: str,
    child: EntityMeta,
    columns: list[FieldDef],
    row: dict[str, Any],
    position: int,
    state: FormState,
    lookups: Lookups,
) -> dict[str, Any]:
    key = row["_key"]
    cells = []
    for fd in columns:
        errors = state.errors.get(f"{grid}.{position}.{fd.name}", []) if position >= 0 else []
        cells.append(
            field_view(
                child,
                fd,
                row.get(fd.name, ""),
                name=f"{grid}-{key}-{fd.name}",
                errors=errors,
                lookups=lookups,
                computed=row.get(f"_computed_{fd.name}"),
                grid=grid,
            )
        )
    for cell in cells:
        if cell.macro == "reference":
            cell.o["lookup_url"] = url_for(
                "web.lookup",
                pack=meta.entity.pack,
                entity=meta.entity.name,
                field=cell.fd.name,
                grid=grid,
                row=key,
            )
            cell.o["lookup_include"] = lookup_include(cell.fd, grid, key)
    row_errors = state.errors.get(f"{grid}.{position}", []) if position >= 0 else []
    return {"key": key, "id": row.get("id", ""), "cells": cells, "errors": row_errors}
