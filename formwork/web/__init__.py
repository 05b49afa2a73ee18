"""The generated end-user interface: navigation, home, list, form, detail, import and
export pages for every installed entity, built from definitions and layouts."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, render_template, request
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from formwork.runtime.errors import NotFound, PermissionDenied, RuntimeFailure
from formwork.web import i18n

bp = Blueprint("web", __name__)


def init_app(app: Flask) -> None:
    """Register the pages, Flask-Babel and the template helpers."""
    from formwork.web import (  # noqa: F401  (routes register)
        documents,
        home,
        imports,
        lists,
        records,
        reports,
        roles_admin,
        tasks,
    )

    reports.init_app(app)

    i18n.init_app(app)
    app.register_blueprint(bp)
    app.context_processor(_template_context)
    app.register_error_handler(CSRFError, _csrf_error)


def _template_context() -> dict[str, Any]:
    from formwork.web.context import navigation

    signed_in = current_user.is_authenticated
    return {
        "navigation": navigation if signed_in else list,
        "user_is_admin": _is_admin if signed_in else (lambda: False),
        "locale": i18n.current_locale(),
    }


def _is_admin() -> bool:
    from formwork.auth import current_principal

    found = current_principal()
    return found is not None and found.is_admin


def _csrf_error(exc: CSRFError) -> Any:
    message = _(
        "The form has expired or was sent from another site. Reload the page and try again."
    )
    return render_template("web/error.html", status=400, message=message), 400


@bp.errorhandler(RuntimeFailure)
def _runtime_failure(exc: RuntimeFailure) -> Any:
    if isinstance(exc, PermissionDenied):
        status, message = 403, _("You do not have permission to do this.")
    elif isinstance(exc, NotFound):
        status, message = 404, _("This page or record does not exist.")
    else:
        status, message = exc.status, exc.describe(i18n.current_locale())
    return render_template("web/error.html", status=status, message=message), status


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Any:
    status = exc.code or 500
    if status == 413:
        message = _("The upload is too large.")
    elif status == 404:
        message = _("This page or record does not exist.")
    else:
        message = exc.description or exc.name
    if request.headers.get("HX-Request"):
        return message, status
    return render_template("web/error.html", status=status, message=message), status
