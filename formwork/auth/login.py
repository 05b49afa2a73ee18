"""Signing in with a password, with failures counted in the database so that every worker
process sees them: an account is locked after repeated failures, and an address that fails
too often is refused for a while (no Flask; the page in formwork/auth/views.py calls this).

Every refusal looks the same to the caller (wrong password, unknown user, locked account,
blocked address) and costs about the same time, so the answer tells nothing about which
usernames exist.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from formwork.auth.users import hash_password, needs_rehash, verify_password
from formwork.runtime.models import LoginFailure, User
from formwork.runtime.security_events import record_event


@dataclass(frozen=True)
class LoginLimits:
    """How many failures lock an account or block an address, and for how long."""

    max_failures: int = 5
    lock_minutes: float = 15
    window_minutes: float = 15
    max_ip_failures: int = 20


@dataclass(frozen=True)
class LoginAttempt:
    """What a sign-in form sent, and from where."""

    username: str
    password: str
    ip: str | None = None
    user_agent: str | None = None


def sign_in(
    session: Session, attempt: LoginAttempt, limits: LoginLimits, now: dt.datetime
) -> User | None:
    """Return the user when the attempt succeeds; else record the failure and return None.

    The caller commits in both cases: a failure, its event and a lockout must be kept even
    though the sign-in is refused.
    """
    username = attempt.username[:64]
    user = session.scalar(sa.select(User).where(User.username == username))
    blocked = _blocked(session, user, attempt.ip, limits, now)
    if blocked is not None:
        verify_password(None, attempt.password)  # the same cost as a real check
        _event(session, "login.locked", user, attempt, now, reason=blocked)
        return None
    if not verify_password(user, attempt.password):
        _fail(session, user, attempt, limits, now)
        return None
    assert user is not None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(attempt.password)
    user.last_login_at = now
    user.locked_until = None
    session.execute(sa.delete(LoginFailure).where(LoginFailure.username == username))
    _event(session, "login.success", user, attempt, now)
    return user


def _blocked(
    session: Session, user: User | None, ip: str | None, limits: LoginLimits, now: dt.datetime
) -> str | None:
    if user is not None and user.locked_until is not None and _aware(user.locked_until) > now:
        return "account"
    if ip and failures(session, now - _window(limits), ip=ip) >= limits.max_ip_failures:
        return "address"
    return None


def _fail(
    session: Session,
    user: User | None,
    attempt: LoginAttempt,
    limits: LoginLimits,
    now: dt.datetime,
) -> None:
    # Failures older than a day count for nothing; dropping them keeps the table small.
    prune_failures(session, now - max(_window(limits), dt.timedelta(days=1)))
    session.add(LoginFailure(at=now, username=attempt.username[:64], ip=attempt.ip))
    session.flush()
    reason = "unknown_user" if user is None else ("inactive" if not user.is_active else "password")
    _event(session, "login.failure", user, attempt, now, reason=reason)
    if user is None:
        return  # nothing to lock; the answer is the same either way
    count = failures(session, now - _window(limits), username=user.username)
    if count >= limits.max_failures:
        user.locked_until = now + dt.timedelta(minutes=limits.lock_minutes)
        _event(session, "login.locked", user, attempt, now, reason="account", failures=count)


def failures(
    session: Session, since: dt.datetime, *, username: str | None = None, ip: str | None = None
) -> int:
    """Return how many sign-ins failed since `since` for a username or from an address."""
    query = sa.select(sa.func.count()).select_from(LoginFailure).where(LoginFailure.at > since)
    if username is not None:
        query = query.where(LoginFailure.username == username)
    if ip is not None:
        query = query.where(LoginFailure.ip == ip)
    return int(session.scalar(query) or 0)


def unlock(session: Session, username: str | None = None, ip: str | None = None) -> int:
    """Lift a lockout: clear a user's lock and failures, or an address's failures."""
    query = sa.delete(LoginFailure)
    if username is not None:
        query = query.where(LoginFailure.username == username)
        session.execute(
            sa.update(User)
            .where(User.username == username)
            .values(locked_until=None)
            .execution_options(synchronize_session="fetch")
        )
    if ip is not None:
        query = query.where(LoginFailure.ip == ip)
    if username is None and ip is None:
        raise ValueError("unlock needs a username or an address")
    result = session.execute(query)
    return int(getattr(result, "rowcount", 0) or 0)


def prune_failures(session: Session, before: dt.datetime) -> int:
    """Delete failures older than `before` (they no longer count for anything)."""
    result = session.execute(sa.delete(LoginFailure).where(LoginFailure.at < before))
    return int(getattr(result, "rowcount", 0) or 0)


def _event(
    session: Session,
    kind: str,
    user: User | None,
    attempt: LoginAttempt,
    now: dt.datetime,
    **detail: object,
) -> None:
    record_event(
        session,
        kind,
        user_id=user.id if user is not None else None,
        username=attempt.username,
        ip=attempt.ip,
        user_agent=attempt.user_agent,
        detail=dict(detail),
        at=now,
    )


def _window(limits: LoginLimits) -> dt.timedelta:
    return dt.timedelta(minutes=limits.window_minutes)


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=moment.tzinfo or dt.UTC)
