"""Report, dashboard and Gantt pages of packs, their exports, the parameter look-up and
the menu entries ({"report": ...} / {"dashboard": ...} items of a pack's menu.json)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, current_app, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from formwork.context import clock, get_session, registry
from formwork.runtime.errors import BadQuery, NotFound, PermissionDenied
from formwork.runtime.reports import ReportDef, ReportResult, can_read, run_report
from formwork.runtime.reports.charts import STATUSES, chart_data, number
from formwork.runtime.reports.definition import (
    DashboardDef,
    Param,
    Widget,
    parse_report,
    text,
)
from formwork.runtime.reports.store import find_dashboard, find_report, pack_documents
from formwork.runtime.security import Principal
from formwork.runtime.titles import record_titles
from formwork.web import bp
from formwork.web.context import lookup_options, principal
from formwork.web.exports import _csv_lines, _xlsx, safe_text
from formwork.web.i18n import current_locale, display_date, display_number, display_zone

WIDGET_ROWS = 20
CACHE_KEY = "formwork.web.report_menu"
STYLES = {"danger": "table-danger", "warning": "table-warning", "success": "table-success",
          "info": "table-info", "muted": "text-muted"}  # fmt: skip


def init_app(app: Flask) -> None:
    """Put the packs' report and dashboard menu items into the navigation."""
    app.extensions.setdefault("formwork.nav_providers", []).append(menu_items)


def today() -> dt.date:
    """Return today's date for date tokens: the kernel clock's day in the company's time
    zone (Asia/Shanghai by default), so `@today` is the users' calendar day."""
    return clock().today()


# -- pages --------------------------------------------------------------------------------------


@bp.get("/reports/<pack>/<name>")
@login_required
def report_page(pack: str, name: str) -> Any:
    """Show a report: parameter bar, chart, table with totals, export links."""
    report = _readable_report(pack, name)
    view = ReportView.build(report, request.args)
    status = 400 if view.error else 200
    return render_template("reports/report.html", view=view, report=report), status


@bp.get("/reports/<pack>/<name>/export.<fmt>")
@login_required
def report_export(pack: str, name: str, fmt: str) -> Response:
    """Download the report's table as .xlsx or .csv (text never becomes a formula)."""
    if fmt not in ("xlsx", "csv"):
        raise NotFound(f"no export format {fmt}")
    report = _readable_report(pack, name)
    result = _run(report, request.args)
    header = [c.label for c in result.columns]
    rows = ([_export_cell(c, row.get(c.name)) for c in result.columns] for row in result.rows)
    filename = f"{report.name}-{today().strftime('%Y%m%d')}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if fmt == "csv":
        return Response(
            _csv_lines(header, rows), mimetype="text/csv; charset=utf-8", headers=headers
        )
    data = _xlsx(text(report.title, current_locale(), report.name), header, rows)
    mimetype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return Response(data, mimetype=mimetype, headers=headers)


@bp.get("/dashboards/<pack>/<name>")
@login_required
def dashboard_page(pack: str, name: str) -> Any:
    """Show a dashboard: its shared parameters and a grid of widgets."""
    dashboard = find_dashboard(get_session(), pack, name)
    board = DashboardView.build(dashboard, request.args)
    if not board.widgets and board.refused:
        raise PermissionDenied(f"no report of dashboard '{name}' is readable")
    return render_template("reports/dashboard.html", board=board, dashboard=dashboard)


@bp.get("/reports/lookup/<pack>/<entity>")
@login_required
def report_lookup(pack: str, entity: str) -> Any:
    """Return up to ten readable records of an entity matching `lookup_q` (parameter bar)."""
    meta = registry().meta(f"{pack}.{entity}")
    wanted = (request.args.get("lookup_q") or request.args.get("q") or "").strip()[:100]
    options = lookup_options(meta, wanted)
    return render_template("web/_lookup.html", options=options, q=wanted)


def _readable_report(pack: str, name: str) -> ReportDef:
    report = find_report(get_session(), pack, name)
    if not can_read(principal(), report):
        raise PermissionDenied(f"report '{name}' reads entities you may not read")
    return report


def _run(report: ReportDef, args: Mapping[str, Any]) -> ReportResult:
    params = {p.name: args.get(p.name, "") for p in report.params}
    return run_report(get_session(), registry(), principal(), report, params, today())


# -- what the templates show ----------------------------------------------------------------------


@dataclass
class ParamControl:
    """One control of the parameter bar."""

    name: str
    label: str
    kind: str
    value: str
    title: str = ""
    lookup_url: str = ""


