"""List views: columns, sort, filter bar, quick search, pages, bulk delete and export."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flask import Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from formwork.context import get_session, registry
from formwork.redirects import redirect_target
from formwork.runtime.errors import BadQuery, Conflict, NotFound
from formwork.runtime.params import check_query, parse_id
from formwork.runtime.query import MAX_PER_PAGE, list_records
from formwork.runtime.registry import EntityMeta
from formwork.web import bp
from formwork.web.context import (
    begin_transaction,
    entity_meta,
    list_for,
    lookups_for,
    principal,
    service,
)
from formwork.web.exports import export_response
from formwork.web.filters import FilterBar, filter_params, quick_search
from formwork.web.i18n import current_locale
from formwork.web.layouts import ListLayout
from formwork.web.widgets import filter_for, widget

UI_PARAMS = frozenset({"f", "lookup_q"})


@dataclass
class Column:
    """One list column: its field, header, and the sort links."""

    name: str
    label: str
    sortable: bool
    sort_url: str
    sorted: str  # "", "asc" or "desc"
    numeric: bool


@bp.get("/app/<pack>/<entity>")
@login_required
def list_view(pack: str, entity: str) -> Any:
    """Show one page of records with the filter bar, sort headers and pages."""
    meta = entity_meta(pack, entity)
    layout = list_for(meta)
    params = effective_params(layout)
    error = None
    who = principal()
    try:
        check_query(params)
        page = list_records(
            get_session(),
            registry(),
            meta,
            filter_params(params),
            _extra(meta, layout, params),
            principal=who,
        )
    except BadQuery as exc:
        error = "; ".join(e.message(current_locale()) for e in exc.errors)
        params = {"per_page": [str(layout.per_page)]}
        page = list_records(get_session(), registry(), meta, params, principal=who)
    context = _list_context(meta, layout, params, page)
    template = "web/_list_results.html" if _wants_partial() else "web/list.html"
    return render_template(template, error=error, **context)


def effective_params(layout: ListLayout) -> dict[str, list[str]]:
    """Return the query parameters: the request's, or the layout's defaults on first visit."""
    raw = request.args.to_dict(flat=False)
    if not raw:
        raw = {k: [v] for k, v in layout.filters.items()}
        raw["sort"] = [layout.sort]
    params = {k: [v for v in vs if v != ""] for k, vs in raw.items() if k not in UI_PARAMS}
    params = {k: vs for k, vs in params.items() if vs}
    params.setdefault("sort", [layout.sort])
    params.setdefault("per_page", [str(layout.per_page)])
    return params


def _extra(meta: EntityMeta, layout: ListLayout, params: Mapping[str, Sequence[str]]) -> list[Any]:
    condition = quick_search(meta, layout.search, (params.get("q") or [""])[0])
    return [condition] if condition is not None else []


def _wants_partial() -> bool:
    return bool(request.headers.get("HX-Request")) and not request.headers.get("HX-Boosted")


def _list_context(
    meta: EntityMeta, layout: ListLayout, params: dict[str, list[str]], page: Any
) -> dict[str, Any]:
    locale = current_locale()
    lookups = lookups_for(meta, page.items)
    rows = [
        {
            "id": item["id"],
            "version": item["version"],
            "title": _title(meta, item),
            "cells": [widget(fd).display(fd, item.get(fd.name), lookups) for fd in layout.columns],
        }
        for item in page.items
    ]
    who = principal()
    return {
        "meta": meta,
        "entity": meta.entity,
        "label": meta.entity.label(locale),
        "columns": _columns(meta, layout, params),
        "rows": rows,
        "page": page,
        "pages": _pages(page),
        "page_url": lambda n: _url(meta, params, page=str(n)),
        "bar": FilterBar(meta, layout, params, lookups),
        "query_string": request.query_string.decode("latin-1"),
        "can_create": who.can(meta.entity.key, "create"),
        "can_delete": who.can(meta.entity.key, "delete"),
        "q": (params.get("q") or [""])[0],
        "sort": (params.get("sort") or [""])[0],
    }


def _title(meta: EntityMeta, item: Mapping[str, Any]) -> str:
    name = meta.entity.title_field
    value = item.get(name) if name else None
    return str(value) if value not in (None, "") else f"#{item['id']}"


def _columns(meta: EntityMeta, layout: ListLayout, params: dict[str, list[str]]) -> list[Column]:
    current = (params.get("sort") or [""])[0]
    out = []
    for fd in layout.columns:
        sortable = fd.kind.sortable and fd.kind.stored
        state = "asc" if current == fd.name else ("desc" if current == f"-{fd.name}" else "")
        next_sort = f"-{fd.name}" if state == "asc" else fd.name
        out.append(
            Column(
                fd.name,
                fd.label(current_locale()),
                sortable,
                _url(meta, params, sort=next_sort, page="1"),
                state,
                filter_for(fd) == "number_range",
            )
        )
    return out


def _url(meta: EntityMeta, params: Mapping[str, list[str]], **changes: str) -> str:
    merged: dict[str, Any] = {k: list(v) for k, v in params.items()}
    merged.update({k: [v] for k, v in changes.items()})
    merged["f"] = ["1"]
    return url_for("web.list_view", pack=meta.entity.pack, entity=meta.entity.name, **merged)


def _pages(page: Any) -> dict[str, Any]:
    last = (
        None
        if page.total_capped or page.total < 0
        else max(1, math.ceil(page.total / page.per_page))
    )
    has_next = len(page.items) == page.per_page and (last is None or page.page < last)
    return {"last": last, "has_next": has_next, "has_prev": page.page > 1}


@bp.post("/app/<pack>/<entity>/bulk-delete")
@login_required
def bulk_delete(pack: str, entity: str) -> Any:
    """Delete the ticked records, all or none."""
    meta = entity_meta(pack, entity, "delete")
    ticked = request.form.getlist("ids")
    ids = [n for n in (parse_id(v) for v in ticked) if n is not None]
    target = redirect_target(
        request.form.get("back"), url_for("web.list_view", pack=pack, entity=entity)
    )
    if not ids:
        flash(_("Tick the records to delete first."), "warning")
        return redirect(target)
    if len(ticked) > MAX_PER_PAGE:  # a page shows at most this many
        flash(_("Delete at most %(n)d records at a time.", n=MAX_PER_PAGE), "danger")
        return redirect(target)
    records = service()
    begin_transaction()
    try:
        for ticked_id in ids:
            records.delete(meta.entity.key, ticked_id)
    except (Conflict, NotFound) as exc:
        records.session.rollback()
        flash(_("Nothing was deleted: %(reason)s", reason=_delete_reason(exc)), "danger")
        return redirect(target)
    records.session.commit()
    flash(_("%(count)d record(s) deleted.", count=len(ids)), "success")
    return redirect(target)


def _delete_reason(exc: Exception) -> str:
    if isinstance(exc, Conflict):
        return _("a record is still referenced by other records (%(detail)s)", detail=str(exc))
    return _("a record no longer exists (%(detail)s)", detail=str(exc))


@bp.get("/app/<pack>/<entity>/export.<fmt>")
@login_required
def export_view(pack: str, entity: str, fmt: str) -> Response:
    """Download every record of the current filter as .xlsx or .csv."""
    meta = entity_meta(pack, entity, "export")
    if fmt not in ("xlsx", "csv"):
        raise NotFound(f"no export format {fmt}")
    layout = list_for(meta)
    params = effective_params(layout)
    check_query(params)
    conditions = filter_params(params)
    return export_response(meta, layout, conditions, _extra(meta, layout, params), fmt)
