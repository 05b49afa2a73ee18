"""The audit trail: who changed which record, when, and each field's old and new value."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from formwork.runtime.models import AuditEntry, User
from formwork.runtime.registry import EntityMeta
from formwork.runtime.security import Principal, redact

AUDIT: sa.Table = AuditEntry.__table__  # type: ignore[assignment]
SKIPPED = frozenset({"id", "version", "created_at", "created_by", "updated_at", "updated_by"})


def diff(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return {field: [old, new]} for every field whose JSON value differs."""
    before, after = before or {}, after or {}
    names = (set(before) | set(after)) - SKIPPED
    return {
        n: [before.get(n), after.get(n)] for n in sorted(names) if before.get(n) != after.get(n)
    }


def record_audit(
    session: Session,
    meta: EntityMeta,
    record_id: int,
    action: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    principal: Principal,
    at: dt.datetime,
) -> None:
    """Write one audit entry in the caller's transaction (nothing when nothing changed)."""
    changes = diff(before, after)
    if not changes and action == "update":
        return
    row = {
        "entity": meta.entity.key,
        "record_id": record_id,
        "action": action,
        "changes": changes,
        "user_id": principal.user_id,
        "at": at,
    }
    session.connection().execute(sa.insert(AUDIT), row)


def history(
    session: Session, entity_key: str, record_id: int, hidden: frozenset[str] = frozenset()
) -> list[dict[str, Any]]:
    """Return a record's audit entries, oldest first, with the acting user's name and
    without the `hidden` fields (a role that may not see a value may not see its past)."""
    rows = session.execute(
        sa.select(AuditEntry, User.username)
        .join(User, User.id == AuditEntry.user_id, isouter=True)
        .where(AuditEntry.entity == entity_key, AuditEntry.record_id == record_id)
        .order_by(AuditEntry.id)
    ).all()
    return [
        {
            "id": entry.id,
            "action": entry.action,
            "changes": _redacted(entry.changes, hidden),
            "user_id": entry.user_id,
            "user": username,
            "at": entry.at.isoformat() if entry.at else None,
        }
        for entry, username in rows
    ]


def _redacted(changes: dict[str, Any], hidden: frozenset[str]) -> dict[str, Any]:
    if not hidden:
        return changes
    out = {}
    for name, (old, new) in changes.items():
        if name in hidden:
            continue
        out[name] = [
            redact({name: old}, hidden)[name] if isinstance(old, list) else old,
            redact({name: new}, hidden)[name] if isinstance(new, list) else new,
        ]
    return out
