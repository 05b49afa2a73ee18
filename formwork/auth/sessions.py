"""The browser session: a new one at every sign-in, refused once its user signed out
everywhere (the session epoch), too old (PERMANENT_SESSION_LIFETIME) or idle too long.

Flask's session is a signed cookie held by the browser, so a session cannot be deleted on
the server; it is refused instead: each carries the user's session epoch from sign-in, and
bumping the epoch in the database ends every session issued before.
"""

from __future__ import annotations

from flask import current_app
from flask import session as flask_session
from flask_login import UserMixin, login_user, logout_user

from formwork.auth.settings import now
from formwork.runtime.models import User

EPOCH = "fw_epoch"
SIGNED_IN_AT = "fw_auth_at"
SEEN_AT = "fw_seen_at"
# The idle clock is written back at most this often, so that not every request sends a cookie.
SEEN_RESOLUTION = 60


class LoginUser(UserMixin):
    """The flask-login view of a platform user."""

    def __init__(self, user: User) -> None:
        self.user = user
        self.id = str(user.id)


def start_session(user: User) -> None:
    """Sign the user in on a brand-new session (nothing of the old one survives)."""
    flask_session.clear()
    login_user(LoginUser(user))
    flask_session.permanent = True
    moment = int(now().timestamp())
    flask_session[EPOCH] = user.session_epoch or 0
    flask_session[SIGNED_IN_AT] = moment
    flask_session[SEEN_AT] = moment


def end_session() -> None:
    """Sign out and drop everything the session held."""
    logout_user()
    flask_session.clear()


def session_epoch() -> int | None:
    """Return the epoch the current session was issued with (None: not signed in)."""
    value = flask_session.get(EPOCH)
    return value if isinstance(value, int) else None


def session_is_fresh() -> bool:
    """Return False when the session is past its lifetime or idle timeout (and note activity)."""
    signed_in, seen = flask_session.get(SIGNED_IN_AT), flask_session.get(SEEN_AT)
    if not isinstance(signed_in, int) or not isinstance(seen, int):
        return False
    moment = int(now().timestamp())
    config = current_app.config
    lifetime = config["PERMANENT_SESSION_LIFETIME"].total_seconds()
    idle = float(config["SESSION_IDLE_MINUTES"]) * 60
    if moment - signed_in > lifetime or moment - seen > idle:
        return False
    if moment - seen >= SEEN_RESOLUTION:
        flask_session[SEEN_AT] = moment
    return True


def session_matches(user: User) -> bool:
    """Return True when the session is fresh and was issued at the user's current epoch."""
    return session_epoch() == (user.session_epoch or 0) and session_is_fresh()


def keep_session(user: User) -> None:
    """Move this session to the user's new epoch (after they ended their other sessions)."""
    flask_session[EPOCH] = user.session_epoch or 0
