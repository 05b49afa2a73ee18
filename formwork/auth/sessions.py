"""The browser session: a new one at every sign-in, kept on the server.

Flask's signed cookie carries flask-login's user id, the CSRF token and a random session id;
the session itself is a row of `fw_sessions` (formwork/auth/session_store.py). Each request
looks the row up once: a revoked row (signed out, signed out everywhere, password changed,
user deactivated), one past its lifetime or idle too long, signs nobody in — so a cookie
replayed after sign-out is worth nothing. Activity is noted at most once a minute.
"""

from __future__ import annotations

import datetime as dt

from flask import current_app, g, request
from flask import session as flask_session
from flask_login import UserMixin, login_user, logout_user

from formwork.auth.events import client_ip, user_agent
from formwork.auth.session_store import (
    Browser,
    SessionLimits,
    due_touch,
    find_session,
    open_session,
    revoke_session,
    touch_session,
)
from formwork.auth.settings import now
from formwork.context import get_session
from formwork.runtime.models import LoginSession, User

SESSION_ID = "fw_sid"
_FOUND, _FOR = "fw_login_session", "fw_login_session_request"


class LoginUser(UserMixin):
    """The flask-login view of a platform user."""

    def __init__(self, user: User) -> None:
        self.user = user
        self.id = str(user.id)


def session_limits() -> SessionLimits:
    """Return the app's session lifetime and idle limit."""
    config = current_app.config
    return SessionLimits(
        lifetime=config["PERMANENT_SESSION_LIFETIME"],
        idle=dt.timedelta(minutes=float(config["SESSION_IDLE_MINUTES"])),
    )


def start_session(user: User) -> None:
    """Sign the user in on a brand-new session (nothing of the old one survives); the
    caller commits."""
    flask_session.clear()
    browser = Browser(client_ip(), user_agent())
    session_id = open_session(get_session(), user, now(), browser, session_limits())
    login_user(LoginUser(user))
    flask_session.permanent = True
    flask_session[SESSION_ID] = session_id
    g.pop(_FOUND, None)


def end_session(reason: str = "logout") -> None:
    """Sign out: revoke this session's row and drop everything the cookie held (the caller
    commits)."""
    row = current_login()
    if row is not None:
        revoke_session(get_session(), row.id, now(), reason)
    logout_user()
    flask_session.clear()
    g.pop(_FOUND, None)


def current_login() -> LoginSession | None:
    """Return this request's live session row (looked up once per request), or None."""
    found = _found()
    return found[0] if found is not None else None


def current_login_user() -> User | None:
    """Return the user of this request's live session, or None."""
    found = _found()
    return found[1] if found is not None else None


def _found() -> tuple[LoginSession, User] | None:
    if g.get(_FOR) is request._get_current_object() and _FOUND in g:  # type: ignore[attr-defined]
        return g.get(_FOUND)  # type: ignore[no-any-return]
    found = _look_up()
    setattr(g, _FOUND, found)
    setattr(g, _FOR, request._get_current_object())  # type: ignore[attr-defined]
    return found


def _look_up() -> tuple[LoginSession, User] | None:
    session_id = flask_session.get(SESSION_ID)
    if not isinstance(session_id, str) or not session_id:
        return None
    db, moment = get_session(), now()
    found = find_session(db, session_id, moment, session_limits())
    row = found[0] if found is not None else None
    if row is not None and due_touch(row, moment) and not (db.new or db.dirty or db.deleted):
        # End the read first so the write starts a fresh transaction (a SQLite read cannot
        # become a write once another connection has written since it began).
        db.commit()
        touch_session(db, row.id, moment)
        db.commit()
    return found


def load_session() -> None:
    """Look the session up at the start of a request, before any view opens a transaction."""
    if SESSION_ID in flask_session:
        current_login()
