"""The sign-in and account forms (every one CSRF-protected by FlaskForm)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, PasswordField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, NumberRange

from formwork.auth.passwords import MAX_PASSWORD
from formwork.auth.scopes import SCOPES
from formwork.auth.users import TOKEN_DAYS, TOKEN_MAX_DAYS


class LoginForm(FlaskForm):
    """Username and password."""

    username = StringField("username", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("password", validators=[DataRequired(), Length(max=MAX_PASSWORD)])


class ChangePasswordForm(FlaskForm):
    """The current password and the new one, twice."""

    current = PasswordField(_l("Current password"), validators=[DataRequired()])
    new = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=MAX_PASSWORD)])
    confirm = PasswordField(
        _l("New password again"),
        validators=[DataRequired(), EqualTo("new", message=_l("The two new passwords differ."))],
    )


class LogoutAllForm(FlaskForm):
    """Sign out everywhere else, optionally revoking every API token too."""

    revoke_tokens = BooleanField(_l("Also revoke all my API tokens"))


class TokenForm(FlaskForm):
    """A new API token: what it is for, its scopes and its lifetime."""

    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=100)])
    scopes = SelectMultipleField(
        _l("Scopes"),
        choices=list(SCOPES),
        default=["read", "write", "workflow"],
        validators=[DataRequired()],
    )
    days = IntegerField(
        _l("Days until it expires"),
        default=TOKEN_DAYS,
        validators=[DataRequired(), NumberRange(1, TOKEN_MAX_DAYS)],
    )


class ActionForm(FlaskForm):
    """A bare POST button (revoke a token): only the CSRF token."""