@dataclass
class ReportView:
    """A report ready for the template: cells as text, chart JSON, controls, export links."""

    title: str
    controls: list[ParamControl]
    result: ReportResult | None = None
    error: str = ""
    chart: dict[str, Any] | None = None
    headers: list[dict[str, Any]] = field(default_factory=list)
    body: list[dict[str, Any]] = field(default_factory=list)
    footer: list[str] | None = None
    query: str = ""
    more: int = 0

    @classmethod
    def build(cls, report: ReportDef, args: Mapping[str, Any]) -> ReportView:
        """Run the report with the request's parameters; keep the error for the page."""
        locale = current_locale()
        view = cls(text(report.title, locale, report.name), [])
        try:
            result = _run(report, args)
        except BadQuery as exc:
            view.error = "; ".join(e.message(locale) for e in exc.errors)
            view.controls = _controls(report.pack, report.params, args, {})
            return view
        view.fill(result)
        view.controls = _controls(report.pack, report.params, args, result.params)
        view.query = urlencode(_query(result.params))
        return view

    def number_text(self, figure: Mapping[str, Any]) -> str:
        """Return a single figure formatted as its column is."""
        return format_value(figure.get("format"), figure.get("value")) or "—"

    def fill(self, result: ReportResult) -> None:
        """Turn the result into header, body and footer cells."""
        self.result = result
        self.chart = chart_data(result)
        numeric = {c.name: c.numeric for c in result.columns}
        self.headers = [{"label": c.label, "numeric": numeric[c.name]} for c in result.columns]
        for row, style in zip(result.rows, result.styles, strict=True):
            cells = [
                {"text": format_value(c.format, c.shown(row.get(c.name))), "numeric": c.numeric,
                 "nowrap": c.format in ("date", "days", "money", "percent"),
                 "status": _status(row.get(c.name))}
                for c in result.columns
            ]  # fmt: skip
            self.body.append({"cells": cells, "style": STYLES.get(style or "", "")})
        if result.report.totals:
            self.footer = [
                format_value(c.format, result.totals.get(c.name)) if c.name in result.totals else ""
                for c in result.columns
            ]


def _query(values: Mapping[str, Any]) -> dict[str, str]:
    return {
        k: v.isoformat() if isinstance(v, dt.date) else str(v)
        for k, v in values.items()
        if v is not None
    }


def _controls(
    pack: str, params: tuple[Param, ...], args: Mapping[str, Any], values: Mapping[str, Any]
) -> list[ParamControl]:
    locale = current_locale()
    out = []
    for param in params:
        value = values.get(param.name)
        shown = (
            value.isoformat()
            if isinstance(value, dt.date)
            else str(value or args.get(param.name, "") or "")
        )
        control = ParamControl(param.name, text(param.label, locale, param.name), param.type, shown)
        if param.entity:
            key = param.entity if "." in param.entity else f"{pack}.{param.entity}"
            target_pack, target = key.split(".", 1)
            control.lookup_url = url_for("web.report_lookup", pack=target_pack, entity=target)
            if isinstance(value, int):
                control.title = record_titles(
                    get_session(), registry(), key, [value], principal(), locale
                ).get(value, "")
        out.append(control)
    return out


def format_value(fmt: str | None, value: Any) -> str:
    """Return a cell's text: money and numbers with thousands separators, percent, days."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if fmt == "money":
        return display_number(value, 2)
    if fmt == "percent":
        return f"{display_number(value, _places(value))}%"
    if fmt == "days":
        return _("%(n)s d", n=display_number(value))
    if fmt == "date" or isinstance(value, dt.date):
        return display_date(value)
    if fmt in ("number", None) and not isinstance(value, str):
        return display_number(value)
    return str(value)


def _status(value: Any) -> str | None:
    # The Gantt's status words (on_time / warning / late) show as coloured badges anywhere.
    return value if value in STATUSES else None


def _places(value: Any) -> int | None:
    # Keep the scale the value carries (round(x, 1) shows 1.0%, not 1%).
    if isinstance(value, Decimal):
        exponent = value.as_tuple().exponent
        return -exponent if isinstance(exponent, int) and exponent < 0 else 0
    return None


def _export_cell(column: Any, value: Any) -> Any:
    shown = column.shown(value)
    if isinstance(shown, dt.datetime) and shown.tzinfo is not None:
        # Spreadsheets hold no time zones: write the moment as the users' local time.
        shown = shown.astimezone(display_zone()).replace(tzinfo=None)
    return safe_text(shown) if isinstance(shown, str) else shown


# -- dashboards -----------------------------------------------------------------------------------


@dataclass
class WidgetView:
    """One tile: a report's chart, table or number."""

    title: str
    view: str
    width: int
    url: str
    report: ReportView
    number: dict[str, Any] | None = None


@dataclass
class DashboardView:
    """A dashboard ready for the template."""

    title: str
    controls: list[ParamControl]
    widgets: list[WidgetView]
    refused: int = 0

    @classmethod
    def build(cls, dashboard: DashboardDef, args: Mapping[str, Any]) -> DashboardView:
        """Run every widget's report the user may read, with the dashboard's parameters."""
        locale = current_locale()
        documents = pack_documents(get_session(), dashboard.pack, "reports")
        who = principal()
        widgets, refused = [], 0
        values: dict[str, Any] = {}
        for widget in dashboard.widgets:
            document = documents.get(widget.report)
            report = parse_report(dashboard.pack, document) if document else None
            if report is None or not can_read(who, report):
                refused += report is not None
                continue
            try:
                shown = ReportView.build(report, args)
            except PermissionDenied:
                refused += 1
                continue
            values.update(shown.result.params if shown.result else {})
            widgets.append(_widget_view(widget, report, shown, locale))
        controls = _controls(dashboard.pack, dashboard.params, args, values)
        return cls(text(dashboard.title, locale, dashboard.name), controls, widgets, refused)


