"""Reports and dashboards of packs: definitions, checks, and the engine that runs them in
SQL with the viewer's row rules and field rules (no Flask here)."""

from formwork.runtime.reports.definition import (
    DashboardDef,
    ReportDef,
    parse_dashboard,
    parse_report,
)
from formwork.runtime.reports.engine import ReportResult, ResultColumn, can_read, run_report

__all__ = [
    "DashboardDef",
    "ReportDef",
    "ReportResult",
    "ResultColumn",
    "can_read",
    "parse_dashboard",
    "parse_report",
    "run_report",
]
