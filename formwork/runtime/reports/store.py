"""Find the reports and dashboards of installed, enabled packs (base + customisation)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from formwork.runtime.errors import NotFound
from formwork.runtime.packs.store import base_files, customisations, effective, pack_records, parse
from formwork.runtime.reports.definition import (
    DashboardDef,
    ReportDef,
    parse_dashboard,
    parse_report,
)


def pack_documents(session: Session, pack: str, kind: str) -> dict[str, dict[str, Any]]:
    """Return {name: effective document} of one kind ("reports", "dashboards") of an enabled
    pack; raise NotFound when the pack is not installed or is switched off."""
    record = pack_records(session).get(pack)
    if record is None or record.status != "installed" or not record.enabled:
        raise NotFound(f"pack '{pack}' is not installed or is switched off")
    patches = customisations(session, pack)
    out: dict[str, dict[str, Any]] = {}
    for path, row in sorted(base_files(session, pack).items()):
        if row.kind == kind:
            document = effective(parse(row), patches.get(path))
            if isinstance(document, dict) and isinstance(document.get("name"), str):
                out[document["name"]] = document
    return out


def find_report(session: Session, pack: str, name: str) -> ReportDef:
    """Return a report of an enabled pack, or raise NotFound."""
    found = pack_documents(session, pack, "reports").get(name)
    if found is None:
        raise NotFound(f"pack '{pack}' has no report '{name}'")
    return parse_report(pack, found)


def find_dashboard(session: Session, pack: str, name: str) -> DashboardDef:
    """Return a dashboard of an enabled pack, or raise NotFound."""
    found = pack_documents(session, pack, "dashboards").get(name)
    if found is None:
        raise NotFound(f"pack '{pack}' has no dashboard '{name}'")
    return parse_dashboard(pack, found)
