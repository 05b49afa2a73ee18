"""Sign-in for people (session) and programs (bearer tokens)."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask import session as flask_session
from flask_babel import gettext as _
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from formwork.auth.cache import PrincipalCache
from formwork.auth.users import authenticate, hash_token, user_for_token
from formwork.db import get_session
from formwork.runtime.models import User, utcnow
from formwork.runtime.security import Principal, load_principal

bp = Blueprint("auth", __name__)


class LoginUser(UserMixin):
    """The flask-login view of a platform user."""

    def __init__(self, user: User) -> None:
        self.user = user
        self.id = str(user.id)


class LoginForm(FlaskForm):
    """Username and password, CSRF-protected."""

    username = StringField("username", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("password", validators=[DataRequired(), Length(max=256)])


def init_app(app: Flask) -> None:
    """Install flask-login and the sign-in pages."""
    app.extensions["formwork.principals"] = PrincipalCache(app.config["PRINCIPAL_TTL"])
    manager = LoginManager(app)
    manager.login_view = "auth.login"
    manager.user_loader(_load_user)
    app.register_blueprint(bp)


def _load_user(user_id: str) -> LoginUser | None:
    user = get_session().get(User, int(user_id)) if user_id.isdigit() else None
    return LoginUser(user) if user is not None and user.is_active else None


def bearer_token() -> str | None:
    """Return the bearer token of the request, if any."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def current_principal() -> Principal | None:
    """Return the principal of the request (bearer token first, then session), or None."""
    if "principal" in g:
        return g.principal  # type: ignore[no-any-return]
    token = bearer_token()
    g.auth_method = "token" if token is not None else "session"
    g.principal = _token_principal(token) if token is not None else _session_principal()
    return g.principal  # type: ignore[no-any-return]


def principal_cache() -> PrincipalCache:
    """Return the app's principal cache."""
    return current_app.extensions["formwork.principals"]  # type: ignore[no-any-return]


def _token_principal(token: str) -> Principal | None:
    key = ("token", hash_token(token), _accept_locale())
    cached = principal_cache().get(key)
    if cached is not None:
        return cached
    session = get_session()
    found = user_for_token(session, token)
    if found is None:
        return None
    user, expires = found
    principal = load_principal(session, user, request_locale(user))
    valid_for = (expires - utcnow()).total_seconds() if expires is not None else None
    principal_cache().put(key, principal, valid_for)
    return principal


def _session_principal() -> Principal | None:
    user_id = flask_session.get("_user_id")
    if user_id is None:
        return None
    key = ("user", str(user_id), _accept_locale())
    cached = principal_cache().get(key)
    if cached is not None:
        return cached
    if not current_user.is_authenticated:
        return None
    user = current_user.user
    principal = load_principal(get_session(), user, request_locale(user))
    principal_cache().put(key, principal)
    return principal


def _accept_locale() -> str:
    return request.headers.get("Accept-Language", "")[:100]


def request_locale(user: User | None = None) -> str:
    """Return zh-CN or en: the user's choice, else Accept-Language, else zh-CN."""
    if user is not None and user.locale:
        return user.locale
    best = request.accept_languages.best_match(["zh-CN", "zh", "en"], default="zh-CN")
    return "en" if best == "en" else "zh-CN"


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """Show the sign-in form and sign the user in."""
    form = LoginForm()
    if form.validate_on_submit():
        session = get_session()
        user = authenticate(session, form.username.data or "", form.password.data or "")
        if user is not None:
            user.last_login_at = utcnow()
            session.commit()
            login_user(LoginUser(user))
            target = request.args.get("next", "")
            return redirect(
                target
                if target.startswith("/") and not target.startswith("//")
                else url_for("web.home")
            )
        flash(_("Wrong username or password."), "danger")
    return render_template("auth/login.html", form=form), 200 if request.method == "GET" else 401


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    """Sign the user out."""
    logout_user()
    return redirect(url_for("auth.login"))
