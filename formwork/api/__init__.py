"""The REST API under /api/v1: records of every installed entity, files, OpenAPI."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, current_app, g, request
from flask_wtf.csrf import CSRFError, validate_csrf
from werkzeug.exceptions import HTTPException

from formwork.api.problems import http_problem, problem
from formwork.auth import current_principal, scope_refusal
from formwork.runtime.errors import Conflict, DestructiveChange, ProblemList, RuntimeFailure
from formwork.runtime.packs.problems import PackInvalid

bp = Blueprint("api", __name__, url_prefix="/api/v1")
PUBLIC_ENDPOINTS = frozenset({"api.openapi"})
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def init_app(app: Flask) -> None:
    """Register the API blueprint; CSRF is checked here only for cookie sessions."""
    from formwork.api import (  # noqa: F401  (routes register on import)
        documents,
        files,
        openapi,
        packs,
        records,
        reports,
        roles,
        workflow,
    )

    app.register_blueprint(bp)
    csrf = app.extensions.get("csrf")
    if csrf is not None:
        csrf.exempt(bp)


@bp.before_request
def _authenticate() -> Any:
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    principal = current_principal()
    if principal is None:
        unauthorized = problem(
            401, "Unauthorized", "sign in or send 'Authorization: Bearer <token>'", "unauthorized"
        )
        unauthorized.headers["WWW-Authenticate"] = 'Bearer realm="formwork"'  # RFC 9110 asks it
        return unauthorized
    refused = scope_refusal()  # a token reaches only the endpoints its scopes cover
    if refused is not None:
        return problem(403, "Insufficient scope", refused, "insufficient-scope")
    if request.method in UNSAFE and g.get("auth_method") == "session":
        try:
            validate_csrf(request.headers.get("X-CSRFToken", ""))
        except CSRFError as exc:
            return problem(403, "CSRF check failed", str(exc.description), "csrf")
        except Exception as exc:  # noqa: BLE001  (wtforms raises ValidationError)
            return problem(403, "CSRF check failed", str(exc), "csrf")
    return None


@bp.before_request
def _conform() -> None:
    """Refuse a documented query parameter whose value breaks the document (a 400)."""
    if request.endpoint in PUBLIC_ENDPOINTS or not request.args:
        return
    from formwork.api.conformance import check_query, documented_operations
    from formwork.api.openapi import current_document
    from formwork.context import registry

    operations = documented_operations(registry().version, current_document)
    check_query(operations, request.method, request.path, request.args.to_dict(flat=False))


def locale() -> str:
    """Return the locale of the request's principal (zh-CN by default)."""
    from formwork.auth.events import request_principal

    principal = request_principal()
    return principal.locale if principal is not None else "zh-CN"


@bp.errorhandler(RuntimeFailure)
def _runtime_failure(exc: RuntimeFailure) -> Any:
    extra: dict[str, Any] = {}
    errors = None
    if isinstance(exc, ProblemList):
        errors = exc.errors
    if isinstance(exc, Conflict) and exc.current is not None:
        extra["current"] = exc.current
    if isinstance(exc, DestructiveChange):
        extra["losses"] = exc.losses
    if isinstance(exc, PackInvalid):
        extra["problems"] = [p.as_dict() for p in exc.problems]
    language = locale()
    detail = exc.describe(language) if not errors else f"{len(errors)} problem(s) found"
    return problem(exc.status, exc.title, detail, exc.kind, errors, language, **extra)


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Any:
    return http_problem(exc)


@bp.errorhandler(Exception)
def _unexpected(exc: Exception) -> Any:
    current_app.logger.exception("unexpected API error")
    return problem(500, "Internal error", "an unexpected error occurred; it was logged", "internal")
