"""GET /api/v1/reports/<pack>/<report>: a report's columns, rows and totals as JSON, with
the caller's row rules and field rules applied (exact decimals as strings)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import jsonify, request

from formwork.api import bp
from formwork.auth import current_principal
from formwork.context import clock, get_session, registry
from formwork.runtime.errors import NotFound
from formwork.runtime.reports import ReportResult, run_report
from formwork.runtime.reports.labels import as_json, titles_of
from formwork.runtime.reports.store import find_report


@bp.get("/reports/<pack>/<name>")
def report_api(pack: str, name: str) -> Any:
    """Run a report with the query's parameters and return columns, rows and totals."""
    principal = current_principal()
    if principal is None:
        raise NotFound("no principal")  # the blueprint's before_request answers 401 first
    report = find_report(get_session(), pack, name)
    params = {p.name: request.args.get(p.name, "") for p in report.params}
    result = run_report(get_session(), registry(), principal, report, params, _today())
    return jsonify(report_json(result))


def _today() -> dt.date:
    # The kernel's clock, in the company's time zone (the pages use the same day).
    return clock().today()


def report_json(result: ReportResult) -> dict[str, Any]:
    """Return the result as the API shows it: only the visible columns, raw values (record
    ids for references) with their shown titles under `titles`."""
    names = [c.name for c in result.columns]
    return {
        "report": result.report.name,
        "params": {k: as_json(v) for k, v in result.params.items()},
        "columns": [
            {"name": c.name, "label": c.label, "format": c.format, "numeric": c.numeric}
            for c in result.columns
        ],
        "rows": [{n: as_json(row.get(n)) for n in names} for row in result.rows],
        "totals": {k: as_json(v) for k, v in result.totals.items()},
        "styles": result.styles,
        "titles": titles_of(result.columns),
    }
