"""What the database holds about packs: records, base files and customisations, and the
one place where a file's effective content (base + customisation) is computed."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from formwork.runtime.models import Customisation, PackFile, PackRecord
from formwork.runtime.packs.overlay import merge_patch


def pack_records(session: Session) -> dict[str, PackRecord]:
    """Return every pack the database knows (installed or archived), by name."""
    return {r.name: r for r in session.scalars(sa.select(PackRecord).order_by(PackRecord.name))}


def base_files(session: Session, pack: str) -> dict[str, PackFile]:
    """Return the pack's installed base files by path."""
    rows = session.scalars(sa.select(PackFile).where(PackFile.pack == pack))
    return {r.path: r for r in rows}


def customisations(session: Session, pack: str) -> dict[str, dict[str, Any]]:
    """Return the pack's customisation patches by file path."""
    rows = session.scalars(sa.select(Customisation).where(Customisation.pack == pack))
    return {r.path: r.patch for r in rows}


def parse(row: PackFile) -> Any:
    """Return a stored file's content: JSON parsed, XML as text."""
    return json.loads(row.content) if row.path.endswith(".json") else row.content


def effective_files(session: Session, pack: str) -> dict[str, Any]:
    """Return every file of the pack as the customer sees it: base + customisation."""
    patches = customisations(session, pack)
    return {
        path: effective(parse(row), patches.get(path))
        for path, row in sorted(base_files(session, pack).items())
    }


def effective(base: Any, patch: Any) -> Any:
    """Return one file's effective content."""
    return merge_patch(base, patch) if patch else base


def files_of_kind(session: Session, kind: str, enabled_only: bool = True) -> list[tuple[str, Any]]:
    """Return (pack, effective content) of every installed file of a kind (menus, reports…)."""
    records = pack_records(session)
    out = []
    for name, record in records.items():
        if record.status != "installed" or (enabled_only and not record.enabled):
            continue
        files = effective_files(session, name)
        for row in base_files(session, name).values():
            if row.kind == kind:
                out.append((name, files[row.path]))
    return out
