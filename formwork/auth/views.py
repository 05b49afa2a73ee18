"""Sign in and sign out."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from formwork.auth import bp
from formwork.auth.events import client_ip, record_request_event, user_agent
from formwork.auth.forms import LoginForm
from formwork.auth.login import LoginAttempt, sign_in
from formwork.auth.sessions import end_session, start_session
from formwork.auth.settings import login_limits, now
from formwork.context import get_session
from formwork.redirects import redirect_target


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """Show the sign-in form and sign the user in on a new session."""
    form = LoginForm()
    if form.validate_on_submit():
        session = get_session()
        attempt = LoginAttempt(
            form.username.data or "", form.password.data or "", client_ip(), user_agent()
        )
        user = sign_in(session, attempt, login_limits(), now())
        if user is not None:
            start_session(user)
        session.commit()  # a failure and its lockout are kept although the sign-in fails
        if user is not None:
            return redirect(_next_url())
        # The same words whatever went wrong, so no one learns which usernames exist.
        flash(_("Wrong username or password."), "danger")
    return render_template("auth/login.html", form=form), 200 if request.method == "GET" else 401


def _next_url() -> str:
    return redirect_target(request.args.get("next"), url_for("web.home"))


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    """Sign the user out (CSRF-checked, so no other site can sign anyone out)."""
    if current_user.is_authenticated:
        record_request_event("logout")
    end_session()  # this session's row is revoked: its cookie is worth nothing any more
    get_session().commit()
    return redirect(url_for("auth.login"))
