"""Browser sessions kept on the server (no Flask): a row in `fw_sessions` per sign-in.

The browser's signed cookie carries only a random session id; the row says who it belongs
to, when it began, when it was last seen and whether it was revoked. Signing out revokes
that row, so a cookie copied before (or replayed after) the sign-out finds nothing valid;
"sign out everywhere", a password change and deactivation revoke every row of the user.
Every function writes into the caller's transaction; the caller commits.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from formwork.runtime.models import LoginSession, User

# last_seen_at is written at most this often per session (not on every request).
TOUCH_EVERY = dt.timedelta(seconds=60)
USER_AGENT_MAX = 200


@dataclass(frozen=True)
class SessionLimits:
    """How long a session may last at all, and how long it may sit idle."""

    lifetime: dt.timedelta = dt.timedelta(hours=12)
    idle: dt.timedelta = dt.timedelta(minutes=120)


@dataclass(frozen=True)
class Browser:
    """Where a sign-in came from, as shown on the account page."""

    ip: str | None = None
    user_agent: str | None = None


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def open_session(
    db: Session, user: User, now: dt.datetime, browser: Browser, limits: SessionLimits
) -> str:
    """Start a session for the user and return its id (for the cookie; only its hash is
    stored). Sessions that can no longer be valid are deleted on the way."""
    prune_sessions(db, now, limits)
    session_id = secrets.token_urlsafe(32)
    db.add(
        LoginSession(
            token_hash=_hash(session_id),
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            ip=browser.ip,
            user_agent=(browser.user_agent or "")[:USER_AGENT_MAX] or None,
        )
    )
    db.flush()
    return session_id


def find_session(
    db: Session, session_id: str, now: dt.datetime, limits: SessionLimits
) -> tuple[LoginSession, User] | None:
    """Return the live session with this id and its user (one query): not revoked, within
    its lifetime and idle limit, of an active user; else None."""
    found = db.execute(
        sa.select(LoginSession, User)
        .join(User, User.id == LoginSession.user_id)
        .where(LoginSession.token_hash == _hash(session_id), User.is_active.is_(True))
    ).first()
    if found is None or not is_live(found[0], now, limits):
        return None
    return found[0], found[1]


def is_live(row: LoginSession, now: dt.datetime, limits: SessionLimits) -> bool:
    """Return True when a session is neither revoked, too old nor idle too long."""
    if row.revoked_at is not None:
        return False
    return now - row.created_at <= limits.lifetime and now - row.last_seen_at <= limits.idle


def due_touch(row: LoginSession, now: dt.datetime) -> bool:
    """Return True when the session's last activity was noted over a minute ago."""
    return now - row.last_seen_at >= TOUCH_EVERY


def touch_session(db: Session, row_id: int, now: dt.datetime) -> bool:
    """Note activity on a session unless noted within the last minute; True when written.
    One conditional UPDATE, so two workers serving the same browser write once."""
    result = db.execute(
        sa.update(LoginSession)
        .where(LoginSession.id == row_id, LoginSession.last_seen_at < now - TOUCH_EVERY)
        .values(last_seen_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def revoke_session(
    db: Session, row_id: int, now: dt.datetime, reason: str, user_id: int | None = None
) -> bool:
    """Revoke one session (only the user's own when `user_id` is given); True when it was
    live until now."""
    query = sa.update(LoginSession).where(
        LoginSession.id == row_id, LoginSession.revoked_at.is_(None)
    )
    if user_id is not None:
        query = query.where(LoginSession.user_id == user_id)
    result = db.execute(
        query.values(revoked_at=now, ended_by=reason).execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def revoke_user_sessions(
    db: Session, user_id: int, now: dt.datetime, reason: str, keep: int | None = None
) -> int:
    """Revoke every session of a user (but `keep`); return how many were revoked."""
    query = sa.update(LoginSession).where(
        LoginSession.user_id == user_id, LoginSession.revoked_at.is_(None)
    )
    if keep is not None:
        query = query.where(LoginSession.id != keep)
    result = db.execute(
        query.values(revoked_at=now, ended_by=reason).execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def live_sessions(
    db: Session, user_id: int, now: dt.datetime, limits: SessionLimits
) -> list[LoginSession]:
    """Return a user's live sessions, most recently active first."""
    rows = db.scalars(
        sa.select(LoginSession)
        .where(
            LoginSession.user_id == user_id,
            LoginSession.revoked_at.is_(None),
            LoginSession.created_at > now - limits.lifetime,
        )
        .order_by(LoginSession.last_seen_at.desc(), LoginSession.id.desc())
    )
    return [row for row in rows if is_live(row, now, limits)]


def prune_sessions(db: Session, now: dt.datetime, limits: SessionLimits) -> int:
    """Delete sessions past their lifetime, and those revoked over a day ago."""
    result = db.execute(
        sa.delete(LoginSession)
        .where(
            sa.or_(
                LoginSession.created_at < now - limits.lifetime,
                LoginSession.revoked_at < now - dt.timedelta(days=1),
            )
        )
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
