"""Sign-in for people (session) and programs (bearer tokens with scopes)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from flask import Blueprint, Flask, g, request
from flask import session as flask_session
from flask_login import LoginManager, current_user
from sqlalchemy.orm import Session

from formwork.auth.events import client_ip, user_agent
from formwork.auth.scopes import required_scope
from formwork.auth.sessions import LoginUser, current_login, current_login_user, load_session
from formwork.auth.settings import harden, now
from formwork.auth.users import (
    TokenCheck,
    as_utc,
    check_token,
    hash_token,
    token_due_touch,
    touch_token,
)
from formwork.context import get_session, kernel
from formwork.runtime.models import SecurityEvent, User
from formwork.runtime.principals import CachedAuth, PrincipalCache
from formwork.runtime.security import Principal, load_principal
from formwork.runtime.security_events import record_event

bp = Blueprint("auth", __name__)

__all__ = [
    "LoginUser",
    "bearer_token",
    "bp",
    "current_principal",
    "init_app",
    "principal_cache",
    "request_locale",
    "scope_refusal",
]


def init_app(app: Flask) -> None:
    """Install the security settings, flask-login and the sign-in and account pages."""
    from formwork.auth import account, admin, views  # noqa: F401  (routes register on import)

    harden(app)
    manager = LoginManager(app)
    manager.login_view = "auth.login"
    manager.user_loader(_load_user)
    app.before_request(load_session)
    app.register_blueprint(bp)


def _load_user(user_id: str) -> LoginUser | None:
    user = current_login_user()
    if user is None or str(user.id) != user_id:
        flask_session.clear()  # signed out (here or everywhere), expired or idle: start afresh
        return None
    return LoginUser(user)


def bearer_token() -> str | None:
    """Return the bearer token of the request, if any."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def current_principal() -> Principal | None:
    """Return the principal of the request (bearer token first, then session), or None."""
    # `g` belongs to the app context, which a streamed response can keep alive into the next
    # request on the same thread; the principal is tied to this request object.
    if "principal" in g and g.get("principal_request") is request._get_current_object():  # type: ignore[attr-defined]
        return g.principal  # type: ignore[no-any-return]
    token = bearer_token()
    g.auth_method = "token" if token is not None else "session"
    g.principal = _token_principal(token) if token is not None else _session_principal()
    g.principal_request = request._get_current_object()  # type: ignore[attr-defined]
    return g.principal  # type: ignore[no-any-return]


def principal_cache() -> PrincipalCache:
    """Return the app's principal cache."""
    return kernel().principals


def scope_refusal() -> str | None:
    """Return why the request's token may not call this endpoint (None: it may)."""
    if g.get("auth_method") != "token":
        return None
    needed = required_scope(request.endpoint, request.method)
    if needed is None:
        return f"endpoint '{request.endpoint}' is not open to API tokens"
    if needed not in g.get("token_scopes", frozenset()):
        return f"this token lacks the '{needed}' scope"
    return None


def _token_principal(token: str) -> Principal | None:
    key = ("token", hash_token(token), _accept_locale())
    cached = principal_cache().get(key)
    if cached is not None:
        g.token_scopes = cached.scopes
        return cached.principal
    session = get_session()
    moment = now()
    checked = check_token(session, token, moment)
    if checked.refused is not None or checked.user is None or checked.token is None:
        if checked.user is not None or not _unknown_rejected_lately(session, moment):
            _commit_token_event(
                "token.rejected", checked, reason=checked.refused, prefix=token[:10]
            )
        return None
    principal = load_principal(session, checked.user, request_locale(checked.user))
    if token_due_touch(checked.token, moment):
        _commit_token_event("token.used", checked, endpoint=request.endpoint)
    g.token_scopes = checked.scopes
    expires = as_utc(checked.token.expires_at)
    valid_for = (expires - moment).total_seconds() if expires is not None else None
    principal_cache().put(key, CachedAuth(principal, checked.scopes, checked.token.id), valid_for)
    return principal


def _unknown_rejected_lately(session: Session, moment: dt.datetime) -> bool:
    """Return True when this address sent an unknown token in the last minute: one event a
    minute per address is the record, so a flood of guesses is not a flood of writes
    (expired and revoked tokens, which name their user, are always logged)."""
    recent = sa.select(SecurityEvent.id).where(
        SecurityEvent.kind == "token.rejected",
        SecurityEvent.at > moment - dt.timedelta(minutes=1),
        SecurityEvent.ip == client_ip(),
        SecurityEvent.user_id.is_(None),
    )
    return session.execute(recent.limit(1)).first() is not None


def _commit_token_event(kind: str, checked: TokenCheck, **detail: object) -> None:
    """Commit a token event at once, apart from the request's own work (which may fail).

    This runs in before_request, when the request's session holds nothing but the token
    look-up: ending that read first makes the write start a fresh transaction (SQLite cannot
    turn a read into a write once another connection has written since).
    """
    session = get_session()
    session.commit()
    found, user = checked.token, checked.user
    if found is not None:
        detail = {"token_id": found.id, "token_name": found.name, **detail}
    if kind == "token.used" and (found is None or not touch_token(session, found.id, now())):
        session.rollback()  # another worker noted this minute's use already
        return
    record_event(
        session,
        kind,
        user_id=user.id if user is not None else None,
        username=user.username if user is not None else None,
        ip=client_ip(),
        user_agent=user_agent(),
        detail=detail,
        at=now(),
    )
    session.commit()


def _session_principal() -> Principal | None:
    row = current_login()  # checked on every request: a revoked session signs nobody in
    if row is None:
        return None
    key = ("user", str(row.user_id), _accept_locale())
    cached = principal_cache().get(key)
    if cached is not None:
        return cached.principal
    if not current_user.is_authenticated:
        return None
    user = current_user.user
    principal = load_principal(get_session(), user, request_locale(user))
    principal_cache().put(key, CachedAuth(principal))
    return principal


def _accept_locale() -> str:
    return request.headers.get("Accept-Language", "")[:100]


def request_locale(user: User | None = None) -> str:
    """Return zh-CN or en: the user's choice, else Accept-Language, else zh-CN."""
    if user is not None and user.locale:
        return user.locale
    best = request.accept_languages.best_match(["zh-CN", "zh", "en"], default="zh-CN")
    return "en" if best == "en" else "zh-CN"
