"""The signed-in user's own security: change password, sign out everywhere, API tokens."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from formwork.auth import bp, current_principal, principal_cache
from formwork.auth.errors import PasswordRejected, UserError
from formwork.auth.events import record_request_event
from formwork.auth.forms import ActionForm, ChangePasswordForm, LogoutAllForm, TokenForm
from formwork.auth.session_store import live_sessions, revoke_session
from formwork.auth.sessions import current_login, end_session, session_limits, start_session
from formwork.auth.settings import now
from formwork.auth.users import (
    change_password,
    create_token,
    list_tokens,
    logout_everywhere,
    revoke_token,
)
from formwork.context import get_session
from formwork.runtime.models import User


def _me() -> User:
    user: User = current_user.user
    return user


def password_message(exc: PasswordRejected) -> str:
    """Return why a password was refused, in the page's language."""
    messages = {
        "too_short": _(
            "The password must be at least %(min)s characters long.", min=exc.params.get("min")
        ),
        "too_long": _(
            "The password must be at most %(max)s characters long.", max=exc.params.get("max")
        ),
        "too_simple": _(
            "The password must mix letters and digits, or use three of: lower case, "
            "upper case, digits, symbols."
        ),
        "contains_username": _("The password must not contain the username."),
        "common": _("This password is too common; choose another one."),
        "wrong_current": _("The current password is wrong."),
        "unchanged": _("The new password must differ from the current one."),
    }
    return messages.get(exc.code, str(exc))


def _account_page(status: int = 200, **forms: Any) -> Any:
    forms.setdefault("password_form", ChangePasswordForm())
    forms.setdefault("logout_form", LogoutAllForm())
    principal = current_principal()
    is_admin = principal is not None and principal.is_admin
    current = current_login()
    return render_template(
        "auth/account.html",
        user=_me(),
        is_admin=is_admin,
        sessions=live_sessions(get_session(), _me().id, now(), session_limits()),
        current_session=current.id if current is not None else None,
        action_form=ActionForm(),
        **forms,
    ), status


@bp.get("/account")
@login_required
def account() -> Any:
    """Show the account page: change password, the signed-in browsers, sign out
    everywhere, a link to API tokens."""
    return _account_page()


@bp.post("/account/password")
@login_required
def change_password_view() -> Any:
    """Change one's own password (the current one required); other sessions end."""
    form = ChangePasswordForm()
    if not form.validate_on_submit():
        return _account_page(400, password_form=form)
    user, session = _me(), get_session()
    try:
        change_password(session, user, form.current.data or "", form.new.data or "")
    except PasswordRejected as exc:
        session.rollback()
        flash(password_message(exc), "danger")
        return _account_page(400, password_form=form)
    record_request_event("password.changed")
    start_session(user)  # every session was revoked with the old password; this is a new one
    session.commit()
    principal_cache().clear()
    flash(_("Your password was changed. Your other sessions were signed out."), "success")
    return redirect(url_for("auth.account"))


@bp.post("/account/logout-all")
@login_required
def logout_all() -> Any:
    """Sign out every other session (and revoke every API token when asked)."""
    form = LogoutAllForm()
    if not form.validate_on_submit():
        return _account_page(400, logout_form=form)
    user, session = _me(), get_session()
    current = current_login()
    keep = current.id if current is not None else None
    revoked = logout_everywhere(session, user, bool(form.revoke_tokens.data), keep=keep)
    record_request_event("logout.all", tokens_revoked=revoked)
    session.commit()
    principal_cache().clear()
    flash(_("Your other sessions were signed out."), "success")
    return redirect(url_for("auth.account"))


@bp.route("/account/tokens", methods=["GET", "POST"])
@login_required
def tokens() -> Any:
    """List one's API tokens and create one (shown once, never again)."""
    form, user, session = TokenForm(), _me(), get_session()
    new_token, status = None, 200
    if form.validate_on_submit():
        try:
            new_token = create_token(
                session, user, form.name.data or "", int(form.days.data or 0), form.scopes.data
            )
        except UserError as exc:
            flash(str(exc), "danger")
            status = 400
        else:
            record_request_event(
                "token.created", name=form.name.data, scopes=form.scopes.data, days=form.days.data
            )
            session.commit()
            form = TokenForm(formdata=None)
    elif form.is_submitted():
        status = 400
    return render_template(
        "auth/tokens.html",
        form=form,
        action_form=ActionForm(),
        tokens=list_tokens(session, user),
        new_token=new_token,
    ), status


@bp.post("/account/tokens/<int:token_id>/revoke")
@login_required
def revoke_token_view(token_id: int) -> Any:
    """Revoke one of one's own API tokens."""
    if not ActionForm().validate_on_submit():
        return redirect(url_for("auth.tokens"))
    session = get_session()
    try:
        token = revoke_token(session, token_id, owner=_me())
    except UserError:
        session.rollback()
        return render_template(
            "web/error.html", status=404, message=_("This page or record does not exist.")
        ), 404
    record_request_event("token.revoked", token_id=token.id, token_name=token.name)
    session.commit()
    principal_cache().clear()
    flash(_("The token was revoked."), "success")
    return redirect(url_for("auth.tokens"))


@bp.post("/account/sessions/<int:session_id>/revoke")
@login_required
def revoke_session_view(session_id: int) -> Any:
    """Sign one of one's own browsers out (this one included)."""
    if not ActionForm().validate_on_submit():
        return redirect(url_for("auth.account"))
    db, current = get_session(), current_login()
    if current is not None and current.id == session_id:
        record_request_event("logout")
        end_session()
        db.commit()
        return redirect(url_for("auth.login"))
    if not revoke_session(db, session_id, now(), "revoked", user_id=_me().id):
        db.rollback()
        message = _("This page or record does not exist.")
        return render_template("web/error.html", status=404, message=message), 404
    record_request_event("session.revoked", session_id=session_id)
    db.commit()
    flash(_("That browser was signed out."), "success")
    return redirect(url_for("auth.account"))