def _widget_view(widget: Widget, report: ReportDef, shown: ReportView, locale: str) -> WidgetView:
    params = _query(shown.result.params) if shown.result else {}
    url = url_for("web.report_page", pack=report.pack, name=report.name)
    if params:
        url += "?" + urlencode(params)
    if widget.view == "table" and len(shown.body) > WIDGET_ROWS:
        # A tile shows the first rows; the report page (linked) has them all.
        shown.more = len(shown.body) - WIDGET_ROWS
        shown.body = shown.body[:WIDGET_ROWS]
        shown.footer = None
    figure = None
    if widget.view == "number" and shown.result is not None and widget.column:
        figure = number(shown.result, widget.column)
    title = text(widget.title, locale) or shown.title
    return WidgetView(title, widget.view, widget.width, url, shown, figure)


# -- menu -----------------------------------------------------------------------------------------


_Entry = tuple[str, str, str, Mapping[str, str], tuple[tuple[str, ...], ...]]


@dataclass
class _MenuCache:
    entries: list[_Entry]
    taken_at: float


def menu_items(who: Principal, locale: str) -> Iterator[tuple[str, str, str, str]]:
    """Yield (pack, label, url, menu key) for the report and dashboard items of enabled
    packs' menus that the user may read."""
    for pack, kind, name, title, entities in _menu_entries():
        if not _visible(who, entities):
            continue
        endpoint = "web.report_page" if kind == "report" else "web.dashboard_page"
        url = url_for(endpoint, pack=pack, name=name)
        yield pack, text(title, locale, name), url, f"{pack}:{kind}:{name}"


def _menu_entries() -> list[_Entry]:
    cached: _MenuCache | None = current_app.extensions.get(CACHE_KEY)
    ttl = float(current_app.config.get("REGISTRY_TTL", 2))
    if cached is not None and time.monotonic() - cached.taken_at < ttl:
        return cached.entries
    fresh = _read_menu_entries()
    current_app.extensions[CACHE_KEY] = _MenuCache(fresh, time.monotonic())
    return fresh


def _read_menu_entries() -> list[_Entry]:
    from formwork.runtime.packs.store import files_of_kind

    session = get_session()
    out = []
    menus = sorted(files_of_kind(session, "menu"), key=lambda m: (_order(m[1]), m[0]))
    for pack, menu in menus:  # in menu order, so the home page leads with the first pack
        items = [i for i in (menu or {}).get("items", ()) if "report" in i or "dashboard" in i]
        if not items:
            continue
        reports = pack_documents(session, pack, "reports")
        dashboards = pack_documents(session, pack, "dashboards")
        for item in items:
            kind = "report" if "report" in item else "dashboard"
            name = str(item[kind])
            document = (reports if kind == "report" else dashboards).get(name)
            if document is None:
                continue
            out.append(
                (
                    pack,
                    kind,
                    name,
                    document.get("title") or {},
                    _entities(pack, kind, document, reports),
                )
            )
    return out


def _order(menu: Any) -> int:
    value = menu.get("order", 1000) if isinstance(menu, Mapping) else 1000
    return value if isinstance(value, int) else 1000


def _entities(
    pack: str, kind: str, document: Mapping[str, Any], reports: Mapping[str, Any]
) -> tuple[tuple[str, ...], ...]:
    """Return the entity sets that make the item visible: a report's entities; for a
    dashboard, those of each widget's report (one readable widget is enough)."""
    if kind == "report":
        return (tuple(parse_report(pack, document).entities()),)
    sets = []
    for widget in document.get("widgets", ()):
        report = reports.get(widget.get("report"))
        if report is not None:
            sets.append(tuple(parse_report(pack, report).entities()))
    return tuple(sets)


def _visible(who: Principal, sets: tuple[tuple[str, ...], ...]) -> bool:
    return any(all(who.can(e, "read") for e in entities) for entities in sets)


def first_dashboards(who: Principal) -> list[tuple[str, str, str]]:
    """Return (pack, title, url) of the first dashboard of each enabled pack the user may see."""
    locale = current_locale()
    seen: set[str] = set()
    out = []
    for pack, kind, name, title, entities in _menu_entries():
        if kind != "dashboard" or pack in seen or not _visible(who, entities):
            continue
        seen.add(pack)
        out.append((pack, text(title, locale, name), name))
    return out


def home_dashboards() -> dict[str, Any]:
    """Return what the home page shows: links to each pack's first dashboard and the first
    of them drawn in full, so the first screen shows live numbers."""
    who = principal()
    links = [
        (title, url_for("web.dashboard_page", pack=pack, name=name))
        for pack, title, name in first_dashboards(who)
    ]
    board = None
    for pack, _title, name in first_dashboards(who)[:1]:
        dashboard = find_dashboard(get_session(), pack, name)
        board = DashboardView.build(dashboard, {})
    return {"dashboard_links": links, "board": board}
