"""The security audit log: sign-ins, lockouts, token use, role and pack changes.

Events are written in the caller's transaction, so an event exists exactly when the change it
describes was committed. (A failed sign-in is the exception the caller handles: it commits the
failure and its event although the sign-in itself is refused.)
"""

from __future__ import annotations

import datetime as dt
import getpass
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from formwork.runtime.clock import session_clock
from formwork.runtime.models import PackRecord, SecurityEvent

KINDS = (
    "login.success",
    "login.failure",
    "login.locked",
    "logout",
    "logout.all",
    "session.revoked",
    "password.changed",
    "token.created",
    "token.revoked",
    "token.used",
    "token.rejected",
    "user.created",
    "user.deactivated",
    "user.activated",
    "user.unlocked",
    "role.changed",
    "permission.changed",
    "pack.installed",
    "pack.upgraded",
    "pack.uninstalled",
    "pack.enabled",
    "pack.disabled",
    "pack.imported",
    "pack.customised",
    "data.imported",
)
USER_AGENT_MAX = 200
MAX_PER_PAGE = 200


def record_event(
    session: Session,
    kind: str,
    *,
    user_id: int | None = None,
    username: str | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
    detail: dict[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> None:
    """Add one security event to the caller's transaction (the caller commits)."""
    if kind not in KINDS:
        raise ValueError(f"unknown security event kind '{kind}'; use one of {', '.join(KINDS)}")
    session.add(
        SecurityEvent(
            at=at or session_clock(session).now(),
            kind=kind,
            user_id=user_id,
            username=username[:64] if username else None,
            ip=ip[:45] if ip else None,
            user_agent=user_agent[:USER_AGENT_MAX] if user_agent else None,
            detail=detail or {},
        )
    )


@dataclass(frozen=True)
class EventFilter:
    """Which events to list: a kind, a user (id or name) and a time range, all optional."""

    kind: str | None = None
    user_id: int | None = None
    username: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def list_events(
    session: Session, where: EventFilter, page: int = 1, per_page: int = 50
) -> tuple[list[SecurityEvent], bool]:
    """Return one page of events, newest first, and whether a further page exists."""
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    page = max(1, page)
    query = sa.select(SecurityEvent)
    if where.kind:
        query = query.where(SecurityEvent.kind == where.kind)
    if where.user_id is not None:
        query = query.where(SecurityEvent.user_id == where.user_id)
    if where.username:
        query = query.where(SecurityEvent.username == where.username)
    if where.since is not None:
        query = query.where(SecurityEvent.at >= where.since)
    if where.until is not None:
        query = query.where(SecurityEvent.at < where.until)
    # One row more than a page tells whether there is a next page without a count.
    rows = list(
        session.scalars(
            query.order_by(SecurityEvent.at.desc(), SecurityEvent.id.desc())
            .offset((page - 1) * per_page)
            .limit(per_page + 1)
        )
    )
    return rows[:per_page], len(rows) > per_page


def event_as_dict(event: SecurityEvent) -> dict[str, Any]:
    """Return the JSON form of an event (the shape of GET /api/v1/security-events items)."""
    at = event.at if event.at.tzinfo else event.at.replace(tzinfo=dt.UTC)
    return {
        "id": event.id,
        "at": at.isoformat(),
        "kind": event.kind,
        "user_id": event.user_id,
        "username": event.username,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "detail": event.detail or {},
    }


PackState = dict[str, tuple[str, str, bool]]


def pack_state(session: Session) -> PackState:
    """Return each known pack's (status, version, enabled), to compare before and after."""
    rows = session.execute(
        sa.select(PackRecord.name, PackRecord.status, PackRecord.version, PackRecord.enabled)
    )
    return {name: (status, version, bool(on)) for name, status, version, on in rows}


def pack_changes(before: PackState, after: PackState) -> list[tuple[str, dict[str, Any]]]:
    """Return (kind, detail) for each pack installed, upgraded or uninstalled between states."""
    changes: list[tuple[str, dict[str, Any]]] = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        if new is None or new[0] != "installed":
            if old is not None and old[0] == "installed":
                purged = new is None  # --purge deletes the pack's row
                changes.append(("pack.uninstalled", {"pack": name, "purge": purged}))
        elif old is None or old[0] != "installed":
            changes.append(("pack.installed", {"pack": name, "version": new[1]}))
        elif old[1] != new[1]:
            changes.append(("pack.upgraded", {"pack": name, "from": old[1], "version": new[1]}))
    return changes


def cli_actor() -> str:
    """Return who runs a command line: the operating-system user, else 'cli'."""
    try:
        return getpass.getuser() or "cli"
    except (KeyError, OSError):  # no passwd entry or no login name (containers)
        return "cli"


def record_cli_event(session: Session, kind: str, **detail: Any) -> None:
    """Add a security event done from the command line (no address; the OS user acts)."""
    record_event(session, kind, username=cli_actor(), detail={"via": "cli", **detail})
